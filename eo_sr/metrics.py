"""Image quality metrics for many patch pairs at once: MSE, PSNR, SSIM.

Inputs are arrays ``(..., B, H, W)`` (a batch of B-band images); results are
``(..., B)`` per band, or averaged over bands with ``reduce="mean"``. Batches are
computed with torch convolutions (CPU or GPU), so 20,000 pairs take seconds where a
loop over :func:`skimage.metrics.structural_similarity` takes minutes.

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

from eo_sr.errors import InvalidInputError

K1, K2 = 0.01, 0.03


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
        return np.nanmean(values, axis=-1) if values.ndim else values
    raise InvalidInputError(f"reduce must be 'none' (per band) or 'mean', got {reduce!r}")


def _empty(count: np.ndarray, empty: str):
    if (count == 0).any():
        if empty == "raise":
            where = np.argwhere(count == 0)[:5].tolist()
            raise InvalidInputError(f"{int((count == 0).sum())} image(s)/band(s) have no valid pixel (first at "
                                    f"{where}); drop them, or pass empty='nan'")
        if empty != "nan":
            raise InvalidInputError(f"empty must be 'raise' or 'nan', got {empty!r}")


def mse(a, b, *, mask=None, reduce: str = "none", empty: str = "raise") -> np.ndarray:
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

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``.
    """
    a, b, mask = _check_pair(a, b, mask)
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is None:
        return _reduce(diff.mean(axis=(-2, -1)), reduce)
    count = mask.sum(axis=(-2, -1))
    _empty(count, empty)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, (diff * mask).sum(axis=(-2, -1)) / np.maximum(count, 1), np.nan)
    return _reduce(out, reduce)


def psnr(a, b, *, data_range: float, mask=None, reduce: str = "none", max_psnr: float = 100.0,
         empty: str = "raise") -> np.ndarray:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range**2 / MSE)``.

    Identical images would give infinity; the result is capped at ``max_psnr`` so
    averages and plots stay finite. With ``reduce="mean"`` the per-band PSNRs are
    averaged (not the MSEs).

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask, reduce, empty
        As in :func:`mse`.
    max_psnr : float
        Cap in dB.

    Returns
    -------
    ndarray of float64
    """
    data_range = _check_range(data_range)
    err = mse(a, b, mask=mask, empty=empty)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10 * np.log10(data_range**2 / err)
    out = np.where(np.isnan(err), np.nan, np.minimum(out, max_psnr))
    return _reduce(out, reduce)


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


def _banded(weights, n: int, device):
    """The matrix of a 'valid' 1-D correlation with ``weights`` on ``n`` samples."""
    import torch

    size = len(weights)
    out = torch.zeros(n - size + 1, n, dtype=torch.float32, device=device)
    w = torch.as_tensor(np.asarray(weights, np.float32), device=device)
    for i in range(n - size + 1):
        out[i, i:i + size] = w
    return out


def ssim(a, b, *, data_range: float, mask=None, reduce: str = "none", gaussian: bool = True,
         sigma: float = 1.5, win_size: int | None = None, sample_covariance: bool = False,
         batch_size: int = 32, device: str = "cpu", empty: str = "raise", return_map: bool = False):
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
    batch_size : int
        Images per torch call.
    device : str
        ``"cpu"`` or ``"cuda"``.
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
    """
    import torch

    a, b, mask = _check_pair(a, b, mask)
    data_range = _check_range(data_range)
    w1, size = _window(gaussian, win_size, sigma)
    H, W = a.shape[-2:]
    if H < size or W < size:
        raise InvalidInputError(f"images of {H}x{W} pixels are smaller than the {size}x{size} SSIM window")
    lead = a.shape[:-2]
    n = int(np.prod(lead)) if lead else 1
    fa = a.reshape(n, H, W)
    fb = b.reshape(n, H, W)
    fm = mask.reshape(n, H, W) if mask is not None else None
    # A separable window is two banded matrix products; BLAS runs them far faster than
    # single-channel convolutions do on a CPU.
    rows = _banded(w1, H, device)  # (H - size + 1, H)
    cols = _banded(w1, W, device).T.contiguous()  # (W, W - size + 1)
    box_r, box_c = _banded(np.ones(size), H, device), _banded(np.ones(size), W, device).T.contiguous()
    cov_norm = size * size / (size * size - 1) if sample_covariance else 1.0
    scale = 1.0 / data_range  # compute on [0, 1]-scaled data: float32 keeps its precision
    c1s, c2s = K1**2, K2**2

    def filt(x):
        return rows @ x @ cols

    values = np.empty(n, dtype=np.float64)
    maps = np.empty((n, H - size + 1, W - size + 1), np.float32) if return_map else None
    counts = np.empty(n, dtype=np.int64)
    with torch.no_grad():
        buf = torch.empty((4 * min(batch_size, n), H, W), dtype=torch.float32, device=device)
        for s in range(0, n, batch_size):
            k = min(batch_size, n - s)
            x, y, sq, xy = buf[:4 * k].split(k)
            x.copy_(torch.as_tensor(np.asarray(fa[s:s + k], np.float32))).mul_(scale)
            y.copy_(torch.as_tensor(np.asarray(fb[s:s + k], np.float32))).mul_(scale)
            torch.mul(x, x, out=sq).addcmul_(y, y)
            torch.mul(x, y, out=xy)
            mx, my, esq, exy = filt(buf[:4 * k]).split(k)
            # in place, to keep memory traffic low; the denominator needs only var(x) + var(y)
            mxy = mx * my
            den1 = mx.mul_(mx).add_(my.mul_(my)).add_(c1s)  # mx^2 + my^2 + C1
            den2 = esq.sub_(den1).add_(c1s).mul_(cov_norm).add_(c2s)  # var(x) + var(y) + C2
            num2 = exy.sub_(mxy).mul_(2 * cov_norm).add_(c2s)  # 2 cov(x, y) + C2
            smap = mxy.mul_(2).add_(c1s).mul_(num2).div_(den1.mul_(den2))
            if fm is not None:
                valid = torch.as_tensor(np.asarray(fm[s:s + batch_size], np.float32), device=device)
                full = (box_r @ valid @ box_c) > size * size - 0.5
                cnt = full.sum(dim=(1, 2))
                tot = (smap * full).sum(dim=(1, 2), dtype=torch.float64)
            else:
                cnt = torch.full((k,), smap.shape[-1] * smap.shape[-2], device=device)
                tot = smap.sum(dim=(1, 2), dtype=torch.float64)
            counts[s:s + batch_size] = cnt.cpu().numpy()
            values[s:s + batch_size] = (tot / cnt.clamp(min=1)).cpu().numpy()
            if return_map:
                maps[s:s + batch_size] = smap.cpu().numpy()
    _empty(counts, empty)
    values[counts == 0] = np.nan
    out = _reduce(values.reshape(lead), reduce)
    if return_map:
        return out, maps.reshape(*lead, H - size + 1, W - size + 1)
    return out


def upsample_bicubic(lr, factor: int, *, batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """Bicubic upsampling of ``(..., B, h, w)`` by an integer factor (torch, a = -0.75,
    half-pixel centres as in OpenCV and PyTorch), float32."""
    import torch
    import torch.nn.functional as F

    lr = np.asarray(lr, dtype=np.float32)
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise InvalidInputError(f"factor must be a positive integer, got {factor!r}")
    factor = int(factor)
    lead, (h, w) = lr.shape[:-3], lr.shape[-2:]
    bands = lr.shape[-3]
    flat = lr.reshape(-1, bands, h, w)
    out = np.empty((flat.shape[0], bands, h * factor, w * factor), np.float32)
    with torch.no_grad():
        for s in range(0, flat.shape[0], batch_size):
            x = torch.as_tensor(flat[s:s + batch_size], device=device)
            out[s:s + batch_size] = F.interpolate(x, scale_factor=factor, mode="bicubic",
                                                  align_corners=False).cpu().numpy()
    return out.reshape(*lead, bands, h * factor, w * factor)
