"""Array helpers shared by eo-sr's core modules: xarray or numpy input, band axes, validity masks.

Private to the package (the leading underscore): :mod:`eo_sr.radiometry`, :mod:`eo_sr.bicubic` and
:mod:`eo_sr.metrics` use them. Imports only numpy and :mod:`eo_sr.errors`, so every module that
needs them stays light.

Masks follow one convention throughout: **True means valid** (use the pixel).
"""
from __future__ import annotations

import numpy as np

from eo_sr.errors import InvalidInputError

# --------------------------------------------------------------------------------------------
# arrays, xarray, axes
# --------------------------------------------------------------------------------------------

def is_dataarray(obj) -> bool:
    """Whether ``obj`` is an xarray.DataArray (tested without importing xarray)."""
    return type(obj).__name__ == "DataArray" and hasattr(obj, "dims") and hasattr(obj, "coords")


def values(obj, what: str) -> np.ndarray:
    """The numbers of an array or DataArray; InvalidInputError unless integer or float."""
    arr = np.asarray(obj.values if is_dataarray(obj) else obj)
    if arr.dtype.kind not in "iuf":
        raise InvalidInputError(f"{what} must hold integer or float numbers, not {arr.dtype}; "
                                f"convert it first (e.g. {what}.astype('float32'))")
    return arr


def channel_axis(obj, arr: np.ndarray, channel_axis, what: str) -> int | None:
    """``channel_axis`` (an integer, a DataArray dimension name or None) as a non-negative axis of ``arr``, or None."""
    if channel_axis is None:
        return None
    if isinstance(channel_axis, str):
        if not is_dataarray(obj):
            raise InvalidInputError(f"channel_axis={channel_axis!r} is a dimension name, which needs an "
                                    f"xarray.DataArray; {what} is a {type(obj).__name__}: pass an integer axis")
        if channel_axis not in obj.dims:
            raise InvalidInputError(f"{what} has no dimension {channel_axis!r}; its dimensions are {list(obj.dims)}")
        return obj.dims.index(channel_axis)
    try:
        ax = int(channel_axis)
    except (TypeError, ValueError):
        raise InvalidInputError(f"channel_axis must be an integer, a dimension name or None, "
                                f"not {channel_axis!r}") from None
    if not -arr.ndim <= ax < arr.ndim:
        raise InvalidInputError(f"channel_axis={ax} is out of range for {what} with shape {arr.shape}")
    return ax % arr.ndim


def bands(arr: np.ndarray, ax: int | None) -> np.ndarray:
    """(C, P) view (or contiguous copy) of the bands, spatial dimensions flattened."""
    moved = arr[np.newaxis] if ax is None else np.moveaxis(arr, ax, 0)
    return np.ascontiguousarray(moved).reshape(moved.shape[0], -1)


def unbands(flat: np.ndarray, shape: tuple, ax: int | None) -> np.ndarray:
    """The inverse of :func:`bands`: ``(C, P)`` back to ``shape`` with the bands on axis ``ax``."""
    if ax is None:
        return flat.reshape(shape)
    moved_shape = (shape[ax],) + tuple(s for i, s in enumerate(shape) if i != ax)
    return np.ascontiguousarray(np.moveaxis(flat.reshape(moved_shape), 0, ax))


def spatial(shape: tuple, ax: int | None) -> tuple:
    """``shape`` without the channel axis ``ax``."""
    return tuple(s for i, s in enumerate(shape) if i != ax)


def wrap(template, data):
    """Return ``data`` as a DataArray like ``template`` when it is one (coords, attrs, CRS kept)."""
    return template.copy(data=data) if is_dataarray(template) else data


def band_names(obj, ax: int | None):
    """Names of the bands along axis ``ax`` of a DataArray (its string coordinate), else None."""
    if ax is None or not is_dataarray(obj):
        return None
    dim = obj.dims[ax]
    if dim in obj.coords and obj.coords[dim].ndim == 1 and obj.coords[dim].dtype.kind in "OUS":
        return tuple(str(v) for v in obj.coords[dim].values)
    return None


def to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast matched values to the image's dtype: integers are rounded and clipped to the dtype."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------

_ARANGE: list = [np.arange(0)]


def arange(n: int) -> np.ndarray:
    """``np.arange(n)``, kept for the next call (compressing it beats np.flatnonzero)."""
    if _ARANGE[0].size != n:
        _ARANGE[0] = np.arange(n)
    return _ARANGE[0]


class Mask:
    """A flat validity mask (True = valid), with what the bands sharing it reuse.

    ``masked`` holds the indices of the masked pixels when they are at most a quarter of them
    (counts are then corrected by counting just those), else None; it is computed on first use.
    """

    __slots__ = ("_first", "_invalid", "_masked", "_shifted", "n", "valid")

    @classmethod
    def make(cls, valid: np.ndarray):
        """A mask, or None when every pixel is valid."""
        n = int(np.count_nonzero(valid))
        if n == valid.size:
            return None
        m = cls.__new__(cls)
        m.valid, m.n = valid, n
        m._invalid, m._masked, m._first, m._shifted = None, False, None, {}
        return m

    @property
    def invalid(self) -> np.ndarray:
        if self._invalid is None:
            self._invalid = ~self.valid
        return self._invalid

    @property
    def masked(self):
        if self._masked is False:
            few = self.valid.size - self.n <= self.valid.size // 4
            self._masked = arange(self.valid.size)[self.invalid] if few else None
        return self._masked

    @property
    def first(self) -> int:
        """Index of the first valid pixel."""
        if self._first is None:
            self._first = int(np.argmax(self.valid))
        return self._first

    def offset(self, n_bins: int, dtype) -> np.ndarray:
        """``n_bins`` at masked pixels, 0 at valid ones, as ``dtype`` (cached)."""
        key = (n_bins, np.dtype(dtype).str)
        if key not in self._shifted:
            off = self.invalid.astype(dtype)
            off *= n_bins
            self._shifted[key] = off
        return self._shifted[key]

    def shifted(self, top: int) -> np.ndarray:
        """uint16 array: ``top`` at masked pixels, 0 at valid ones (cached per ``top``)."""
        if top not in self._shifted:
            off = self.valid.view(np.uint8).astype(np.uint16)
            off ^= 1
            off <<= top.bit_length() - 1
            self._shifted[top] = off
        return self._shifted[top]


def masks(mask, shape: tuple, ax: int | None, n_bands: int, what: str) -> list:
    """Per-band list of :class:`Mask` (or None = all valid) from a spatial or full-shape mask."""
    if mask is None:
        return [None] * n_bands
    m = np.asarray(mask.values if is_dataarray(mask) else mask)
    if m.dtype != bool:
        raise InvalidInputError(f"{what} must be a boolean array (True = valid pixel), not {m.dtype}; "
                                f"e.g. pass {what}=(data != nodata) or {what}=~cloud_mask")
    spatial_shape = spatial(shape, ax)
    if m.shape == spatial_shape:
        one = Mask.make(np.ascontiguousarray(m).reshape(-1))
        return [one] * n_bands
    if m.shape == shape:
        out = []
        for band in bands(m, ax):
            out.append(Mask.make(band))
        return out
    raise InvalidInputError(f"{what} has shape {m.shape}; it must have the spatial shape {spatial_shape} "
                            f"or the full shape {shape} of the array it masks")


# --------------------------------------------------------------------------------------------
# torch batches
# --------------------------------------------------------------------------------------------

def chunk_size(batch_size, per_image_bytes: int) -> int:
    """Images per torch call: about 16 MB of working set, which stays in a CPU's caches."""
    if batch_size is not None:
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        return int(batch_size)
    return max(1, (16 << 20) // per_image_bytes)


class Workspace:
    """Tensors reused from chunk to chunk. A fresh large tensor is fresh memory, and its
    page faults can cost more than the arithmetic done in it."""

    def __init__(self):
        self._buffers = {}

    def __call__(self, name: str, shape, dtype=None):
        import torch

        dtype = dtype or torch.float32
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < size or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(size, dtype=dtype)
        return buf[:size].view(*shape)

