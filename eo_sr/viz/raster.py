"""Figures of loaded rasters, exact grids and patch stores.

:mod:`eo_sr.viz.figures` reads scenes straight from their files; the functions here
draw what the pipeline has already loaded or written:

- :func:`rgb_image` and :func:`show_image`: a true-colour image of a ``(band, y, x)``
  array (a DataArray from :func:`eo_sr.loading.load_items`, or a patch), optionally with
  a mask drawn over it and with a contrast stretch shared between images, so that
  radiometric differences (two sensors, before and after histogram matching) stay
  visible;
- :func:`plot_band_histograms`: one histogram per band for several images, over their
  valid pixels only;
- :func:`draw_pixel_edges`: the pixel edges of a :class:`eo_sr.grid.GridSpec` over an
  image, to see that an HR grid refines an LR grid;
- :func:`patches_frame`, :func:`patch_map` and :func:`plot_patch_splits`: the patches
  of a patch store manifest as a GeoDataFrame, an interactive leafmap map (one layer per
  split) and its static twin.

Arrays without band names are read in eo-sr's default band order (``blue, green, red,
nir``) when they have four bands and as ``red, green, blue`` when they have three; pass
``band_names=`` otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from eo_sr.errors import InvalidInputError

__all__ = ["SPLIT_COLORS", "draw_pixel_edges", "patch_map", "patches_frame", "plot_band_histograms",
           "plot_patch_splits", "rgb_image", "rgb_limits", "show_image"]

RGB = ("red", "green", "blue")
#: eo-sr's default band order (:func:`eo_sr.loading.load_items`, the patch store).
DEFAULT_BANDS = ("blue", "green", "red", "nir")
#: One colour per split of a patch store (colour-blind safe, from ColorBrewer "Dark2").
SPLIT_COLORS = {"train": "#1b9e77", "val": "#d95f02", "test": "#7570b3"}
_HIST_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


# ----------------------------------------------------------------- arrays and bands


def _names(data, band_names: Sequence[str] | None, n: int) -> list[str]:
    """The band names along the first axis of ``data``."""
    if band_names is not None:
        names = [str(b) for b in band_names]
    elif hasattr(data, "dims") and "band" in getattr(data, "coords", {}):
        names = [str(b) for b in np.atleast_1d(data["band"].values)]
    elif n == len(DEFAULT_BANDS):
        names = list(DEFAULT_BANDS)
    elif n == len(RGB):
        names = list(RGB)
    else:
        raise InvalidInputError(f"cannot tell which of the {n} bands is which: pass band_names=")
    if len(names) != n:
        raise InvalidInputError(f"{len(names)} band names {names} for {n} bands")
    return names


def _as_bands(data, band_names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """``(bands, y, x)`` float32 values and their names."""
    if hasattr(data, "dims") and "band" in data.dims:
        extra = [d for d in data.dims if d not in ("band", "y", "x")]
        if any(data.sizes[d] != 1 for d in extra):
            raise InvalidInputError(f"an image needs dims (band, y, x); select one {extra} first "
                                    f"(e.g. data.isel({extra[0]}=0)), got {dict(data.sizes)}")
        data = data.squeeze(extra, drop=True).transpose("band", "y", "x")
    arr = np.asarray(data.values if hasattr(data, "values") and hasattr(data, "dims") else data)
    if arr.ndim != 3:
        raise InvalidInputError(f"an image must have shape (bands, height, width), got {arr.shape}")
    return arr.astype(np.float32, copy=False), _names(data, band_names, arr.shape[0])


def _select(arr: np.ndarray, names: list[str], bands: Sequence[str]) -> np.ndarray:
    missing = [b for b in bands if b not in names]
    if missing:
        raise InvalidInputError(f"no band(s) {missing} in {names}")
    return arr[[names.index(b) for b in bands]]


def _mask2d(mask, shape: tuple[int, int], what: str):
    if mask is None:
        return None
    m = np.asarray(mask.values if hasattr(mask, "dims") else mask).astype(bool)
    if m.shape != shape:
        raise InvalidInputError(f"{what} has shape {m.shape} but the image is {shape}")
    return m


def _extent(data, shape: tuple[int, int]):
    """``(left, right, bottom, top)`` of an array with x/y pixel-centre coordinates, else None."""
    coords = getattr(data, "coords", {})
    if "x" not in coords or "y" not in coords or shape[0] < 1 or shape[1] < 1:
        return None
    x, y = np.asarray(data["x"].values, float), np.asarray(data["y"].values, float)
    rx = (x[-1] - x[0]) / (len(x) - 1) if len(x) > 1 else 1.0
    ry = (y[-1] - y[0]) / (len(y) - 1) if len(y) > 1 else -1.0
    return (x[0] - rx / 2, x[-1] + rx / 2, y[-1] + ry / 2, y[0] - ry / 2)


# ----------------------------------------------------------------- true colour


def rgb_limits(data, *, bands: Sequence[str] = RGB, band_names: Sequence[str] | None = None,
               percentiles: tuple[float, float] = (2.0, 98.0), mask=None) -> tuple[float, float]:
    """The contrast stretch ``(low, high)`` of a true-colour image.

    One pair of values for the three bands (joint percentiles over the pixels that have
    data in every band and, with ``mask``, are True in it), so colour differences stay
    visible. Pass the result as ``limits=`` to :func:`rgb_image` / :func:`show_image` to
    draw several images with the same stretch.

    Parameters
    ----------
    data : xarray.DataArray or numpy.ndarray
        ``(band, y, x)``; NaN marks missing data.
    bands : three str, optional
        The bands shown as red, green and blue.
    band_names : sequence of str, optional
        Names of the bands of an ndarray (see the module notes for the default).
    percentiles : (float, float), optional
        0 <= low < high <= 100.
    mask : array of bool, optional
        ``(y, x)``, True for the pixels to use (e.g. not cloud).

    Returns
    -------
    (float, float)
    """
    lo_p, hi_p = (float(p) for p in percentiles)
    if not 0.0 <= lo_p < hi_p <= 100.0:
        raise InvalidInputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    arr, names = _as_bands(data, band_names)
    rgb = _select(arr, names, bands)
    valid = np.isfinite(rgb).all(axis=0)
    m = _mask2d(mask, valid.shape, "mask")
    if m is not None:
        valid &= m
    if not valid.any():
        return (0.0, 1.0)
    lo, hi = np.percentile(rgb[:, valid], [lo_p, hi_p])
    return (float(lo), float(hi) if hi > lo else float(lo) + 1e-6)


def rgb_image(data, *, bands: Sequence[str] = RGB, band_names: Sequence[str] | None = None,
              limits: tuple[float, float] | None = None, percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """A ``(height, width, 4)`` RGBA float image in 0..1 of a ``(band, y, x)`` array.

    Values are mapped linearly from ``limits`` (default :func:`rgb_limits` of the image
    itself) to 0..1 and clipped; alpha is 0 where any of the three bands is NaN.
    """
    arr, names = _as_bands(data, band_names)
    rgb = _select(arr, names, bands)
    if limits is None:
        limits = rgb_limits(rgb, band_names=RGB, percentiles=percentiles)
    lo, hi = (float(v) for v in limits)
    if not hi > lo:
        raise InvalidInputError(f"limits must be (low, high) with high > low, got {limits!r}")
    valid = np.isfinite(rgb).all(axis=0)
    out = np.zeros((*rgb.shape[1:], 4), np.float32)
    with np.errstate(invalid="ignore"):
        scaled = np.clip((rgb - lo) / (hi - lo), 0.0, 1.0)
    out[..., :3] = np.where(valid, scaled, 0.0).transpose(1, 2, 0)
    out[..., 3] = valid
    return out


def show_image(data, *, ax=None, bands: Sequence[str] = RGB, band_names: Sequence[str] | None = None,
               limits: tuple[float, float] | None = None, percentiles: tuple[float, float] = (2.0, 98.0),
               overlay=None, overlay_color: str = "#ff00ff", overlay_alpha: float = 0.5, title: str | None = None,
               extent=None, axis_labels: bool = True, nodata_color: str | None = None):
    """Show a true-colour image of a loaded array, optionally with a mask drawn over it.

    Parameters
    ----------
    data : xarray.DataArray or numpy.ndarray
        ``(band, y, x)`` (a DataArray with a ``time`` dimension of size 1 is accepted).
        DataArrays with ``x``/``y`` coordinates are drawn in their CRS units, so
        pixel edges and other layers can be drawn over them.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure otherwise.
    bands, band_names, limits, percentiles :
        As in :func:`rgb_image`.
    overlay : array of bool, optional
        ``(y, x)``; True pixels are painted ``overlay_color`` (e.g. a cloud mask).
    overlay_color : str, optional
    overlay_alpha : float, optional
        Opacity of the overlay, 0..1.
    title : str, optional
    extent : (left, right, bottom, top), optional
        Default: from the DataArray's coordinates, else pixel indices.
    axis_labels : bool, optional
        Label the axes with the CRS units; False hides the ticks (for small panels).
    nodata_color : str, optional
        Background colour, seen where the image has no data (default: the axes' own,
        usually white, which looks like a cloud).

    Returns
    -------
    matplotlib.axes.Axes
        The image is ``ax.images[0]``, the overlay (if any) ``ax.images[1]``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    arr, names = _as_bands(data, band_names)
    img = rgb_image(arr, bands=bands, band_names=names, limits=limits, percentiles=percentiles)
    if extent is None:
        extent = _extent(data, arr.shape[1:])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    if nodata_color is not None:
        ax.set_facecolor(nodata_color)
    ax.imshow(img, extent=extent, interpolation="nearest")
    if overlay is not None:
        m = _mask2d(overlay, arr.shape[1:], "overlay")
        layer = np.zeros((*m.shape, 4), np.float32)
        layer[m] = to_rgba(overlay_color, float(overlay_alpha))
        ax.imshow(layer, extent=extent, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize="medium")
    if not axis_labels:
        ax.set_xticks([])
        ax.set_yticks([])
    elif extent is not None:
        crs = getattr(getattr(data, "rio", None), "crs", None) if hasattr(data, "dims") else None
        where = f" ({crs.to_string()}, m)" if crs is not None else ""
        ax.set_xlabel(f"x{where}", fontsize="small")
        ax.set_ylabel(f"y{where}", fontsize="small")
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize="x-small")
        ax.locator_params(nbins=4)
    return ax


# ----------------------------------------------------------------- histograms


def plot_band_histograms(images: Mapping[str, object], *, masks: Mapping[str, object] | None = None,
                         bands: Sequence[str] | None = None, band_names: Sequence[str] | None = None, axes=None,
                         bins: int = 80, value_range: Mapping[str, tuple[float, float]] | None = None,
                         colors: Mapping[str, str] | None = None, xlabel: str = "reflectance",
                         title: str | None = None):
    """Histograms of several images, one panel per band, over their valid pixels.

    Parameters
    ----------
    images : mapping of str to array
        Label -> ``(band, y, x)`` image (DataArray or ndarray; all with the same bands).
        Their spatial sizes may differ (e.g. an LR image and an HR image): each histogram
        is a density.
    masks : mapping of str to array of bool, optional
        Label -> ``(y, x)`` mask, **True where the pixel counts** (not cloud, not nodata).
        NaN pixels never count.
    bands : sequence of str, optional
        Bands to draw (default all of the first image).
    band_names : sequence of str, optional
        Names of the bands of ndarrays (see the module notes).
    axes : sequence of matplotlib.axes.Axes, optional
        One per band; a new row of panels otherwise.
    bins : int, optional
    value_range : mapping of band to (low, high), optional
        Histogram range per band; default the 0.5th to 99.5th percentile of all the
        images' valid pixels in that band.
    colors : mapping of str to str, optional
        Colour per label.
    xlabel : str, optional
    title : str, optional
        Figure title (suptitle), when the axes are created here.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One per band; each holds one step histogram (a ``Polygon`` patch) per image and
        a legend.
    """
    import matplotlib.pyplot as plt

    if not images:
        raise InvalidInputError("give at least one image: {label: (band, y, x) array}")
    masks = dict(masks or {})
    unknown = sorted(set(masks) - set(images))
    if unknown:
        raise InvalidInputError(f"masks for unknown image(s) {unknown}; images are {list(images)}")
    values = {}
    for label, data in images.items():
        arr, names = _as_bands(data, band_names)
        valid = np.ones(arr.shape[1:], bool)
        m = _mask2d(masks.get(label), arr.shape[1:], f"the mask of {label!r}")
        if m is not None:
            valid &= m
        values[label] = {name: arr[i][valid & np.isfinite(arr[i])] for i, name in enumerate(names)}
    first = next(iter(values.values()))
    bands = list(bands) if bands is not None else list(first)
    for label, per_band in values.items():
        missing = [b for b in bands if b not in per_band]
        if missing:
            raise InvalidInputError(f"image {label!r} has no band(s) {missing}")
    if axes is None:
        fig, axes = plt.subplots(1, len(bands), figsize=(3.6 * len(bands), 3.0), layout="constrained", squeeze=False)
        axes = axes[0]
        if title:
            fig.suptitle(title)
    axes = np.atleast_1d(np.asarray(axes, dtype=object)).ravel()
    if len(axes) != len(bands):
        raise InvalidInputError(f"{len(axes)} axes for {len(bands)} bands")
    colors = dict(colors or {})
    for k, label in enumerate(values):
        colors.setdefault(label, _HIST_COLORS[k % len(_HIST_COLORS)])
    for ax, band in zip(axes, bands):
        if value_range is not None and band in value_range:
            lo, hi = value_range[band]
        else:
            pooled = np.concatenate([v[band] for v in values.values()])
            lo, hi = np.percentile(pooled, [0.5, 99.5]) if pooled.size else (0.0, 1.0)
            if not hi > lo:
                lo, hi = lo - 0.5, hi + 0.5
        for label, per_band in values.items():
            v = per_band[band]
            if v.size:
                ax.hist(v, bins=bins, range=(float(lo), float(hi)), density=True, histtype="step",
                        linewidth=1.5, color=colors[label], label=label)
        ax.set_title(band, fontsize="medium")
        ax.set_xlabel(xlabel, fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.set_yticks([])
    axes[0].set_ylabel("density", fontsize="small")
    axes[-1].legend(fontsize="x-small", loc="upper right")
    return axes


# ----------------------------------------------------------------- grids


def draw_pixel_edges(ax, grid, *, bounds=None, color: str = "yellow", linewidth: float = 0.8,
                     alpha: float = 0.9, label: str | None = None):
    """Draw the pixel edges of a grid over what an axes shows (in the grid's CRS units).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes in the grid's CRS units (e.g. from :func:`show_image` of a loaded array).
    grid : eo_sr.grid.GridSpec
    bounds : (left, bottom, right, top), optional
        Where to draw; default the axes' current view, clipped to the grid.
    color, linewidth, alpha : optional
        Line style.
    label : str, optional
        Legend label.

    Returns
    -------
    matplotlib.collections.LineCollection
        One segment per edge line (vertical ones first).

    Raises
    ------
    InvalidInputError
        More than 2,000 edges would be drawn (zoom in first).
    """
    from matplotlib.collections import LineCollection

    g_left, g_bottom, g_right, g_top = grid.bounds
    if bounds is None:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    else:
        x0, y0, x1, y1 = (float(v) for v in bounds)
    x0, x1 = max(x0, g_left), min(x1, g_right)
    y0, y1 = max(y0, g_bottom), min(y1, g_top)
    if not (x1 > x0 and y1 > y0):
        raise InvalidInputError(f"the view {(x0, y0, x1, y1)} does not overlap the grid {grid.bounds}")
    c0, c1 = math.ceil((x0 - grid.left) / grid.res - 1e-9), math.floor((x1 - grid.left) / grid.res + 1e-9)
    r0, r1 = math.ceil((grid.top - y1) / grid.res - 1e-9), math.floor((grid.top - y0) / grid.res + 1e-9)
    n = (c1 - c0 + 1) + (r1 - r0 + 1)
    if n > 2000:
        raise InvalidInputError(f"{n} pixel edges to draw: zoom in (set the axes limits or bounds=) first")
    xs = grid.left + np.arange(c0, c1 + 1) * grid.res
    ys = grid.top - np.arange(r0, r1 + 1) * grid.res
    segments = [[(x, y0), (x, y1)] for x in xs] + [[(x0, y), (x1, y)] for y in ys]
    lines = LineCollection(segments, colors=color, linewidths=linewidth, alpha=alpha, label=label, zorder=3)
    ax.add_collection(lines)
    return lines


# ----------------------------------------------------------------- patch stores


def patches_frame(manifest):
    """The patches of a patch store manifest as a GeoDataFrame in longitude/latitude.

    Parameters
    ----------
    manifest : pandas.DataFrame
        As returned by :func:`eo_sr.patches.build_patch_store` (or read from
        ``manifest.parquet``): columns ``left, bottom, right, top, crs`` and ``split``.

    Returns
    -------
    geopandas.GeoDataFrame
        The manifest's columns except the bounds, with the patch squares reprojected from
        their CRS (e.g. EPSG:32636) to EPSG:4326, in the manifest's order.
    """
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    needed = ["left", "bottom", "right", "top", "crs", "split"]
    missing = [c for c in needed if c not in manifest.columns]
    if missing:
        raise InvalidInputError(f"the manifest lacks column(s) {missing}; read it from the store's manifest.parquet")
    keep = [c for c in manifest.columns if c not in ("left", "bottom", "right", "top")]
    if len(manifest) == 0:
        return gpd.GeoDataFrame(manifest[keep].copy(), geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    parts = []
    for crs, sub in manifest.groupby("crs", sort=False):
        geoms = [box(*b) for b in sub[["left", "bottom", "right", "top"]].to_numpy(float)]
        parts.append(gpd.GeoDataFrame(sub[keep], geometry=geoms, crs=crs).to_crs("EPSG:4326"))
    frame = pd.concat(parts).loc[manifest.index]
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def _split_styles(frame, colors: Mapping[str, str] | None):
    colors = {**SPLIT_COLORS, **(colors or {})}
    order = [s for s in SPLIT_COLORS if s in set(frame["split"])]
    order += sorted(set(frame["split"]) - set(order))
    extra = iter(_HIST_COLORS)
    return {s: colors.get(s) or next(extra) for s in order}


def patch_map(manifest, *, aoi=None, colors: Mapping[str, str] | None = None, height: int = 500, width: int = 800,
              fill_opacity: float = 0.25):
    """An interactive map of the patches of a store, one layer per split.

    Layers are named ``"<split> (<n> patches)"``, plus an ``"AOI"`` layer when ``aoi`` is
    given and a layer control. Patches of several HR scenes over the same place lie on top
    of each other (a place seen on several dates); they always share their split.

    Uses leafmap with the ipyleaflet backend; building the map needs no network (basemap
    tiles do: offline the background stays grey).

    Parameters
    ----------
    manifest : pandas.DataFrame
        See :func:`patches_frame`.
    aoi : shapely geometry, GeoJSON dict or [west, south, east, north], optional
        Drawn dashed; the map is centred on it (else on the patches).
    colors : mapping of str to str, optional
        Colour per split (default :data:`SPLIT_COLORS`).
    height, width : int, optional
        Map size in pixels (the zoom is chosen to fit it).
    fill_opacity : float, optional

    Returns
    -------
    leafmap.Map
    """
    import warnings

    import ipyleaflet
    import leafmap
    from shapely.geometry import mapping

    from eo_sr.viz.maps import AOI_COLOR, aoi_geometry, map_view

    frame = patches_frame(manifest)
    aoi = aoi_geometry(aoi)
    if aoi is not None:
        bounds = aoi.bounds
    elif len(frame):
        bounds = tuple(frame.total_bounds)
    else:
        raise InvalidInputError("the manifest has no patch and no aoi was given: nothing to place the map on")
    center, zoom = map_view(bounds, width_px=width, height_px=height)
    with warnings.catch_warnings():  # leafmap hands its own options on to ipyleaflet, which warns
        warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
        m = leafmap.Map(center=center, zoom=zoom, height=f"{height}px", draw_control=False,
                        measure_control=False, toolbar_control=False, search_control=False, scale_control=True)
    for split, color in _split_styles(frame, colors).items():
        sub = frame[frame["split"] == split]
        feats = [{"type": "Feature", "geometry": mapping(g),
                  "properties": {"patch_id": str(pid), "split": split}}
                 for pid, g in zip(sub.get("patch_id", sub.index), sub.geometry)]
        m.add(ipyleaflet.GeoJSON(
            data={"type": "FeatureCollection", "features": feats}, name=f"{split} ({len(sub)} patches)",
            style={"color": color, "weight": 1, "opacity": 0.9, "fillColor": color, "fillOpacity": fill_opacity},
        ))
    if aoi is not None:
        m.add(ipyleaflet.GeoJSON(
            data={"type": "FeatureCollection",
                  "features": [{"type": "Feature", "geometry": mapping(aoi), "properties": {"name": "AOI"}}]},
            name="AOI", style={"color": AOI_COLOR, "weight": 3, "dashArray": "6 4", "fill": False, "opacity": 1},
        ))
    m.add(ipyleaflet.LayersControl(position="topright"))
    return m


def plot_patch_splits(manifest, *, aoi=None, ax=None, colors: Mapping[str, str] | None = None,
                      title: str | None = "Patches by split", legend: bool = True):
    """The static twin of :func:`patch_map`: patch squares coloured by split, lon/lat axes.

    The aspect ratio is corrected for latitude, so the squares look square.

    Returns
    -------
    matplotlib.axes.Axes
        One :class:`matplotlib.patches.Polygon` per patch in ``ax.patches``; the AOI, if
        given, as a dashed line.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Polygon
    from matplotlib.ticker import MaxNLocator

    from eo_sr.viz.maps import aoi_geometry, finish_lonlat_axes

    frame = patches_frame(manifest)
    aoi = aoi_geometry(aoi)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    handles = []
    for split, color in _split_styles(frame, colors).items():
        sub = frame[frame["split"] == split]
        for geom in sub.geometry:
            ax.add_patch(Polygon(list(geom.exterior.coords), closed=True, facecolor=color, alpha=0.35,
                                 edgecolor=color, linewidth=0.8, zorder=2))
        handles.append(Patch(facecolor=color, alpha=0.6, edgecolor=color, label=f"{split} ({len(sub)})"))
    finish_lonlat_axes(ax, aoi, frame.total_bounds, handles, title=title, legend=legend, margin=0.03)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    return ax
