"""Consistency by construction: project an SR output onto the images that degrade to its LR input.

The LR sensor sees the ground blurred by its point spread function (a Gaussian of ``psf_sigma``
LR pixels) and averaged over its square detectors of ``factor x factor`` HR pixels: the linear
operator ``D`` of :func:`eo_sr.radiometry.degrade` (without noise). :class:`LowPassProjection`
replaces the low frequencies of an SR image ``x`` by those of the LR image ``y``:

    x' = x + D^+ (y - D x),   D^+ = D^T (D D^T)^-1,

the orthogonal projection of ``x`` onto ``{x : D x = y}``, so ``D x' = y`` exactly (to float
precision) while the detail that ``D`` cannot see is kept. SEN2SR makes its outputs consistent
with Sentinel-2 in the same spirit, with a low-pass correction layer [1]_. ``D`` is separable,
so both the operator and its pseudo-inverse are two small matrix products per image.

References
----------
.. [1] C. Aybar et al., "A radiometrically and spatially consistent super-resolution framework
   for Sentinel-2", Remote Sensing of Environment 2025 (SEN2SR; github.com/ESAOpenSR/sen2sr).
.. [2] L. Wald, T. Ranchin and M. Mangolini, "Fusion of satellite images of different spatial
   resolutions: assessing the quality of resulting images", Photogrammetric Engineering &
   Remote Sensing 63(6):691-699, 1997.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from eo_sr.bicubic import check_factor
from eo_sr.errors import InvalidInputError

__all__ = ["LowPassProjection", "degrade_matrix", "lowpass_degrade"]


@functools.lru_cache(maxsize=64)
def degrade_matrix(n: int, factor: int, psf_sigma: float) -> np.ndarray:
    """The ``(n, n * factor)`` matrix of one axis of the degradation: Gaussian blur, then block mean.

    The blur is :func:`scipy.ndimage.gaussian_filter1d` with edges mirrored (``mode="reflect"``),
    of ``psf_sigma * factor`` HR pixels, as :func:`eo_sr.radiometry.degrade` blurs.

    Parameters
    ----------
    n : int
        LR samples.
    factor : int
    psf_sigma : float
        Gaussian sigma in LR pixels (0: block mean alone).

    Returns
    -------
    ndarray of float64, shape ``(n, n * factor)``; each row sums to 1. Read-only (cached).
    """
    from scipy import ndimage

    N = n * factor
    blur = np.eye(N)
    if psf_sigma > 0:  # column j is the blurred unit impulse at j
        blur = ndimage.gaussian_filter1d(blur, psf_sigma * factor, axis=0, mode="reflect")
    out = blur.reshape(n, factor, N).mean(axis=1)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=64)
def _pseudo_inverse(n: int, factor: int, psf_sigma: float) -> np.ndarray:
    d = degrade_matrix(n, factor, psf_sigma)
    out = d.T @ np.linalg.inv(d @ d.T)  # D D^T is small (n x n) and well conditioned for sigma ~ 0.5
    out.setflags(write=False)
    return out


def _check_sigma(psf_sigma) -> float:
    try:
        sigma = float(psf_sigma)
    except (TypeError, ValueError):
        sigma = -1.0
    if not 0 <= sigma <= 2:
        raise InvalidInputError(f"psf_sigma is the PSF's Gaussian sigma in LR pixels, in [0, 2] (Sentinel-2: about "
                                f"0.5), not {psf_sigma!r}")
    return sigma


def _as(m: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(m, dtype=like.dtype, device=like.device)  # a copy: the cached matrix is read-only


def lowpass_degrade(x: torch.Tensor, *, factor: int, psf_sigma: float = 0.5) -> torch.Tensor:
    """The LR image an HR image ``(..., H, W)`` degrades to: Gaussian PSF blur and block mean.

    :func:`eo_sr.radiometry.degrade` without noise, on tensors and differentiable.

    Parameters
    ----------
    x : Tensor, shape (..., H, W)
        H and W multiples of ``factor``.
    factor : int
    psf_sigma : float, optional
        Gaussian sigma in LR pixels (default 0.5).

    Returns
    -------
    Tensor, shape (..., H / factor, W / factor)

    Raises
    ------
    InvalidInputError
        A shape not divisible by ``factor`` or a bad ``psf_sigma``.
    """
    factor, sigma = check_factor(factor), _check_sigma(psf_sigma)
    H, W = x.shape[-2:]
    if H % factor or W % factor:
        raise InvalidInputError(f"an image of {H} x {W} pixels does not degrade by factor {factor}: crop it to a "
                                "multiple of the factor")
    return _as(degrade_matrix(H // factor, factor, sigma), x) @ x @ _as(degrade_matrix(W // factor, factor, sigma).T, x)


class LowPassProjection(nn.Module):
    """Make an SR output degrade exactly to its LR image (consistency by construction).

    ``forward(sr, lr)`` returns ``sr + D^+ (lr - D sr)``, where ``D`` is
    :func:`lowpass_degrade`: afterwards ``lowpass_degrade(out) == lr`` to float precision. No
    parameters; differentiable, so a network trains through it.

    Parameters
    ----------
    factor : int
        HR pixels per LR pixel.
    psf_sigma : float, optional
        Gaussian PSF sigma in LR pixels (default 0.5: Sentinel-2's 10 m bands have an MTF at
        Nyquist of 0.15-0.30, a sigma of about 0.5-0.6 LR pixel).

    Raises
    ------
    InvalidInputError
        A bad factor or ``psf_sigma``; at call, an ``sr`` that is not ``factor`` times ``lr``.

    References
    ----------
    .. [1] C. Aybar et al., "A radiometrically and spatially consistent super-resolution framework
       for Sentinel-2", Remote Sensing of Environment 2025 (SEN2SR).
    """

    def __init__(self, *, factor: int, psf_sigma: float = 0.5):
        super().__init__()
        self.factor, self.psf_sigma = check_factor(factor), _check_sigma(psf_sigma)

    def forward(self, sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        f = self.factor
        h, w = lr.shape[-2:]
        if tuple(sr.shape[-2:]) != (h * f, w * f):
            raise InvalidInputError(f"sr of {tuple(sr.shape[-2:])} pixels is not {f} times lr of {(h, w)}")
        residual = lr - lowpass_degrade(sr, factor=f, psf_sigma=self.psf_sigma)
        rows = _as(_pseudo_inverse(h, f, self.psf_sigma), sr)
        cols = _as(_pseudo_inverse(w, f, self.psf_sigma).T, sr)
        return sr + rows @ residual @ cols

    def extra_repr(self) -> str:
        return f"factor={self.factor}, psf_sigma={self.psf_sigma}"
