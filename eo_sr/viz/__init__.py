"""Maps and figures for the notebooks and the CLI.

Nothing heavy is imported with this package: :mod:`eo_sr.viz.maps` loads
geopandas and matplotlib when first used and leafmap only inside
:func:`footprint_map`; :mod:`eo_sr.viz.figures` loads rasterio and matplotlib;
:mod:`eo_sr.viz.timeline` loads pandas and matplotlib; :mod:`eo_sr.viz.raster`
(figures of loaded arrays, grids and patch stores) loads matplotlib, and leafmap
only inside :func:`patch_map`. The ipywidgets apps of
the notebooks live in :mod:`eo_sr.viz.widgets` (imported explicitly: it needs
ipywidgets); the quality-control figures and explorer in
:mod:`eo_sr.viz.qc_explorer` (needs ipywidgets; bqplot for the interactive scatter); the figures of SR results
(panels, histograms, gain scatter, swipe map) in :mod:`eo_sr.viz.sr` (imported explicitly).

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
plot_qc_scatter
    SSIM against PSNR of a QC table, coloured by cluster, dropped patches marked.
plot_bic
    BIC per number of QC clusters.
show_patch_pair
    LR, bicubic LR, HR and their difference for one patch of a store.
QCExplorer
    The interactive QC explorer (scatter selection, pair, map, keep/drop decisions).
show_image
    A true-colour image of a loaded ``(band, y, x)`` array, with a mask drawn over it.
plot_band_histograms
    Per-band histograms of several images over their valid pixels.
draw_pixel_edges
    The pixel edges of an exact grid over an image.
patches_frame
    The patches of a patch-store manifest as a GeoDataFrame in lon/lat.
patch_map
    An interactive leafmap map of a patch store, one layer per split.
plot_patch_splits
    The same map as a static matplotlib figure.
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
    "plot_qc_scatter": "eo_sr.viz.qc_explorer",
    "plot_bic": "eo_sr.viz.qc_explorer",
    "show_patch_pair": "eo_sr.viz.qc_explorer",
    "QCExplorer": "eo_sr.viz.qc_explorer",
    "show_image": "eo_sr.viz.raster",
    "plot_band_histograms": "eo_sr.viz.raster",
    "draw_pixel_edges": "eo_sr.viz.raster",
    "patches_frame": "eo_sr.viz.raster",
    "patch_map": "eo_sr.viz.raster",
    "plot_patch_splits": "eo_sr.viz.raster",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eo_sr.viz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
