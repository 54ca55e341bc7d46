"""eo-sr: machine learning for Earth observation super-resolution.

Search two STAC catalogs, match high-resolution (HR) scenes with low-resolution
(LR) scenes, build an aligned patch dataset, check its quality and train models
that beat bicubic upsampling.

``import eo_sr`` is kept fast: heavy dependencies (torch, leafmap, rasterio,
dask.distributed) are imported inside the modules that use them, and the
submodules themselves are loaded on first attribute access.
"""
from __future__ import annotations

import importlib

from eo_sr.errors import EoSrError

__version__ = "0.1.0"

_SUBMODULES = {"apps", "bicubic", "cli", "dataset", "demo", "errors", "evaluate", "grid", "indexing", "learn",
               "loading", "localapi", "matching", "metrics", "paths", "patches", "pipeline", "qc", "radiometry",
               "sensors", "stac", "store", "viz", "wald"}

__all__ = ["EoSrError", "__version__", *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"eo_sr.{name}")
    raise AttributeError(f"module 'eo_sr' has no attribute {name!r}")
