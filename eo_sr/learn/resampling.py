"""Interpolation on torch tensors: bicubic and Lanczos upsampling, Lanczos sub-pixel shifts.

- :func:`bicubic_upsample` is :func:`eo_sr.bicubic.upsample_bicubic` on a tensor (PyTorch's
  bicubic, differentiable): the baseline and the global skip of the networks;
- :func:`lanczos_matrix` and :func:`lanczos_upsample`: Lanczos-a upsampling by an integer factor,
  with the pixel-centre convention of the bicubic one;
- :func:`lanczos_kernel` and :func:`lanczos_shift`: translate images by sub-pixel (dy, dx), as
  HighRes-Net's ShiftNet does at the loss [2]_.

References
----------
.. [1] C. E. Duchon, "Lanczos filtering in one and two dimensions", Journal of Applied Meteorology
   18(8):1016-1022, 1979.
.. [2] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of satellite
   imagery", arXiv:2002.06460, 2020; github.com/ElementAI/HighRes-net (``src/lanczos.py``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from eo_sr.bicubic import check_factor

__all__ = ["bicubic_upsample", "lanczos_kernel", "lanczos_matrix", "lanczos_shift", "lanczos_upsample"]


def bicubic_upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic upsampling of ``(B, C, h, w)`` by ``factor``, as :func:`eo_sr.bicubic.upsample_bicubic`.

    Parameters
    ----------
    x : Tensor, shape (B, C, h, w)
    factor : int

    Returns
    -------
    Tensor, shape (B, C, h * factor, w * factor)
        Keys' cubic convolution (a = -0.75), half-pixel centres, edges replicated; differentiable.
    """
    return F.interpolate(x, scale_factor=check_factor(factor), mode="bicubic", align_corners=False)


def _lanczos(x, a: int):
    """The Lanczos-a window sinc(x) sinc(x / a) on |x| < a (numpy or torch)."""
    if isinstance(x, torch.Tensor):
        return torch.where(x.abs() < a, torch.sinc(x) * torch.sinc(x / a), torch.zeros_like(x))
    return np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)


def lanczos_matrix(n: int, factor: int, *, a: int = 3) -> np.ndarray:
    """The ``(n * factor, n)`` matrix of Lanczos-a upsampling along one axis.

    Output pixel centres sit where the bicubic ones do (``(i + 0.5) / factor - 0.5`` in input
    pixels), edges are replicated, and each row's weights are normalised to sum to 1 (so a flat
    image stays flat).

    Parameters
    ----------
    n : int
        Input samples.
    factor : int
        Integer upsampling factor.
    a : int, optional
        Lobes of the kernel (3: Lanczos-3).

    Returns
    -------
    ndarray of float64, shape ``(n * factor, n)``
    """
    factor = check_factor(factor)
    src = (np.arange(n * factor) + 0.5) / factor - 0.5
    i0 = np.floor(src).astype(np.intp)
    taps = i0[None] + np.arange(-a + 1, a + 1)[:, None]  # (2a, n_out)
    w = _lanczos(src[None] - taps, a)
    w /= w.sum(axis=0, keepdims=True)
    out = np.zeros((n * factor, n))
    rows = np.broadcast_to(np.arange(n * factor), taps.shape)
    np.add.at(out, (rows, np.clip(taps, 0, n - 1)), w)  # clamped taps land on the same column: add
    return out


def lanczos_upsample(x: torch.Tensor, factor: int, *, a: int = 3) -> torch.Tensor:
    """Lanczos-a upsampling of ``(..., h, w)`` by ``factor`` (two matrix products, differentiable).

    Parameters
    ----------
    x : Tensor, shape (..., h, w)
    factor : int
    a : int, optional
        Lobes of the kernel (default 3).

    Returns
    -------
    Tensor, shape (..., h * factor, w * factor)
    """
    h, w = x.shape[-2:]
    rows = torch.as_tensor(lanczos_matrix(h, factor, a=a), dtype=x.dtype, device=x.device)
    cols = torch.as_tensor(lanczos_matrix(w, factor, a=a).T, dtype=x.dtype, device=x.device)
    return rows @ x @ cols


def lanczos_kernel(shift: torch.Tensor, *, a: int = 3, radius: int | None = None) -> torch.Tensor:
    """1-D Lanczos kernels that translate a signal by ``shift`` samples.

    Parameters
    ----------
    shift : Tensor, shape (N,)
        Translations in samples (positive: the content moves towards higher indices).
    a : int, optional
        Lobes (default 3).
    radius : int, optional
        Half-width K of the kernels (default: ``a + ceil(max |shift|)``, all the support).

    Returns
    -------
    Tensor, shape (N, 2K + 1)
        Weights of offsets ``-K .. K``, normalised to sum to 1: ``out[y] = sum_k w[k] in[y + k]``
        with ``w[k] = L(k + shift)``, i.e. ``in`` interpolated at ``y - shift``.
    """
    if radius is None:
        radius = a + int(math.ceil(float(shift.detach().abs().max()))) if shift.numel() else a
    k = torch.arange(-radius, radius + 1, dtype=shift.dtype, device=shift.device)
    w = _lanczos(k[None] + shift[:, None], a)
    return w / w.sum(dim=1, keepdim=True)


def lanczos_shift(images: torch.Tensor, shifts: torch.Tensor, *, a: int = 3) -> torch.Tensor:
    """Translate each image by its own sub-pixel ``(dy, dx)`` with separable Lanczos-a kernels.

    ``out(y, x) = images(y - dy, x - dx)``, the convention of :func:`scipy.ndimage.shift`
    with ``shift=(dy, dx)``; edges are replicated. Differentiable in both the images and the
    shifts, so ShiftNet learns through it (HighRes-Net's ``lanczos_shift`` [2]_).

    Parameters
    ----------
    images : Tensor, shape (B, C, H, W)
    shifts : Tensor, shape (B, 2)
        ``(dy, dx)`` per image, in pixels.
    a : int, optional
        Lobes (default 3).

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    B, C, H, W = images.shape
    out = images
    for axis, shift in ((2, shifts[:, 0]), (3, shifts[:, 1])):
        k = lanczos_kernel(shift.to(images.dtype), a=a)
        r = (k.shape[1] - 1) // 2
        weight = k.repeat_interleave(C, dim=0)  # one kernel per (image, band): a grouped convolution
        if axis == 2:
            padded = F.pad(out, (0, 0, r, r), mode="replicate")
            weight = weight[:, None, :, None]
        else:
            padded = F.pad(out, (r, r, 0, 0), mode="replicate")
            weight = weight[:, None, None, :]
        out = F.conv2d(padded.reshape(1, B * C, *padded.shape[2:]), weight, groups=B * C).reshape(B, C, H, W)
    return out
