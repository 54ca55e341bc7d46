"""Radiometry: mask-aware histogram matching, robust normalisation, cloud and shadow flags.

Step 6 of the pipeline. Two sensors never see the same colours: different spectral responses,
atmospheric conditions, viewing angles and processing. Before an SR model can learn the
*spatial* detail of the HR sensor, the HR target is brought to the radiometry of the LR input:

- :func:`match_histograms` matches each band of an image to a reference distribution while
  ignoring masked pixels (nodata, clouds), exact on integer data and fast on float reflectance;
- :func:`match_to_bicubic` matches HR towards the bicubic-upsampled LR of the same place and
  time, as the multi-temporal SR seed does;
- :class:`NormStats`, :func:`compute_norm_stats`, :func:`normalize` and :func:`denormalize`
  rescale bands robustly (median, or 1st/99th percentile) with statistics computed once over a
  tile or a region, stored as JSON and reused at inference;
- :func:`blue_threshold_cloud_mask` finds clouds on sensors without a cloud mask, and
  :func:`flag_shadow_neighbours` flags patches next to cloudy patches of the same acquisition
  (shadows fall near clouds).

Masks follow one convention throughout: **True means valid** (use the pixel). A cloud mask
(True = cloud) is therefore passed as ``~cloud_mask``.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eo_sr.errors import InvalidInputError

__all__ = [
    "DEFAULT_N_BINS",
    "NormStats",
    "bicubic_matrix",
    "blue_threshold_cloud_mask",
    "compute_norm_stats",
    "consistent_pixels",
    "denormalize",
    "flag_shadow_neighbours",
    "match_histograms",
    "match_to_bicubic",
    "normalize",
    "upsample_bicubic",
]

#: Default number of reference bins of the float fast path of :func:`match_histograms`. With
#: it, 8 bin widths equal the tolerance (robust range / 4096), so more bins would not make the
#: result closer to the exact one, only the per-bin work larger.
DEFAULT_N_BINS = 1 << 15

_METHODS = ("auto", "exact", "binned")
# Integer data whose value range is at most this (or at most twice the pixel count) is counted
# exactly with np.bincount, as scikit-image does for unsigned integers.
_COUNT_RANGE = 1 << 16
# Binned path: an image bin whose output spans more than max(_WIDE reference bin widths,
# _REL_TOL x the reference's robust range) is ranked exactly (by sorting just its pixels); this
# bounds the error. The image gets n_bins // _SRC_BINS_DIV bins, refined once (up to _MAX_BINS)
# when too many of its pixels would need exact ranking.
_WIDE = 8
_REL_TOL = 1 / 4096
_SRC_BINS_DIV = 4
_MAX_BINS = 1 << 20


# --------------------------------------------------------------------------------------------
# small helpers: arrays, xarray, axes, masks
# --------------------------------------------------------------------------------------------

def _is_dataarray(obj) -> bool:
    return type(obj).__name__ == "DataArray" and hasattr(obj, "dims") and hasattr(obj, "coords")


def _values(obj, what: str) -> np.ndarray:
    arr = np.asarray(obj.values if _is_dataarray(obj) else obj)
    if arr.dtype.kind not in "iuf":
        raise InvalidInputError(f"{what} must hold integer or float numbers, not {arr.dtype}; "
                                f"convert it first (e.g. {what}.astype('float32'))")
    return arr


def _channel_axis(obj, arr: np.ndarray, channel_axis, what: str) -> int | None:
    if channel_axis is None:
        return None
    if isinstance(channel_axis, str):
        if not _is_dataarray(obj):
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


def _bands(arr: np.ndarray, ax: int | None) -> np.ndarray:
    """(C, P) view (or contiguous copy) of the bands, spatial dimensions flattened."""
    moved = arr[np.newaxis] if ax is None else np.moveaxis(arr, ax, 0)
    return np.ascontiguousarray(moved).reshape(moved.shape[0], -1)


def _unbands(flat: np.ndarray, shape: tuple, ax: int | None) -> np.ndarray:
    if ax is None:
        return flat.reshape(shape)
    moved_shape = (shape[ax],) + tuple(s for i, s in enumerate(shape) if i != ax)
    return np.ascontiguousarray(np.moveaxis(flat.reshape(moved_shape), 0, ax))


def _spatial(shape: tuple, ax: int | None) -> tuple:
    return tuple(s for i, s in enumerate(shape) if i != ax)


def _wrap(template, data):
    """Return ``data`` as a DataArray like ``template`` when it is one (coords, attrs, CRS kept)."""
    return template.copy(data=data) if _is_dataarray(template) else data


_ARANGE: list = [np.arange(0)]


def _arange(n: int) -> np.ndarray:
    """``np.arange(n)``, kept for the next call (compressing it beats np.flatnonzero)."""
    if _ARANGE[0].size != n:
        _ARANGE[0] = np.arange(n)
    return _ARANGE[0]


class _Mask:
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
            self._masked = _arange(self.valid.size)[self.invalid] if few else None
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


def _fold(flat: np.ndarray, m: _Mask) -> tuple:
    """Masked pixels of a uint8/uint16 band moved above its values: ``(intp values, top, size)``.

    ``top`` is a power of two above the band's maximum; one ``np.bincount`` of the result then
    holds the valid histogram below ``top`` and the masked pixels above. None if the band's
    values leave no room (maximum of 32,768 or more).
    """
    size = int(flat.max()) + 1
    top = 1 << (size - 1).bit_length()
    if top > 1 << 15:
        return None
    folded = np.add(flat.view(np.uint16) if flat.dtype == np.uint16 else flat.astype(np.uint16),
                    m.shifted(top))
    return folded.astype(np.intp), top, size


def _masks(mask, shape: tuple, ax: int | None, n_bands: int, what: str) -> list:
    """Per-band list of :class:`_Mask` (or None = all valid) from a spatial or full-shape mask."""
    if mask is None:
        return [None] * n_bands
    m = np.asarray(mask.values if _is_dataarray(mask) else mask)
    if m.dtype != bool:
        raise InvalidInputError(f"{what} must be a boolean array (True = valid pixel), not {m.dtype}; "
                                f"e.g. pass {what}=(data != nodata) or {what}=~cloud_mask")
    spatial = _spatial(shape, ax)
    if m.shape == spatial:
        one = _Mask.make(np.ascontiguousarray(m).reshape(-1))
        return [one] * n_bands
    if m.shape == shape:
        out = []
        for band in _bands(m, ax):
            out.append(_Mask.make(band))
        return out
    raise InvalidInputError(f"{what} has shape {m.shape}; it must have the spatial shape {spatial} "
                            f"or the full shape {shape} of the array it masks")


def _fill(flat: np.ndarray, m: _Mask | None) -> np.ndarray:
    """``flat`` with masked pixels replaced by the first valid value (so min/max ignore them)."""
    if m is None:
        return flat
    out = flat.copy()
    np.copyto(out, flat[m.first], where=m.invalid)
    return out


def _restore(out: np.ndarray, flat: np.ndarray, m: _Mask | None) -> None:
    """Put the original values back into the masked pixels of ``out``."""
    if m is None:
        return
    if (flat.size - m.n) * 16 < flat.size and m.masked is not None:
        out[m.masked] = flat[m.masked]
    else:
        np.copyto(out, flat, where=m.invalid, casting="unsafe")


def _count(b: np.ndarray, m: _Mask | None, minlength: int) -> np.ndarray:
    """``np.bincount`` of the valid entries of ``b`` (non-negative integers)."""
    if m is None:
        return np.bincount(b, minlength=minlength)
    if m.masked is not None:  # few masked: count all, then take the masked ones away
        counts = np.bincount(b, minlength=minlength)
        counts -= np.bincount(b[m.masked], minlength=counts.size)
        return counts
    return np.bincount(b[m.valid], minlength=minlength)


def _nonfinite(values: np.ndarray, what: str, band: int) -> None:
    """Raise if valid float values hold NaN or infinities."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        n_nan = int(np.count_nonzero(np.isnan(values)))
        n_inf = int(np.count_nonzero(np.isinf(values)))
        raise InvalidInputError(
            f"band {band} of {what} has {n_nan} NaN and {n_inf} infinite value(s) among its valid pixels; "
            f"mask them out (e.g. {what}_mask=np.isfinite({what}).all(axis=channel_axis)) or fill them")


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast matched values to the image's dtype: integers are rounded and clipped to the dtype."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dtype, copy=False)


def _check_method(method: str, n_bins) -> int:
    if method not in _METHODS:
        raise InvalidInputError(f"method must be one of {list(_METHODS)}, not {method!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 16 <= n_bins <= 1 << 24:
        raise InvalidInputError(f"n_bins must be an integer between 16 and 2**24, not {n_bins!r}")
    return int(n_bins)


def _work_dtype(dtype: np.dtype):
    return np.float32 if dtype.kind == "f" and dtype.itemsize <= 4 else np.float64


def _bins(x: np.ndarray, m: _Mask | None, n_bins: int, work):
    """Bins for the binned path: ``(base, scale, quantised)``, or None when (nearly) constant.

    ``t = clip((x - base) * scale, 0, n_bins - 1)`` and bin ``floor(t)``. The inner bins
    1 .. n_bins-2 cover the robust range of the valid values, estimated from a strided sample
    (0.2 % cut per side, then widened by 5 %); bins 0 and n_bins-1 collect whatever lies below
    and above (outliers, NaN and infinities) and their pixels are always ranked exactly.
    Correctness never depends on the estimate, only speed does. ``quantised`` says that the
    sample has many ties (finer bins would not split them).
    """
    step = max(1, x.size // 4096)
    sample = x[::step] if m is None else x[::step][m.valid[::step]]
    if sample.size < 64:  # valid pixels too sparse for a strided sample
        sample = x if m is None else x[m.valid]
    sample = np.sort(sample[np.isfinite(sample)])
    if sample.size == 0:
        return None
    quantised = np.count_nonzero(sample[1:] == sample[:-1]) > sample.size // 8  # many ties
    k = int(0.002 * sample.size)
    r_lo, r_hi = float(sample[k]), float(sample[sample.size - 1 - k])
    pad = 0.05 * (r_hi - r_lo)
    span = r_hi - r_lo + 2 * pad
    if not (np.isfinite(span) and span > 0):
        return None
    scale = (n_bins - 2) / span
    base = r_lo - pad - 1.0 / scale
    with np.errstate(over="ignore"):
        if not (np.isfinite(work(scale)) and work(scale) > 0 and np.isfinite(work(base))):
            return None
    return work(base), work(scale), quantised


def _bin_index(xw: np.ndarray, base, scale, n_bins: int, m: _Mask | None = None) -> np.ndarray:
    """Clipped bin coordinate ``t`` (float, in [0, n_bins - 1]) of every value; NaN goes to 0.

    With a mask, masked pixels are moved up by ``n_bins``: one ``np.bincount`` then counts the
    valid ones below ``n_bins`` and the masked ones above, at the price of one addition.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        t = xw - base
        t *= scale
    np.clip(t, 0, n_bins - 1, out=t)
    nan = np.isnan(t)
    if nan.any():  # masked nodata, or invalid values that the outlier bin reports
        np.copyto(t, 0, where=nan)
    if m is not None:
        t += m.offset(n_bins, t.dtype)
    return t


def _small_unsigned(dtype: np.dtype) -> bool:
    return dtype.kind == "u" and dtype.itemsize <= 2


def _counting(dtype: np.dtype, lo, hi, n: int) -> bool:
    return dtype.kind in "iu" and int(hi) - int(lo) <= max(_COUNT_RANGE, 2 * n) and int(hi) < 1 << 62


# --------------------------------------------------------------------------------------------
# histogram matching
# --------------------------------------------------------------------------------------------

def _resolution(q: np.ndarray, v: np.ndarray, n_bins: int) -> float:
    """The tolerance of the binned source path for a reference given by exact knots."""
    lo, hi = np.interp([0.002, 0.998], q, v)
    span = hi - lo if hi > lo else v[-1] - v[0]
    return _tolerance(float(span), float(span) / n_bins)


def _tolerance(span: float, width: float) -> float:
    """Output span of a source bin above which its pixels are ranked exactly.

    ``span`` is the reference's robust range, ``width`` its bin width. The binned result stays
    within about this plus two bin widths of the exact one.
    """
    return max(_WIDE * width, span * _REL_TOL)


def _exact_knots(values: np.ndarray, n: int, n_bins: int):
    values, counts = np.unique(values, return_counts=True)
    q, v = np.cumsum(counts) / n, values.astype(np.float64)
    return q, v, _resolution(q, v, n_bins)


def _reference_quantiles(flat: np.ndarray, m: _Mask | None, method: str, n_bins: int, band: int):
    """Knots ``(q, v)`` of the reference's quantile function, and the source tolerance.

    ``np.interp(fraction, q, v)`` is the reference value at a cumulative fraction, as in
    scikit-image.
    """
    n = flat.size if m is None else m.n
    if n == 0:
        raise InvalidInputError(f"band {band} of reference has no valid pixel (reference_mask is all False); "
                                "masks are True where valid: pass ~cloud_mask, not cloud_mask")
    if _small_unsigned(flat.dtype):  # count values directly, as scikit-image does
        folded = None if m is None else _fold(flat, m)
        if folded is not None:
            counts = np.bincount(folded[0])[:folded[1]]
        else:
            counts = _count(flat, m, 0)
        nz = np.flatnonzero(counts)
        q, v = np.cumsum(counts[nz]) / n, nz.astype(np.float64)
        return q, v, _resolution(q, v, n_bins)
    if flat.dtype.kind in "iu":
        filled = _fill(flat, m)
        lo, hi = filled.min(), filled.max()
        if _counting(flat.dtype, lo, hi, n):  # exact counts
            idx = filled.astype(np.intp)
            idx -= int(lo)
            counts = _count(idx, m, int(hi) - int(lo) + 1)
            nz = np.flatnonzero(counts)
            q, v = np.cumsum(counts[nz]) / n, (nz + int(lo)).astype(np.float64)
            return q, v, _resolution(q, v, n_bins)
    work = _work_dtype(flat.dtype)
    xw = flat.astype(work, copy=False)
    exact = method == "exact" or (method == "auto" and n <= n_bins)
    bins = None if exact else _bins(xw, m, n_bins, work)
    if bins is None:
        values = flat if m is None else flat[m.valid]
        _nonfinite(values, "reference", band)
        return _exact_knots(values, n, n_bins)

    # Binned: the exact quantile function has a knot at the top rank of every distinct value and
    # is linear in between. An occupied bin is summarised by one knot, at its top rank and right
    # edge; where occupied bins follow each other that stays within two bin widths of the exact
    # curve. After an empty stretch, though, the exact curve runs from the last value before the
    # gap to the top rank of the first distinct value after it, so for bins that follow a gap and
    # hold two or more pixels (few, unless the data are quantised) the minimum and its count are
    # read from the pixels themselves; a lone pixel after a gap gets its bin's centre. The two
    # outlier bins get a knot per distinct value.
    base, scale, _ = bins
    last = n_bins - 1
    b = _bin_index(xw, base, scale, n_bins, m).astype(np.intp)
    counts = np.bincount(b, minlength=n_bins)[:n_bins]  # masked pixels were counted above
    nz = np.flatnonzero(counts)
    cnt = counts[nz]
    cz = np.cumsum(cnt)
    q = cz / n
    width = 1.0 / float(scale)
    v = (nz + 1) * width
    v += float(base)
    # occupied bins after an empty stretch (the first one, and the one after the low outlier bin)
    gap = np.flatnonzero(np.diff(nz) > 1) + 1
    first = [0, 1] if nz[0] == 0 and nz.size > 1 else [0]
    gap = np.concatenate([first, gap[gap > first[-1]]]).astype(np.intp)
    v[gap[cnt[gap] == 1]] -= 0.5 * width  # a lone pixel: its bin's centre
    need = gap[(cnt[gap] >= 2) & (nz[gap] > 0) & (nz[gap] < last)]
    outliers = sorted({i for i in (0, nz.size - 1) if nz[i] in (0, last)})
    if need.size or outliers:
        pos = np.full(n_bins if m is None else 2 * n_bins, -1, np.int32)
        pos[nz[need]] = np.arange(need.size)
        for j, i in enumerate(outliers):
            pos[nz[i]] = need.size + j
        p = np.take(pos, b)
        idx = np.flatnonzero(p >= 0)  # valid pixels only: masked ones sit above n_bins
        xs, p = xw[idx], p[idx]
        _nonfinite(xs, "reference", band)  # NaN and infinities all land in the outlier bins
        if need.size:
            inner = p < need.size
            xi, pi = xs[inner], p[inner]
            mins = np.full(need.size, np.inf, work)
            np.minimum.at(mins, pi, xi)
            n_min = np.bincount(pi[xi == mins[pi]], minlength=need.size)
            r1 = cz[need] - cnt[need] + n_min
            one = r1 == cz[need]  # a single distinct value: its own knot is exact
            v[need] = np.where(one, mins, float(base) + (nz[need] + 1) * width)
            many = ~one
            # Inner bins only, so the first and last knots stay those of the outlier bins.
            q = np.insert(q, need[many], r1[many] / n)
            v = np.insert(v, need[many], mins[many])
        for j, i in enumerate(outliers):  # exact knots, replacing the bin's single knot
            values, c = np.unique(xs[p == need.size + j], return_counts=True)
            qe, ve = (cz[i] - cnt[i] + np.cumsum(c)) / n, values.astype(np.float64)
            if i == 0:
                q, v = np.concatenate([qe, q[1:]]), np.concatenate([ve, v[1:]])
            else:
                q, v = np.concatenate([q[:-1], qe]), np.concatenate([v[:-1], ve])
    return q, v, _tolerance((n_bins - 2) * width / 1.1, width)  # inner bins: robust range + 2 x 5 %


def _match_band(flat: np.ndarray, m: _Mask | None, fit: _Mask | None, ref: tuple,
                method: str, n_bins: int, out: np.ndarray, band: int, what: str = "image") -> None:
    """Match one flattened band into ``out`` (same dtype as ``flat``).

    ``ref`` is :func:`_reference_quantiles`' result. ``m`` marks the pixels to transform (others
    are copied unchanged); ``fit`` (a subset of ``m``, default ``m``) the pixels whose
    distribution is matched to the reference.
    """
    tq, tv, tol = ref
    n_apply = flat.size if m is None else m.n
    if n_apply == 0:
        raise InvalidInputError(f"band {band} of {what} has no valid pixel ({what}_mask is all False); "
                                "masks are True where valid: pass ~cloud_mask, not cloud_mask")
    n = n_apply if fit is None else fit.n
    if n == 0:
        raise InvalidInputError(f"band {band}: no pixel is valid in both {what} and reference; "
                                "nothing to match (check the masks)")
    counted = fit if fit is not None else m

    if flat.dtype.kind in "iu":  # exact counts and a lookup table
        folded = _fold(flat, m) if _small_unsigned(flat.dtype) and fit is None and m is not None else None
        if folded is not None:
            # One count gives the valid histogram, and an identity table above ``top`` gives the
            # masked pixels their values back (no separate pass).
            idx, top, size = folded
            counts = np.bincount(idx, minlength=top + size)
            lut = np.interp(np.cumsum(counts[:size]) / n, tq, tv)
            if (lut[1:] < lut[:-1]).any():
                np.maximum.accumulate(lut, out=lut)
            table = np.empty(top + size, out.dtype)
            table[:size] = _to_dtype(lut, out.dtype)
            table[top:] = np.arange(size, dtype=out.dtype)
            np.take(table, idx, out=out)
            return
        if _small_unsigned(flat.dtype):
            lo, size, idx = 0, 0, flat.astype(np.intp)
        else:
            filled = _fill(flat, m)
            lo, hi = filled.min(), filled.max()
            size = int(hi) - int(lo) + 1
            idx = None
            if _counting(flat.dtype, lo, hi, n):
                idx = filled.astype(np.intp)
                idx -= int(lo)
        if idx is not None:
            counts = _count(idx, counted, size)
            lut = np.interp(np.cumsum(counts) / n, tq, tv)
            if (lut[1:] < lut[:-1]).any():  # rounding in np.interp; keep the map monotone
                np.maximum.accumulate(lut, out=lut)
            np.take(_to_dtype(lut, out.dtype), idx, out=out)
            _restore(out, flat, m)
            return

    work = _work_dtype(flat.dtype)
    xw = flat.astype(work, copy=False)
    exact = method == "exact" or (method == "auto" and n <= n_bins)
    # The source needs fewer bins than the reference: its bins only decide which pixels are
    # interpolated and which ranked exactly (the error bound is set by the tolerance).
    n_bins = max(64, n_bins // _SRC_BINS_DIV)
    bins = None if exact else _bins(xw, counted, n_bins, work)
    if bins is None:
        xs = flat if m is None else flat[m.valid]
        _nonfinite(xs, what, band)
        if fit is None:  # scikit-image's computation
            _, inverse, counts = np.unique(xs, return_inverse=True, return_counts=True)
            lut = np.interp(np.cumsum(counts) / n, tq, tv)
            if (lut[1:] < lut[:-1]).any():
                np.maximum.accumulate(lut, out=lut)
            res = lut[inverse.reshape(-1)]
        else:
            fs = np.sort(flat[fit.valid])
            res = np.interp(np.searchsorted(fs, xs, side="right") / n, tq, tv)
        if m is None:
            out[...] = _to_dtype(res, out.dtype)
        else:
            out[...] = flat
            out[m.valid] = _to_dtype(res, out.dtype)
        return

    # Binned fast path: a fine histogram instead of a sort. The pixels of bin b hold the ranks
    # C[b-1]+1 .. C[b]; pixel x at fraction f of the bin maps to lo[b] + f * (hi[b] - lo[b]), where
    # lo/hi are the reference quantiles of ranks C[b-1] and C[b]. Where that span is wider than
    # the tolerance (sparse tails, ties, very different distributions) and in the two outlier
    # bins, pixels are ranked exactly instead, so the result stays within the tolerance plus a
    # couple of reference bin widths of the sort-based answer.
    for attempt in (0, 1):
        last = n_bins - 1
        fold = m if fit is None else None  # masked pixels counted above n_bins
        t = _bin_index(xw, bins[0], bins[1], n_bins, fold)
        bf = np.floor(t)
        t -= bf  # t is now the fraction of each pixel inside its bin
        b = bf.astype(np.intp)
        del bf
        counts = np.bincount(b, minlength=n_bins)[:n_bins] if fit is None else _count(b, fit, n_bins)
        # Only occupied bins are looked up, unless some pixels to transform are not fitted.
        nz = np.flatnonzero(counts) if fit is None else np.arange(n_bins)
        cnt = counts[nz] if fit is None else counts
        cz = np.cumsum(cnt)
        # Output range of each bin: from the reference quantile of the rank just below the bin
        # to that of its top rank (one interpolation per occupied bin).
        hi_o = np.interp(cz / n, tq, tv)
        lo_o = np.empty_like(hi_o)
        lo_o[0] = tv[0]
        lo_o[1:] = hi_o[:-1]
        span = hi_o - lo_o
        if span.min() < 0:  # rounding in np.interp; keep the map monotone
            np.maximum.accumulate(hi_o, out=hi_o)
            lo_o[1:] = hi_o[:-1]
            span = hi_o - lo_o
        wide = span > tol
        if fit is not None:
            wide &= cnt > 0
        # Too coarse for this reference (e.g. the image has clouds the reference lacks, so its
        # bins span a wider range)? Refine once rather than rank many pixels exactly.
        if attempt == 0 and not bins[2] and n_bins < _MAX_BINS and int(cnt[wide].sum()) > n // 10:
            factor = min(8, 2 * int(np.ceil(np.percentile(span[wide] / tol, 90))))
            if factor > 1:
                n_bins = min(n_bins * factor, _MAX_BINS)
                bins = _bins(xw, counted, n_bins, work)
                continue
        break
    # Outlier bins (which also take NaN and infinities) are always ranked exactly.
    for i in {0, nz.size - 1}:
        if nz[i] in (0, last):
            wide[i] = True
    lo_w, hi_w = lo_o.astype(work, copy=False), hi_o.astype(work, copy=False)
    # Zero outside the occupied bins: masked pixels (above n_bins) get 0 and are put back below.
    lo_lut = np.zeros(n_bins if fold is None else 2 * n_bins, work)
    slope = np.zeros(lo_lut.size, work)
    lo_lut[nz] = lo_w
    # One ulp below the difference: lo + f * slope can then never exceed hi (monotone output).
    slope[nz] = np.nextafter(hi_w - lo_w, work(0))
    slope[nz[wide]] = np.nan  # marks the pixels to rank exactly
    res = out if out.dtype == work else np.empty(flat.size, work)
    np.take(lo_lut, b, out=res)
    tmp = np.take(slope, b)
    tmp *= t
    res += tmp
    idx = np.flatnonzero(np.isnan(tmp))
    if m is not None and fold is None:
        idx = idx[m.valid[idx]]
    if idx.size:
        _rank_wide_bins(res, idx, xw, b, fit, nz, cnt, cz, wide, lo_o, hi_o, tq, tv, n, work, what, band)
    if res is not out:
        out[...] = _to_dtype(res, out.dtype)
    _restore(out, flat, m)


def _rank_wide_bins(res, idx, xw, b, fit, nz, cnt, cz, wide, lo_o, hi_o, tq, tv, n, work, what, band) -> None:
    """Exact outputs for the valid pixels ``idx``, which fall in wide bins (see :func:`_match_band`).

    Arrays ``cnt, cz, wide, lo_o, hi_o`` are per bin ``nz``.
    """
    xs = xw[idx]
    _nonfinite(xs, what, band)  # NaN and infinities all land in the outlier bins
    wpos = np.flatnonzero(wide)  # the wide bins, as positions in nz
    p = np.searchsorted(nz[wpos], b[idx])  # each pixel's wide bin
    mins = np.full(wpos.size, np.inf, work)
    maxs = np.full(wpos.size, -np.inf, work)
    np.minimum.at(mins, p, xs)
    np.maximum.at(maxs, p, xs)
    # A bin holding a single distinct value (ties, quantised data) maps to its top rank's quantile.
    tied = mins == maxs
    one = tied[p]
    if one.any():
        res[idx[one]] = hi_o[wpos[p[one]]]
        if one.all():
            return
        many = ~one
        idx, xs, p = idx[many], xs[many], p[many]
    order = np.argsort(xs)  # sorted queries make the lookups below fast
    idx, xs, p = idx[order], xs[order], p[order]
    fs = xs if fit is None else xs[fit.valid[idx]]
    # rank = ranks below the bin + ranks inside it; searchsorted counts the pixels <= x among
    # those of the exactly-ranked bins, so subtract the ones of earlier such bins.
    below = np.cumsum(np.where(tied, 0, cnt[wpos]))
    rank = (cz[wpos] - below)[p] + np.searchsorted(fs, xs, side="right")
    q = wpos[p]
    res[idx] = np.clip(np.interp(rank / n, tq, tv), lo_o[q], hi_o[q])


def match_histograms(image, reference, *, channel_axis=0, image_mask=None, reference_mask=None,
                     method: str = "auto", n_bins: int = DEFAULT_N_BINS):
    """Match the histogram of each band of an image to a reference, ignoring masked pixels.

    The same transform as :func:`skimage.exposure.match_histograms`: every valid pixel is
    mapped to the reference value at its quantile (the fraction of valid pixels of its band
    that are less than or equal to it). Unlike scikit-image, pixels can be masked out (nodata,
    clouds) on either side, and float data takes a fast path that does not sort.

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        Image to transform, integer or float, e.g. ``(band, y, x)``.
    reference : ndarray or xarray.DataArray
        Image whose distribution is the target: same number of dimensions and bands, any
        spatial size (e.g. the LR image itself, to match its histogram, or its bicubic
        upsampling, see :func:`match_to_bicubic`), any numeric dtype.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0); a dimension name such as ``"band"`` for DataArrays;
        None for a single-band array of any shape.
    image_mask : ndarray of bool, optional
        **True where the pixel is valid.** Either the spatial shape (one mask for all bands) or
        the full shape of ``image``. Masked pixels are left unchanged (copied bit for bit) and
        do not count in the image's quantiles. A cloud mask (True = cloud) is passed as
        ``~cloud_mask``.
    reference_mask : ndarray of bool, optional
        True where the reference pixel is valid; masked reference pixels are excluded from the
        target distribution. Spatial or full shape of ``reference``.
    method : {"auto", "exact", "binned"}, optional
        How float data are ranked. ``"exact"`` sorts, as scikit-image does, and reproduces its
        result. ``"binned"`` counts pixels in a fine histogram instead of sorting them: bins
        over each band's robust range (0.2-99.8 % quantiles of a sample, widened by 5 %), two
        more for the outliers, and linear interpolation inside a bin. Pixels are ranked
        exactly wherever interpolation could move them by more than
        ``max(8 * bin width, robust range / 4096)`` of the reference (outliers, sparse tails,
        ties of quantised data), so the result stays within about ``3.1e-4 * (reference robust
        range)`` of the exact one (under 3e-4 for reflectance) while being many times faster.
        ``"auto"`` (default) bins bands with more than ``n_bins`` valid pixels and sorts
        smaller ones. Integer data with a value range up to 65,536 (or twice the pixel count)
        are always counted exactly with ``np.bincount``, as scikit-image does, whatever the
        method.
    n_bins : int, optional
        Number of reference bins of the binned path (default 32,768; the image gets a quarter
        as many, refined once if too many of its pixels would need exact ranking).

    Returns
    -------
    matched : ndarray or xarray.DataArray
        The matched image, with the dtype and shape of ``image`` (a DataArray with its
        coordinates, attributes and CRS if ``image`` is one). Integer results are rounded to
        the nearest integer and clipped to the dtype's range (scikit-image truncates, so the
        two may differ by 1).

    Raises
    ------
    InvalidInputError
        If the number of dimensions or bands differ, a mask has the wrong shape or dtype, a
        band has no valid pixel, or a valid pixel is NaN or infinite (mask it or fill it).

    See Also
    --------
    match_to_bicubic : HR matched towards the bicubic-upsampled LR.

    Notes
    -----
    The transform is monotone non-decreasing in the input within each band, and matching an
    image to itself returns it (exactly with ``method="exact"``, integer data or small bands;
    within the tolerance above when binned). Masked pixels may hold anything (NaN, a nodata
    value): they are neither read for the statistics nor changed.

    References
    ----------
    .. [1] R. C. Gonzalez and R. E. Woods, *Digital Image Processing*, 4th ed., section 3.3,
       "Histogram matching (specification)".
    .. [2] scikit-image, ``skimage.exposure.match_histograms``,
       https://scikit-image.org/docs/stable/api/skimage.exposure.html
    .. [3] M. Galar et al., "Super-resolution of Sentinel-2 images using convolutional neural
       networks and real ground truth data", Remote Sensing 12 (2020) 2941.
    """
    n_bins = _check_method(method, n_bins)
    img = _values(image, "image")
    ref = _values(reference, "reference")
    ax_i = _channel_axis(image, img, channel_axis, "image")
    ax_r = _channel_axis(reference, ref, channel_axis, "reference")
    if img.ndim != ref.ndim:
        raise InvalidInputError(f"image has {img.ndim} dimensions {img.shape} but reference has {ref.ndim} "
                                f"{ref.shape}; give both the same layout (e.g. (band, y, x))")
    img_b, ref_b = _bands(img, ax_i), _bands(ref, ax_r)
    if img_b.shape[0] != ref_b.shape[0]:
        raise InvalidInputError(
            f"image has {img_b.shape[0]} band(s) along channel_axis={channel_axis} but reference has "
            f"{ref_b.shape[0]}; select the same bands in both (e.g. reference.sel(band=image.band)), or "
            "set channel_axis=None for single-band arrays")
    if img.size == 0 or ref.size == 0:
        raise InvalidInputError("image and reference must not be empty")
    img_m = _masks(image_mask, img.shape, ax_i, img_b.shape[0], "image_mask")
    ref_m = _masks(reference_mask, ref.shape, ax_r, ref_b.shape[0], "reference_mask")
    out = np.empty(img_b.shape, img.dtype)
    for c in range(img_b.shape[0]):
        ref_q = _reference_quantiles(ref_b[c], ref_m[c], method, n_bins, c)
        _match_band(img_b[c], img_m[c], None, ref_q, method, n_bins, out[c], c)
    return _wrap(image, _unbands(out, img.shape, ax_i))


# --------------------------------------------------------------------------------------------
# bicubic upsampling and matching towards it
# --------------------------------------------------------------------------------------------

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


def _upsample_axis(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
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
    this the fast way to upsample many patches at once (:func:`eo_sr.metrics.upsample_bicubic`).

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
    factor = _check_factor(factor)
    idx, w = _cubic_taps(int(n), factor)
    out = np.zeros((n * factor, n))
    rows = np.broadcast_to(np.arange(n * factor), idx.shape)
    np.add.at(out, (rows, idx), w)  # edge taps clamp onto the same column: add, not assign
    return out


def _valid_axis(v: np.ndarray, factor: int, axis: int) -> np.ndarray:
    idx, w = _cubic_taps(v.shape[axis], factor)
    out = None
    for k in range(4):
        term = np.take(v, idx[k], axis=axis)
        used = (w[k] != 0).reshape([-1 if i == axis else 1 for i in range(v.ndim)])
        term = term | ~used
        out = term if out is None else out & term
    return out


def upsample_bicubic(image, factor: int, *, channel_axis=0):
    """Bicubic upsampling by an integer factor, identical to PyTorch's.

    Computes what ``torch.nn.functional.interpolate(x, scale_factor=factor, mode="bicubic",
    align_corners=False)`` computes (Keys' cubic convolution with a = -0.75, pixel centres
    aligned, edges replicated), in numpy, so the dataset steps need no torch. It is the
    bicubic baseline every SR model in eo-sr is compared against, so histogram matching and
    quality control use exactly the image the models have to beat.

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        Image with two spatial dimensions, e.g. ``(band, y, x)``; the last two non-channel
        axes are upsampled.
    factor : int
        Integer upsampling factor (>= 1).
    channel_axis : int, str or None, optional
        Axis of the bands (default 0), or None for a plain 2-D image.

    Returns
    -------
    upsampled : ndarray
        float32 for float32/float16/integer input of up to 16 bits, float64 otherwise; the
        spatial dimensions multiplied by ``factor``. Values may overshoot the input range
        slightly (a property of cubic convolution).

    Raises
    ------
    InvalidInputError
        If ``factor`` is not a positive integer or the image has not exactly two spatial
        dimensions.

    References
    ----------
    .. [1] R. Keys, "Cubic convolution interpolation for digital image processing", IEEE
       Transactions on Acoustics, Speech, and Signal Processing 29 (1981) 1153-1160.
    """
    factor = _check_factor(factor)
    arr = _values(image, "image")
    ax = _channel_axis(image, arr, channel_axis, "image")
    bands = arr[np.newaxis] if ax is None else np.moveaxis(arr, ax, 0)
    if bands.ndim != 3:
        raise InvalidInputError(f"upsample_bicubic needs exactly two spatial dimensions; got shape {arr.shape} "
                                f"with channel_axis={channel_axis}")
    out_dtype = np.float32 if arr.dtype.itemsize <= 2 or arr.dtype == np.float32 else np.float64
    up = _upsample_axis(_upsample_axis(bands.astype(np.float64), factor, 1), factor, 2).astype(out_dtype)
    return up[0] if ax is None else np.moveaxis(up, 0, ax)


def _check_factor(factor) -> int:
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise InvalidInputError(f"factor must be a positive integer (the HR/LR resolution ratio), not {factor!r}")
    return int(factor)


def match_to_bicubic(hr, lr, *, factor: int, hr_mask=None, lr_mask=None, channel_axis=0,
                     method: str = "auto", n_bins: int = DEFAULT_N_BINS):
    """Match an HR image towards the bicubic upsampling of the LR image of the same place.

    The multi-temporal SR seed "histogram-matches the Deimos ground truth target image to the
    bicubically upsampled image of the Sentinel-2 image closest in time": the HR target keeps
    its spatial detail but takes the LR sensor's radiometry, so the model learns detail, not a
    colour change. Both distributions are taken over the same pixels (valid in HR and in the
    upsampled LR), so a cloud in one image does not skew the match; the transform is then
    applied to every valid HR pixel.

    Parameters
    ----------
    hr : ndarray or xarray.DataArray
        HR image ``(band, y, x)`` (any channel axis), integer or float.
    lr : ndarray or xarray.DataArray
        LR image with the same bands and a spatial shape ``factor`` times smaller.
    factor : int
        HR/LR resolution ratio (an integer, as eo-sr's aligned grids guarantee).
    hr_mask, lr_mask : ndarray of bool, optional
        True where valid (not nodata, not cloud), spatial or full shape of their image. An
        upsampled pixel is valid only if every LR pixel its bicubic kernel uses is valid, so
        masked LR values (NaN or nodata) never leak into the reference.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0).
    method, n_bins :
        As in :func:`match_histograms`.

    Returns
    -------
    matched : ndarray or xarray.DataArray
        HR with its dtype and shape; pixels masked by ``hr_mask`` are unchanged.

    Raises
    ------
    InvalidInputError
        Band counts or shapes that do not fit the factor, masks of the wrong shape, no pixel
        valid in both images, or NaN in valid pixels.

    Notes
    -----
    The upsampling is :func:`upsample_bicubic`, numerically PyTorch's
    ``F.interpolate(mode="bicubic", align_corners=False)``, i.e. the bicubic baseline the SR
    models are trained and evaluated against; it runs in numpy, so no torch is needed here.

    References
    ----------
    .. [1] Sinergise, "Multi-temporal super-resolution on Sentinel-2 imagery" (2021), section
       "Histogram matching".
    """
    factor = _check_factor(factor)
    n_bins = _check_method(method, n_bins)
    h = _values(hr, "hr")
    low = _values(lr, "lr")
    ax_h = _channel_axis(hr, h, channel_axis, "hr")
    ax_l = _channel_axis(lr, low, channel_axis, "lr")
    sp_h, sp_l = _spatial(h.shape, ax_h), _spatial(low.shape, ax_l)
    if len(sp_h) != 2 or len(sp_l) != 2:
        raise InvalidInputError(f"hr {h.shape} and lr {low.shape} must each have two spatial dimensions "
                                f"besides channel_axis={channel_axis}")
    if tuple(s * factor for s in sp_l) != sp_h:
        raise InvalidInputError(
            f"hr has spatial shape {sp_h} but lr {sp_l} x factor {factor} = "
            f"{tuple(s * factor for s in sp_l)}; crop hr to the LR grid refined by the factor "
            "(eo_sr.grid aligns them) or fix the factor")
    hr_b, lr_b = _bands(h, ax_h), _bands(low, ax_l)
    if hr_b.shape[0] != lr_b.shape[0]:
        raise InvalidInputError(f"hr has {hr_b.shape[0]} band(s) but lr has {lr_b.shape[0]}; select the same bands")
    n_bands = hr_b.shape[0]
    hr_m = _masks(hr_mask, h.shape, ax_h, n_bands, "hr_mask")
    lr_m = _masks(lr_mask, low.shape, ax_l, n_bands, "lr_mask")
    lr_img = lr_b.reshape((n_bands,) + sp_l)
    out = np.empty(hr_b.shape, h.dtype)
    cache: dict = {}
    for c in range(n_bands):
        band = lr_img[c].astype(np.float64)
        if lr_m[c] is not None:
            band = np.where(lr_m[c].valid.reshape(sp_l), band, 0.0)
        up = _upsample_axis(_upsample_axis(band, factor, 0), factor, 1).astype(_work_dtype(low.dtype)).reshape(-1)
        key = (id(hr_m[c]), id(lr_m[c]))
        if key not in cache:  # the fitting mask: valid in HR and in the upsampled LR
            fit = np.ones(up.size, bool) if hr_m[c] is None else hr_m[c].valid.copy()
            if lr_m[c] is not None:
                v = lr_m[c].valid.reshape(sp_l)
                fit &= _valid_axis(_valid_axis(v, factor, 0), factor, 1).reshape(-1)
            cache[key] = _Mask.make(fit)
        fit_m = cache[key]
        ref_q = _reference_quantiles(up, fit_m, method, n_bins, c)
        # Without an LR mask the fitted pixels are the HR-valid ones: the plain path.
        _match_band(hr_b[c], hr_m[c], None if lr_m[c] is None else fit_m, ref_q, method, n_bins, out[c], c,
                    what="hr")
    return _wrap(hr, _unbands(out, h.shape, ax_h))


# --------------------------------------------------------------------------------------------
# robust normalisation
# --------------------------------------------------------------------------------------------

_NORM_METHODS = ("percentile", "median")


@dataclass(frozen=True)
class NormStats:
    """Per-band normalisation statistics: ``normalized = (x - offset) / scale``.

    Computed once (:func:`compute_norm_stats`) over a tile or a region, saved next to the
    dataset (:meth:`save`), and loaded again at inference (:meth:`load`) so that new images
    are scaled exactly as the training data were.

    Attributes
    ----------
    method : {"percentile", "median"}
        ``"percentile"``: offset = low percentile, scale = high - low percentile, so the bulk of
        the data maps to [0, 1]. ``"median"``: offset = 0, scale = median (robust to clouds and
        bright outliers, unlike mean and standard deviation).
    offset, scale : tuple of float
        One value per band.
    percentiles : tuple of float or None
        The (low, high) percentiles used, for ``"percentile"``.
    bands : tuple of str or None
        Band names, when known.
    n_pixels : int
        Number of valid pixels per band the statistics were computed from.
    """

    method: str
    offset: tuple
    scale: tuple
    percentiles: tuple | None = None
    bands: tuple | None = None
    n_pixels: int = 0

    def __post_init__(self):
        if self.method not in _NORM_METHODS:
            raise InvalidInputError(f"method must be one of {list(_NORM_METHODS)}, not {self.method!r}")
        offset = tuple(float(v) for v in self.offset)
        scale = tuple(float(v) for v in self.scale)
        if len(offset) != len(scale) or not offset:
            raise InvalidInputError(f"offset and scale need one value per band; got {len(offset)} and {len(scale)}")
        if not all(np.isfinite(offset)) or not all(np.isfinite(scale)) or min(scale) <= 0:
            raise InvalidInputError(f"offsets must be finite and scales finite and positive; got {offset}, {scale}")
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "scale", scale)
        if self.percentiles is not None:
            object.__setattr__(self, "percentiles", tuple(float(p) for p in self.percentiles))
        if self.bands is not None:
            bands = tuple(str(b) for b in self.bands)
            if len(bands) != len(offset):
                raise InvalidInputError(f"{len(bands)} band names for {len(offset)} bands")
            object.__setattr__(self, "bands", bands)

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self.offset)

    @property
    def low(self) -> tuple:
        """The values mapped to 0 (low percentiles, or zeros for the median method)."""
        return self.offset

    @property
    def high(self) -> tuple:
        """The values mapped to 1 (high percentiles, or the medians)."""
        return tuple(o + s for o, s in zip(self.offset, self.scale))

    def to_dict(self) -> dict:
        """A JSON-serialisable dictionary (see :meth:`from_dict`)."""
        return {"method": self.method, "offset": list(self.offset), "scale": list(self.scale),
                "percentiles": None if self.percentiles is None else list(self.percentiles),
                "bands": None if self.bands is None else list(self.bands), "n_pixels": int(self.n_pixels)}

    @classmethod
    def from_dict(cls, data: dict) -> NormStats:
        """Rebuild statistics from :meth:`to_dict`'s output."""
        try:
            return cls(method=data["method"], offset=tuple(data["offset"]), scale=tuple(data["scale"]),
                       percentiles=None if data.get("percentiles") is None else tuple(data["percentiles"]),
                       bands=None if data.get("bands") is None else tuple(data["bands"]),
                       n_pixels=int(data.get("n_pixels", 0)))
        except (KeyError, TypeError) as err:
            raise InvalidInputError(f"not a NormStats dictionary ({err!r}); it needs method, offset and scale") from None

    def save(self, path) -> Path:
        """Write the statistics as JSON (atomically: a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f, indent=2)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> NormStats:
        """Read statistics written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"{path} not found: compute the statistics with compute_norm_stats and save them")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)


def _band_names(obj, ax: int | None):
    if ax is None or not _is_dataarray(obj):
        return None
    dim = obj.dims[ax]
    if dim in obj.coords and obj.coords[dim].ndim == 1 and obj.coords[dim].dtype.kind in "OUS":
        return tuple(str(v) for v in obj.coords[dim].values)
    return None


def compute_norm_stats(images, *, method: str = "percentile", percentiles: Sequence[float] = (1, 99),
                       mask=None, channel_axis=0, max_samples: int = 1 << 24) -> NormStats:
    """Robust per-band normalisation statistics over one tile or many tiles (a region).

    Parameters
    ----------
    images : ndarray, xarray.DataArray, or iterable of them
        One image ``(band, y, x)``, or an iterable (list, generator) of images with the same
        bands and any spatial size; the statistics pool all their valid pixels.
    method : {"percentile", "median"}, optional
        ``"percentile"`` (default): map the low/high percentiles to 0/1. ``"median"``: divide by
        the median, which clouds and bright objects barely move (the seed's choice per tile).
    percentiles : (float, float), optional
        Low and high percentiles for ``"percentile"``, default the 1st and 99th.
    mask : ndarray of bool or iterable of them, optional
        True where valid (exclude clouds and nodata: the seed computed statistics on cloud-free
        pixels), spatial or full shape; one per image when ``images`` is an iterable.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0); None for single-band arrays.
    max_samples : int, optional
        At most this many values per band are kept in memory; beyond it, every second value
        is dropped (deterministically), which moves percentiles by far less than the
        differences between tiles. Default 2**24.

    Returns
    -------
    NormStats

    Raises
    ------
    InvalidInputError
        No image, band counts that differ, a band with no valid pixel, NaN among valid pixels,
        a constant band (the scale would be zero), or a median that is not positive.
    """
    if method not in _NORM_METHODS:
        raise InvalidInputError(f"method must be one of {list(_NORM_METHODS)}, not {method!r}")
    p = tuple(float(v) for v in percentiles)
    if method == "percentile" and not (len(p) == 2 and 0 <= p[0] < p[1] <= 100):
        raise InvalidInputError(f"percentiles must be two increasing values in [0, 100], not {percentiles!r}")
    single = hasattr(images, "shape")
    items = [images] if single else images
    if mask is None:
        masks: Iterable = iter(lambda: None, 0)
    elif single or hasattr(mask, "shape"):
        masks = [mask]
    else:
        masks = mask
    exhausted = object()
    kept: list[list[np.ndarray]] | None = None
    stride, total, names = 1, 0, None
    masks = iter(masks)
    for k, obj in enumerate(items):
        arr = _values(obj, f"image {k}")
        ax = _channel_axis(obj, arr, channel_axis, f"image {k}")
        bands = _bands(arr, ax)
        m = next(masks, exhausted)
        if m is exhausted:
            raise InvalidInputError(f"mask has fewer entries than images (none for image {k})")
        per_band = _masks(m, arr.shape, ax, bands.shape[0], "mask")
        if kept is None:
            kept, names = [[] for _ in range(bands.shape[0])], _band_names(obj, ax)
        elif bands.shape[0] != len(kept):
            raise InvalidInputError(f"image {k} has {bands.shape[0]} band(s) but the first image has {len(kept)}")
        for c in range(bands.shape[0]):
            vals = bands[c] if per_band[c] is None else bands[c][per_band[c].valid]
            if vals.dtype.kind == "f" and not np.isfinite(vals).all():
                raise InvalidInputError(
                    f"band {c} of image {k} has {int(np.count_nonzero(~np.isfinite(vals)))} NaN or infinite "
                    "valid pixel(s); pass mask=np.isfinite(image).all(axis=0) (and the cloud mask) to exclude them")
            kept[c].append(vals[::stride].copy() if stride > 1 else vals.copy())
        total += kept[0][-1].size
        while total > max_samples:
            stride *= 2
            for c in range(len(kept)):
                kept[c] = [a[::2] for a in kept[c]]
            total = sum(a.size for a in kept[0])
    if kept is None:
        raise InvalidInputError("no image given: pass an array or a non-empty iterable of arrays")
    offset, scale, n_pix = [], [], None
    for c, parts in enumerate(kept):
        vals = np.concatenate(parts)
        if vals.size == 0:
            raise InvalidInputError(f"band {c} has no valid pixel in any image (masks are True where valid)")
        n_pix = vals.size * stride if n_pix is None else min(n_pix, vals.size * stride)
        if method == "percentile":
            lo, hi = np.percentile(vals, p)
            if not hi > lo:
                raise InvalidInputError(f"band {c} is constant between the {p[0]}th and {p[1]}th percentiles "
                                        f"({lo}); widen the percentiles or use method='median'")
            offset.append(float(lo))
            scale.append(float(hi - lo))
        else:
            med = float(np.median(vals))
            if not med > 0:
                raise InvalidInputError(f"band {c} has median {med}; dividing by it makes no sense: "
                                        "use method='percentile'")
            offset.append(0.0)
            scale.append(med)
    return NormStats(method=method, offset=tuple(offset), scale=tuple(scale),
                     percentiles=p if method == "percentile" else None, bands=names, n_pixels=int(n_pix))


def _per_band(image, stats: NormStats, channel_axis):
    """The image's values and the shape that broadcasts per-band statistics over them."""
    arr = _values(image, "image")
    ax = _channel_axis(image, arr, channel_axis, "image")
    n = 1 if ax is None else arr.shape[ax]
    if not isinstance(stats, NormStats):
        raise InvalidInputError(f"stats must be a NormStats (see compute_norm_stats), not {type(stats).__name__}")
    if n != stats.n_bands:
        raise InvalidInputError(f"image has {n} band(s) along channel_axis but the statistics have "
                                f"{stats.n_bands}; use statistics computed on the same bands")
    shape = [1] * arr.ndim
    if ax is not None:
        shape[ax] = n
    return arr, shape


def normalize(image, stats: NormStats, *, clip: bool = True, channel_axis=0):
    """Scale an image with stored statistics: ``(x - offset) / scale`` per band, as float32.

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        Image with the bands the statistics were computed on.
    stats : NormStats
        From :func:`compute_norm_stats` or :meth:`NormStats.load`.
    clip : bool, optional
        Clip to [0, 1] (default True); only for ``"percentile"`` statistics, whose 0 and 1 are
        the low and high percentiles. Median-normalised values are not clipped.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0).

    Returns
    -------
    normalized : ndarray or xarray.DataArray
        float32, same shape; NaN stays NaN.

    Raises
    ------
    InvalidInputError
        If the number of bands differs from the statistics'.
    """
    arr, shape = _per_band(image, stats, channel_axis)
    off = np.asarray(stats.offset, np.float32).reshape(shape)
    inv = (1.0 / np.asarray(stats.scale, np.float64)).astype(np.float32).reshape(shape)
    out = arr.astype(np.float32)
    out -= off
    out *= inv
    if clip and stats.method == "percentile":
        np.clip(out, 0.0, 1.0, out=out)
    return _wrap(image, out)


def denormalize(image, stats: NormStats, *, channel_axis=0, dtype=np.float32):
    """Undo :func:`normalize`: ``x * scale + offset`` per band (e.g. for model outputs).

    Parameters
    ----------
    image : ndarray or xarray.DataArray
        Normalised image (e.g. an SR model's output).
    stats : NormStats
        The statistics the inputs were normalised with.
    channel_axis : int, str or None, optional
        Axis of the bands (default 0).
    dtype : dtype, optional
        Output dtype (default float32); integer dtypes are rounded and clipped to their range
        (e.g. ``np.uint16`` for digital numbers).

    Returns
    -------
    restored : ndarray or xarray.DataArray
        Values in the units of the statistics.

    Raises
    ------
    InvalidInputError
        If the number of bands differs from the statistics'.
    """
    arr, shape = _per_band(image, stats, channel_axis)
    dtype = np.dtype(dtype)
    work = np.float64 if dtype.kind in "iu" or dtype == np.float64 else np.float32
    out = arr.astype(work)
    out *= np.asarray(stats.scale, work).reshape(shape)
    out += np.asarray(stats.offset, work).reshape(shape)
    return _wrap(image, _to_dtype(out, dtype))


# --------------------------------------------------------------------------------------------
# clouds and shadows
# --------------------------------------------------------------------------------------------

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

    factor = _check_factor(factor)
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
        ``~cloud`` as a validity mask to :func:`match_histograms` or
        :func:`compute_norm_stats`.

    Raises
    ------
    InvalidInputError
        Bad blue index, non-positive scale, or negative dilation.
    """
    if not scale > 0:
        raise InvalidInputError(f"scale must be positive, not {scale!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, (int, np.integer)) or dilation < 0:
        raise InvalidInputError(f"dilation must be a non-negative number of pixels, not {dilation!r}")
    arr = _values(image, "image")
    ax = _channel_axis(image, arr, channel_axis, "image")
    if ax is None:
        blue, blue_obj = arr, image
    else:
        if isinstance(blue_index, str):
            names = _band_names(image, ax)
            if names is None or blue_index not in names:
                raise InvalidInputError(f"no band named {blue_index!r}; bands are {names}; pass an integer index")
            blue_index = names.index(blue_index)
        if not -arr.shape[ax] <= int(blue_index) < arr.shape[ax]:
            raise InvalidInputError(f"blue_index={blue_index} but the image has {arr.shape[ax]} band(s)")
        blue = np.take(arr, int(blue_index), axis=ax)
        blue_obj = image.isel({image.dims[ax]: int(blue_index)}, drop=True) if _is_dataarray(image) else None
    with np.errstate(invalid="ignore"):
        cloud = blue > (threshold - offset) / scale
    if dilation:
        from scipy import ndimage

        cloud = ndimage.binary_dilation(cloud, structure=np.ones((3,) * cloud.ndim, bool), iterations=int(dilation))
    if blue_obj is not None and _is_dataarray(blue_obj):
        return blue_obj.copy(data=cloud).rename("cloud_mask")
    return cloud


def flag_shadow_neighbours(patch_table, *, cloud_column: str = "cloud_fraction", threshold: float = 0.1,
                           group="acquisition_id", row: str = "row", col: str = "col", connectivity: int = 8):
    """Flag patches next to a cloudy patch of the same acquisition as likely shadowed.

    Shadows fall near clouds, at a distance set by the cloud height and the sun. The seed
    searched "for EOPatches containing observations with more than 10% cloud coverage, and
    marked as containing shadows the neighbouring EOPatches' observations from the same time":
    many true positives, some false ones, which a large dataset can afford.

    Parameters
    ----------
    patch_table : pandas.DataFrame
        One row per patch and acquisition, with the acquisition id, the patch's row and column
        on the patch grid, and its cloud fraction.
    cloud_column : str, optional
        Column of cloud fractions in [0, 1] (default ``"cloud_fraction"``); NaN counts as clear.
    threshold : float, optional
        A patch is cloudy when its cloud fraction is above this (default 0.1, the seed's 10%).
    group : str or list of str, optional
        Column(s) identifying one acquisition (default ``"acquisition_id"``); only patches of the
        same acquisition are neighbours.
    row, col : str, optional
        Integer patch-grid coordinates (default ``"row"``, ``"col"``).
    connectivity : {8, 4}, optional
        8 (default) includes diagonal neighbours; 4 only edge neighbours.

    Returns
    -------
    flags : pandas.Series of bool
        Indexed like ``patch_table``, named ``"shadow_suspect"``: True for patches adjacent to a
        cloudy patch of the same acquisition. A cloudy patch is flagged only if it, too, has a
        cloudy neighbour (filter cloudy patches on ``cloud_column`` itself).

    Raises
    ------
    InvalidInputError
        Missing columns, non-integer grid coordinates, or a bad connectivity.
    """
    import pandas as pd

    if connectivity not in (4, 8):
        raise InvalidInputError(f"connectivity must be 4 or 8, not {connectivity!r}")
    groups = [group] if isinstance(group, str) else list(group)
    needed = [*groups, row, col, cloud_column]
    missing = [c for c in needed if c not in patch_table.columns]
    if missing:
        raise InvalidInputError(f"patch_table lacks column(s) {missing}; it has {list(patch_table.columns)} "
                                "(set group=, row=, col=, cloud_column= to the names it uses)")
    keys = patch_table[[*groups, row, col]].reset_index(drop=True)
    for c in (row, col):
        v = pd.to_numeric(keys[c], errors="coerce")
        if v.isna().any() or not np.array_equal(v, np.round(v)):
            raise InvalidInputError(f"column {c!r} must hold integer patch-grid coordinates")
        keys[c] = v.astype(np.int64)
    cloudy = keys[(pd.to_numeric(patch_table[cloud_column], errors="coerce") > threshold).to_numpy()]
    if connectivity == 8:
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    else:
        offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    shifted = pd.concat([cloudy.assign(**{row: cloudy[row] + dr, col: cloudy[col] + dc}) for dr, dc in offsets],
                        ignore_index=True).drop_duplicates()
    flags = pd.MultiIndex.from_frame(keys).isin(pd.MultiIndex.from_frame(shifted)) if len(shifted) \
        else np.zeros(len(keys), bool)
    return pd.Series(np.asarray(flags, bool), index=patch_table.index, name="shadow_suspect")
