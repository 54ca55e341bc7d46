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

    1. The pair is reduced to two single-band images (the band means, so any band count
       works), each centred on its mean and scaled by its standard deviation (the reflectance
       scale does not matter).
    2. A small convolutional encoder (shared by both) adds feature maps to the image; mean squared
       difference at every integer offset within ``radius`` pixels is a cost volume
       ``(2 radius + 1)^2`` (as in optical-flow networks [3]_), global over the image.
    3. The shift is the sub-pixel peak of the cost volume (a quadratic through the best offset
       and its neighbours) plus a correction that a small MLP reads off the whole
       volume. The MLP's last layer starts at zero, as HighRes-Net's ShiftNet starts at the
       identity: training only refines an estimate that is right to a fraction of a pixel.

    No batch normalisation: a sample's shift does not depend on its batch.

    Parameters
    ----------
    width : int, optional
        Feature maps of the encoder (default 16).
    radius : int, optional
        Largest shift searched, in pixels (default 3, the largest shift cPSNR searches).

    References
    ----------
    .. [1] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
       satellite imagery", arXiv:2002.06460, 2020 (ShiftNet, adapted from HomographyNet [2]_).
    .. [2] D. DeTone, T. Malisiewicz and A. Rabinovich, "Deep image homography estimation",
       arXiv:1606.03798, 2016.
    .. [3] D. Sun, X. Yang, M.-Y. Liu and J. Kautz, "PWC-Net: CNNs for optical flow using pyramid,
       warping, and cost volume", CVPR 2018.
    """

    def __init__(self, *, width: int = 16, radius: int = 3):
        super().__init__()
        for name, value in (("width", width), ("radius", radius)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, not {value!r}")
        self.width, self.radius = width, radius
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(width, width, 3, padding=1))
        nn.init.zeros_(self.encoder[-1].weight)
        nn.init.zeros_(self.encoder[-1].bias)
        n = (2 * radius + 1) ** 2
        self.head = nn.Sequential(nn.Linear(n, 64), nn.ReLU(inplace=True), nn.Linear(64, 2, bias=False))
        nn.init.zeros_(self.head[-1].weight)

    @property
    def config(self) -> dict:
        """JSON options: ``ShiftNet(**net.config)`` rebuilds it."""
        return {"width": self.width, "radius": self.radius}

    def cost_volume(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Matching scores ``(B, 2r + 1, 2r + 1)`` of features ``b(p)`` and ``a(p - (u, v))``.

        The negative mean squared difference over the pixels every offset sees, relative to the
        features' energy: near its peak it is a quadratic in the offset (as Lucas-Kanade's
        linearisation has it), which :func:`_peak` fits.
        """
        r = self.radius
        H, W = a.shape[-2:]
        inner = b[..., r:H - r, r:W - r]
        energy = inner.pow(2).sum(dim=1).mean(dim=(1, 2)).clamp(min=1e-8)
        scores = [(inner - a[..., r - u:H - r - u, r - v:W - r - v]).pow(2).sum(dim=1).mean(dim=(1, 2))
                  for u in range(-r, r + 1) for v in range(-r, r + 1)]
        return -(torch.stack(scores, dim=1) / energy[:, None]).view(-1, 2 * r + 1, 2 * r + 1)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Shifts ``(B, 2)`` such that ``lanczos_shift(sr, shifts)`` best matches ``hr``.

        Parameters
        ----------
        sr, hr : Tensor, shape (B, C, H, W)
            H and W larger than ``2 * radius``.
        mask : Tensor of bool, shape (B, 1, H, W) or (B, H, W), optional
            Valid HR pixels; the others (NaN allowed) are set to the image's mean.

        Returns
        -------
        Tensor, shape (B, 2): ``(dy, dx)`` in pixels.

        Raises
        ------
        InvalidInputError
            Images of different shapes, or too small for the search radius.
        """
        r = self.radius
        if sr.shape != hr.shape or sr.ndim != 4:
            raise InvalidInputError(f"sr and hr must have the same shape (B, C, H, W), not {tuple(sr.shape)} and "
                                    f"{tuple(hr.shape)}")
        if min(sr.shape[-2:]) <= 2 * r + 2:
            raise InvalidInputError(f"images of {tuple(sr.shape[-2:])} pixels are too small for ShiftNet's search "
                                    f"radius of {r} pixels: use larger patches or a smaller radius")
        m = torch.isfinite(hr).all(dim=1, keepdim=True)
        if mask is not None:
            m = m & (mask if mask.ndim == 4 else mask[:, None]).to(torch.bool)
        count = m.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        images = []
        for x in (sr, torch.where(m, hr, 0.0)):
            x = x.mean(dim=1, keepdim=True)
            x = torch.where(m, x - (x * m).sum(dim=(2, 3), keepdim=True) / count, 0.0)
            images.append(x / (x.pow(2).sum(dim=(2, 3), keepdim=True) / count).sqrt().clamp(min=1e-8))
        # the images themselves are features too (the learnt ones start at zero): an untrained
        # ShiftNet is plain block matching of the images, already right to a fraction of a pixel
        a, b = (torch.cat([x, self.encoder(x)], dim=1) for x in images)
        volume = self.cost_volume(a, b)
        return _peak(volume, r) + self.head(volume.flatten(1) - volume.flatten(1).amax(dim=1, keepdim=True))

    @staticmethod
    def transform(sr: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """``sr`` shifted by ``shifts`` (Lanczos-3, :func:`~eo_sr.learn.resampling.lanczos_shift`)."""
        return lanczos_shift(sr, shifts, a=3)


def _quadratic_fit() -> torch.Tensor:
    """Least-squares map from a 3 x 3 neighbourhood to ``(c, gy, gx, hyy, hxx, hxy)`` of a quadratic."""
    d = torch.tensor([(y, x) for y in (-1, 0, 1) for x in (-1, 0, 1)], dtype=torch.float64)
    basis = torch.stack([torch.ones(9, dtype=torch.float64), d[:, 0], d[:, 1], d[:, 0] ** 2 / 2, d[:, 1] ** 2 / 2,
                         d[:, 0] * d[:, 1]], dim=1)
    return torch.linalg.pinv(basis)


_FIT = _quadratic_fit()


def _peak(volume: torch.Tensor, r: int) -> torch.Tensor:
    """Sub-pixel ``(dy, dx)`` of the maximum of ``(B, 2r + 1, 2r + 1)``.

    A 2-D quadratic fitted to the best offset and its eight neighbours (a per-axis parabola
    would miss the peak of anisotropic textures, whose axes are not the image's).
    """
    B, n = volume.shape[0], 2 * r + 1
    best = volume.flatten(1).argmax(dim=1)
    # the fit needs all eight neighbours: keep the integer peak off the volume's edge
    iy, ix = (best // n).clamp(1, n - 2), (best % n).clamp(1, n - 2)
    rows = torch.arange(B, device=volume.device)
    offsets = torch.arange(-1, 2, device=volume.device)
    patch = volume[rows[:, None, None], (iy[:, None, None] + offsets[None, :, None]),
                   (ix[:, None, None] + offsets[None, None, :])].reshape(B, 9)
    c = patch @ _FIT.to(volume).T
    gy, gx, hyy, hxx, hxy = c.unbind(1)[1:]
    det = hyy * hxx - hxy * hxy
    peaked = (hyy < 0) & (det > 1e-12)  # a maximum: the Hessian negative definite
    safe = torch.where(peaked, det, torch.ones_like(det))
    dy = torch.where(peaked, -(hxx * gy - hxy * gx) / safe, 0.0).clamp(-1, 1)
    dx = torch.where(peaked, -(hyy * gx - hxy * gy) / safe, 0.0).clamp(-1, 1)
    return torch.stack([iy.to(volume.dtype) - r + dy, ix.to(volume.dtype) - r + dx], dim=1)
