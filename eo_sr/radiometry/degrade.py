"""LR images from HR images, as an LR sensor would see the ground: Wald's protocol.

:func:`degrade` blurs an HR image with the LR sensor's point spread function (PSF, a
Gaussian), averages it over blocks of ``factor x factor`` HR pixels (the LR sensor's square
detectors) and adds the sensor's noise. Training pairs made this way let an SR model be
trained and scored where only HR imagery exists (Wald et al. 1997: degrade, super-resolve,
compare with the original), and give a known truth for every LR pixel.

The Gaussian's width can be given directly (``psf_sigma``, in LR pixels) or from the LR
sensor's modulation transfer function (MTF) at its Nyquist frequency (``mtf_nyquist``), the
number sensor documents publish. :data:`MTF_AT_NYQUIST` holds it for the built-in sensors
whose value is published.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

import eo_sr._arrays as arrays
from eo_sr.errors import InvalidInputError

__all__ = ["BLOCK_MTF_AT_NYQUIST", "MTF_AT_NYQUIST", "degrade", "psf_sigma_from_mtf"]

#: MTF at Nyquist of the LR sensors eo-sr knows: Sentinel-2 MSI's 10 m bands are specified at
#: 0.15-0.30 (0.3 here, the sharp end of the specification: pass mtf_nyquist= for another value);
#: the demo world's LR sensor samples the ground, blurred by a Gaussian PSF of 0.55 pixel, at its
#: pixel centres, so its MTF at Nyquist is exp(-pi^2 0.55^2 / 2) = 0.225.
MTF_AT_NYQUIST = {"sentinel-2-l2a": 0.3, "demo-lr": 0.225}
#: MTF at Nyquist of averaging over a square pixel: sinc(1/2) = 2 / pi.
BLOCK_MTF_AT_NYQUIST = 2.0 / math.pi


def psf_sigma_from_mtf(mtf_nyquist: float, *, includes_pixel: bool = True) -> float:
    """Sigma, in LR pixels, of the Gaussian PSF whose MTF at Nyquist is ``mtf_nyquist``.

    A Gaussian of sigma ``s`` (pixels) has the MTF ``exp(-2 pi^2 s^2 f^2)`` at ``f`` cycles per
    pixel; at Nyquist (``f = 1/2``) that is ``exp(-pi^2 s^2 / 2)``, so
    ``s = sqrt(-2 ln(MTF)) / pi``. A published MTF is that of the whole system, the detector's
    square pixel included, and averaging over the pixel alone has an MTF of ``sinc(1/2) = 2/pi``
    (about 0.64) at Nyquist. With ``includes_pixel`` (the default) the Gaussian provides the rest:
    ``s = sqrt(-2 ln(MTF * pi / 2)) / pi``.

    Parameters
    ----------
    mtf_nyquist : float
        MTF at the Nyquist frequency, in (0, 1).
    includes_pixel : bool, optional
        Whether ``mtf_nyquist`` includes the pixel's own averaging (default True, as the
        block averaging of :func:`degrade` applies it).

    Returns
    -------
    float
        Sigma of the Gaussian PSF in LR pixels (0 where the pixel alone is that blurry).

    Raises
    ------
    InvalidInputError
        If ``mtf_nyquist`` is not in (0, 1), or exceeds 2/pi with ``includes_pixel`` (no
        system with square pixels is that sharp).

    References
    ----------
    .. [1] G. D. Boreman, "Modulation Transfer Function in Optical and Electro-Optical Systems",
       SPIE Press, 2001 (the Gaussian and the pixel MTF).
    .. [2] B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli and M. Selva, "MTF-tailored multiscale
       fusion of high-resolution MS and Pan imagery", Photogrammetric Engineering & Remote
       Sensing 72(5):591-596, 2006 (Gaussian filters matched to the MTF at Nyquist).

    Examples
    --------
    >>> round(psf_sigma_from_mtf(0.3, includes_pixel=False), 3)
    0.494
    >>> round(psf_sigma_from_mtf(0.3), 2)
    0.39
    """
    if isinstance(mtf_nyquist, bool) or not isinstance(mtf_nyquist, numbers.Real) or not 0 < mtf_nyquist < 1:
        raise InvalidInputError(f"mtf_nyquist must be a number in (0, 1), e.g. 0.3 for Sentinel-2's 10 m bands; "
                                f"got {mtf_nyquist!r}")
    gaussian = float(mtf_nyquist) / (BLOCK_MTF_AT_NYQUIST if includes_pixel else 1.0)
    if gaussian > 1.0 + 1e-12:
        raise InvalidInputError(f"an MTF at Nyquist of {mtf_nyquist:g} is sharper than square pixels allow "
                                f"({BLOCK_MTF_AT_NYQUIST:.3f}): pass includes_pixel=False if it is the optics' MTF "
                                "alone, or psf_sigma=0 for block averaging only")
    return math.sqrt(max(0.0, -2.0 * math.log(min(gaussian, 1.0)))) / math.pi


def _per_band(value, n_bands: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n_bands)
    if arr.size != n_bands:
        raise InvalidInputError(f"{what} has {arr.size} values but the image has {n_bands} band(s): give one "
                                "value, or one per band")
    if not (np.isfinite(arr).all() and (arr >= 0).all()):
        raise InvalidInputError(f"{what} must be non-negative, finite numbers, got {value!r}")
    return arr


def _resolve_sigma(sensor, psf_sigma, mtf_nyquist) -> float:
    if psf_sigma is not None and mtf_nyquist is not None:
        raise InvalidInputError("give psf_sigma or mtf_nyquist, not both")
    if psf_sigma is not None:
        if isinstance(psf_sigma, bool) or not isinstance(psf_sigma, numbers.Real) or not (
                math.isfinite(psf_sigma) and psf_sigma >= 0):
            raise InvalidInputError(f"psf_sigma is a non-negative number of LR pixels, got {psf_sigma!r}")
        return float(psf_sigma)
    if mtf_nyquist is not None:
        return psf_sigma_from_mtf(mtf_nyquist)
    if sensor is not None:
        from eo_sr.sensors import get_sensor

        sensor = get_sensor(sensor)
        if sensor.id in MTF_AT_NYQUIST:
            return psf_sigma_from_mtf(MTF_AT_NYQUIST[sensor.id])
        raise InvalidInputError(f"the MTF of sensor {sensor.id} is not known to eo-sr: pass mtf_nyquist= (its MTF at "
                                "Nyquist, often 0.2-0.35; look in the sensor's documentation) or psf_sigma= (LR "
                                "pixels)")
    raise InvalidInputError("degrade needs the LR sensor's blur: pass sensor= (a sensor with a known MTF, e.g. "
                            "'sentinel-2-l2a'), mtf_nyquist= (e.g. 0.3) or psf_sigma= (LR pixels; 0 for block "
                            "averaging only)")


def _spatial_axes(obj, ndim: int, ax: int | None) -> tuple[int, int]:
    if arrays.is_dataarray(obj) and "y" in obj.dims and "x" in obj.dims:
        return obj.dims.index("y"), obj.dims.index("x")
    rest = [i for i in range(ndim) if i != ax]
    if len(rest) < 2:
        raise InvalidInputError(f"the image needs two spatial axes besides the band axis, got shape {tuple(obj.shape)}")
    return rest[-2], rest[-1]


def degrade(hr, *, factor: int, sensor: Any = None, psf_sigma: float | None = None, mtf_nyquist: float | None = None,
            noise: Any = None, snr: Any = None, seed: int | None = None, channel_axis: int | str | None = 0,
            mask=None, nodata: float | None = None, min_valid: float = 1.0, crop: bool = False):
    """Simulate the LR image of an HR image (Wald's protocol): PSF blur, block averaging, noise.

    1. **Blur** with a Gaussian PSF of ``psf_sigma`` LR pixels (``psf_sigma * factor`` HR
       pixels; :func:`scipy.ndimage.gaussian_filter`, edges mirrored), or of the sigma that
       gives the LR system the MTF ``mtf_nyquist`` at Nyquist once the block averaging is
       counted (:func:`psf_sigma_from_mtf`: ``sigma = sqrt(-2 ln(MTF * pi / 2)) / pi``).
    2. **Average** blocks of ``factor x factor`` HR pixels: the exact mean, so without blur
       the result equals ``hr.reshape(H / f, f, W / f, f).mean((1, 3))``.
    3. **Noise**: Gaussian, of standard deviation ``noise`` (data units) or of the band's mean
       divided by ``snr``; drawn from ``numpy.random.default_rng(seed)``.

    Invalid pixels (NaN, ``nodata``, or False in ``mask``) take no part: the blur is a
    normalised convolution over the valid pixels and the block mean counts only them; an LR
    pixel is valid where at least ``min_valid`` of its HR pixels are.

    Parameters
    ----------
    hr : ndarray or xarray.DataArray
        HR image, e.g. ``(band, y, x)``; the two spatial axes are the last two besides the
        channel axis (a DataArray's ``y`` and ``x`` dimensions). Leading axes (time) are
        kept.
    factor : int
        HR pixels per LR pixel along each axis (an integer >= 1).
    sensor : Sensor or str, optional
        The LR sensor; gives the MTF at Nyquist when ``psf_sigma`` and ``mtf_nyquist`` are not
        given (:data:`MTF_AT_NYQUIST`: Sentinel-2 L2A and the demo world's LR sensor).
    psf_sigma : float, optional
        Gaussian PSF sigma in LR pixels; 0 for block averaging alone.
    mtf_nyquist : float, optional
        The LR system's MTF at its Nyquist frequency (Sentinel-2's 10 m bands: 0.15-0.30).
    noise : float or sequence of float, optional
        Standard deviation of the Gaussian noise in the image's units (one, or one per band).
    snr : float or sequence of float, optional
        Signal-to-noise ratio instead of ``noise``: sigma = band mean (valid LR pixels) / snr.
    seed : int, optional
        Seed of the noise; the same seed gives the same image.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0; a dimension name for a DataArray); None for one band.
    mask : ndarray of bool, optional
        True where an HR pixel is valid: the spatial shape or the image's shape.
    nodata : float, optional
        The value of missing HR pixels (integer images); also the value that invalid LR pixels
        get in an integer result (a float result has NaN there).
    min_valid : float, optional
        Share of valid HR pixels an LR pixel needs to be valid (default 1: all of them).
    crop : bool, optional
        Crop the image's bottom rows and right columns to a multiple of ``factor`` (default:
        refuse such a shape).

    Returns
    -------
    ndarray or xarray.DataArray
        The LR image, of the input's dtype: float stays float; integers are computed in float,
        rounded and clipped to the dtype's range. A DataArray keeps its coordinates (``x`` and
        ``y`` become the LR pixel centres), attributes and CRS (rioxarray's ``spatial_ref``).

    Raises
    ------
    InvalidInputError
        A factor that is not a positive integer, a spatial shape not divisible by it (without
        ``crop``), no blur given, both ``psf_sigma`` and ``mtf_nyquist``, both ``noise`` and
        ``snr``, an integer image with invalid pixels but no ``nodata``, or a bad mask.
    UnknownNameError
        If ``sensor`` is an unknown name.

    References
    ----------
    .. [1] L. Wald, T. Ranchin and M. Mangolini, "Fusion of satellite images of different spatial
       resolutions: assessing the quality of resulting images", Photogrammetric Engineering &
       Remote Sensing 63(6):691-699, 1997.
    .. [2] B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli and M. Selva, "MTF-tailored multiscale
       fusion of high-resolution MS and Pan imagery", Photogrammetric Engineering & Remote
       Sensing 72(5):591-596, 2006.
    .. [3] F. Gascon et al., "Copernicus Sentinel-2A calibration and products validation status",
       Remote Sensing 9(6):584, 2017 (MTF requirement of the 10 m bands: 0.15-0.30 at Nyquist).

    Examples
    --------
    >>> import numpy as np
    >>> hr = np.arange(16.0).reshape(1, 4, 4)
    >>> degrade(hr, factor=2, psf_sigma=0)
    array([[[ 2.5,  4.5],
            [10.5, 12.5]]])
    """
    from scipy import ndimage

    if isinstance(factor, bool) or not isinstance(factor, numbers.Integral):
        if isinstance(factor, numbers.Real) and float(factor).is_integer() and not isinstance(factor, bool):
            factor = int(factor)
        else:
            raise InvalidInputError(f"factor must be an integer (HR pixels per LR pixel), got {factor!r}: block "
                                    "averaging is exact only for integer factors; resample the HR image to a "
                                    "GSD that divides the LR one first (eo_sr.grid)")
    factor = int(factor)
    if factor < 1:
        raise InvalidInputError(f"factor must be at least 1, got {factor}")
    if not 0 < min_valid <= 1:
        raise InvalidInputError(f"min_valid is a share in (0, 1], got {min_valid!r}")
    if noise is not None and snr is not None:
        raise InvalidInputError("give noise (a standard deviation) or snr, not both")
    sigma_lr = _resolve_sigma(sensor, psf_sigma, mtf_nyquist)

    arr = arrays.values(hr, "hr")
    dtype = arr.dtype
    ax = arrays.channel_axis(hr, arr, channel_axis, "hr")
    ya, xa = _spatial_axes(hr, arr.ndim, ax)
    if ax in (ya, xa):
        raise InvalidInputError(f"channel_axis={channel_axis!r} is a spatial axis of the image (dims "
                                f"{getattr(hr, 'dims', arr.shape)}): pass channel_axis=None for a single band")
    h, w = arr.shape[ya], arr.shape[xa]
    data = arr.astype(np.float64)
    valid = np.isfinite(data)
    if nodata is not None:
        valid &= data != nodata
    if mask is not None:
        m = np.asarray(mask.values if arrays.is_dataarray(mask) else mask)
        if m.dtype != bool:
            raise InvalidInputError(f"mask must be boolean (True = valid pixel), not {m.dtype}")
        if m.shape == (h, w):
            shape = [1] * data.ndim
            shape[ya], shape[xa] = h, w
            m = m.reshape(shape)
        elif m.shape != data.shape:
            raise InvalidInputError(f"mask has shape {m.shape}; it must be the spatial shape {(h, w)} or the "
                                    f"image's shape {data.shape}")
        valid = valid & m
    if h % factor or w % factor:
        if not crop:
            raise InvalidInputError(f"the image is {h} x {w} pixels, not a multiple of factor {factor}: crop it "
                                    f"to {h - h % factor} x {w - w % factor} (crop=True does), or pad it")
        h, w = h - h % factor, w - w % factor
        index = [slice(None)] * data.ndim
        index[ya], index[xa] = slice(0, h), slice(0, w)
        data, valid = data[tuple(index)], valid[tuple(index)]
        if arrays.is_dataarray(hr):
            hr = hr.isel({hr.dims[ya]: slice(0, h), hr.dims[xa]: slice(0, w)})
    if h == 0 or w == 0:
        raise InvalidInputError(f"the image has no {factor} x {factor} block of pixels to average")
    all_valid = bool(valid.all())
    if not all_valid:
        data = np.where(valid, data, 0.0)

    sigma_hr = sigma_lr * factor
    if sigma_hr > 0:
        sigmas = [0.0] * data.ndim
        sigmas[ya] = sigmas[xa] = sigma_hr
        if all_valid:
            data = ndimage.gaussian_filter(data, sigmas, mode="reflect")
        else:
            weight = ndimage.gaussian_filter(valid.astype(np.float64), sigmas, mode="reflect")
            blurred = ndimage.gaussian_filter(data, sigmas, mode="reflect")
            with np.errstate(invalid="ignore", divide="ignore"):
                data = np.where(valid, blurred / weight, 0.0)

    # Block averaging: split each spatial axis into (n, factor) and average the factor axes.
    first, second = sorted((ya, xa))
    split = list(data.shape)
    split[second: second + 1] = [data.shape[second] // factor, factor]
    split[first: first + 1] = [data.shape[first] // factor, factor]
    block_axes = (first + 1, second + 2)
    if all_valid:
        lr = data.reshape(split).mean(axis=block_axes)
        lr_valid = None
    else:
        count = valid.reshape(split).sum(axis=block_axes)
        with np.errstate(invalid="ignore", divide="ignore"):
            lr = data.reshape(split).sum(axis=block_axes) / count
        lr_valid = count >= min_valid * factor * factor - 1e-9
        lr = np.where(lr_valid, lr, np.nan)

    if noise is not None or snr is not None:
        lr_ax = ax  # the band axis keeps its index: only spatial axes shrank
        n_bands = 1 if lr_ax is None else lr.shape[lr_ax]
        flat = arrays.bands(lr, lr_ax)
        if noise is not None:
            sigma = _per_band(noise, n_bands, "noise")
        else:
            ratios = _per_band(snr, n_bands, "snr")
            if (ratios <= 0).any():
                raise InvalidInputError(f"snr must be positive, got {snr!r}")
            with np.errstate(invalid="ignore"):
                means = np.array([np.nanmean(np.abs(b)) if np.isfinite(b).any() else 0.0 for b in flat])
            sigma = means / ratios
        rng = np.random.default_rng(seed)
        flat = flat + sigma[:, None] * rng.standard_normal(flat.shape)
        lr = arrays.unbands(flat, lr.shape, lr_ax)

    if dtype.kind in "iu":
        if lr_valid is not None and not lr_valid.all():
            if nodata is None:
                raise InvalidInputError("the integer image has invalid pixels (mask=) but no nodata value for the "
                                        "LR pixels they leave empty: pass nodata=")
            lr = np.where(lr_valid, lr, nodata)
        out = arrays.to_dtype(lr, dtype)
    else:
        out = lr.astype(dtype, copy=False)
    if not arrays.is_dataarray(hr):
        return out
    return _wrap_lr(hr, out, factor, ya, xa)


def _wrap_lr(hr, out: np.ndarray, factor: int, ya: int, xa: int):
    """The LR result as a DataArray like ``hr``: block-centre x/y, other coordinates and attributes kept."""
    import xarray as xr

    ydim, xdim = hr.dims[ya], hr.dims[xa]
    coords = {}
    for name, coord in hr.coords.items():
        if ydim in coord.dims or xdim in coord.dims:
            if name in (ydim, xdim) and coord.ndim == 1 and coord.dtype.kind in "iuf":
                values = coord.values.astype(np.float64).reshape(-1, factor).mean(axis=1)
                coords[name] = (coord.dims, values, coord.attrs)
            continue  # other coordinates on the HR grid do not survive the averaging
        coord = coord.copy()
        if "GeoTransform" in coord.attrs:  # rioxarray's cached transform: recomputed from x/y
            coord.attrs = {k: v for k, v in coord.attrs.items() if k != "GeoTransform"}
        coords[name] = coord
    return xr.DataArray(out, dims=hr.dims, coords=coords, attrs=dict(hr.attrs), name=hr.name)
