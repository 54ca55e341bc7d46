"""Figures of super-resolution results: panels, histograms, gain scatter, mosaics and a swipe map.

Plain functions on arrays (reflectance, ``(N, B, H, W)`` or ``(B, H, W)``) and on the tidy tables of
:mod:`eo_sr.evaluate`, used by notebooks 08 and 09. Every interactive map here
(:func:`swipe_map`) has a static twin (:func:`plot_swipe`), so the built book is complete offline.

Examples
--------
>>> from eo_sr.viz import sr as srviz
>>> srviz.plot_sr_panels(pred.lr[:3], pred.sr[:3], pred.hr[:3], factor=4)   # doctest: +SKIP
>>> srviz.plot_gain_scatter(table, model="residual")                         # doctest: +SKIP
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np

from eo_sr.errors import InvalidInputError

__all__ = ["band_limits", "to_rgb", "mosaic", "plot_sr_panels", "plot_band_histograms", "plot_gain_scatter",
           "plot_swipe", "png_data_url", "swipe_map"]

#: Band indices shown as red, green, blue for 4-band (blue, green, red, nir) patches.
RGB = (2, 1, 0)


def band_limits(images, *, bands=RGB, percentiles=(2, 98)) -> np.ndarray:
    """Per-band display limits, shape ``(len(bands), 2)``, from the finite values of ``images``.

    Parameters
    ----------
    images : array_like or sequence of array_like
        Arrays with the band axis third from last (``(..., B, H, W)``); the limits are pooled over all.
    bands : sequence of int
        The bands to compute limits for, in display order.
    percentiles : pair of float
        Lower and upper percentile.

    Returns
    -------
    ndarray, shape (len(bands), 2)
    """
    arrays = [np.asarray(a) for a in (images if isinstance(images, (list, tuple)) else [images])]
    out = []
    for b in bands:
        values = np.concatenate([a[..., b, :, :].ravel() for a in arrays])
        values = values[np.isfinite(values)]
        lo, hi = np.percentile(values, percentiles) if values.size else (0.0, 1.0)
        out.append((lo, hi if hi > lo else lo + 1e-6))
    return np.asarray(out, dtype=float)


def to_rgb(image, limits=None, *, bands=RGB) -> np.ndarray:
    """A ``(B, H, W)`` image as an RGB array ``(H, W, 3)`` in 0..1, stretched by ``limits``.

    Parameters
    ----------
    image : array_like, shape (B, H, W)
    limits : ndarray (3, 2), optional
        Per displayed band (low, high); default :func:`band_limits` of ``image``.
    bands : sequence of 3 int
        Band indices for red, green and blue.

    Returns
    -------
    ndarray, shape (H, W, 3), float in 0..1 (NaN shown as 0)
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 3:
        raise InvalidInputError(f"to_rgb takes one image (B, H, W), got shape {image.shape}")
    limits = band_limits(image, bands=bands) if limits is None else np.asarray(limits, dtype=float)
    rgb = np.stack([(image[b] - lo) / (hi - lo) for b, (lo, hi) in zip(bands, limits)], axis=-1)
    return np.clip(np.nan_to_num(rgb, nan=0.0), 0, 1)


def mosaic(images, manifest, *, fill=np.nan):
    """Place patches side by side on one canvas by their bounds (one CRS, one pixel size).

    Parameters
    ----------
    images : array_like, shape (N, B, H, W)
    manifest : pandas.DataFrame
        One row per patch (in the order of ``images``) with ``left``, ``bottom``, ``right``, ``top``
        and ``crs``, as a patch store's manifest.
    fill : float
        The value where no patch lies.

    Returns
    -------
    canvas : ndarray, shape (B, Y, X)
    bounds : tuple of float
        (left, bottom, right, top) of the canvas in the patches' CRS.
    crs : str
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != len(manifest) or len(images) == 0:
        raise InvalidInputError(f"mosaic needs (N, B, H, W) images with one manifest row each, got {images.shape} "
                                f"and {len(manifest)} rows")
    crs = manifest["crs"].unique()
    if len(crs) != 1:
        raise InvalidInputError(f"the patches lie in several CRSs ({', '.join(map(str, crs))}): mosaic one at a time")
    first = manifest.iloc[0]
    res = (first["right"] - first["left"]) / images.shape[-1]
    left, top = manifest["left"].min(), manifest["top"].max()
    right, bottom = manifest["right"].max(), manifest["bottom"].min()
    width, height = int(round((right - left) / res)), int(round((top - bottom) / res))
    canvas = np.full((images.shape[1], height, width), fill, dtype=float)
    for img, rec in zip(images, manifest.itertuples()):
        c, r = int(round((rec.left - left) / res)), int(round((top - rec.top) / res))
        canvas[:, r:r + img.shape[-2], c:c + img.shape[-1]] = img
    return canvas, (float(left), float(bottom), float(right), float(top)), str(crs[0])


def plot_sr_panels(lr, sr, hr, *, factor: int, bicubic=None, labels=None, bands=RGB, error_range=None,
                   model: str = "SR", axes=None):
    """One row per patch: LR, bicubic, SR, HR, and the absolute errors of bicubic and SR against HR.

    All images of a row share one contrast stretch (from its HR), and both error maps share one
    colour scale (mean absolute error over the displayed bands), so brightness and error can be compared.

    Parameters
    ----------
    lr : array_like, shape (N, B, h, w)
    sr, hr : array_like, shape (N, B, h * factor, w * factor)
    factor : int
    bicubic : array_like like ``sr``, optional
        Default: :func:`eo_sr.bicubic.upsample_bicubic` of ``lr``.
    labels : sequence of str, optional
        One label per row (shown left of the row).
    bands : sequence of 3 int
    error_range : float, optional
        Top of the error colour scale (default: the 99th percentile of the bicubic errors).
    model : str
        The SR column's title.
    axes : ndarray of Axes (N, 6), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from eo_sr.bicubic import upsample_bicubic

    lr, sr, hr = (np.asarray(a, dtype=float) for a in (lr, sr, hr))
    if lr.ndim == 3:
        lr, sr, hr = lr[None], sr[None], hr[None]
    if sr.shape != hr.shape or lr.shape[-1] * factor != hr.shape[-1]:
        raise InvalidInputError(f"shapes do not fit: lr {lr.shape}, sr {sr.shape}, hr {hr.shape}, factor {factor}")
    bicubic = upsample_bicubic(lr, factor, channel_axis=None) if bicubic is None else np.asarray(bicubic, float)
    n = len(hr)
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(n, 6, figsize=(15, 2.7 * n), layout="constrained", squeeze=False)
    else:
        axes = np.atleast_2d(axes)
        fig = axes.flat[0].figure
    band = list(bands)
    err_bic = np.abs(bicubic[:, band] - hr[:, band]).mean(axis=1)
    err_sr = np.abs(sr[:, band] - hr[:, band]).mean(axis=1)
    top = error_range or float(np.nanpercentile(err_bic, 99)) or 1e-6
    for i in range(n):
        limits = band_limits(hr[i], bands=bands)
        row = axes[i]
        for ax, img, title in zip(row[:4], (lr[i], bicubic[i], sr[i], hr[i]), ("LR", "bicubic", model, "HR")):
            ax.imshow(to_rgb(img, limits, bands=bands), interpolation="nearest")
            ax.set_title(title)
        for ax, err, title in ((row[4], err_bic[i], "|bicubic - HR|"), (row[5], err_sr[i], f"|{model} - HR|")):
            im = ax.imshow(err, cmap="magma", vmin=0, vmax=top, interpolation="nearest")
            ax.set_title(f"{title}\nmean {np.nanmean(err):.4f}")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            row[0].set_ylabel(labels[i], fontsize="small")
    fig.colorbar(im, ax=axes[:, 4:].ravel().tolist(), shrink=0.8, label="absolute error (reflectance)")
    return fig


def plot_band_histograms(images: dict, *, band: int, masks=None, bins: int = 80, ax=None, band_name=None,
                         range_percentiles=(0.5, 99.5)):
    """Histograms of one band of several images (LR, HR, SR outputs...), as outlines on one axis.

    Parameters
    ----------
    images : dict of str to array_like
        Name to ``(N, B, H, W)`` (or ``(B, H, W)``) arrays, any resolution.
    band : int
        Band index.
    masks : dict of str to array_like of bool, optional
        Valid pixels ``(N, H, W)`` per name (names without a mask use every finite pixel).
    bins : int
    ax : matplotlib Axes, optional
    band_name : str, optional
        For the x label.
    range_percentiles : pair of float
        The histogram range, from the pooled values.

    Returns
    -------
    dict of str to float
        The mean of the band per name (what the band-mean loss compares).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    masks = masks or {}
    values = {}
    for name, img in images.items():
        img = np.asarray(img, dtype=float)
        v = img[..., band, :, :]
        ok = np.isfinite(v)
        if name in masks:
            ok &= np.asarray(masks[name], bool).reshape(v.shape)
        values[name] = v[ok]
    pooled = np.concatenate(list(values.values()))
    lo, hi = np.percentile(pooled, range_percentiles)
    means = {}
    for i, (name, v) in enumerate(values.items()):
        color = f"C{i}"
        ax.hist(v, bins=bins, range=(lo, hi), density=True, histtype="step", lw=1.6, color=color,
                label=f"{name} (mean {v.mean():.4f})")
        ax.axvline(v.mean(), color=color, ls=":", lw=1)
        means[name] = float(v.mean())
    ax.set_xlabel(f"reflectance{f' ({band_name})' if band_name else ''}")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return means


def plot_gain_scatter(table, *, model: str, baseline: str = "bicubic", score: str = "cpsnr", ax=None,
                      color_by: str | None = None, label: str | None = None):
    """Per patch, the baseline's score (x) against the model's (y), with the diagonal y = x.

    Points above the diagonal are patches the model wins.

    Parameters
    ----------
    table : pandas.DataFrame
        An :func:`eo_sr.evaluate.evaluate_patches` table holding both models.
    model, baseline : str
        Values of its ``model`` column.
    score : str
        A score column (``cpsnr``, ``ssim``...).
    ax : matplotlib Axes, optional
    color_by : str, optional
        A categorical column (e.g. ``cluster_name``) to colour the points by.
    label : str, optional
        The score's axis label (default: its name).

    Returns
    -------
    pandas.DataFrame
        One row per patch: ``patch_id``, the two scores (named by model) and, with ``color_by``, that column.
    """
    for name in (model, baseline):
        if name not in set(table["model"]):
            raise InvalidInputError(f"the table has no model {name!r}; it has {sorted(set(table['model']))}")
    cols = ["patch_id", score] + ([color_by] if color_by else [])
    wide = (table.loc[table["model"] == baseline, cols].rename(columns={score: baseline})
            .merge(table.loc[table["model"] == model, ["patch_id", score]].rename(columns={score: model}),
                   on="patch_id"))
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 5.2))
    groups = wide.groupby(color_by, dropna=False) if color_by else [(None, wide)]
    for i, (key, sub) in enumerate(groups):
        ax.scatter(sub[baseline], sub[model], s=22, alpha=0.8, color=f"C{i}", edgecolor="none",
                   label=str(key) if color_by else None)
    both = wide[[baseline, model]].to_numpy(float)
    finite = both[np.isfinite(both).all(axis=1)]
    if len(finite):
        lo, hi = finite.min(), finite.max()
        pad = 0.03 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", ls="--", lw=1, label="no gain (y = x)")
    wins = float((wide[model] > wide[baseline]).mean()) if len(wide) else math.nan
    name = label or score
    ax.set(xlabel=f"{baseline} {name}", ylabel=f"{model} {name}",
           title=f"{model} against {baseline}: wins {wins:.0%} of {len(wide)} patches")
    ax.legend(fontsize="small")
    return wide


def plot_swipe(left, right, *, split: float = 0.5, names=("bicubic", "SR"), limits=None, bands=RGB, ax=None,
               title: str | None = None):
    """The static twin of :func:`swipe_map`: the left part of one image beside the right part of the other.

    Parameters
    ----------
    left, right : array_like, shape (B, H, W)
        The two images on one grid (e.g. bicubic and SR mosaics).
    split : float
        Where the split lies, as a share of the width.
    names : pair of str
    limits : ndarray (3, 2), optional
        One contrast stretch for both (default: from ``right``).
    bands : sequence of 3 int
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib Axes
    """
    left, right = np.asarray(left, float), np.asarray(right, float)
    if left.shape != right.shape:
        raise InvalidInputError(f"the two images differ in shape: {left.shape} and {right.shape}")
    limits = band_limits(right, bands=bands) if limits is None else limits
    a, b = to_rgb(left, limits, bands=bands), to_rgb(right, limits, bands=bands)
    cut = int(round(split * a.shape[1]))
    shown = np.concatenate([a[:, :cut], b[:, cut:]], axis=1)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 7 * a.shape[0] / a.shape[1]))
    ax.imshow(shown, interpolation="nearest")
    ax.axvline(cut - 0.5, color="white", lw=2)
    for x, name, ha in ((cut - 6, names[0], "right"), (cut + 6, names[1], "left")):
        ax.text(x, 8, name, color="white", ha=ha, va="top", fontsize="medium", fontweight="bold",
                bbox={"facecolor": "black", "alpha": 0.5, "lw": 0})
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def png_data_url(rgb) -> str:
    """An RGB(A) array ``(H, W, 3|4)`` in 0..1 as a ``data:image/png;base64,...`` URL (no file, no server)."""
    from matplotlib.image import imsave  # matplotlib writes PNG itself: no pillow needed

    rgb = np.asarray(rgb, dtype=float)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4):
        raise InvalidInputError(f"png_data_url takes an (H, W, 3) or (H, W, 4) array, got {rgb.shape}")
    buf = io.BytesIO()
    imsave(buf, (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _lonlat_bounds(bounds, crs) -> tuple[float, float, float, float]:
    from pyproj import Transformer

    left, bottom, right, top = bounds
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xs, ys = to_ll.transform([left, right, right, left], [bottom, bottom, top, top])
    return min(xs), min(ys), max(xs), max(ys)


def swipe_map(left, right, *, bounds, crs, names=("bicubic", "SR"), limits=None, bands=RGB, height: int = 480,
              width: int = 720):
    """An interactive map with two images over one area and a swipe (split) control between them.

    The images are PNG data URLs in :class:`ipyleaflet.ImageOverlay` layers, so the map needs no
    tile server and no network (basemap tiles do; offline they stay grey). The area's outline is a
    GeoJSON layer named ``"AOI"``.

    Parameters
    ----------
    left, right : array_like, shape (B, H, W)
        The two images on one grid (e.g. bicubic and SR mosaics of :func:`mosaic`).
    bounds : tuple of float
        (left, bottom, right, top) of the images in ``crs``.
    crs : str
        Their CRS (a UTM grid is drawn as its lon/lat bounding box, close enough at patch scale).
    names : pair of str
        The layers' names (left, right).
    limits : ndarray (3, 2), optional
        One contrast stretch for both (default: from ``right``).
    bands : sequence of 3 int
    height, width : int
        Map size in pixels (the zoom fits the area into it).

    Returns
    -------
    ipyleaflet.Map
    """
    import ipyleaflet

    from eo_sr.viz.maps import AOI_COLOR, map_view

    left, right = np.asarray(left, float), np.asarray(right, float)
    if left.shape != right.shape:
        raise InvalidInputError(f"the two images differ in shape: {left.shape} and {right.shape}")
    limits = band_limits(right, bands=bands) if limits is None else limits
    w, s, e, n = _lonlat_bounds(bounds, crs)
    center, zoom = map_view((w, s, e, n), width_px=width, height_px=height)
    m = ipyleaflet.Map(center=center, zoom=zoom, max_zoom=22, scroll_wheel_zoom=True,
                       layout={"height": f"{height}px"})
    layers = []
    for img, name in zip((left, right), names):
        rgb = to_rgb(img, limits, bands=bands)
        alpha = np.isfinite(img).all(axis=0)[..., None].astype(float)
        layer = ipyleaflet.ImageOverlay(url=png_data_url(np.concatenate([rgb, alpha], axis=-1)),
                                        bounds=((s, w), (n, e)), name=name)
        m.add(layer)
        layers.append(layer)
    m.add(ipyleaflet.SplitMapControl(left_layer=layers[0], right_layer=layers[1]))
    outline = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    m.add(ipyleaflet.GeoJSON(data={"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": outline, "properties": {"name": "AOI"}}]}, name="AOI",
        style={"color": AOI_COLOR, "weight": 2, "dashArray": "6 4", "fill": False, "opacity": 1}))
    m.add(ipyleaflet.ScaleControl(position="bottomleft"))
    return m
