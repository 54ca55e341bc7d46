"""Where eo-sr keeps what it generates or downloads.

Everything generated (the demo world, search caches, patch stores) lives under one
cache folder: ``$EO_SR_CACHE`` when set, else ``data/cache`` inside a source
checkout (git-ignored), else ``~/.cache/eo-sr`` for an installed package.
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "EO_SR_CACHE"

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Return the cache folder (or a folder inside it).

    Parameters
    ----------
    *parts : str
        Sub-folders inside the cache, e.g. ``cache_dir("demo", "default-0")``.
    create : bool, optional
        Create the folder if it does not exist (default).

    Returns
    -------
    pathlib.Path
        An absolute path.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    elif (_CHECKOUT_ROOT / "pyproject.toml").is_file() and (_CHECKOUT_ROOT / "eo_sr").is_dir():
        root = _CHECKOUT_ROOT / "data" / "cache"
    else:
        root = Path.home() / ".cache" / "eo-sr"
    path = root.joinpath(*parts).resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
