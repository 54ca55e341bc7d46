"""Clouds and unmasked shadows: pixels where two sensors agree, clouds by a blue threshold.

- :func:`consistent_pixels` finds the LR pixels where HR and LR show the same ground the same
  way (RANSAC), a fitting mask for :func:`eo_sr.radiometry.match_to_bicubic` when the HR
  sensor delivers no cloud or shadow mask;
- :func:`blue_threshold_cloud_mask` finds clouds on sensors without a cloud mask.

Patches next to cloudy patches of the same acquisition (shadows fall near clouds) are flagged
by :func:`eo_sr.qc.flag_shadow_neighbours`.
"""
from __future__ import annotations

import numpy as np

import eo_sr._arrays as arrays
from eo_sr.bicubic import check_factor
from eo_sr.errors import InvalidInputError

__all__ = ["blue_threshold_cloud_mask", "consistent_pixels"]


def consistent_pixels(hr, lr, *, factor: int, hr_mask=None, lr_mask=None, tolerance: float = 0.1,
                      max_samples: int = 20000, seed: int = 0) -> np.ndarray:
    """LR pixels where HR and LR show the same ground the same way: a fitting mask for matching.

    An HR sensor without a cloud or shadow mask (Deimos-2, NAIP) can bring a cloud shadow
    that covers half its scene, hours before or after the LR pass. Histogram matching over
    such a scene pulls the clear half too bright to make up for the shaded half. Here the
    relation between the LR pixel's brightness (the sum of its bands) and that of the HR
    pixels inside it is fitted as a line by RANSAC (scikit-learn): clear pixels follow one
    line (the sensors' gains and offsets), while shadows, clouds and changed ground fall off
    it, however large their share, as long as no other single line fits more pixels.

    Parameters
    ----------
    hr : ndarray, shape (B, H, W)
        HR image on the LR grid refined by ``factor``.
    lr : ndarray, shape (B, H / factor, W / factor)
    factor : int
        Integer HR/LR resolution ratio.
    hr_mask : ndarray of bool, optional
        ``(H, W)``, True where HR is valid; an LR pixel counts only if all its HR pixels are.
    lr_mask : ndarray of bool, optional
        ``(H / factor, W / factor)``, True where LR is valid (clear).
    tolerance : float
        Largest distance from the line, as a fraction of the 1-99 % range of LR brightness.
        Edges and texture differ by a few per cent between the sensors; a cloud shadow
        darkens by tens of per cent.
    max_samples : int
        Pixels drawn for the fit (the mask is then evaluated on all of them).
    seed : int
        Random seed of the sample and of RANSAC (the result is deterministic).

    Returns
    -------
    ndarray of bool, shape ``(H / factor, W / factor)``
        True where consistent; False where not, or masked.

    Raises
    ------
    InvalidInputError
        Shapes that do not fit the factor, or too few valid pixels to fit a line.

    References
    ----------
    .. [1] M. A. Fischler and R. C. Bolles, "Random sample consensus: a paradigm for model
       fitting with applications to image analysis and automated cartography",
       Communications of the ACM 24(6):381-395, 1981.
    """
    from sklearn.linear_model import LinearRegression, RANSACRegressor

    factor = check_factor(factor)
    hr = np.asarray(hr, dtype=np.float64)
    lr = np.asarray(lr, dtype=np.float64)
    if hr.ndim != 3 or lr.ndim != 3 or hr.shape != (lr.shape[0], lr.shape[1] * factor, lr.shape[2] * factor):
        raise InvalidInputError(f"hr {hr.shape} and lr {lr.shape} do not fit factor {factor}: give (B, H, W) and "
                                "(B, H / factor, W / factor) on aligned grids")
    _, h, w = lr.shape
    hr_sum = hr.sum(axis=0).reshape(h, factor, w, factor).mean(axis=(1, 3)).reshape(-1)
    lr_sum = lr.sum(axis=0).reshape(-1)
    valid = np.isfinite(lr_sum) & np.isfinite(hr_sum)
    if hr_mask is not None:
        valid &= np.asarray(hr_mask, bool).reshape(h, factor, w, factor).all(axis=(1, 3)).reshape(-1)
    if lr_mask is not None:
        valid &= np.asarray(lr_mask, bool).reshape(-1)
    idx = np.flatnonzero(valid)
    if idx.size < 50:
        raise InvalidInputError(f"only {idx.size} LR pixel(s) are valid in both images; at least 50 are needed "
                                "to fit the sensors' relation")
    rng = np.random.default_rng(seed)
    sample = rng.choice(idx, size=min(max_samples, idx.size), replace=False)
    lo, hi = np.percentile(lr_sum[idx], [1, 99])
    limit = tolerance * max(hi - lo, 1e-12)
    fit = RANSACRegressor(LinearRegression(), residual_threshold=limit, max_trials=200,
                          random_state=seed).fit(hr_sum[sample, None], lr_sum[sample])
    out = np.zeros(h * w, bool)
    out[idx] = np.abs(fit.predict(hr_sum[idx, None]) - lr_sum[idx]) <= limit
    return out.reshape(h, w)


def blue_threshold_cloud_mask(image, *, blue_index=0, threshold: float = 0.2, scale: float = 1.0,
                              offset: float = 0.0, dilation: int = 0, channel_axis=0):
    """Cloud mask by a threshold on the blue band, for sensors that deliver none.

    Clouds are bright in blue, where most land surfaces are dark; the multi-temporal SR seed
    found Deimos-2 clouds with a threshold of 100 on its blue radiance digital numbers.

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        Image ``(band, y, x)`` (any channel axis).
    blue_index : int or str, optional
        Index of the blue band along the channel axis (default 0), or its name in the
        ``band`` coordinate of a DataArray.
    threshold : float, optional
        Blue value above which a pixel is cloud, in the units of ``image * scale + offset``.
        The default 0.2 is a surface reflectance (most land is below 0.1 in blue, thick cloud
        above 0.3). For digital numbers pass their scale and offset (Sentinel-2 L2A:
        ``scale=1e-4``, and ``offset=-0.1`` from processing baseline 04.00), or a threshold in
        DN with the default scale (the seed: ``threshold=100`` on Deimos-2 radiance DN).
    scale, offset : float, optional
        Conversion of the stored values to the threshold's units; ``scale`` must be positive.
    dilation : int, optional
        Grow the mask by this many pixels (a square neighbourhood), to catch cloud edges.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0); None for a single blue band.

    Returns
    -------
    cloud : ndarray of bool or xarray.DataArray
        **True where cloudy**, with the spatial shape. NaN pixels are not cloud. Pass
        ``~cloud`` as a validity mask to :func:`eo_sr.radiometry.match_histograms` or
        :func:`eo_sr.radiometry.compute_norm_stats`.

    Raises
    ------
    InvalidInputError
        Bad blue index, non-positive scale, or negative dilation.
    """
    if not scale > 0:
        raise InvalidInputError(f"scale must be positive, not {scale!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, (int, np.integer)) or dilation < 0:
        raise InvalidInputError(f"dilation must be a non-negative number of pixels, not {dilation!r}")
    arr = arrays.values(image, "image")
    ax = arrays.channel_axis(image, arr, channel_axis, "image")
    if ax is None:
        blue, blue_obj = arr, image
    else:
        if isinstance(blue_index, str):
            names = arrays.band_names(image, ax)
            if names is None or blue_index not in names:
                raise InvalidInputError(f"no band named {blue_index!r}; bands are {names}; pass an integer index")
            blue_index = names.index(blue_index)
        if not -arr.shape[ax] <= int(blue_index) < arr.shape[ax]:
            raise InvalidInputError(f"blue_index={blue_index} but the image has {arr.shape[ax]} band(s)")
        blue = np.take(arr, int(blue_index), axis=ax)
        blue_obj = image.isel({image.dims[ax]: int(blue_index)}, drop=True) if arrays.is_dataarray(image) else None
    with np.errstate(invalid="ignore"):
        cloud = blue > (threshold - offset) / scale
    if dilation:
        from scipy import ndimage

        cloud = ndimage.binary_dilation(cloud, structure=np.ones((3,) * cloud.ndim, bool), iterations=int(dilation))
    if blue_obj is not None and arrays.is_dataarray(blue_obj):
        return blue_obj.copy(data=cloud).rename("cloud_mask")
    return cloud

