"""A real STAC API on 127.0.0.1 (PostgreSQL + pgstac + stac-fastapi-pgstac).

It serves the demo world, a provider's recorded items in the tests, or a user's own
items (``eo-sr index``), through the same HTTP API the public catalogs speak.
:mod:`eo_sr.localapi.server` runs it; :mod:`eo_sr.localapi.processes` makes sure its
processes never outlive the command that started them.
"""
from __future__ import annotations

__all__ = ["LocalStacServer", "serve", "find_postgres_bindir", "clean_stale_servers"]


def __getattr__(name):  # the server module imports subprocess machinery: load it on first use
    if name in __all__:
        from eo_sr.localapi import server

        return getattr(server, name)
    raise AttributeError(f"module 'eo_sr.localapi' has no attribute {name!r}")
