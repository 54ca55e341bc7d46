"""Training losses for SR, all masked by pixel validity, and their weighted sum.

- :func:`l1_loss`, :func:`mse_loss`, :func:`ssim` / :func:`ssim_loss`: pixel losses over the
  valid pixels (SSIM exactly as :func:`eo_sr.metrics.ssim` defines it, on tensors and
  differentiable);
- :func:`band_mean_loss`: L1 between the per-band means of the output and of the temporally
  closest LR frame, so outputs keep the LR sensor's radiometry;
- :class:`PerceptualLoss`: distance between the features of any frozen encoder (one trained on
  this domain: ImageNet weights neither download here nor fit 4-band imagery);
- :func:`register`: ShiftNet's shift applied to the output before the pixel losses;
- :class:`CompositeLoss`: the weighted sum, weights as a config dict, shift-aware when given a
  :class:`~eo_sr.learn.shiftnet.ShiftNet`.

Masks are bool, True where a pixel is valid, of shape ``(B, H, W)``, ``(B, 1, H, W)`` or
``(B, C, H, W)``; non-finite target pixels (nodata as NaN) are never valid. Losses average over
the valid pixels of the whole batch.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eo_sr.errors import InvalidInputError, UnknownNameError
from eo_sr.learn.base import first_valid
from eo_sr.learn.resampling import lanczos_shift
from eo_sr.metrics import K1, K2

__all__ = ["TERMS", "CompositeLoss", "PerceptualLoss", "band_mean_loss", "l1_loss", "masked_mean", "mse_loss",
           "pixel_mask", "register", "ssim", "ssim_loss"]

#: The terms :class:`CompositeLoss` knows.
TERMS = ("l1", "mse", "ssim", "band_mean", "perceptual", "shift")


def pixel_mask(mask, target: torch.Tensor) -> torch.Tensor:
    """Validity ``(B, 1 or C, H, W)`` (bool) of the pixels of ``target`` ``(B, C, H, W)``.

    Parameters
    ----------
    mask : Tensor of bool, shape (B, H, W), (B, 1, H, W) or (B, C, H, W), or None
        True where valid (None: all pixels).
    target : Tensor, shape (B, C, H, W)
        Its non-finite pixels are invalid too.

    Raises
    ------
    InvalidInputError
        A mask that is not bool or does not fit ``target``.
    """
    finite = torch.isfinite(target)
    if mask is None:
        return finite
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise InvalidInputError(f"mask must be a bool tensor, True for valid pixels, not "
                                f"{getattr(mask, 'dtype', type(mask).__name__)}")
    B, C, H, W = target.shape
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or tuple(mask.shape) not in ((B, 1, H, W), (B, C, H, W)):
        raise InvalidInputError(f"mask has shape {tuple(mask.shape)}; it must be (B, H, W), (B, 1, H, W) or "
                                f"(B, C, H, W) for images of shape {tuple(target.shape)}")
    return mask.to(target.device) & finite


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the ``valid`` elements (broadcast); 0 (with a gradient) when none is."""
    valid = valid.expand_as(values)
    total = torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum()
    return total / valid.sum().clamp(min=1)


def _difference(sr, hr, mask):
    valid = pixel_mask(mask, hr)
    # where() before any arithmetic: NaN targets must not reach a gradient (0 * NaN is NaN)
    return torch.where(valid, sr - torch.where(valid, hr, sr.detach()), 0.0), valid


def l1_loss(sr: torch.Tensor, hr: torch.Tensor, *, mask=None) -> torch.Tensor:
    """Mean absolute error over the valid pixels.

    Parameters
    ----------
    sr, hr : Tensor, shape (B, C, H, W)
    mask : Tensor of bool, optional
        Valid pixels (:func:`pixel_mask`).

    Returns
    -------
    Tensor, a scalar.
    """
    d, valid = _difference(sr, hr, mask)
    return masked_mean(d.abs(), valid)


def mse_loss(sr: torch.Tensor, hr: torch.Tensor, *, mask=None) -> torch.Tensor:
    """Mean squared error over the valid pixels (as :func:`l1_loss`)."""
    d, valid = _difference(sr, hr, mask)
    return masked_mean(d * d, valid)


def _gaussian_window(sigma: float) -> np.ndarray:
    radius = int(3.5 * sigma + 0.5)  # eo_sr.metrics and scikit-image: truncate=3.5
    x = np.arange(-radius, radius + 1)
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(sr: torch.Tensor, hr: torch.Tensor, *, data_range: float, mask=None, sigma: float = 1.5) -> torch.Tensor:
    """SSIM per image and band, differentiable: :func:`eo_sr.metrics.ssim`'s definition on tensors.

    Wang et al.'s Gaussian window (sigma 1.5, 11 x 11), K1 = 0.01, K2 = 0.03, population
    covariances; the map is averaged over the windows wholly inside the valid pixels.

    Parameters
    ----------
    sr, hr : Tensor, shape (B, C, H, W)
        H and W at least the window's side.
    data_range : float
        Value range of the data (1 for reflectance).
    mask : Tensor of bool, optional
        Valid pixels (:func:`pixel_mask`).
    sigma : float, optional
        The window's Gaussian sigma in pixels.

    Returns
    -------
    Tensor, shape (B, C)
        NaN for an image and band without a valid window.

    Raises
    ------
    InvalidInputError
        Images smaller than the window or a bad ``data_range``.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment:
       from error visibility to structural similarity", IEEE Transactions on Image Processing
       13(4):600-612, 2004.
    """
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range) and data_range > 0):
        raise InvalidInputError(f"data_range must be a positive number (1.0 for reflectance), not {data_range!r}")
    B, C, H, W = hr.shape
    w1 = torch.tensor(_gaussian_window(sigma), dtype=sr.dtype, device=sr.device)
    size = len(w1)
    if H < size or W < size:
        raise InvalidInputError(f"images of {H}x{W} pixels are smaller than the {size}x{size} SSIM window")
    valid = pixel_mask(mask, hr).expand(B, C, H, W)
    x = torch.where(valid, sr, 0.0).reshape(B * C, 1, H, W) / data_range
    y = torch.where(valid, hr, 0.0).reshape(B * C, 1, H, W) / data_range

    def window(v, w):
        return F.conv2d(F.conv2d(v, w.view(1, 1, -1, 1)), w.view(1, 1, 1, -1))

    stack = torch.cat([x, y, x * x + y * y, x * y], dim=1).reshape(-1, 1, H, W)
    mx, my, esq, exy = window(stack, w1).reshape(B * C, 4, H - size + 1, W - size + 1).unbind(1)
    c1, c2 = K1**2, K2**2
    num = (2 * mx * my + c1) * (2 * (exy - mx * my) + c2)
    den1 = mx * mx + my * my + c1
    smap = num / (den1 * (esq - den1 + c1 + c2))
    box = torch.ones(size, dtype=sr.dtype, device=sr.device)
    full = window(valid.reshape(B * C, 1, H, W).to(sr.dtype), box)[:, 0] > size * size - 0.5
    count = full.sum(dim=(1, 2))
    per = torch.where(full, smap, 0.0).sum(dim=(1, 2)) / count.clamp(min=1)
    return torch.where(count > 0, per, torch.full((), float("nan"), dtype=sr.dtype)).reshape(B, C)


def ssim_loss(sr: torch.Tensor, hr: torch.Tensor, *, data_range: float, mask=None) -> torch.Tensor:
    """``1 - SSIM``, averaged over the images and bands that have a valid window (:func:`ssim`)."""
    s = ssim(sr, hr, data_range=data_range, mask=mask)
    ok = ~torch.isnan(s)
    return 1 - masked_mean(torch.where(ok, s, 0.0), ok)


def _closest_frame(lr: torch.Tensor, frame_mask, delta_t) -> torch.Tensor:
    if lr.ndim == 4:
        return lr
    B, T = lr.shape[:2]
    mask = torch.ones(B, T, dtype=torch.bool, device=lr.device) if frame_mask is None else frame_mask.to(lr.device)
    if tuple(mask.shape) != (B, T) or mask.dtype != torch.bool:
        raise InvalidInputError(f"frame_mask must be a bool tensor of shape (B, T) = {(B, T)}")
    if delta_t is None:  # eo-sr's stores order frames by |delta-t|: the first valid one is the closest
        return first_valid(lr, mask)
    distance = torch.where(mask, torch.as_tensor(delta_t, device=lr.device).abs().to(lr.dtype), float("inf"))
    return lr[torch.arange(B, device=lr.device), distance.argmin(dim=1)]


def band_mean_loss(sr: torch.Tensor, lr: torch.Tensor, *, mask=None, frame_mask=None, delta_t=None) -> torch.Tensor:
    """L1 between the per-band means of the SR output and of the temporally closest LR frame.

    Both means are taken over the same ground: the LR pixels whose ``f x f`` HR pixels are all
    valid (and whose LR value is finite), the SR output averaged over those blocks. The term
    keeps an SR model from drifting away from the LR sensor's radiometry (the targets' sensor
    has another), as the multi-temporal seed did.

    Parameters
    ----------
    sr : Tensor, shape (B, C, H, W)
    lr : Tensor, shape (B, T, C, h, w) or (B, C, h, w)
        ``H = f h`` and ``W = f w`` for an integer factor ``f``.
    mask : Tensor of bool, optional
        Valid HR pixels (:func:`pixel_mask`, of ``sr``'s shape).
    frame_mask : Tensor of bool, shape (B, T), optional
        Valid frames (default: all).
    delta_t : Tensor, shape (B, T), optional
        Time from each frame to the target (any unit); the valid frame of least ``|delta_t|`` is
        used. Default: the first valid frame (eo-sr's stores order frames by ``|delta_t|``).

    Returns
    -------
    Tensor, a scalar (data units).

    Raises
    ------
    InvalidInputError
        Shapes that are not an integer factor apart, or a bad mask.
    """
    frame = _closest_frame(lr, frame_mask, delta_t)
    (H, W), (h, w) = sr.shape[-2:], frame.shape[-2:]
    f = H // h
    if H != f * h or W != f * w or f < 1:
        raise InvalidInputError(f"sr of {H} x {W} pixels is not an integer factor of the LR frame's {h} x {w}")
    hr_valid = (torch.ones_like(sr[:, :1], dtype=torch.bool) if mask is None
                else pixel_mask(mask, torch.zeros_like(sr)).all(dim=1, keepdim=True))
    valid = (F.avg_pool2d(hr_valid.to(sr.dtype), f) > 1 - 1e-6) & torch.isfinite(frame)
    valid = valid.expand_as(frame)
    count = valid.sum(dim=(2, 3)).clamp(min=1)
    zero = torch.zeros((), dtype=sr.dtype, device=sr.device)
    sr_mean = torch.where(valid, F.avg_pool2d(torch.where(hr_valid, sr, zero), f), zero).sum(dim=(2, 3)) / count
    lr_mean = torch.where(valid, frame, zero).sum(dim=(2, 3)) / count
    return masked_mean((sr_mean - lr_mean).abs(), valid.any(dim=(2, 3)))


class PerceptualLoss(nn.Module):
    """Mean absolute difference of a frozen encoder's features of the output and of the target.

    The encoder is any ``nn.Module`` mapping ``(B, C, H, W)`` images to a feature tensor or a
    list/tuple of them (several depths); it is frozen (no gradients, kept in eval mode) and
    only carries the gradient to the SR output. Invalid pixels are set to 0 in both images, so
    they differ only where the target is valid.

    Parameters
    ----------
    encoder : nn.Module
        A network trained on this domain (e.g. an encoder trained on the demo HR images, or the
        land-cover model's encoder).

    References
    ----------
    .. [1] J. Johnson, A. Alahi and L. Fei-Fei, "Perceptual losses for real-time style transfer and
       super-resolution", ECCV 2016.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise InvalidInputError(f"the perceptual term needs an encoder nn.Module, not {type(encoder).__name__}")
        self.encoder = encoder.eval().requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # frozen: its batch norms and dropouts must not change with training
        return self

    @staticmethod
    def _features(out) -> list:
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, *, mask=None) -> torch.Tensor:
        valid = pixel_mask(mask, hr)
        x = torch.where(valid, sr, 0.0)
        with torch.no_grad():
            target = self._features(self.encoder(torch.where(valid, hr, 0.0)))
        feats = self._features(self.encoder(x))
        return sum((a - b).abs().mean() for a, b in zip(feats, target)) / len(feats)


def register(sr: torch.Tensor, hr: torch.Tensor, shiftnet: nn.Module, *, mask=None, border: int = 3):
    """Align ``sr`` with ``hr`` by ShiftNet's shift (Lanczos-3), as HighRes-Net's loss does.

    Parameters
    ----------
    sr, hr : Tensor, shape (B, C, H, W)
    shiftnet : ShiftNet
        Predicts ``(dy, dx)`` from ``(sr, hr, mask)``.
    mask : Tensor of bool, optional
        Valid HR pixels.
    border : int, optional
        HR pixels at each edge left out of the returned mask (default 3): the shifted image
        there is made of replicated edge pixels.

    Returns
    -------
    shifted : Tensor, shape (B, C, H, W)
    shifts : Tensor, shape (B, 2)
    valid : Tensor of bool, shape (B, 1 or C, H, W)

    References
    ----------
    .. [1] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
       satellite imagery", arXiv:2002.06460, 2020.
    """
    valid = pixel_mask(mask, hr)
    shifts = shiftnet(sr, hr, valid.all(dim=1, keepdim=True))
    shifted = lanczos_shift(sr, shifts)
    if border > 0:
        inner = torch.zeros_like(valid)
        inner[..., border:-border, border:-border] = True
        valid = valid & inner
    return shifted, shifts, valid


class CompositeLoss(nn.Module):
    """The weighted sum of eo-sr's loss terms, weights as a config dict.

    ``loss, terms = CompositeLoss({"l1": 1.0, "band_mean": 0.1})(sr, hr, lr=lr, mask=mask)``.

    Terms: ``l1``, ``mse``, ``ssim`` (1 - SSIM), ``perceptual`` (needs ``encoder``) on the output,
    registered to the target first when a ``shiftnet`` is given (:func:`register`);
    ``band_mean`` (:func:`band_mean_loss`, needs ``lr``) on the output as it is; ``shift``, the
    mean squared length of ShiftNet's shifts (HighRes-Net's regulariser; needs ``shiftnet``).

    Parameters
    ----------
    weights : dict of str to float, optional
        Weight of each term (default ``{"l1": 1.0}``); terms left out or of weight 0 are not
        computed.
    data_range : float, optional
        Value range of the data for SSIM (default 1: reflectance).
    shiftnet : ShiftNet, optional
        Makes the pixel terms registered (shift-aware); trained with the model through this loss.
    encoder : nn.Module, optional
        The frozen encoder of the perceptual term.
    border : int, optional
        Edge pixels left out of the registered terms (default 3 HR pixels).

    Raises
    ------
    UnknownNameError
        An unknown term (the message lists them).
    InvalidInputError
        A negative or non-finite weight, or a term without what it needs (``perceptual``
        without ``encoder``, ``shift`` without ``shiftnet``).

    References
    ----------
    .. [1] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
       satellite imagery", arXiv:2002.06460, 2020.
    """

    def __init__(self, weights: dict | None = None, *, data_range: float = 1.0, shiftnet: nn.Module | None = None,
                 encoder: nn.Module | None = None, border: int = 3):
        super().__init__()
        weights = {"l1": 1.0} if weights is None else dict(weights)
        unknown = sorted(set(weights) - set(TERMS))
        if unknown:
            raise UnknownNameError(f"unknown loss term {', '.join(map(repr, unknown))}: the terms are "
                                   f"{', '.join(TERMS)}")
        for term, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or weight < 0:
                raise InvalidInputError(f"the weight of {term!r} must be a number >= 0, not {weight!r}")
        if weights.get("perceptual", 0) > 0 and encoder is None:
            raise InvalidInputError("the perceptual term needs a frozen encoder: pass encoder=, or set its weight to 0")
        if weights.get("shift", 0) > 0 and shiftnet is None:
            raise InvalidInputError("the shift term regularises ShiftNet's shifts: pass shiftnet=, or set its weight "
                                    "to 0")
        self.weights = {t: float(w) for t, w in weights.items() if w > 0}
        self.data_range, self.border = float(data_range), int(border)
        self.shiftnet = shiftnet
        self.perceptual = PerceptualLoss(encoder) if encoder is not None else None

    @property
    def config(self) -> dict:
        """The JSON part of the loss: weights, data range, border (ShiftNet and encoder are modules)."""
        return {"weights": dict(self.weights), "data_range": self.data_range, "border": self.border}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, *, lr: torch.Tensor | None = None, mask=None,
                frame_mask=None, delta_t=None):
        """The total loss and its terms.

        Parameters
        ----------
        sr, hr : Tensor, shape (B, C, H, W)
        lr : Tensor, shape (B, T, C, h, w) or (B, C, h, w), optional
            The LR input (needed by ``band_mean``).
        mask : Tensor of bool, optional
            Valid HR pixels (:func:`pixel_mask`).
        frame_mask, delta_t : Tensor, shape (B, T), optional
            As :func:`band_mean_loss`.

        Returns
        -------
        total : Tensor, a scalar
        terms : dict of str to Tensor
            Each weighted term's value (unweighted, detached), for logs.
        """
        if sr.shape != hr.shape:
            raise InvalidInputError(f"sr and hr must have the same shape, not {tuple(sr.shape)} and {tuple(hr.shape)}")
        w = self.weights
        values = {}
        pixel_sr, pixel_mask_ = sr, mask
        if self.shiftnet is not None:
            pixel_sr, shifts, pixel_mask_ = register(sr, hr, self.shiftnet, mask=mask, border=self.border)
            if "shift" in w:
                values["shift"] = shifts.pow(2).sum(dim=1).mean()
        if "l1" in w:
            values["l1"] = l1_loss(pixel_sr, hr, mask=pixel_mask_)
        if "mse" in w:
            values["mse"] = mse_loss(pixel_sr, hr, mask=pixel_mask_)
        if "ssim" in w:
            values["ssim"] = ssim_loss(pixel_sr, hr, data_range=self.data_range, mask=pixel_mask_)
        if "perceptual" in w:
            values["perceptual"] = self.perceptual(pixel_sr, hr, mask=pixel_mask_)
        if "band_mean" in w:
            if lr is None:
                raise InvalidInputError("the band_mean term compares the output with its LR input: pass lr=")
            values["band_mean"] = band_mean_loss(sr, lr, mask=mask, frame_mask=frame_mask, delta_t=delta_t)
        total = sum(w[t] * v for t, v in values.items())
        return total, {t: v.detach() for t, v in values.items()}
