"""Maps and figures for the notebooks and the CLI.

Nothing heavy is imported with this package: :mod:`eo_sr.viz.maps` loads
geopandas and matplotlib when first used and leafmap only inside
:func:`footprint_map`; :mod:`eo_sr.viz.figures` loads rasterio and matplotlib;
:mod:`eo_sr.viz.timeline` loads pandas and matplotlib. The ipywidgets apps of
the notebooks live in :mod:`eo_sr.viz.widgets` (imported explicitly: it needs
ipywidgets).

Functions
---------
footprints_frame
    STAC items as a GeoDataFrame (one row per item).
footprint_map
    An interactive leafmap (ipyleaflet) map of an AOI and item footprints.
plot_footprints
    The same map as a static matplotlib figure (for the offline book).
plot_timeline
    HR and LR acquisitions on one time axis, with matched pairs (static).
show_rgb
    A contrast-stretched true-colour image of a scene.
stretch_rgb
    Percentile contrast stretch of a three-band array to an RGBA image.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "footprints_frame": "eo_sr.viz.maps",
    "footprint_map": "eo_sr.viz.maps",
    "plot_footprints": "eo_sr.viz.maps",
    "plot_timeline": "eo_sr.viz.timeline",
    "show_rgb": "eo_sr.viz.figures",
    "stretch_rgb": "eo_sr.viz.figures",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eo_sr.viz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
