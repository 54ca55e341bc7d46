"""Scores of super-resolved (SR) images against the HR truth and the LR input, and a tidy table of them.

Step 9 of the pipeline: prove that a model beats bicubic, patch by patch, honestly.

- Against the HR truth: :func:`eo_sr.metrics.psnr` and :func:`eo_sr.metrics.ssim`; :func:`cpsnr` and
  :func:`cssim`, the same after the best integer shift and a brightness bias are forgiven (the
  PROBA-V challenge's rule: HR and LR never line up to the pixel); the spectral angle :func:`sam`;
  :func:`ergas`; and opensr-test's :func:`correctness` (does the new detail match the HR, stay at
  the LR, or come from nowhere?).
- Against the LR input: :func:`consistency` (the SR degraded back with the LR sensor's PSF vs the LR
  image) and :func:`band_mean_difference` (did the model keep the LR radiometry?).
- Per patch: :func:`evaluate_patches` builds one row per patch and model; :func:`summarise` gives the
  mean, spread, gain and :func:`win_rate` over the baseline per model, QC cluster or land-cover class.
- A trained model on a store's split: :func:`evaluate_checkpoint` (what ``eo-sr evaluate`` runs) and
  :func:`report`, its figures as JSON.

Inputs are arrays ``(..., B, H, W)`` (LR ``(..., B, H / f, W / f)``), masks are True where valid, and
``data_range`` is explicit, as in :mod:`eo_sr.metrics`.

References
----------
.. [1] M. Märtens, D. Izzo, A. Krzic and D. Cox, "Super-resolution of PROBA-V images using
       convolutional neural networks", Astrodynamics 3:387-402, 2019 (cPSNR).
.. [2] L. Wald, "Quality of high resolution synthesised images: is there a simple criterion?",
       Proc. Fusion of Earth Data, Sophia Antipolis, 2000, pp. 99-103 (ERGAS).
.. [3] C. Aybar, D. Montero, S. Donike, F. Kalaitzis and L. Gómez-Chova, "A comprehensive benchmark
       for optical remote sensing image super-resolution", IEEE Geoscience and Remote Sensing
       Letters 21, 2024; https://github.com/ESAOpenSR/opensr-test (consistency and correctness).
"""
from __future__ import annotations

import numbers

import numpy as np

from eo_sr._arrays import chunk_size
from eo_sr.bicubic import check_factor, upsample_bicubic
from eo_sr.errors import InvalidInputError
from eo_sr.metrics import check_images, mse, psnr, psnr_from_mse, ssim
from eo_sr.radiometry.degrade import degrade

__all__ = ["HIGHER_IS_BETTER", "REPORTED", "band_mean_difference", "consistency", "correctness", "cpsnr", "cssim",
           "ergas", "evaluate_checkpoint", "evaluate_patches", "report", "sam", "summarise", "win_rate"]

#: The per-patch scores of :func:`evaluate_patches`, and whether a higher value is better.
HIGHER_IS_BETTER = {
    "psnr": True, "cpsnr": True, "ssim": True, "cssim": True, "sam": False, "ergas": False,
    "consistency_psnr": True, "consistency_mae": False, "band_mean_difference": False,
    "improvement": True, "omission": False, "hallucination": False,
}


# --------------------------------------------------------------------------------------------
# checks shared by the metrics
# --------------------------------------------------------------------------------------------

def _reduce(values: np.ndarray, reduce: str) -> np.ndarray:
    if reduce == "none":
        return values
    if reduce == "mean":
        return values.mean(axis=-1)  # NaN stays NaN, as in eo_sr.metrics
    raise InvalidInputError(f"reduce must be 'none' (per band) or 'mean', got {reduce!r}")


def _check_empty(empty: str, n_empty: int, what: str) -> None:
    if empty not in ("raise", "nan"):
        raise InvalidInputError(f"empty must be 'raise' or 'nan', got {empty!r}")
    if n_empty and empty == "raise":
        raise InvalidInputError(f"{n_empty} {what} have no valid pixel; drop them, or pass empty='nan'")


def _masked_mean(values: np.ndarray, valid: np.ndarray | None, *, empty: str, what: str) -> np.ndarray:
    """Mean over the last two axes of the valid values (NaN, or an error, where none is valid)."""
    if valid is None:
        return values.mean(axis=(-2, -1), dtype=np.float64)
    count = valid.sum(axis=(-2, -1))
    _check_empty(empty, int((count == 0).sum()), what)
    total = np.where(valid, values, 0).sum(axis=(-2, -1), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _check_lr(hr: np.ndarray, lr, factor: int, names=("sr", "lr")) -> np.ndarray:
    lr = np.asarray(lr)
    if lr.ndim < 2 or hr.shape[:-2] != lr.shape[:-2] or hr.shape[-2:] != (lr.shape[-2] * factor,
                                                                           lr.shape[-1] * factor):
        raise InvalidInputError(f"{names[1]} {lr.shape} and {names[0]} {hr.shape} do not fit factor {factor}: "
                                f"{names[0]} must be {names[1]}'s shape with the last two sizes multiplied by it")
    return lr


def _check_shift(max_shift, shape: tuple) -> int:
    if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0:
        raise InvalidInputError(f"max_shift is a number of HR pixels (an integer >= 0, 3 in the PROBA-V "
                                f"challenge), got {max_shift!r}")
    if min(shape[-2:]) <= 2 * max_shift:
        raise InvalidInputError(f"images of {shape[-2]}x{shape[-1]} pixels leave nothing once a border of "
                                f"max_shift={max_shift} pixels is cropped: use a smaller max_shift")
    return int(max_shift)


def _shifts(m: int) -> np.ndarray:
    """Every integer shift (dy, dx) in [-m, m]^2, (0, 0) first so that ties keep the unshifted score."""
    r = np.arange(-m, m + 1)
    grid = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    return np.concatenate([[[0, 0]], grid[(grid != 0).any(axis=1)]])


def _crops(shape: tuple, m: int, dy: int, dx: int):
    """The SR crop (a border of ``m`` cut away) and the HR crop under it when SR is displaced by (dy, dx)."""
    H, W = shape[-2:]
    sr = (..., slice(m, H - m), slice(m, W - m))
    hr = (..., slice(m - dy, H - m - dy), slice(m - dx, W - m - dx))
    return sr, hr


def _best(scores: np.ndarray, shifts: np.ndarray, per_band: bool):
    """Best of ``scores`` (S, ..., B) over the shifts, per band or with one shift per image."""
    filled = np.where(np.isnan(scores), -np.inf, scores)
    if per_band:
        pick = filled.argmax(axis=0)
    else:  # one shift per image: a misregistration moves every band alike
        with np.errstate(invalid="ignore"):
            pick = filled.mean(axis=-1).argmax(axis=0)
        pick = np.broadcast_to(pick[..., None], scores.shape[1:])
    best = np.take_along_axis(scores, pick[None], axis=0)[0]
    return best, shifts[pick if per_band else pick[..., 0]]


# --------------------------------------------------------------------------------------------
# cPSNR and cSSIM: the best shift, brightness bias forgiven
# --------------------------------------------------------------------------------------------

def cpsnr(sr, hr, *, data_range: float, mask=None, max_shift: int = 3, bias: bool = True, per_band: bool = False,
          reduce: str = "none", max_psnr: float = 100.0, empty: str = "raise", return_shift: bool = False,
          batch_size: int | None = None):
    """Clear PSNR (PROBA-V challenge): PSNR after the best integer shift and a brightness bias are forgiven.

    A border of ``max_shift`` HR pixels is cut from SR; the crop is compared with the HR crop under it
    for every integer displacement ``(dy, dx)`` in ``[-max_shift, max_shift]^2``. For each
    displacement the mean difference ``b = mean(HR - SR)`` over the valid pixels is removed (the
    bias), the PSNR of what is left is computed, ``10 log10(data_range^2 / mean((HR - SR - b)^2))``,
    and the best displacement wins.

    Parameters
    ----------
    sr, hr : array_like, shape (..., B, H, W)
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask : array_like of bool, optional
        True where HR is valid (clear), ``(..., H, W)`` or ``(..., B, H, W)``; it moves with HR.
    max_shift : int
        Largest displacement in HR pixels (3 in the PROBA-V challenge); 0 compares the whole images.
    bias : bool
        Remove the mean difference (default True); False keeps it (a shift-tolerant plain PSNR).
    per_band : bool
        Choose the displacement for each band (as the single-band PROBA-V challenge did) instead of
        one per image, the one with the best mean of the band PSNRs (default).
    reduce : {"none", "mean"}
        Per band, or averaged over bands.
    max_psnr : float
        Cap in dB (a perfect match would be infinite).
    empty : {"raise", "nan"}
        What to do for an image or band with no valid pixel under any displacement.
    return_shift : bool
        Also return the chosen displacements, ``(..., 2)`` (``(..., B, 2)`` with ``per_band``):
        ``(dy, dx)`` such that ``sr[..., y, x]`` is compared with ``hr[..., y - dy, x - dx]``, so
        ``sr = np.roll(hr, (dy, dx), axis=(-2, -1))`` gives ``(dy, dx)``.
    batch_size : int, optional
        Images (bands) per chunk (default: about 16 MB of float64 differences).

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``; and the shifts if asked.

    Raises
    ------
    InvalidInputError
        Shapes that differ, NaN or infinite values, a bad ``data_range`` or ``max_shift``, images too
        small for the border, or an image without valid pixels (unless ``empty="nan"``).

    Notes
    -----
    The challenge's *score* is different: it divides a baseline's cPSNR by the SR's (lower is
    better) and works on images scaled to [0, 1]. This function returns the cPSNR itself in dB, which
    can be compared with :func:`eo_sr.metrics.psnr`; the baseline comparison is :func:`win_rate` or a
    gain. With ``max_shift=0`` and ``bias=False`` it equals :func:`eo_sr.metrics.psnr`; with
    ``max_shift > 0`` the scores are over the cropped area only. HighRes-Net's implementation
    (ServiceNow/HighRes-net, ``shift_cPSNR``) uses the same crop, shifts and bias.

    References
    ----------
    .. [1] M. Märtens, D. Izzo, A. Krzic and D. Cox, "Super-resolution of PROBA-V images using
           convolutional neural networks", Astrodynamics 3:387-402, 2019.
    .. [2] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
           satellite imagery", arXiv:2002.06460, 2020.
    """
    sr, hr, mask = check_images(sr, hr, mask=mask, data_range=data_range, names=("sr", "hr"))
    m = _check_shift(max_shift, sr.shape)
    shifts = _shifts(m)
    lead, (H, W) = sr.shape[:-2], sr.shape[-2:]
    fs, fh = sr.reshape(-1, H, W), hr.reshape(-1, H, W)
    fm = None if mask is None else mask.reshape(-1, H, W)
    n = fs.shape[0]
    errors = np.full((len(shifts), n), np.nan)
    step = chunk_size(batch_size, 8 * H * W)
    for s in range(0, n, step):
        chunk = slice(s, s + step)
        for i, (dy, dx) in enumerate(shifts):
            at_sr, at_hr = _crops((H, W), m, dy, dx)
            d = fh[chunk][at_hr].astype(np.float64) - fs[chunk][at_sr]
            valid = None if fm is None else fm[chunk][at_hr]
            if bias:  # two passes: exact for a pure offset, where E[d^2] - E[d]^2 would cancel badly
                with np.errstate(invalid="ignore"):
                    d -= _masked_mean(d, valid, empty="nan", what="")[:, None, None]
            errors[i, chunk] = _masked_mean(d * d, valid, empty="nan", what="")
    scores = psnr_from_mse(errors, data_range=data_range, max_psnr=max_psnr).reshape(len(shifts), *lead)
    best, chosen = _best(scores, shifts, per_band)
    _check_empty(empty, int(np.isnan(best).sum()), "image(s)/band(s)")
    best = _reduce(best, reduce)
    return (best, chosen) if return_shift else best


def cssim(sr, hr, *, data_range: float, mask=None, max_shift: int = 3, bias: bool = True, per_band: bool = False,
          shift=None, reduce: str = "none", empty: str = "raise", return_shift: bool = False, **ssim_options):
    """SSIM after the best integer shift and a brightness bias are forgiven: :func:`cpsnr`'s search on SSIM.

    For each displacement the SR crop is moved by the mean difference ``mean(HR - SR)`` over the valid
    pixels and :func:`eo_sr.metrics.ssim` compares it with the HR crop; the displacement with the
    best SSIM wins (the bias matters: SSIM's luminance term punishes it). The search costs one SSIM
    per displacement (49 for ``max_shift=3``); ``shift`` (e.g. the displacements :func:`cpsnr` chose)
    skips it at the cost of one.

    Parameters
    ----------
    sr, hr : array_like, shape (..., B, H, W)
    data_range : float
        Value range of the data (1.0 for reflectance).
    mask, max_shift, bias, per_band, reduce, empty, return_shift
        As in :func:`cpsnr`; SSIM is averaged over the windows that lie wholly on valid pixels.
    shift : array_like of int, optional
        The displacements to score instead of searching: ``(..., 2)``, or ``(..., B, 2)`` with
        ``per_band``, as ``cpsnr(..., return_shift=True)`` returns them; each within ``max_shift``.
    **ssim_options
        ``gaussian``, ``sigma``, ``win_size``, ``sample_covariance``, ``batch_size`` of
        :func:`eo_sr.metrics.ssim`.

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``; and the shifts if asked.

    Raises
    ------
    InvalidInputError
        As :func:`cpsnr`, crops smaller than the SSIM window, and shifts of the wrong shape or beyond
        ``max_shift``.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from
           error visibility to structural similarity", IEEE Transactions on Image Processing
           13(4):600-612, 2004.
    .. [2] J. Cornebise, I. Oršolić and F. Kalaitzis, "Open high-resolution satellite imagery: the
           WorldStrat dataset", NeurIPS Datasets and Benchmarks, 2022 (shift-tolerant scores).
    """
    sr, hr, mask = check_images(sr, hr, mask=mask, data_range=data_range, names=("sr", "hr"))
    m = _check_shift(max_shift, sr.shape)
    lead, (H, W) = sr.shape[:-2], sr.shape[-2:]
    fs = (sr if sr.dtype.kind == "f" else sr.astype(np.float64)).reshape(-1, H, W)
    fh = hr.reshape(-1, H, W)
    fm = None if mask is None else mask.reshape(-1, H, W)

    def score(dy, dx, which=slice(None)):
        """SSIM of the images ``which`` (flattened bands) with SR displaced by (dy, dx), bias removed."""
        at_sr, at_hr = _crops((H, W), m, dy, dx)
        moved, truth = fs[which][at_sr], fh[which][at_hr]
        valid = None if fm is None else fm[which][at_hr]
        if bias:
            offset = _masked_mean(truth.astype(np.float64) - moved, valid, empty="nan", what="")
            moved = moved + np.nan_to_num(offset).astype(moved.dtype)[:, None, None]
        return ssim(moved, truth, data_range=data_range, mask=valid, empty="nan", **ssim_options)

    if shift is None:
        shifts = _shifts(m)
        best, chosen = _best(np.stack([score(dy, dx) for dy, dx in shifts]).reshape(len(shifts), *lead),
                             shifts, per_band)
    else:
        chosen = np.asarray(shift)
        want = (*lead, 2) if per_band else (*lead[:-1], 2)
        if chosen.shape != want or chosen.dtype.kind not in "iu" or (np.abs(chosen) > m).any():
            raise InvalidInputError(f"shift must be integer displacements of shape {want} within max_shift={m} "
                                    f"(as cpsnr(..., return_shift=True) gives), got shape {chosen.shape}")
        per_image = (chosen if per_band else np.broadcast_to(chosen[..., None, :], (*lead, 2))).reshape(-1, 2)
        flat = np.empty(len(per_image))
        for dy, dx in np.unique(per_image, axis=0):  # one SSIM call per distinct displacement
            which = np.flatnonzero((per_image == (dy, dx)).all(axis=1))
            flat[which] = score(dy, dx, which)
        best = flat.reshape(lead)
    _check_empty(empty, int(np.isnan(best).sum()), "image(s)/band(s)")
    best = _reduce(best, reduce)
    return (best, chosen) if return_shift else best


# --------------------------------------------------------------------------------------------
# spectra: SAM and ERGAS
# --------------------------------------------------------------------------------------------

def sam(a, b, *, mask=None, degrees: bool = False, empty: str = "raise", return_map: bool = False,
        batch_size: int | None = None):
    """Spectral angle mapper: the angle between the spectra of two images, per pixel, averaged.

    Each pixel's band values are a vector; the angle between the two vectors does not change when a
    spectrum is scaled (illumination), only when its shape does. It is computed as
    ``2 atan2(|u - v|, |u + v|)`` of the unit vectors ``u, v`` (Kahan), accurate for small angles
    where ``arccos`` of the normalised dot product is not.

    Parameters
    ----------
    a, b : array_like, shape (..., B, H, W)
        At least two bands.
    mask : array_like of bool, optional
        True where valid, ``(..., H, W)`` or ``(..., B, H, W)`` (a pixel counts if all its bands do).
    degrees : bool
        Degrees instead of radians.
    empty : {"raise", "nan"}
        What to do for an image with no valid pixel.
    return_map : bool
        Also return the angles ``(..., H, W)`` (NaN where not valid).
    batch_size : int, optional
        Images per chunk (default: about 16 MB of float64 values).

    Returns
    -------
    ndarray of float64, shape ``(...)``; and the maps if asked.

    Raises
    ------
    InvalidInputError
        Shapes that differ, fewer than two bands, NaN or infinite values, or an image without valid
        pixel (unless ``empty="nan"``).

    Notes
    -----
    A pixel whose spectrum is all zeros in either image has no angle and is left out, as if masked
    (torchmetrics' ``spectral_angle_mapper`` gives NaN there). Otherwise the numbers equal
    torchmetrics' with ``reduction="none"``, averaged over each image's pixels.

    References
    ----------
    .. [1] F. A. Kruse et al., "The spectral image processing system (SIPS): interactive
           visualization and analysis of imaging spectrometer data", Remote Sensing of Environment
           44(2-3):145-163, 1993.
    """
    a, b, mask = check_images(a, b, mask=mask)
    if a.ndim < 3 or a.shape[-3] < 2:
        raise InvalidInputError(f"the spectral angle needs at least two bands on axis -3, got shape {a.shape}")
    lead, (B, H, W) = a.shape[:-3], a.shape[-3:]
    fa, fb = a.reshape(-1, B, H, W), b.reshape(-1, B, H, W)
    fm = None if mask is None else mask.reshape(-1, B, H, W).all(axis=1)
    angles = np.empty((fa.shape[0], H, W))
    valid = np.ones(angles.shape, bool)
    step = chunk_size(batch_size, 8 * B * H * W)
    for s in range(0, fa.shape[0], step):
        x, y = fa[s:s + step].astype(np.float64), fb[s:s + step].astype(np.float64)
        nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
        ok = (nx > 0) & (ny > 0)
        if fm is not None:
            ok &= fm[s:s + step]
        with np.errstate(invalid="ignore", divide="ignore"):
            u, v = x / nx[:, None], y / ny[:, None]
        angles[s:s + step] = 2 * np.arctan2(np.linalg.norm(u - v, axis=1), np.linalg.norm(u + v, axis=1))
        valid[s:s + step] = ok
    if degrees:
        angles = np.degrees(angles)
    out = _masked_mean(angles, valid, empty=empty, what="image(s)").reshape(lead)
    if return_map:
        return out, np.where(valid, angles, np.nan).reshape(*lead, H, W)
    return out


def ergas(sr, hr, *, factor: int, mask=None, empty: str = "raise") -> np.ndarray:
    """ERGAS (Wald 2000): the relative global error of a synthesised image, in percent-like units.

    ``ERGAS = 100 (h / l) sqrt(mean_k (RMSE_k / mu_k)^2)``: for each band ``k`` the root mean squared
    error against the reference divided by the reference's mean, so bands of different brightness
    count alike, and ``h / l = 1 / factor`` the ratio of the HR to the LR pixel size, so that the
    same relative error counts more for a smaller factor. Lower is better; 0 is a perfect match.

    Parameters
    ----------
    sr, hr : array_like, shape (..., B, H, W)
        The synthesised image and the reference; ``hr``'s band means must be positive (reflectance,
        not data normalised to zero mean).
    factor : int
        HR/LR resolution ratio (LR pixel size / HR pixel size).
    mask : array_like of bool, optional
        True where valid, ``(..., H, W)`` or ``(..., B, H, W)``.
    empty : {"raise", "nan"}
        What to do for an image band with no valid pixel.

    Returns
    -------
    ndarray of float64, shape ``(...)``.

    Raises
    ------
    InvalidInputError
        Shapes that differ, NaN or infinite values, a factor that is not a positive integer, a
        reference band whose mean is not positive, or a band without valid pixels (unless
        ``empty="nan"``).

    Notes
    -----
    The same as torchmetrics' ``error_relative_global_dimensionless_synthesis(preds, target,
    ratio=factor)`` (since torchmetrics 1.0, ``100 / ratio``), per image.

    References
    ----------
    .. [1] L. Wald, "Quality of high resolution synthesised images: is there a simple criterion?",
           Proc. Fusion of Earth Data, Sophia Antipolis, 2000, pp. 99-103.
    """
    factor = check_factor(factor)
    sr, hr, mask = check_images(sr, hr, mask=mask, names=("sr", "hr"))
    rmse = np.sqrt(mse(sr, hr, mask=mask, empty=empty))
    means = _masked_mean(hr, mask, empty=empty, what="image band(s)")
    if (means <= 0).any():
        raise InvalidInputError(f"{int((means <= 0).sum())} reference band(s) have a mean <= 0 (first at "
                                f"{np.argwhere(means <= 0)[0].tolist()}): ERGAS divides by the band mean, so it "
                                "needs positive quantities such as reflectance; score the data before normalising")
    return 100.0 / factor * np.sqrt(np.mean((rmse / means) ** 2, axis=-1))


# --------------------------------------------------------------------------------------------
# agreement with the LR input
# --------------------------------------------------------------------------------------------

def _down(sr: np.ndarray, factor: int, mask, **psf):
    """SR seen by the LR sensor (:func:`eo_sr.radiometry.degrade`) and the LR pixels that are valid (or None)."""
    work = sr if sr.dtype.kind == "f" else sr.astype(np.float64)
    full = None if mask is None else np.broadcast_to(mask, sr.shape)
    down = degrade(work, factor=factor, channel_axis=None, mask=full, **psf)
    if mask is None:
        return down, None
    valid = np.isfinite(down)
    return np.where(valid, down, 0), valid


def consistency(sr, lr, *, factor: int, data_range: float, sensor=None, psf_sigma: float | None = None,
                mtf_nyquist: float | None = None, mask=None, reduce: str = "none", max_psnr: float = 100.0,
                empty: str = "raise") -> dict[str, np.ndarray]:
    """How well the SR image, seen again by the LR sensor, reproduces the LR input.

    The SR image is degraded with the LR sensor's PSF and averaged over ``factor x factor`` blocks
    (:func:`eo_sr.radiometry.degrade`, without noise) and compared with the LR image: PSNR and the
    mean absolute error (MAE), opensr-test's *reflectance consistency* (its default distance is this
    L1). A model that invents brightness or loses contrast at low frequencies shows here, with no HR
    image needed.

    Parameters
    ----------
    sr : array_like, shape (..., B, H, W)
    lr : array_like, shape (..., B, H / factor, W / factor)
    factor : int
        HR/LR resolution ratio.
    data_range : float
        Value range of the data (1.0 for reflectance).
    sensor, psf_sigma, mtf_nyquist
        The LR sensor's blur, one of them, as in :func:`eo_sr.radiometry.degrade`: a sensor with a
        known MTF (``"sentinel-2-l2a"``, ``"demo-lr"``), the Gaussian PSF's sigma in LR pixels (0 for
        block averaging only), or the MTF at Nyquist.
    mask : array_like of bool, optional
        True where SR is valid, ``(..., H, W)`` or ``(..., B, H, W)``; an LR pixel counts when all its
        HR pixels are valid.
    reduce, max_psnr, empty
        As in :func:`eo_sr.metrics.psnr`.

    Returns
    -------
    dict
        ``"psnr"`` (dB) and ``"mae"`` (data units), float64 arrays ``(..., B)`` or ``(...)``.

    Raises
    ------
    InvalidInputError
        Shapes that do not fit ``factor``, NaN or infinite values, no blur given (or two), or an image
        without valid LR pixels (unless ``empty="nan"``).

    Notes
    -----
    Simplified from opensr-test: its SR is brought to the LR grid by plain interpolation, here by the
    sensor model that made (or explains) the LR image, so an SR image built to degrade exactly to its
    input scores ``max_psnr`` and 0.

    References
    ----------
    .. [1] C. Aybar et al., "A comprehensive benchmark for optical remote sensing image
           super-resolution", IEEE Geoscience and Remote Sensing Letters 21, 2024.
    """
    factor = check_factor(factor)
    sr, _, mask = check_images(sr, sr, mask=mask, data_range=data_range, names=("sr", "sr"))
    lr = _check_lr(sr, lr, factor)
    check_images(lr, lr, data_range=data_range, names=("lr", "lr"))
    down, valid = _down(sr, factor, mask, sensor=sensor, psf_sigma=psf_sigma, mtf_nyquist=mtf_nyquist)
    out = {"psnr": psnr(down, lr, data_range=data_range, mask=valid, max_psnr=max_psnr, empty=empty),
           "mae": _masked_mean(np.abs(down - lr), valid, empty=empty, what="image band(s)")}
    return {key: _reduce(v, reduce) for key, v in out.items()}


def band_mean_difference(sr, lr, *, factor: int | None = None, mask=None, signed: bool = False,
                         reduce: str = "none", empty: str = "raise") -> np.ndarray:
    """Per band, ``|mean(SR averaged down to LR) - mean(LR)|``: did the model keep the LR radiometry?

    SR is averaged over ``factor x factor`` blocks (the LR pixels' footprints) and its mean compared
    with the LR mean over the same LR pixels. The multi-temporal SR seed's band-mean loss minimises
    exactly this, so a model trained with it should score near 0 (the issue's target: under 0.005
    reflectance on average).

    Parameters
    ----------
    sr : array_like, shape (..., B, H, W)
    lr : array_like, shape (..., B, H / factor, W / factor)
    factor : int, optional
        HR/LR resolution ratio; by default the ratio of the shapes.
    mask : array_like of bool, optional
        True where SR is valid, ``(..., H, W)`` or ``(..., B, H, W)``; an LR pixel counts when all its
        HR pixels are valid.
    signed : bool
        Return ``mean(SR) - mean(LR)`` (positive: SR brighter) instead of its absolute value.
    reduce : {"none", "mean"}
        Per band, or averaged over bands.
    empty : {"raise", "nan"}
        What to do for an image band with no valid LR pixel.

    Returns
    -------
    ndarray of float64, shape ``(..., B)`` or ``(...)``, in data units.

    Raises
    ------
    InvalidInputError
        Shapes that do not fit the factor, NaN or infinite values, or a band without valid pixels
        (unless ``empty="nan"``).
    """
    sr, _, mask = check_images(sr, sr, mask=mask, names=("sr", "sr"))
    lr = np.asarray(lr)
    if factor is None:
        if lr.ndim < 2 or not lr.shape[-1] or sr.shape[-1] % lr.shape[-1]:
            raise InvalidInputError(f"sr {sr.shape} is not an integer multiple of lr {lr.shape}: pass factor=")
        factor = sr.shape[-1] // lr.shape[-1]
    factor = check_factor(factor)
    lr = _check_lr(sr, lr, factor)
    check_images(lr, lr, names=("lr", "lr"))
    down, valid = _down(sr, factor, mask, psf_sigma=0)
    diff = (_masked_mean(down, valid, empty=empty, what="image band(s)")
            - _masked_mean(lr, valid, empty=empty, what="image band(s)"))
    return _reduce(diff if signed else np.abs(diff), reduce)


# --------------------------------------------------------------------------------------------
# opensr-test's correctness: improvement, omission, hallucination
# --------------------------------------------------------------------------------------------

def _distance(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Per-pixel distance over the bands (axis -3), opensr-test's "nd" or "l1"."""
    if kind == "nd":  # normalised difference: relative, so dark and bright land count alike
        return np.mean(np.abs(x - y) / (np.abs(x + y) + 1e-8), axis=-3)
    if kind == "l1":
        return np.mean(np.abs(x - y), axis=-3)
    raise InvalidInputError(f"distance must be 'nd' (normalised difference, opensr-test's default) or 'l1', "
                            f"got {kind!r}")


def correctness(sr, hr, lr, *, factor: int, mask=None, distance: str = "nd", threshold="auto",
                gamma: tuple[float, float, float] = (0.05, 0.05, 0.05), temperature: float = 0.25,
                norm: str = "softmin", empty: str = "raise") -> dict[str, np.ndarray]:
    """opensr-test's correctness: is the SR's new detail an improvement, an omission or a hallucination?

    Per pixel, with ``up`` the bicubic upsampling of LR and ``d`` a distance over the bands:
    ``d_ref = d(up, HR)``, ``d_im = d(SR, HR) / d_ref`` and ``d_om = d(SR, up) / d_ref``; with
    ``H = d_im + d_om - 1`` the three scores (low = this class) are

    - improvement ``d_im + d_om (1 - exp(-gamma_im H))``: SR near HR;
    - omission ``d_om + d_im (1 - exp(-gamma_om H))``: SR stayed at the LR image;
    - hallucination ``exp(-gamma_ha d_im d_om)``: SR far from both.

    A softmin with ``temperature`` turns the three into shares per pixel; the result is their mean
    over the pixels that carry high-frequency information (any of the three distances above
    ``threshold``) and are valid. The shares add up to 1.

    Parameters
    ----------
    sr, hr : array_like, shape (..., B, H, W)
    lr : array_like, shape (..., B, H / factor, W / factor)
    factor : int
        HR/LR resolution ratio.
    mask : array_like of bool, optional
        True where valid (HR resolution), ``(..., H, W)`` or ``(..., B, H, W)``.
    distance : {"nd", "l1"}
        Normalised difference ``|x - y| / |x + y|`` (opensr-test's default) or absolute difference,
        averaged over the bands.
    threshold : "auto", "autoNN" or float
        Pixels where all three distances are at or below it are left out (flat areas say nothing
        about detail). "auto" is the 75th percentile of ``d_ref`` in each image ("auto90": the 90th).
    gamma : (float, float, float)
        opensr-test's ``im_score``, ``om_score``, ``ha_score`` (0.05 each, its defaults).
    temperature : float
        Softmin temperature (opensr-test's ``correctness_temperature``, 0.25).
    norm : {"softmin", "percent"}
        Mean softmin shares (default), or the share of pixels whose smallest score is each class.
    empty : {"raise", "nan"}
        What to do for an image with no pixel left.

    Returns
    -------
    dict
        ``"improvement"``, ``"omission"``, ``"hallucination"``: float64 arrays ``(...)`` in [0, 1].

    Raises
    ------
    InvalidInputError
        Shapes that do not fit ``factor``, NaN or infinite values, a bad ``distance``,
        ``threshold``, ``temperature`` or ``norm``, or an image with no pixel left (unless
        ``empty="nan"``).

    Notes
    -----
    Implemented from opensr-test's published definitions (docs "Metrics/correctness" and
    ``opensr_test/correctness.py``, v0.2-0.3), simplified: LR is brought to the HR grid by eo-sr's
    bicubic (opensr-test interpolates bilinearly), and SR is not harmonised first (opensr-test
    histogram-matches SR to HR and aligns it by phase correlation; do that beforehand with
    :func:`eo_sr.radiometry.match_histograms` if wanted); no border is cut (opensr-test masks 16 px);
    ``d_ref`` is kept above 1e-12 so that identical pixels do not divide by zero.

    References
    ----------
    .. [1] C. Aybar, D. Montero, S. Donike, F. Kalaitzis and L. Gómez-Chova, "A comprehensive
           benchmark for optical remote sensing image super-resolution", IEEE Geoscience and Remote
           Sensing Letters 21, 2024.
    """
    factor = check_factor(factor)
    sr, hr, mask = check_images(sr, hr, mask=mask, names=("sr", "hr"))
    lr = _check_lr(sr, lr, factor)
    check_images(lr, lr, names=("lr", "lr"))
    if not (isinstance(temperature, numbers.Real) and temperature > 0):
        raise InvalidInputError(f"temperature must be a positive number, got {temperature!r}")
    if norm not in ("softmin", "percent"):
        raise InvalidInputError(f"norm must be 'softmin' or 'percent', got {norm!r}")
    g_im, g_om, g_ha = (float(g) for g in gamma)
    up = upsample_bicubic(lr.astype(np.float32, copy=False), factor, channel_axis=None).astype(np.float64)
    x, y = sr.astype(np.float64), hr.astype(np.float64)
    d_ref, d_im, d_om = _distance(up, y, distance), _distance(x, y, distance), _distance(x, up, distance)
    valid = np.ones(d_ref.shape, bool) if mask is None else mask.all(axis=-3)
    cut = _thresholds(d_ref, valid, threshold)[..., None, None]
    valid &= (d_ref > cut) | (d_im > cut) | (d_om > cut)
    d_ref = np.maximum(d_ref, 1e-12)
    d_im, d_om = d_im / d_ref, d_om / d_ref
    h = d_im + d_om - 1
    scores = np.stack([d_im + d_om * (1 - np.exp(-g_im * h)), d_om + d_im * (1 - np.exp(-g_om * h)),
                       np.exp(-g_ha * d_im * d_om)])
    if norm == "softmin":
        weights = np.exp(-(scores - scores.min(axis=0)) / temperature)  # shifted: no overflow, same shares
        shares = weights / weights.sum(axis=0)
    else:
        shares = (scores.argmin(axis=0) == np.arange(3).reshape(-1, *[1] * d_ref.ndim)).astype(np.float64)
    out = _masked_mean(shares, valid, empty=empty, what="image(s)")
    return dict(zip(("improvement", "omission", "hallucination"), out))


def _thresholds(d_ref: np.ndarray, valid: np.ndarray, threshold) -> np.ndarray:
    """The distance threshold of each image ``(...)``: a number, or a percentile of ``d_ref``."""
    if isinstance(threshold, str):
        try:
            q = float(threshold[len("auto"):] or 75) if threshold.startswith("auto") else -1.0
        except ValueError:
            q = -1.0
        if not 0 <= q <= 100:
            raise InvalidInputError(f"threshold must be a number, 'auto' or 'autoNN' (NN a percentile), got "
                                    f"{threshold!r}")
        flat_d, flat_v = d_ref.reshape(-1, *d_ref.shape[-2:]), valid.reshape(-1, *d_ref.shape[-2:])
        cut = np.array([np.percentile(d[v], q) if v.any() else np.inf for d, v in zip(flat_d, flat_v)])
        return cut.reshape(d_ref.shape[:-2])
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise InvalidInputError(f"threshold must be a number, 'auto' or 'autoNN', got {threshold!r}")
    return np.full(d_ref.shape[:-2], float(threshold))


# --------------------------------------------------------------------------------------------
# per patch: win rate, the tidy table, its summary
# --------------------------------------------------------------------------------------------

def win_rate(sr_scores, baseline_scores, *, higher_is_better: bool = True) -> float:
    """Share of patches where SR beats the baseline (ties are not wins; NaN pairs are left out).

    Parameters
    ----------
    sr_scores, baseline_scores : array_like
        One score per patch, the same shape.
    higher_is_better : bool
        True for PSNR/SSIM-like scores, False for errors (SAM, ERGAS, MAE).

    Returns
    -------
    float
        In [0, 1]; NaN when no pair has both scores.

    Raises
    ------
    InvalidInputError
        If the shapes differ.
    """
    a, b = np.asarray(sr_scores, dtype=np.float64), np.asarray(baseline_scores, dtype=np.float64)
    if a.shape != b.shape:
        raise InvalidInputError(f"the score arrays differ in shape: {a.shape} vs {b.shape}; give one score per "
                                "patch for both, in the same order")
    both = ~(np.isnan(a) | np.isnan(b))
    if not both.any():
        return float("nan")
    wins = a[both] > b[both] if higher_is_better else a[both] < b[both]
    return float(wins.mean())


def _scores(sr, hr, lr, *, factor, data_range, masks, max_shift, cssim_search, psf) -> dict[str, np.ndarray]:
    """Every per-patch score of one model's outputs ``(N, B, H, W)``, averaged over bands."""
    kw = {"data_range": data_range, "mask": masks, "empty": "nan"}
    best, shift = cpsnr(sr, hr, max_shift=max_shift, reduce="mean", return_shift=True, **kw)
    if cssim_search:
        shift = None
    out = {"psnr": psnr(sr, hr, reduce="mean", **kw), "cpsnr": best, "ssim": ssim(sr, hr, reduce="mean", **kw),
           "cssim": cssim(sr, hr, max_shift=max_shift, shift=shift, reduce="mean", **kw),
           "sam": sam(sr, hr, mask=masks, empty="nan"), "ergas": ergas(sr, hr, factor=factor, mask=masks, empty="nan")}
    if any(v is not None for v in psf.values()):
        con = consistency(sr, lr, factor=factor, reduce="mean", **kw, **psf)
        out["consistency_psnr"], out["consistency_mae"] = con["psnr"], con["mae"]
    else:  # no sensor model given: the columns stay, empty, so every table has the same schema
        out["consistency_psnr"] = out["consistency_mae"] = np.full(len(sr), np.nan)
    out["band_mean_difference"] = band_mean_difference(sr, lr, factor=factor, mask=masks, reduce="mean",
                                                       empty="nan")
    out.update(correctness(sr, hr, lr, factor=factor, mask=masks, empty="nan"))
    return out


def evaluate_patches(sr, hr, lr, *, factor: int, data_range: float, masks=None, baseline="bicubic",
                     baseline_name: str = "bicubic", model: str = "sr", patch_ids=None, extra_columns=None,
                     max_shift: int = 3, cssim_search: bool = False, sensor=None, psf_sigma: float | None = None,
                     mtf_nyquist: float | None = None):
    """One row per patch and model: every score of this module, and the gain over a baseline.

    Parameters
    ----------
    sr : array_like (N, B, H, W), or dict of str to array_like
        The SR outputs of one model (named ``model``), or of several, by name.
    hr : array_like, shape (N, B, H, W)
    lr : array_like, shape (N, B, H / factor, W / factor)
        The LR input (for multi-frame models, the frame the outputs should agree with).
    factor : int
        HR/LR resolution ratio.
    data_range : float
        Value range of the data (1.0 for reflectance).
    masks : array_like of bool, optional
        True where valid at HR resolution, ``(N, H, W)`` or ``(N, B, H, W)``.
    baseline : "bicubic", array_like (N, B, H, W) or None
        Scored too, as the model ``baseline_name``, and subtracted for the ``*_gain`` columns; by default
        :func:`eo_sr.bicubic.upsample_bicubic` of ``lr``.
    baseline_name : str
        The baseline's name in the ``model`` column.
    model : str
        The name of ``sr`` when it is one array.
    patch_ids : sequence, optional
        One id per patch (default 0 ... N - 1).
    extra_columns : dict of str to sequence, or pandas.DataFrame, optional
        Columns with one value per patch, repeated for every model: QC cluster, land-cover class, split...
    max_shift : int
        Of :func:`cpsnr` and :func:`cssim`.
    cssim_search : bool
        Search cSSIM's own best displacement (49 SSIMs per patch for ``max_shift=3``) instead of scoring
        SSIM at the displacement cPSNR chose (the default: one registration, both scores, 49 times cheaper).
    sensor, psf_sigma, mtf_nyquist
        The LR sensor's blur, for :func:`consistency`; without one its columns are NaN.

    Returns
    -------
    pandas.DataFrame
        Columns ``patch_id``, ``model``, the extra columns, the scores of :data:`HIGHER_IS_BETTER`
        (band averages; NaN for a patch without valid pixels) and, with a baseline, ``<score>_gain``:
        the model's score minus the baseline's for the same patch, signed so that positive is better
        (baseline minus model for errors), NaN on the baseline's own rows.

    Raises
    ------
    InvalidInputError
        Shapes that do not fit each other or ``factor``, a model named like the baseline, extra columns
        of the wrong length, and the errors of the metrics.
    """
    import pandas as pd

    factor = check_factor(factor)
    models = dict(sr) if isinstance(sr, dict) else {model: sr}
    if not models:
        raise InvalidInputError("sr holds no model: give an array (N, B, H, W) or a dict of them")
    hr = np.asarray(hr)
    if hr.ndim != 4:
        raise InvalidInputError(f"hr must be a batch of patches (N, B, H, W), got shape {hr.shape}")
    lr = _check_lr(hr, lr, factor, names=("hr", "lr"))
    if isinstance(baseline, str):
        if baseline != "bicubic":
            raise InvalidInputError(f"baseline must be 'bicubic', an array like sr, or None; got {baseline!r}")
        baseline = upsample_bicubic(lr, factor, channel_axis=None)
    if baseline is not None:
        if baseline_name in models:
            raise InvalidInputError(f"a model is named {baseline_name!r} like the baseline: rename one "
                                    "(baseline_name=)")
        models[baseline_name] = baseline
    n = len(hr)
    ids = np.arange(n) if patch_ids is None else np.asarray(patch_ids)
    extra = pd.DataFrame(extra_columns if extra_columns is not None else {}).reset_index(drop=True)
    if len(ids) != n or (len(extra.columns) and len(extra) != n):
        raise InvalidInputError(f"patch_ids and extra_columns need one value per patch ({n}), got {len(ids)} and "
                                f"{len(extra)}")
    psf = {"sensor": sensor, "psf_sigma": psf_sigma, "mtf_nyquist": mtf_nyquist}
    scores = {}
    for name, out in models.items():
        out = np.asarray(out)
        if out.shape != hr.shape:
            raise InvalidInputError(f"the outputs of {name!r} have shape {out.shape}, the HR patches {hr.shape}")
        scores[name] = _scores(out, hr, lr, factor=factor, data_range=data_range, masks=masks,
                               max_shift=max_shift, cssim_search=cssim_search, psf=psf)
    tables = []
    for name, values in scores.items():
        table = pd.DataFrame({"patch_id": ids, "model": name})
        table = pd.concat([table, extra, pd.DataFrame(values)], axis=1)
        if baseline is not None:
            for key, higher in HIGHER_IS_BETTER.items():
                gain = values[key] - scores[baseline_name][key]
                table[f"{key}_gain"] = np.nan if name == baseline_name else (gain if higher else -gain)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def summarise(table, by=("model",), *, scores=None):
    """Mean, spread, gain and win rate over the baseline of a :func:`evaluate_patches` table, per group.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per patch and model, as :func:`evaluate_patches` returns (concatenated tables too).
    by : str or sequence of str
        The columns to group by: ``"model"``, and e.g. a QC cluster or land-cover column.
    scores : sequence of str, optional
        The scores to summarise (default: those of :data:`HIGHER_IS_BETTER` present in the table).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n_patches``; ``<score>_mean`` and ``<score>_std`` (NaN ignored); where
        the table has gains, ``<score>_gain`` (the mean gain) and ``<score>_win_rate`` (the share of
        patches with a positive gain: ties are not wins; NaN for the baseline itself).

    Raises
    ------
    InvalidInputError
        A grouping or score column that the table does not have.
    """
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    scores = [s for s in HIGHER_IS_BETTER if s in table.columns] if scores is None else list(scores)
    missing = [c for c in by + scores if c not in table.columns]
    if missing:
        raise InvalidInputError(f"the table has no column(s) {missing}; it has {list(table.columns)}")
    groups = table.groupby(by, dropna=False, sort=True)
    parts = {"n_patches": groups.size()}
    for key in scores:
        parts[f"{key}_mean"] = groups[key].mean()
        parts[f"{key}_std"] = groups[key].std()
        if f"{key}_gain" in table.columns:
            gain = table[f"{key}_gain"]
            parts[f"{key}_gain"] = groups[f"{key}_gain"].mean()
            # the win rate of win_rate(): wins among the patches that have a gain at all
            wins = (gain > 0).where(gain.notna())
            parts[f"{key}_win_rate"] = wins.groupby([table[c] for c in by], dropna=False, sort=True).mean()
    return pd.DataFrame(parts).reset_index()


#: The scores :func:`report` gives per model.
REPORTED = ("psnr", "cpsnr", "ssim", "sam", "band_mean_difference", "consistency_psnr")


def evaluate_checkpoint(checkpoint, store, *, split: str = "test", qc: bool = True, max_shift: int = 3,
                        batch_size: int = 16, device: str = "auto", progress: bool = False):
    """Score a trained model and bicubic on a split of a patch store.

    Parameters
    ----------
    checkpoint : path or eo_sr.learn.checkpoint.Checkpoint
        ``RUN_DIR/best.pt`` of a training run.
    store : path or eo_sr.store.PatchStore
    split : {"train", "val", "test"}
    qc : bool
        Score the patches QC keeps only (:func:`eo_sr.qc.store_table`); the table gets their
        QC cluster either way when the store has a QC table.
    max_shift : int
        Of :func:`cpsnr`.
    batch_size, device, progress :
        Of :func:`eo_sr.learn.predict.predict_split`.

    Returns
    -------
    table : pandas.DataFrame
        :func:`evaluate_patches`'s rows for the model (named after its config) and bicubic, with
        ``split`` and, when known, ``cluster_name``.
    summary : pandas.DataFrame
        :func:`summarise` by model.

    Raises
    ------
    InvalidInputError
        A checkpoint that does not fit the store (bands, factor), an empty split.
    """
    from eo_sr.learn.checkpoint import Checkpoint, load_checkpoint
    from eo_sr.learn.predict import predict_split
    from eo_sr.store import PatchStore, open_store

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    store = store if isinstance(store, PatchStore) else open_store(store)
    keep, clusters = None, None
    if qc:
        from eo_sr import qc as qc_mod

        table = qc_mod.store_table(store)
        keep = qc_mod.keep_ids(table)
        if "cluster_name" in table.columns:
            clusters = dict(zip(table["patch_id"], table["cluster_name"]))
    pred = predict_split(ckpt, store, split, keep=keep, batch_size=batch_size, device=device, progress=progress)
    extra = {"split": [split] * len(pred.patch_ids)}
    if clusters is not None:
        extra["cluster_name"] = [clusters.get(p) for p in pred.patch_ids]
    name = ckpt.config["name"]
    table = evaluate_patches(pred.sr, pred.hr, pred.lr, factor=ckpt.config["factor"], data_range=1.0,
                             masks=pred.mask, model=name, patch_ids=pred.patch_ids, extra_columns=extra,
                             max_shift=max_shift, psf_sigma=ckpt.config.get("psf_sigma", 0.5))
    return table, summarise(table)


def report(summary) -> dict:
    """The figures of a :func:`summarise` table by model as plain JSON numbers.

    ``{model: {"n_patches", "<score>" (mean), "<score>_gain", "<score>_win_rate"}}`` for the
    scores of :data:`REPORTED` it holds; gains and win rates are absent for the baseline.
    """
    out = {}
    for row in summary.to_dict("records"):
        entry = {"n_patches": int(row["n_patches"])}
        for key in REPORTED:
            if f"{key}_mean" not in row:
                continue
            entry[key] = _number(row[f"{key}_mean"])
            for suffix in ("gain", "win_rate"):
                value = row.get(f"{key}_{suffix}")
                if value is not None and np.isfinite(value):
                    entry[f"{key}_{suffix}"] = _number(value)
        out[str(row["model"])] = entry
    return out


def _number(value) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None

