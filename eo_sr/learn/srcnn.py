"""SRCNN (Dong et al. 2014): three convolutions on the bicubic-upsampled frame."""
from __future__ import annotations

from torch import nn

from eo_sr.learn.base import FRAME_CHOICES, SRModel, check_choice, select_frame
from eo_sr.learn.resampling import bicubic_upsample

__all__ = ["SRCNN"]


class SRCNN(SRModel):
    """SRCNN: patch extraction (9x9), non-linear mapping (1x1), reconstruction (5x5).

    Works at HR resolution on the bicubic upsampling of one frame, as the paper does; padding
    keeps the size (edges replicated, where the paper crops its borders).

    Parameters
    ----------
    factor, bands, frames, project, psf_sigma, standardize
        As :class:`~eo_sr.learn.base.SRModel`.
    frame : {"first", "median"}, optional
        The frame used: the first valid one (the closest in time; default) or the median of the
        valid frames.
    n1, n2 : int, optional
        Feature maps of the first two layers (the paper's 64 and 32).
    residual : bool, optional
        Predict the correction to bicubic (default True) rather than the image itself (the
        paper): the network then starts near bicubic and learns only the missing detail.

    References
    ----------
    .. [1] C. Dong, C. C. Loy, K. He and X. Tang, "Learning a deep convolutional network for image
       super-resolution", ECCV 2014, pp. 184-199.
    .. [2] C. Dong, C. C. Loy, K. He and X. Tang, "Image super-resolution using deep convolutional
       networks", IEEE TPAMI 38(2):295-307, 2016.
    """

    name = "srcnn"

    def __init__(self, *, factor: int, bands: int, frames: int = 1, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = True, frame: str = "first", n1: int = 64, n2: int = 32, residual: bool = True):
        super().__init__(factor=factor, bands=bands, frames=frames, project=project, psf_sigma=psf_sigma,
                         standardize=standardize, frame=check_choice(frame, FRAME_CHOICES, "frame"),
                         n1=int(n1), n2=int(n2), residual=bool(residual))
        self.frame, self.residual = frame, bool(residual)
        self.body = nn.Sequential(
            nn.Conv2d(bands, n1, 9, padding=4, padding_mode="replicate"), nn.ReLU(inplace=True),
            nn.Conv2d(n1, n2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(n2, bands, 5, padding=2, padding_mode="replicate"),
        )

    def super_resolve(self, lr, mask):
        base = select_frame(lr, mask, self.frame)
        up = bicubic_upsample(base, self.factor)
        out = self.body(up)
        return (up + out if self.residual else out), base
