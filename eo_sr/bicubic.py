"""Bicubic upsampling by an integer factor, numerically PyTorch's.

The bicubic baseline every SR model in eo-sr is compared against: histogram matching
(:func:`eo_sr.radiometry.match_to_bicubic`) and quality control (:mod:`eo_sr.metrics`,
:mod:`eo_sr.qc`) use exactly the image the models have to beat.

- :func:`upsample_bicubic` upsamples one image in numpy (no torch needed) or a batch of images
  ``(..., B, h, w)`` with torch matrix products;
- :func:`bicubic_matrix` is the ``(n * factor, n)`` matrix of one axis;
- :func:`upsample_axis` and :func:`valid_axis` upsample one axis of values, and of a validity
  mask (which outputs use valid inputs only);
- :func:`check_factor` validates an HR/LR resolution ratio.

Imports only numpy and :mod:`eo_sr.errors`; torch is imported by the batched path only.
"""
from __future__ import annotations

import numpy as np

from eo_sr.errors import InvalidInputError

__all__ = ["bicubic_matrix", "check_factor", "upsample_axis", "upsample_bicubic", "valid_axis"]


def check_factor(factor) -> int:
    """``factor`` as an int, or InvalidInputError unless it is a positive integer (not a bool)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise InvalidInputError(f"factor must be a positive integer (the HR/LR resolution ratio), not {factor!r}")
    return int(factor)


def _cubic_taps(n_in: int, factor: int):
    """Indices (4, n_out) and weights (4, n_out) of PyTorch's bicubic kernel, align_corners=False."""
    a = -0.75
    n_out = n_in * factor
    src = (np.arange(n_out) + 0.5) / factor - 0.5
    i0 = np.floor(src)
    t = src - i0
    x1, x2 = t, 1.0 - t

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    w = np.stack([far(x1 + 1), near(x1), near(x2), far(x2 + 1)])
    idx = np.clip(i0.astype(np.intp)[None] + np.arange(-1, 3)[:, None], 0, n_in - 1)
    return idx, w


def upsample_axis(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Bicubic upsampling of ``x`` along one axis (four taps per output, in ``x``'s precision)."""
    idx, w = _cubic_taps(x.shape[axis], factor)
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for k in range(4):
        term = np.take(x, idx[k], axis=axis) * w[k].reshape(shape)
        out = term if out is None else out + term
    return out


def bicubic_matrix(n: int, factor: int) -> np.ndarray:
    """The ``(n * factor, n)`` matrix of :func:`upsample_bicubic` along one axis.

    Upsampling is separable, so an image ``x`` of ``h x w`` pixels upsamples as
    ``bicubic_matrix(h, f) @ x @ bicubic_matrix(w, f).T``; batched matrix products make
    this the fast way to upsample many patches at once (:func:`upsample_bicubic` of a batch).

    Parameters
    ----------
    n : int
        Number of input samples along the axis.
    factor : int
        Integer upsampling factor.

    Returns
    -------
    ndarray of float64, shape ``(n * factor, n)``; each row sums to 1.
    """
    factor = check_factor(factor)
    idx, w = _cubic_taps(int(n), factor)
    out = np.zeros((n * factor, n))
    rows = np.broadcast_to(np.arange(n * factor), idx.shape)
    np.add.at(out, (rows, idx), w)  # edge taps clamp onto the same column: add, not assign
    return out


def valid_axis(v: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Validity (bool) of :func:`upsample_axis`'s outputs: True where every input with a weight is valid."""
    idx, w = _cubic_taps(v.shape[axis], factor)
    out = None
    for k in range(4):
        term = np.take(v, idx[k], axis=axis)
        used = (w[k] != 0).reshape([-1 if i == axis else 1 for i in range(v.ndim)])
        term = term | ~used
        out = term if out is None else out & term
    return out


def upsample_bicubic(image, factor: int, *, channel_axis=0, batch_size: int | None = None):
    """Bicubic upsampling by an integer factor, identical to PyTorch's, of one image or a batch.

    Computes what ``torch.nn.functional.interpolate(x, scale_factor=factor, mode="bicubic",
    align_corners=False)`` computes (Keys' cubic convolution with a = -0.75, pixel centres
    aligned, edges replicated). It is the bicubic baseline every SR model in eo-sr is compared
    against, so histogram matching and quality control use exactly the image the models have
    to beat. Two ways to call it:

    - **one image**, ``upsample_bicubic(image, factor, channel_axis=0)``: an image with exactly
      two spatial dimensions besides ``channel_axis`` (``(band, y, x)`` by default, any
      channel axis, ``(y, x)`` with ``channel_axis=None``), upsampled in float64 with numpy,
      so the dataset steps need no torch;
    - **a batch**, ``upsample_bicubic(images, factor, batch_size=None)``: images
      ``(..., B, h, w)`` with any other number of dimensions (``(h, w)``, ``(N, B, h, w)``,
      ...), or any images when ``batch_size`` is given. The last two axes are upsampled in
      float32 by two matrix products (:func:`bicubic_matrix`) per chunk of images, with
      torch: the fast way for many patches.

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        One image, e.g. ``(band, y, x)``, or a batch ``(..., B, h, w)``.
    factor : int
        Integer upsampling factor (>= 1).
    channel_axis : int, str or None, optional
        Axis of the bands of one image (default 0), a dimension name for a DataArray, or None
        for a plain 2-D image. In a batch the bands must be in front of the last two axes.
    batch_size : int, optional
        Images per torch call (default: about 16 MB of output); giving it asks for the batched
        float32 path.

    Returns
    -------
    upsampled : ndarray or xarray.DataArray
        The spatial dimensions multiplied by ``factor``. One image: float32 for
        float32/float16/integer input of up to 16 bits, float64 otherwise; a batch: float32.
        A DataArray keeps its dimensions, attributes and other coordinates (bands, time, CRS);
        its evenly spaced coordinates along the upsampled dimensions move to the new pixel
        centres. Values may overshoot the input range slightly (a property of cubic
        convolution).

    Raises
    ------
    InvalidInputError
        If ``factor`` is not a positive integer, the input has fewer than two dimensions or
        holds no numbers, or a batch's channel axis is one of its last two axes.

    References
    ----------
    .. [1] R. Keys, "Cubic convolution interpolation for digital image processing", IEEE
       Transactions on Acoustics, Speech, and Signal Processing 29 (1981) 1153-1160.
    """
    import eo_sr._arrays as arrays  # here: at import time this module needs numpy and errors only

    factor = check_factor(factor)
    arr = np.asarray(image.values if arrays.is_dataarray(image) else image)
    ax = arrays.channel_axis(image, arr, channel_axis, "image")
    if batch_size is not None or arr.ndim - (ax is not None) != 2:  # a batch (..., B, h, w)
        if ax is not None and arr.ndim >= 3 and ax >= arr.ndim - 2:
            raise InvalidInputError(f"channel_axis={channel_axis} is one of the last two axes of images with shape "
                                    f"{arr.shape}, which a batch (..., B, h, w) upsamples: move the bands in front "
                                    "(np.moveaxis), or leave out batch_size= for one image")
        up, axes = _upsample_batch(arr, factor, batch_size), (arr.ndim - 2, arr.ndim - 1)
    else:  # one image, in float64
        arr = arrays.values(image, "image")
        bands = arr[np.newaxis] if ax is None else np.moveaxis(arr, ax, 0)
        out_dtype = np.float32 if arr.dtype.itemsize <= 2 or arr.dtype == np.float32 else np.float64
        up = upsample_axis(upsample_axis(bands.astype(np.float64), factor, 1), factor, 2).astype(out_dtype)
        up = up[0] if ax is None else np.moveaxis(up, 0, ax)
        axes = tuple(i for i in range(arr.ndim) if i != ax)
    return _upsampled_like(image, up, axes, factor) if arrays.is_dataarray(image) else up


def _upsample_batch(lr, factor: int, batch_size: int | None) -> np.ndarray:
    """Bicubic upsampling of ``(..., B, h, w)`` by an integer factor, float32, batched.

    The same numbers as the numpy path of :func:`upsample_bicubic` (to float32 precision) and
    PyTorch's ``F.interpolate(mode="bicubic", align_corners=False)`` (Keys, a = -0.75,
    half-pixel centres, edges replicated), computed as two matrix products per batch of images.

    Parameters
    ----------
    lr : array_like, shape (..., B, h, w)
    factor : int
        Integer upsampling factor, checked.
    batch_size : int, optional
        Images per torch call (default: about 16 MB of output).

    Returns
    -------
    ndarray of float32, shape ``(..., B, h * factor, w * factor)``
    """
    import torch

    from eo_sr._arrays import Workspace, chunk_size

    lr = np.asarray(lr, dtype=np.float32)
    if lr.ndim < 2:
        raise InvalidInputError(f"images need at least 2 dimensions (h, w), got shape {lr.shape}")
    lead, (h, w) = lr.shape[:-2], lr.shape[-2:]
    flat = lr.reshape(-1, h, w)
    rows = torch.from_numpy(bicubic_matrix(h, factor).astype(np.float32))
    cols = torch.from_numpy(bicubic_matrix(w, factor).T.astype(np.float32).copy())
    out = np.empty((flat.shape[0], h * factor, w * factor), np.float32)
    step = chunk_size(batch_size, 4 * h * w * factor * factor)
    work = Workspace()
    with torch.no_grad():
        for s in range(0, flat.shape[0], step):
            x = torch.from_numpy(flat[s:s + step])
            wide = torch.mm(x.reshape(-1, w), cols, out=work("wide", (x.shape[0] * h, w * factor)))
            torch.matmul(rows, wide.view(-1, h, w * factor), out=torch.from_numpy(out[s:s + step]))
    return out.reshape(*lead, h * factor, w * factor)


def _upsampled_like(template, data: np.ndarray, axes: tuple, factor: int):
    """``data`` as a DataArray like ``template`` upsampled along ``axes``.

    Dimensions, name, attributes and the coordinates off those axes (bands, time, the CRS's
    ``spatial_ref``) are kept; 1-D numeric coordinates along them are moved to the new pixel
    centres (assuming even spacing) and others (2-D longitudes, single-pixel axes) dropped.
    """
    import xarray as xr

    dims = {template.dims[a] for a in axes}
    coords = {}
    for name, coord in template.coords.items():
        if not dims & set(coord.dims):
            if "GeoTransform" in coord.attrs:  # rioxarray's cached transform: recomputed from the new x/y
                coord = coord.copy()
                del coord.attrs["GeoTransform"]
            coords[name] = coord.variable
        elif coord.ndim == 1 and coord.dtype.kind in "iuf" and coord.size >= 2:
            c = coord.values.astype(np.float64)
            step = (c[-1] - c[0]) / (c.size - 1)
            centres = (np.arange(c.size * factor) + 0.5) / factor - 0.5  # in input pixels
            coords[name] = (coord.dims, c[0] + centres * step, coord.attrs)
    return xr.DataArray(data, dims=template.dims, coords=coords, attrs=dict(template.attrs), name=template.name)
