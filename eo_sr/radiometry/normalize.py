"""Robust normalisation: per-band statistics computed once, stored as JSON, reused at inference.

:class:`NormStats`, :func:`compute_norm_stats`, :func:`normalize` and :func:`denormalize`
rescale bands robustly (median, or 1st/99th percentile) with statistics computed once over a
tile or a region.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import eo_sr._arrays as arrays
from eo_sr.errors import InvalidInputError, NotFoundError

__all__ = ["NormStats", "compute_norm_stats", "denormalize", "normalize"]


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
            raise NotFoundError(f"{path} not found: compute the statistics with compute_norm_stats and save them")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)


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
        arr = arrays.values(obj, f"image {k}")
        ax = arrays.channel_axis(obj, arr, channel_axis, f"image {k}")
        bands = arrays.bands(arr, ax)
        m = next(masks, exhausted)
        if m is exhausted:
            raise InvalidInputError(f"mask has fewer entries than images (none for image {k})")
        per_band = arrays.masks(m, arr.shape, ax, bands.shape[0], "mask")
        if kept is None:
            kept, names = [[] for _ in range(bands.shape[0])], arrays.band_names(obj, ax)
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
    arr = arrays.values(image, "image")
    ax = arrays.channel_axis(image, arr, channel_axis, "image")
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
    return arrays.wrap(image, out)


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
    return arrays.wrap(image, arrays.to_dtype(out, dtype))

