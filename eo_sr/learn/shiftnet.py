"""ShiftNet (HighRes-Net's registration network): the global sub-pixel shift between SR and HR.

Multi-frame SR outputs and their HR targets are never perfectly co-registered (Sentinel-2's
multi-temporal co-registration is within ~0.3 LR pixel, i.e. about a pixel at x4). A pixel loss
would then reward blur. ShiftNet predicts the translation ``(dy, dx)`` that best aligns an SR
output with its target; the loss is taken after shifting the output by it with Lanczos
interpolation (:func:`eo_sr.learn.resampling.lanczos_shift`), and both networks train together
(:class:`eo_sr.learn.losses.CompositeLoss`).
"""
from __future__ import annotations

import torch
from torch import nn

from eo_sr.errors import InvalidInputError
from eo_sr.learn.resampling import lanczos_shift

__all__ = ["ShiftNet"]


class ShiftNet(nn.Module):
    """Predict the global translation ``(dy, dx)`` (HR pixels) that aligns ``sr`` with ``hr``.

    The pair is reduced to two single-band images (the band means, so any band count works),
    each centred on its mean and both scaled by the target's standard deviation (so the
    reflectance scale does not matter); convolutions and two poolings follow, then a global
    average (any image size) and two linear layers. The last layer starts at zero: the
    identity, as in HighRes-Net. No batch normalisation: a sample's shift does not depend on
    its batch.

    Parameters
    ----------
    width : int, optional
        Feature maps of the first layers (default 32; twice that after the first pooling).

    References
    ----------
    .. [1] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
       satellite imagery", arXiv:2002.06460, 2020 (ShiftNet, adapted from HomographyNet [2]_).
    .. [2] D. DeTone, T. Malisiewicz and A. Rabinovich, "Deep image homography estimation",
       arXiv:1606.03798, 2016.
    """

    def __init__(self, *, width: int = 32):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise InvalidInputError(f"width must be a positive integer, not {width!r}")
        self.width = width
        w2 = 2 * width
        self.features = nn.Sequential(
            nn.Conv2d(2, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(width, w2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(w2, w2), nn.ReLU(inplace=True), nn.Linear(w2, 2, bias=False))
        nn.init.zeros_(self.head[-1].weight)

    @property
    def config(self) -> dict:
        """JSON options: ``ShiftNet(**net.config)`` rebuilds it."""
        return {"width": self.width}

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Shifts ``(B, 2)`` such that ``lanczos_shift(sr, shifts)`` best matches ``hr``.

        Parameters
        ----------
        sr, hr : Tensor, shape (B, C, H, W)
            H and W at least 4.
        mask : Tensor of bool, shape (B, 1, H, W) or (B, H, W), optional
            Valid HR pixels; the others (NaN allowed) are set to the image's mean.

        Returns
        -------
        Tensor, shape (B, 2): ``(dy, dx)`` in pixels.
        """
        if sr.shape != hr.shape or sr.ndim != 4:
            raise InvalidInputError(f"sr and hr must have the same shape (B, C, H, W), not {tuple(sr.shape)} and "
                                    f"{tuple(hr.shape)}")
        m = torch.isfinite(hr).all(dim=1, keepdim=True)
        if mask is not None:
            m = m & (mask if mask.ndim == 4 else mask[:, None]).to(torch.bool)
        images = []
        for x in (sr, torch.where(m, hr, 0.0)):
            x = x.mean(dim=1, keepdim=True)
            mean = (x * m).sum(dim=(2, 3), keepdim=True) / m.sum(dim=(2, 3), keepdim=True).clamp(min=1)
            images.append(torch.where(m, x - mean, 0.0))
        scale = images[1].pow(2).sum(dim=(2, 3), keepdim=True) / m.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        x = torch.cat(images, dim=1) / (scale.sqrt() + 1e-6)
        return self.head(self.features(x))

    @staticmethod
    def transform(sr: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """``sr`` shifted by ``shifts`` (Lanczos-3, :func:`~eo_sr.learn.resampling.lanczos_shift`)."""
        return lanczos_shift(sr, shifts, a=3)
