"""Image quality metrics for many patch pairs at once: MSE, PSNR, SSIM.

Inputs are arrays ``(..., B, H, W)`` (a batch of B-band images); results are
``(..., B)`` per band, or averaged over bands with ``reduce="mean"``. Batches are
computed on the CPU with torch: the Gaussian window's sums are blocked matrix products
(BLAS), so 20,000 pairs take seconds where a loop over
:func:`skimage.metrics.structural_similarity` takes minutes.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, population covariances, and the mean of the SSIM map over the
pixels whose window lies inside the image (as scikit-image crops). scikit-image's
other convention (a uniform 7x7 window with sample covariance, its default when
``gaussian_weights=False``) is ``gaussian=False, win_size=7, sample_covariance=True``.

``data_range`` is always explicit: reflectance in [0, 1] has range 1, uint16 DN 10000
or 65535 — guessing it from the dtype is how PSNRs become incomparable.

References
----------
.. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions
       on Image Processing 13(4):600-612, 2004.
"""
from __future__ import annotations

import numpy as np

from eo_sr._arrays import Workspace, chunk_size
from eo_sr.bicubic import bicubic_matrix, check_factor, upsample_bicubic  # noqa: F401 (re-exported)
from eo_sr.errors import InvalidInputError

K1, K2 = 0.01, 0.03


def _check_values(images: dict, *, data_range: float | None = None) -> None:
    """Refuse NaN/infinity, and (with ``data_range``) values far beyond the range, in one pass.

    NaN would spread through every sum it enters, masked or not; scores of DN images with
    ``data_range=1`` come out near -40 dB, a unit mistake rather than a score. One min and one
    max per array answer both (NaN propagates through them), with no temporary copy.
    """
    for name, x in images.items():
        if not x.size:
            continue
        top = max(float(x.max()), -float(x.min()))
        if not np.isfinite(top):
            bad = ~np.isfinite(x)
            raise InvalidInputError(
                f"image {name} holds {int(bad.sum())} NaN or infinite value(s) (first at "
                f"{np.argwhere(bad)[0].tolist()}): replace them (np.nan_to_num) and leave those pixels out with "
                "mask= (True where valid), so the score is not NaN")
        if data_range is not None and top > 2 * data_range:
            raise InvalidInputError(
                f"the images reach {top:g}, far beyond data_range={data_range:g}: are they digital numbers? "
                "Pass the range of their units (e.g. data_range=10000 for Sentinel-2 L2A DN) or convert them to "
                "reflectance first (eo_sr.loading harmonises)")


def _check_pair(a, b, mask):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InvalidInputError(f"the two images differ in shape: {a.shape} vs {b.shape}; "
                                "upsample the LR image to the HR grid first")
    if a.ndim < 2:
        raise InvalidInputError(f"images need at least 2 dimensions (H, W), got shape {a.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        try:
            mask = np.broadcast_to(mask if mask.ndim == a.ndim else np.expand_dims(mask, -3), a.shape)
        except ValueError:
            raise InvalidInputError(f"mask shape {np.shape(mask)} does not fit images of shape {a.shape}; give "
                                    "(..., H, W) or (..., B, H, W)") from None
    return a, b, mask


def _check_range(data_range):
    if data_range is None or not np.isfinite(data_range) or data_range <= 0:
        raise InvalidInputError(f"data_range must be a positive number (1.0 for reflectance, 10000 for "
                                f"Sentinel-2 DN), got {data_range!r}")
    return float(data_range)


def _reduce(values: np.ndarray, reduce: str):
    if reduce == "none":
        return values
    if reduce == "mean":
        # NaN (a band with no valid pixel, empty="nan") stays NaN: averaging over the
        # other bands would report a score that no band set has.
        return np.mean(values, axis=-1) if values.ndim else values
    raise InvalidInputError(f"reduce must be 'none' (per band) or 'mean', got {reduce!r}")


def _empty(count: np.ndarray, empty: str):
    if (count == 0).any():
        if empty == "raise":
            where = np.argwhere(count == 0)[:5].tolist()
            raise InvalidInputError(f"{int((count == 0).sum())} image(s)/band(s) have no valid pixel (first at "
                                    f"{where}); drop them, or pass empty='nan'")
        if empty != "nan":
            raise InvalidInputError(f"empty must be 'raise' or 'nan', got {empty!r}")


def _float_dtype(*arrays):
    """float32 unless an input needs float64 to be exact (float64, or integers beyond 2**24)."""
    import torch

    wide = any(a.dtype == np.float64 or (a.dtype.kind in "iu" and a.dtype.itemsize > 2) for a in arrays)
    return torch.float64 if wide else torch.float32


def _as_torch(x, dtype):
    """A tensor that may share the array's memory: never modify it in place."""
    import torch

    x = np.asarray(x)
    if x.dtype.kind not in "fb" or x.dtype == np.float16:  # torch lacks most unsigned types
        x = x.astype(np.float64 if dtype == torch.float64 else np.float32)
    return torch.as_tensor(x).to(dtype)


def mse(a, b, *, mask=None, reduce: str = "none", empty: str = "raise", batch_size: int | None = None) -> np.ndarray:
    """Mean squared error per image and band over valid pixels.

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
    mask : array_like of bool, optional
        True where valid, shape ``(..., H, W)`` or ``(..., B, H, W)``.
    reduce : {"none", "mean"}
        Per band, or averaged over bands.
    empty : {"raise", "nan"}
        What to do for an image with no valid pixel.
    batch_size : int, optional
        Images per torch call (default: about 16 MB of them).

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``.

    Notes
    -----
    Differences are taken in float32 (float64 for float64 or wide integer input) and
    their squares summed in float64.
    """
    a, b, mask = _check_pair(a, b, mask)
    _check_values({"a": a, "b": b})
    return _reduce(_mse(a, b, mask, empty=empty, batch_size=batch_size), reduce)


def _mse(a, b, mask, *, empty: str, batch_size: int | None) -> np.ndarray:
    """Per image and band, on inputs :func:`mse` has checked."""
    import torch

    lead, (H, W) = a.shape[:-2], a.shape[-2:]
    fa, fb = a.reshape(-1, H, W), b.reshape(-1, H, W)
    fm = None if mask is None else mask.reshape(-1, H, W)
    dtype = _float_dtype(a, b)
    n = fa.shape[0]
    sums = np.empty(n)
    counts = np.full(n, H * W, np.int64)
    step = chunk_size(batch_size, 8 * H * W)
    work = Workspace()
    with torch.no_grad():
        for s in range(0, n, step):
            k = min(step, n - s)
            d = torch.sub(_as_torch(fa[s:s + k], dtype), _as_torch(fb[s:s + k], dtype),
                          out=work("diff", (k, H, W), dtype))
            d.mul_(d)
            if fm is not None:
                m = torch.tensor(fm[s:s + k])  # masks are often read-only broadcasts
                d.mul_(m)
                counts[s:s + k] = m.sum(dim=(1, 2)).numpy()
            sums[s:s + k] = d.sum(dim=(1, 2), dtype=torch.float64).numpy()
    return _mean_or_nan(sums, counts, empty).reshape(lead)


def _mean_or_nan(sums, counts, empty: str):
    _empty(counts, empty)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def psnr(a, b, *, data_range: float, mask=None, reduce: str = "none", max_psnr: float = 100.0,
         empty: str = "raise", batch_size: int | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range**2 / MSE)``.

    Identical images would give infinity; the result is capped at ``max_psnr`` so
    averages and plots stay finite. With ``reduce="mean"`` the per-band PSNRs are
    averaged (not the MSEs).

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask, reduce, empty, batch_size
        As in :func:`mse`.
    max_psnr : float
        Cap in dB.

    Returns
    -------
    ndarray of float64
    """
    data_range = _check_range(data_range)
    a, b, mask = _check_pair(a, b, mask)
    _check_values({"a": a, "b": b}, data_range=data_range)
    err = _mse(a, b, mask, empty=empty, batch_size=batch_size)
    return _reduce(psnr_from_mse(err, data_range=data_range, max_psnr=max_psnr), reduce)


def psnr_from_mse(err, *, data_range: float, max_psnr: float = 100.0) -> np.ndarray:
    """PSNR in dB from mean squared errors (NaN stays NaN, zero error gives ``max_psnr``)."""
    data_range = _check_range(data_range)
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10 * np.log10(data_range**2 / err)
    return np.where(np.isnan(err), np.nan, np.minimum(out, max_psnr))


def _window(gaussian: bool, win_size: int | None, sigma: float):
    if gaussian:
        radius = int(3.5 * sigma + 0.5)  # scikit-image: truncate=3.5
        size = 2 * radius + 1 if win_size is None else win_size
        x = np.arange(size) - (size - 1) / 2
        w = np.exp(-(x**2) / (2 * sigma**2))
    else:
        size = 7 if win_size is None else win_size
        w = np.ones(size)
    if size < 3 or size % 2 == 0:
        raise InvalidInputError(f"win_size must be odd and >= 3, got {size}")
    return w / w.sum(), size


#: Output rows (and columns) per matrix product of the windowed sums: 16 outputs read
#: 16 + size - 1 inputs, ~2.4x the multiply-adds of a direct 11-tap filter where the full
#: banded matrix of a 128-pixel side costs ~11x, and the products stay large enough for BLAS.
_BLOCK = 16


def _spans(n: int, size: int):
    """(first output, number of outputs) of each block of a 'valid' window over n samples."""
    n_out = n - size + 1
    return [(o, min(_BLOCK, n_out - o)) for o in range(0, n_out, _BLOCK)]


def _block_matrix(weights):
    """Rows of a 'valid' 1-D correlation with ``weights`` for ``_BLOCK`` outputs at a time."""
    import torch

    size = len(weights)
    out = np.zeros((_BLOCK, _BLOCK + size - 1), np.float32)
    for i in range(_BLOCK):
        out[i, i:i + size] = weights
    return torch.from_numpy(out)


class _SsimPlan:
    """SSIM of many ``H x W`` image pairs, chunk by chunk, in reused buffers.

    A chunk of ``k`` pairs lies rows-first in a *stack* ``(H, 4, k, Wp)``: x, y,
    x^2 + y^2 and xy, zero-padded to ``Wp`` columns so that the horizontal pass runs in
    whole blocks. The vertical pass of the windowed means is then one large matrix
    product per block of output rows, and the horizontal pass one per block of output
    columns, written straight into its slot of the result.
    """

    def __init__(self, H: int, W: int, *, gaussian: bool, sigma: float, win_size: int | None,
                 sample_covariance: bool, batch_size: int | None):
        w1, size = _window(gaussian, win_size, sigma)
        if H < size or W < size:
            raise InvalidInputError(f"images of {H}x{W} pixels are smaller than the {size}x{size} SSIM window")
        self.H, self.W, self.size = H, W, size
        self.Hv, self.Wv = H - size + 1, W - size + 1
        self.n_cols = len(_spans(W, size))
        self.Wp = self.n_cols * _BLOCK + size - 1
        self.gauss, self.box = _block_matrix(w1), _block_matrix(np.ones(size))
        self.cov_norm = size * size / (size * size - 1) if sample_covariance else 1.0
        self.step = chunk_size(batch_size, 16 * H * self.Wp)
        self.work = Workspace()

    def stack(self, k: int):
        """The stack for ``k`` pairs, its padding zeroed; fill x = ``[:, 0, :, :W]``, y = ``[:, 1]``."""
        stack = self.work("stack", (self.H, 4, k, self.Wp))
        stack[..., self.W:] = 0
        return stack

    def _window_sums(self, stack, block, name: str):
        """'Valid' windowed sums of ``stack`` ``(H, ..., Wp)`` as column blocks ``(n_cols, Hv, ..., _BLOCK)``."""
        import torch

        mid = stack.shape[1:-1]
        rows = self.work(name + "_rows", (self.Hv, *mid, self.Wp))
        flat, out = stack.reshape(self.H, -1), rows.view(self.Hv, -1)
        for o, k in _spans(self.H, self.size):
            torch.mm(block[:k, :k + self.size - 1], flat[o:o + k + self.size - 1], out=out[o:o + k])
        rows = rows.view(-1, self.Wp)
        cols = self.work(name + "_cols", (self.n_cols, rows.shape[0], _BLOCK))
        for j in range(self.n_cols):
            torch.mm(rows[:, j * _BLOCK:(j + 1) * _BLOCK + self.size - 1], block.T, out=cols[j])
        return cols.view(self.n_cols, self.Hv, *mid, _BLOCK)

    def valid_windows(self, valid):
        """Which windows lie wholly inside the valid pixels ``(H, k, W)`` (bool): ``(n_cols, Hv, k, _BLOCK)``."""
        padded = self.work("valid", (self.H, valid.shape[1], self.Wp))
        padded[..., self.W:] = 0  # the padding is never valid
        padded[..., :self.W] = valid
        return self._window_sums(padded, self.box, "box") > self.size * self.size - 0.5

    def maps(self, stack, full=None):
        """SSIM maps ``(n_cols, Hv, k, _BLOCK)`` of a filled stack, zero outside the valid windows."""
        import torch

        c1, c2, cn = K1**2, K2**2, self.cov_norm
        mx, my, esq, exy = self._window_sums(stack, self.gauss, "gauss").unbind(2)
        # few, in-place operations: the maps are large and memory traffic is the cost
        num1 = torch.mul(mx, my, out=self.work("num1", mx.shape)).mul_(2).add_(c1)  # 2 mx my + C1
        num2 = exy.mul_(2 * cn).add_(c2).addcmul_(mx, my, value=-2 * cn)  # 2 cov(x, y) + C2
        den1 = mx.mul_(mx).addcmul_(my, my).add_(c1)  # mx^2 + my^2 + C1
        den2 = esq.sub_(den1).add_(c1).mul_(cn).add_(c2)  # var(x) + var(y) + C2
        smap = num1.mul_(num2).div_(den1.mul_(den2))
        if full is None:
            smap[-1, ..., self.Wv - (self.n_cols - 1) * _BLOCK:] = 0
        else:
            smap.mul_(full)
        return smap

    def image_maps(self, smap) -> np.ndarray:
        """The maps of :meth:`maps` as images ``(k, Hv, Wv)``."""
        k = smap.shape[2]
        return smap.permute(2, 1, 0, 3).reshape(k, self.Hv, -1)[..., :self.Wv].numpy()


def ssim(a, b, *, data_range: float, mask=None, reduce: str = "none", gaussian: bool = True,
         sigma: float = 1.5, win_size: int | None = None, sample_covariance: bool = False,
         batch_size: int | None = None, empty: str = "raise", return_map: bool = False):
    """Structural similarity (Wang et al. 2004) per image and band, batched.

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask : array_like of bool, optional
        True where valid; the SSIM map is averaged over the pixels whose whole
        window is valid.
    reduce : {"none", "mean"}
        Per band, or averaged over bands.
    gaussian : bool
        Gaussian window (Wang; default) or uniform window (scikit-image's default).
    sigma : float
        Gaussian sigma in pixels.
    win_size : int, optional
        Window side; default 11 for the Gaussian, 7 for the uniform window.
    sample_covariance : bool
        Divide by N-1 (scikit-image's default for the uniform window) instead of N.
    batch_size : int, optional
        Images per torch call (default: about 16 MB of working set).
    empty : {"raise", "nan"}
        What to do for an image with no valid window.
    return_map : bool
        Also return the SSIM maps ``(..., B, H - w + 1, W - w + 1)``.

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``; and the maps if asked.

    Raises
    ------
    InvalidInputError
        Shapes differ, images smaller than the window, bad ``data_range``, or an
        image without a valid window (unless ``empty="nan"``).

    Notes
    -----
    The windowed means are computed in float32 on data scaled to [0, 1] by
    ``data_range``; results agree with scikit-image to about 1e-6.
    """
    import torch

    a, b, mask = _check_pair(a, b, mask)
    data_range = _check_range(data_range)
    _check_values({"a": a, "b": b}, data_range=data_range)
    H, W = a.shape[-2:]
    plan = _SsimPlan(H, W, gaussian=gaussian, sigma=sigma, win_size=win_size,
                     sample_covariance=sample_covariance, batch_size=batch_size)
    lead = a.shape[:-2]
    fa, fb = a.reshape(-1, H, W), b.reshape(-1, H, W)
    fm = mask.reshape(-1, H, W) if mask is not None else None
    n = fa.shape[0]
    sums = np.empty(n)
    counts = np.full(n, plan.Hv * plan.Wv, dtype=np.int64)
    maps = np.empty((n, plan.Hv, plan.Wv), np.float32) if return_map else None
    with torch.no_grad():
        for s in range(0, n, plan.step):
            k = min(plan.step, n - s)
            stack = plan.stack(k)
            for slot, images in ((0, fa), (1, fb)):  # scaled to [0, 1]: float32 keeps its precision
                stack[:, slot, :, :W].copy_(_as_torch(images[s:s + k], torch.float32).permute(1, 0, 2))
                stack[:, slot].mul_(1.0 / data_range)
            full = None
            if fm is not None:
                full = plan.valid_windows(torch.tensor(fm[s:s + k]).permute(1, 0, 2))
                counts[s:s + k] = full.sum(dim=(0, 1, 3)).numpy()
            _fill_products(stack)
            smap = plan.maps(stack, full)
            sums[s:s + k] = smap.sum(dim=(0, 1, 3), dtype=torch.float64).numpy()
            if return_map:
                maps[s:s + k] = plan.image_maps(smap)
    out = _reduce(_mean_or_nan(sums, counts, empty).reshape(lead), reduce)
    if return_map:
        return out, maps.reshape(*lead, plan.Hv, plan.Wv)
    return out


def _fill_products(stack):
    """x^2 + y^2 and xy into slots 2 and 3 of an SSIM stack."""
    import torch

    x, y, sq, xy = stack.unbind(1)
    torch.mul(x, x, out=sq).addcmul_(y, y)
    torch.mul(x, y, out=xy)


def bicubic_scores(hr, lr, *, factor: int, data_range: float, mask=None, reduce: str = "none",
                   max_psnr: float = 100.0, empty: str = "raise", batch_size: int | None = None,
                   **ssim_options) -> dict[str, np.ndarray]:
    """MSE, PSNR and SSIM of HR images against the bicubic upsampling of their LR images.

    What quality control asks of every patch pair, computed in one pass: each chunk of
    LR images is upsampled (:func:`eo_sr.bicubic.upsample_bicubic`) straight into the
    buffers the SSIM works in, so the upsampled images are never stored. The numbers equal
    ``mse``/``psnr``/``ssim(hr, upsample_bicubic(lr, factor), ...)`` to float32 precision.

    Parameters
    ----------
    hr : array_like, shape (..., B, H, W)
    lr : array_like, shape (..., B, H / factor, W / factor)
    factor : int
        Integer HR/LR resolution ratio.
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask : array_like of bool, optional
        True where valid at HR resolution, ``(..., H, W)`` or ``(..., B, H, W)``.
    reduce, max_psnr, empty, batch_size
        As in :func:`psnr` and :func:`ssim`.
    **ssim_options
        ``gaussian``, ``sigma``, ``win_size``, ``sample_covariance`` of :func:`ssim`.

    Returns
    -------
    dict
        ``"mse"``, ``"psnr"``, ``"ssim"``: float64 arrays ``(..., B)`` or ``(...)``.

    Raises
    ------
    InvalidInputError
        LR and HR shapes that do not fit ``factor``, and the errors of :func:`ssim`.
    """
    import torch

    hr = np.asarray(hr)
    lr = np.asarray(lr)
    factor = check_factor(factor)
    if lr.ndim < 2 or hr.shape[:-2] != lr.shape[:-2] or hr.shape[-2:] != (lr.shape[-2] * factor,
                                                                           lr.shape[-1] * factor):
        raise InvalidInputError(f"LR {lr.shape} and HR {hr.shape} do not fit factor {factor}: HR must be LR's "
                                "shape with the last two sizes multiplied by the factor")
    hr, _, mask = _check_pair(hr, hr, mask)
    data_range = _check_range(data_range)
    _check_values({"hr": hr, "lr": lr}, data_range=data_range)
    (H, W), (h, w) = hr.shape[-2:], lr.shape[-2:]
    plan = _SsimPlan(H, W, batch_size=batch_size, **{"gaussian": True, "sigma": 1.5, "win_size": None,
                                                      "sample_covariance": False, **ssim_options})
    lead = hr.shape[:-2]
    fh, fl = hr.reshape(-1, H, W), lr.reshape(-1, h, w)
    fm = mask.reshape(-1, H, W) if mask is not None else None
    n = fh.shape[0]
    rows = torch.from_numpy(bicubic_matrix(h, factor).astype(np.float32))
    cols = np.zeros((w, plan.Wp), np.float32)  # zero beyond W: the stack's padding
    cols[:, :W] = bicubic_matrix(w, factor).T / data_range
    cols = torch.from_numpy(cols)
    sq_sums, sums = np.empty(n), np.empty(n)
    counts = np.full(n, H * W, np.int64)
    win_counts = np.full(n, plan.Hv * plan.Wv, np.int64)
    with torch.no_grad():
        for s in range(0, n, plan.step):
            k = min(plan.step, n - s)
            stack = plan.stack(k)
            stack[:, 0, :, :W].copy_(_as_torch(fh[s:s + k], torch.float32).permute(1, 0, 2))
            stack[:, 0].mul_(1.0 / data_range)
            low = plan.work("lr", (h, k, w))
            low.copy_(_as_torch(fl[s:s + k], torch.float32).permute(1, 0, 2))
            wide = torch.mm(low.view(h * k, w), cols, out=plan.work("wide", (h * k, plan.Wp)))
            torch.mm(rows, wide.view(h, k * plan.Wp), out=stack[:, 1].flatten(1))
            diff = torch.sub(stack[:, 0], stack[:, 1], out=plan.work("diff", (H, k, plan.Wp))).square_()
            full = None
            if fm is not None:
                valid = torch.tensor(fm[s:s + k]).permute(1, 0, 2)
                diff[..., :W].mul_(valid)
                counts[s:s + k] = valid.sum(dim=(0, 2)).numpy()
                full = plan.valid_windows(valid)
                win_counts[s:s + k] = full.sum(dim=(0, 1, 3)).numpy()
            sq_sums[s:s + k] = diff.sum(dim=(0, 2), dtype=torch.float64).numpy()
            _fill_products(stack)
            sums[s:s + k] = plan.maps(stack, full).sum(dim=(0, 1, 3), dtype=torch.float64).numpy()
    err = _mean_or_nan(sq_sums, counts, empty) * data_range**2
    out = {"mse": err, "psnr": psnr_from_mse(err, data_range=data_range, max_psnr=max_psnr),
           "ssim": _mean_or_nan(sums, win_counts, empty)}
    return {key: _reduce(v.reshape(lead), reduce) for key, v in out.items()}


def check_images(a, b, *, mask=None, data_range: float | None = None, names=("a", "b")):
    """Validate an image pair as every metric of this module does, for metrics built on them.

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
    mask : array_like of bool, optional
        True where valid, ``(..., H, W)`` or ``(..., B, H, W)``.
    data_range : float, optional
        When given: a positive number, and the images must not reach far beyond it.
    names : tuple of str
        How the error messages call the two images.

    Returns
    -------
    a, b : ndarray
        The images as arrays (not copied).
    mask : ndarray of bool or None
        Broadcast to the images' shape.

    Raises
    ------
    InvalidInputError
        Shapes that differ, a mask that does not fit, NaN or infinite values, a bad
        ``data_range`` or values far beyond it.
    """
    if data_range is not None:
        data_range = _check_range(data_range)
    a, b, mask = _check_pair(a, b, mask)
    _check_values(dict(zip(names, (a, b))), data_range=data_range)
    return a, b, mask
