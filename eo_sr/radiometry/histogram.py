"""Mask-aware histogram matching, exact on integer data and fast on float reflectance.

- :func:`match_histograms` matches each band of an image to a reference distribution while
  ignoring masked pixels (nodata, clouds);
- :func:`match_to_bicubic` matches HR towards the bicubic-upsampled LR of the same place and
  time, as the multi-temporal SR seed does.

Masks follow one convention throughout: **True means valid** (use the pixel).
"""
from __future__ import annotations

import numpy as np

import eo_sr._arrays as arrays
from eo_sr.bicubic import check_factor, upsample_axis, valid_axis
from eo_sr.errors import InvalidInputError
from eo_sr.radiometry.relation import band_line

__all__ = ["DEFAULT_N_BINS", "match_histograms", "match_to_bicubic"]


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
# small helpers: counts, bins, dtypes
# --------------------------------------------------------------------------------------------

def _fold(flat: np.ndarray, m: arrays.Mask) -> tuple:
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


def _fill(flat: np.ndarray, m: arrays.Mask | None) -> np.ndarray:
    """``flat`` with masked pixels replaced by the first valid value (so min/max ignore them)."""
    if m is None:
        return flat
    out = flat.copy()
    np.copyto(out, flat[m.first], where=m.invalid)
    return out


def _restore(out: np.ndarray, flat: np.ndarray, m: arrays.Mask | None) -> None:
    """Put the original values back into the masked pixels of ``out``."""
    if m is None:
        return
    if (flat.size - m.n) * 16 < flat.size and m.masked is not None:
        out[m.masked] = flat[m.masked]
    else:
        np.copyto(out, flat, where=m.invalid, casting="unsafe")


def _count(b: np.ndarray, m: arrays.Mask | None, minlength: int) -> np.ndarray:
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


def _check_method(method: str, n_bins) -> int:
    if method not in _METHODS:
        raise InvalidInputError(f"method must be one of {list(_METHODS)}, not {method!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 16 <= n_bins <= 1 << 24:
        raise InvalidInputError(f"n_bins must be an integer between 16 and 2**24, not {n_bins!r}")
    return int(n_bins)


def _work_dtype(dtype: np.dtype):
    return np.float32 if dtype.kind == "f" and dtype.itemsize <= 4 else np.float64


def _bins(x: np.ndarray, m: arrays.Mask | None, n_bins: int, work):
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


def _bin_index(xw: np.ndarray, base, scale, n_bins: int, m: arrays.Mask | None = None) -> np.ndarray:
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


def _reference_quantiles(flat: np.ndarray, m: arrays.Mask | None, method: str, n_bins: int, band: int):
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


#: Beyond these quantiles of the fitted pixels, unfitted pixels may follow the sensors' line.
TAIL_QUANTILES = (0.005, 0.995)


def _match_band(flat: np.ndarray, m: arrays.Mask | None, fit: arrays.Mask | None, ref: tuple,
                method: str, n_bins: int, out: np.ndarray, band: int, what: str = "image",
                line: tuple[float, float] | None = None) -> None:
    """Match one flattened band into ``out``; unfitted pixels beyond the fit follow ``line``.

    Quantile mapping fitted on some pixels has no answer for the others that lie beyond
    them: it gives them all the reference's extreme, so haze that was left out of the fit
    would come out no brighter than the brightest clear field, and a shadow no darker than
    the darkest, and quality control could no longer see them. So a pixel that was not
    fitted and lies beyond the fitted pixels' :data:`TAIL_QUANTILES` takes ``gain * x +
    offset`` (the sensors' relation, :func:`eo_sr.radiometry.relation.band_line`) wherever
    that lies further out than the quantile map. Fitted pixels keep the exact quantile map.
    """
    _match_fitted(flat, m, fit, ref, method, n_bins, out, band, what)
    if fit is None or line is None:
        return
    work = _work_dtype(flat.dtype)
    sa, sb = np.quantile(flat[fit.valid].astype(work, copy=False), TAIL_QUANTILES)
    unfitted = fit.invalid if m is None else m.valid & fit.invalid
    gain, offset = line
    for beyond, outer in ((unfitted & (flat < sa), np.minimum), (unfitted & (flat > sb), np.maximum)):
        if beyond.any():
            mapped = gain * flat[beyond].astype(work) + offset
            out[beyond] = arrays.to_dtype(outer(mapped, out[beyond]), out.dtype)


def _match_fitted(flat: np.ndarray, m: arrays.Mask | None, fit: arrays.Mask | None, ref: tuple,
                  method: str, n_bins: int, out: np.ndarray, band: int, what: str = "image") -> None:
    """Match one flattened band into ``out`` (same dtype as ``flat``) by quantile mapping.

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
            table[:size] = arrays.to_dtype(lut, out.dtype)
            table[top:] = np.arange(size, dtype=out.dtype)
            np.take(table, idx, out=out)
            return
        if _small_unsigned(flat.dtype):
            # the table spans every pixel's value, not only the fitted ones': a pixel brighter than
            # all of them (a cloud outside the fit) must still find its entry
            lo, size, idx = 0, int(flat.max()) + 1, flat.astype(np.intp)
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
            np.take(arrays.to_dtype(lut, out.dtype), idx, out=out)
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
            out[...] = arrays.to_dtype(res, out.dtype)
        else:
            out[...] = flat
            out[m.valid] = arrays.to_dtype(res, out.dtype)
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
        out[...] = arrays.to_dtype(res, out.dtype)
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
    img = arrays.values(image, "image")
    ref = arrays.values(reference, "reference")
    ax_i = arrays.channel_axis(image, img, channel_axis, "image")
    ax_r = arrays.channel_axis(reference, ref, channel_axis, "reference")
    if img.ndim != ref.ndim:
        raise InvalidInputError(f"image has {img.ndim} dimensions {img.shape} but reference has {ref.ndim} "
                                f"{ref.shape}; give both the same layout (e.g. (band, y, x))")
    img_b, ref_b = arrays.bands(img, ax_i), arrays.bands(ref, ax_r)
    if img_b.shape[0] != ref_b.shape[0]:
        raise InvalidInputError(
            f"image has {img_b.shape[0]} band(s) along channel_axis={channel_axis} but reference has "
            f"{ref_b.shape[0]}; select the same bands in both (e.g. reference.sel(band=image.band)), or "
            "set channel_axis=None for single-band arrays")
    if img.size == 0 or ref.size == 0:
        raise InvalidInputError("image and reference must not be empty")
    img_m = arrays.masks(image_mask, img.shape, ax_i, img_b.shape[0], "image_mask")
    ref_m = arrays.masks(reference_mask, ref.shape, ax_r, ref_b.shape[0], "reference_mask")
    out = np.empty(img_b.shape, img.dtype)
    for c in range(img_b.shape[0]):
        ref_q = _reference_quantiles(ref_b[c], ref_m[c], method, n_bins, c)
        _match_band(img_b[c], img_m[c], None, ref_q, method, n_bins, out[c], c)
    return arrays.wrap(image, arrays.unbands(out, img.shape, ax_i))


# --------------------------------------------------------------------------------------------
# matching towards the bicubic upsampling
# --------------------------------------------------------------------------------------------

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
    The upsampling is :func:`eo_sr.bicubic.upsample_bicubic`'s, numerically PyTorch's
    ``F.interpolate(mode="bicubic", align_corners=False)``, i.e. the bicubic baseline the SR
    models are trained and evaluated against; it runs in numpy, so no torch is needed here.

    References
    ----------
    .. [1] Sinergise, "Multi-temporal super-resolution on Sentinel-2 imagery" (2021), section
       "Histogram matching".
    """
    factor = check_factor(factor)
    n_bins = _check_method(method, n_bins)
    h = arrays.values(hr, "hr")
    low = arrays.values(lr, "lr")
    ax_h = arrays.channel_axis(hr, h, channel_axis, "hr")
    ax_l = arrays.channel_axis(lr, low, channel_axis, "lr")
    sp_h, sp_l = arrays.spatial(h.shape, ax_h), arrays.spatial(low.shape, ax_l)
    if len(sp_h) != 2 or len(sp_l) != 2:
        raise InvalidInputError(f"hr {h.shape} and lr {low.shape} must each have two spatial dimensions "
                                f"besides channel_axis={channel_axis}")
    if tuple(s * factor for s in sp_l) != sp_h:
        raise InvalidInputError(
            f"hr has spatial shape {sp_h} but lr {sp_l} x factor {factor} = "
            f"{tuple(s * factor for s in sp_l)}; crop hr to the LR grid refined by the factor "
            "(eo_sr.grid aligns them) or fix the factor")
    hr_b, lr_b = arrays.bands(h, ax_h), arrays.bands(low, ax_l)
    if hr_b.shape[0] != lr_b.shape[0]:
        raise InvalidInputError(f"hr has {hr_b.shape[0]} band(s) but lr has {lr_b.shape[0]}; select the same bands")
    n_bands = hr_b.shape[0]
    hr_m = arrays.masks(hr_mask, h.shape, ax_h, n_bands, "hr_mask")
    lr_m = arrays.masks(lr_mask, low.shape, ax_l, n_bands, "lr_mask")
    lr_img = lr_b.reshape((n_bands,) + sp_l)
    out = np.empty(hr_b.shape, h.dtype)
    cache: dict = {}
    for c in range(n_bands):
        band = lr_img[c].astype(np.float64)
        if lr_m[c] is not None:
            band = np.where(lr_m[c].valid.reshape(sp_l), band, 0.0)
        up = upsample_axis(upsample_axis(band, factor, 0), factor, 1).astype(_work_dtype(low.dtype)).reshape(-1)
        key = (id(hr_m[c]), id(lr_m[c]))
        if key not in cache:  # the fitting mask: valid in HR and in the upsampled LR
            fit = np.ones(up.size, bool) if hr_m[c] is None else hr_m[c].valid.copy()
            if lr_m[c] is not None:
                v = lr_m[c].valid.reshape(sp_l)
                fit &= valid_axis(valid_axis(v, factor, 0), factor, 1).reshape(-1)
            cache[key] = arrays.Mask.make(fit)
        fit_m = cache[key]
        ref_q = _reference_quantiles(up, fit_m, method, n_bins, c)
        line = None
        if lr_m[c] is not None and fit_m is not None:
            lr_fit = fit_m.valid.reshape(sp_l[0], factor, sp_l[1], factor).all(axis=(1, 3))
            line = band_line(hr_b[c].reshape(sp_h), lr_img[c], factor=factor, valid=lr_fit)
        # Without an LR mask the fitted pixels are the HR-valid ones: the plain path.
        _match_band(hr_b[c], hr_m[c], None if lr_m[c] is None else fit_m, ref_q, method, n_bins, out[c], c,
                    what="hr", line=line)
    return arrays.wrap(hr, arrays.unbands(out, h.shape, ax_h))

