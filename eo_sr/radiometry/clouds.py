"""Clouds and unmasked shadows: pixels where two sensors agree, clouds by a blue threshold.

- :func:`consistent_pixels` finds the LR pixels where HR and LR show the same ground the same
  way (RANSAC), a fitting mask for :func:`eo_sr.radiometry.match_to_bicubic` when the HR
  sensor delivers no cloud or shadow mask;
- :func:`blue_threshold_cloud_mask` finds clouds on sensors without a cloud mask;
- :func:`cloud_fractions` turns a cloud-mask time series into one cloud fraction per frame,
  over the pixels with data.

Patches next to cloudy patches of the same acquisition (shadows fall near clouds) are flagged
by :func:`eo_sr.qc.flag_shadow_neighbours`.
"""
from __future__ import annotations

import numpy as np

import eo_sr._arrays as arrays
from eo_sr.bicubic import check_factor
from eo_sr.errors import InvalidInputError

__all__ = ["blue_threshold_cloud_mask", "cloud_fractions", "consistent_pixels"]


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


#: Near-infrared reflectance below which a pixel darker in NIR than in green is open water.
WATER_NIR = 0.05


def open_water(image, *, green: int, nir: int, threshold: float = WATER_NIR) -> np.ndarray:
    """Open water: dark in the near infrared, and darker there than in green.

    Water has its own colour, off the line that fields and soil follow between two
    sensors, so :func:`consistent_pixels` leaves lakes out; a histogram match fitted
    without them has nothing to map a lake's values to and brightens it several times.
    A cloud's shadow does not bring a field's NIR this low, so water can be fitted safely:
    add this mask to the consistent pixels.

    Parameters
    ----------
    image : ndarray, shape (B, H, W)
        Reflectance.
    green, nir : int
        Indices of the green and near-infrared bands.
    threshold : float, optional
        NIR reflectance below which a pixel can be water (default 0.05).

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    image = np.asarray(image)
    return (image[nir] < threshold) & (image[nir] < image[green])


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



def _mask_classes(cloud_mask, invalid_values, nodata_values):
    """(kind, cloud values, nodata values) from a CloudMask and/or explicit values."""
    if cloud_mask is None:
        kind = "values" if invalid_values is not None else "boolean"
        return kind, invalid_values, nodata_values
    kind = getattr(cloud_mask, "kind", None)
    if kind not in ("classification", "bitmask"):
        raise InvalidInputError(f"cloud_mask must be a classification or bitmask CloudMask (e.g. "
                                f"sensor.cloud_mask), got {cloud_mask!r}: a 'bands' mask holds one layer per "
                                "class; pass that layer as a boolean series instead")
    if nodata_values is None:  # the classes that mean "no data", which count neither as cloud nor as clear
        nodata_values = [v for v, name in cloud_mask.classes.items()
                         if name.lower() in ("no_data", "nodata", "no-data", "fill")]
    if invalid_values is None:
        invalid_values = sorted(set(cloud_mask.invalid) - set(nodata_values))
    return ("bits" if kind == "bitmask" else "values"), invalid_values, nodata_values


def cloud_fractions(mask_series, *, valid=None, invalid_values=None, cloud_mask=None, nodata_values=None):
    """Share of each frame's valid pixels that a cloud mask flags: one number per frame.

    Parameters
    ----------
    mask_series : ndarray or xarray.DataArray, shape (T, H, W)
        A boolean series (True = cloud) or a classification / bit-field series (e.g. Sentinel-2's
        SCL, Landsat's QA_PIXEL). A DataArray with a ``time`` dimension gives a Series indexed by
        time; every other dimension is spatial.
    valid : ndarray of bool, optional
        True where a pixel has data, ``(T, H, W)`` or ``(H, W)``; pixels outside it count
        neither as cloud nor as clear (e.g. a partial swath's nodata edge).
    invalid_values : sequence of int, optional
        The classes (classification) or the bits (with a bitmask ``cloud_mask``) that count
        as cloud; needed for a classification series without ``cloud_mask``. E.g. ``[3, 8, 9,
        10]`` for SCL cloud shadow, clouds and cirrus.
    cloud_mask : CloudMask, optional
        The sensor's mask description (``sensor.cloud_mask``): its ``invalid`` classes or bits
        count as cloud, except those named no-data or fill, which mark pixels without data.
    nodata_values : sequence of int, optional
        Classes (or bits) that mark pixels without data; default: from ``cloud_mask`` (SCL's 0,
        QA_PIXEL's fill bit), else none.

    Returns
    -------
    ndarray of float, shape (T,), or pandas.Series
        The cloud fraction in [0, 1] of each frame; NaN for a frame without a valid pixel. A
        Series (named ``cloud_fraction``, indexed by ``time``) for a DataArray with a ``time``
        dimension.

    Raises
    ------
    InvalidInputError
        A series that is not 3-D (or has no time dimension), a classification series without
        ``invalid_values`` or ``cloud_mask``, a ``valid`` mask of the wrong shape or dtype, or a
        ``cloud_mask`` of kind ``"bands"``.

    References
    ----------
    .. [1] ESA, "Sentinel-2 Level-2A Algorithm Theoretical Basis Document" (scene classification:
       0 no data, 3 cloud shadows, 8-9 cloud medium/high probability, 10 thin cirrus).
    .. [2] USGS, "Landsat 8-9 Collection 2 Level 2 Science Product Guide" (QA_PIXEL bits: 0 fill,
       1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow).

    Examples
    --------
    >>> import numpy as np
    >>> from eo_sr.sensors import get_sensor
    >>> scl = np.array([[[4, 9], [0, 4]], [[0, 0], [0, 0]]])  # frame 0: 1 cloud of 3 pixels with data
    >>> cloud_fractions(scl, cloud_mask=get_sensor("sentinel-2-l2a").cloud_mask)
    array([0.33333333,        nan])
    """
    is_da = arrays.is_dataarray(mask_series)
    if is_da:
        if "time" not in mask_series.dims:
            raise InvalidInputError(f"mask_series has dimensions {list(mask_series.dims)}: a DataArray needs a 'time' "
                                    "dimension (the frames)")
        mask_series = mask_series.transpose("time", ...)
    arr = np.asarray(mask_series.values if is_da else mask_series)
    if arr.ndim < 2:
        raise InvalidInputError(f"mask_series must be (T, H, W), got shape {arr.shape}")
    if not is_da and arr.ndim != 3:
        raise InvalidInputError(f"mask_series must be (T, H, W), got shape {arr.shape}")
    n_frames = arr.shape[0]
    kind, cloud_values, nodata = _mask_classes(cloud_mask, invalid_values, nodata_values)
    if kind == "boolean":
        if arr.dtype != bool:
            raise InvalidInputError(f"mask_series holds {arr.dtype} values: a classification (e.g. SCL) needs "
                                    "invalid_values= (the cloud classes) or cloud_mask=sensor.cloud_mask")
        cloud = arr
        has_data = np.ones(arr.shape, bool)
    elif kind == "values":
        cloud = np.isin(arr, np.asarray(list(cloud_values)))
        has_data = ~np.isin(arr, np.asarray(list(nodata or [])))
    else:  # bits
        field = arr.astype(np.uint64)
        cloud_bits = np.uint64(sum(1 << int(b) for b in cloud_values))
        nodata_bits = np.uint64(sum(1 << int(b) for b in (nodata or [])))
        has_data = (field & nodata_bits) == 0
        cloud = (field & cloud_bits) != 0
    if valid is not None:
        v = np.asarray(valid.values if arrays.is_dataarray(valid) else valid)
        if v.dtype != bool:
            raise InvalidInputError(f"valid must be a boolean array (True = pixel with data), not {v.dtype}")
        if v.shape != arr.shape and v.shape != arr.shape[1:]:
            raise InvalidInputError(f"valid has shape {v.shape}; it must be {arr.shape} or {arr.shape[1:]}")
        has_data = has_data & v
    n_valid = has_data.reshape(n_frames, -1).sum(axis=1)
    n_cloud = (cloud & has_data).reshape(n_frames, -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(n_valid > 0, n_cloud / np.maximum(n_valid, 1), np.nan)
    if is_da:
        import pandas as pd

        return pd.Series(fractions, index=pd.Index(mask_series["time"].values, name="time"), name="cloud_fraction")
    return fractions
