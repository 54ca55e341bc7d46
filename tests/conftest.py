"""Shared fixtures: a tiny demo world and a real STAC API serving it."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    """Point eo-sr's cache at a session folder so tests never touch the user's cache."""
    root = tmp_path_factory.mktemp("eo-sr-cache")
    old = os.environ.get("EO_SR_CACHE")
    os.environ["EO_SR_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("EO_SR_CACHE", None)
    else:
        os.environ["EO_SR_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_world(cache_root):
    from eo_sr import demo

    return demo.generate("tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def demo_server(tiny_world):
    """The local STAC API (PostgreSQL + pgstac + stac-fastapi) serving the tiny world."""
    from eo_sr import demo

    with demo.serve_world(tiny_world) as server:
        yield server
