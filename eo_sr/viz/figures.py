"""Static figures: true-colour images of scenes.

:func:`show_rgb` reads the red, green and blue assets of a STAC item straight from
their Cloud-Optimized GeoTIFFs, decimated through the COG overviews so a quick look
stays quick and small in memory, and shows a percentile contrast stretch
(:func:`stretch_rgb`). No-data pixels are transparent.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from eo_sr.errors import InvalidInputError

__all__ = ["show_rgb", "stretch_rgb"]

RGB = ("red", "green", "blue")


def _asset_hrefs(source, bands: Sequence[str]) -> tuple[list[str], str | None]:
    """The hrefs of ``bands`` in an item, an item dict, a ``{band: href}`` mapping
    or a sequence of hrefs; and a title (the item id) when there is one."""
    if hasattr(source, "assets") and hasattr(source, "id"):  # pystac.Item
        assets = {k: {"href": a.href, "eo:bands": a.extra_fields.get("eo:bands", [])}
                  for k, a in source.assets.items()}
        title = source.id
    elif isinstance(source, Mapping) and "assets" in source:  # item dict
        assets, title = source["assets"], source.get("id")
    elif isinstance(source, Mapping):  # {band: href}
        missing = [b for b in bands if b not in source]
        if missing:
            raise InvalidInputError(f"no href for band(s) {missing}; the mapping has {sorted(source)}")
        return [str(source[b]) for b in bands], None
    elif isinstance(source, Sequence) and not isinstance(source, str):
        if len(source) != len(bands):
            raise InvalidInputError(f"give {len(bands)} hrefs (one per band of {tuple(bands)}), got {len(source)}")
        return [str(h) for h in source], None
    else:
        raise InvalidInputError(
            f"cannot find band assets in a {type(source).__name__}; pass a pystac.Item, an item dict, "
            "a {band: href} mapping or a list of hrefs"
        )
    hrefs = []
    for band in bands:
        key = band if band in assets else next(
            (k for k, a in assets.items()
             if any(b.get("common_name") == band for b in (a.get("eo:bands") or []))), None)
        if key is None:
            raise InvalidInputError(f"item {title!r} has no asset for band {band!r}; its assets are {sorted(assets)}")
        hrefs.append(str(assets[key]["href"]))
    return hrefs, title


def _read_bands(hrefs: Sequence[str], *, max_size: int):
    """Read one band per href at most ``max_size`` pixels on the longer side.

    Returns the stack (float32, NaN where there is no data), the bounds and the CRS
    of the first file; all files must share their grid.
    """
    import rasterio
    from rasterio.enums import Resampling

    planes, grid = [], None
    for href in hrefs:
        with rasterio.open(href) as src:
            if grid is None:
                grid = (src.width, src.height, tuple(src.bounds), src.crs)
            elif (src.width, src.height, tuple(src.bounds)) != grid[:3]:
                raise InvalidInputError(f"{href} is not on the same grid as {hrefs[0]}")
            step = max(1, math.ceil(max(src.width, src.height) / max_size))
            shape = (math.ceil(src.height / step), math.ceil(src.width / step))
            data = src.read(1, out_shape=shape, resampling=Resampling.average, masked=True)
            planes.append(np.ma.filled(data.astype(np.float32), np.nan))
    return np.stack(planes), grid[2], grid[3]


def stretch_rgb(rgb: np.ndarray, *, percentiles: tuple[float, float] = (2.0, 98.0),
                per_band: bool = False) -> np.ndarray:
    """Contrast-stretch a three-band image for display.

    Values are mapped linearly from a low to a high percentile (computed over the
    pixels that have data in every band) onto 0..1 and clipped.

    Parameters
    ----------
    rgb : numpy.ndarray
        Shape ``(3, height, width)``; NaN marks pixels without data.
    percentiles : (float, float), optional
        Low and high percentiles, 0 <= low < high <= 100.
    per_band : bool, optional
        Stretch each band by its own percentiles (removes colour casts), instead
        of one stretch for all three bands (the default, which keeps the colour
        balance, so radiometric differences between sensors stay visible).

    Returns
    -------
    numpy.ndarray
        RGBA image of shape ``(height, width, 4)``, float32 in 0..1; alpha is 0
        where any band has no data.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise InvalidInputError(f"rgb must have shape (3, height, width), got {rgb.shape}")
    lo_p, hi_p = (float(p) for p in percentiles)
    if not 0.0 <= lo_p < hi_p <= 100.0:
        raise InvalidInputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    valid = np.isfinite(rgb).all(axis=0)
    out = np.zeros((*rgb.shape[1:], 4), np.float32)
    if not valid.any():
        return out
    joint = None if per_band else np.percentile(rgb[:, valid], [lo_p, hi_p])
    for b in range(3):
        lo, hi = joint if joint is not None else np.percentile(rgb[b][valid], [lo_p, hi_p])
        scaled = (rgb[b] - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb[b])
        out[..., b] = np.where(valid, np.clip(scaled, 0.0, 1.0), 0.0)
    out[..., 3] = valid
    return out


def show_rgb(source, *, ax=None, bands: Sequence[str] = RGB, max_size: int = 1024,
             percentiles: tuple[float, float] = (2.0, 98.0), per_band: bool = False, title: str | None = None):
    """Show a contrast-stretched true-colour image of a scene.

    Parameters
    ----------
    source : pystac.Item, item dict, mapping of band to href, or list of hrefs
        Where the three bands are. Items are searched for assets named after the
        bands or carrying them as ``eo:bands`` common names.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure otherwise.
    bands : sequence of three str, optional
        The bands shown as red, green and blue (default true colour).
    max_size : int, optional
        Longest side, in pixels, of the image that is read (through the COG
        overviews): larger scenes are decimated by an integer step.
    percentiles : (float, float), optional
        Contrast stretch, see :func:`stretch_rgb`.
    per_band : bool, optional
        Stretch each band separately, see :func:`stretch_rgb`.
    title : str, optional
        Axes title; the item id and the displayed pixel size by default.

    Returns
    -------
    matplotlib.axes.Axes
        The image is ``ax.images[-1]``, drawn in the scene's own CRS (axis units
        are that CRS's, usually metres).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if len(bands) != 3:
        raise InvalidInputError(f"bands must name three bands (red, green, blue display), got {tuple(bands)}")
    if int(max_size) < 1:
        raise InvalidInputError(f"max_size must be a positive number of pixels, got {max_size!r}")
    hrefs, item_id = _asset_hrefs(source, bands)
    data, (left, bottom, right, top), crs = _read_bands(hrefs, max_size=int(max_size))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(stretch_rgb(data, percentiles=percentiles, per_band=per_band), extent=(left, right, bottom, top),
              interpolation="nearest")
    pixel = (right - left) / data.shape[2]
    if title is None:
        title = f"{item_id or 'scene'}\nshown at {pixel:.3g} m pixels" if item_id else None
    if title:
        ax.set_title(title, fontsize="medium")
    unit = crs.linear_units if crs is not None else ""
    where = crs.to_string() if crs is not None else "pixel grid"
    ax.set_xlabel(f"x ({where}, {unit})" if unit else f"x ({where})")
    ax.set_ylabel(f"y ({where}, {unit})" if unit else f"y ({where})")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.tick_params(labelsize="small")
    return ax
