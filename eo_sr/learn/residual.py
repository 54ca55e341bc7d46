"""An EDSR-like residual network (Lim et al. 2017) for one frame, with a global skip over bicubic."""
from __future__ import annotations

from torch import nn

from eo_sr.learn.base import FRAME_CHOICES, SRModel, check_choice, select_frame
from eo_sr.learn.resampling import bicubic_upsample

__all__ = ["ResBlock", "ResidualSR", "UPSAMPLINGS", "upsampler"]

#: How the LR feature maps are brought to HR.
UPSAMPLINGS = ("pixelshuffle", "transposed")


class ResBlock(nn.Module):
    """conv - ReLU - conv, scaled and added to its input (EDSR's block: no batch normalisation)."""

    def __init__(self, width: int, *, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x):
        return x + self.res_scale * self.body(x)


def upsampler(width: int, factor: int, how: str) -> nn.Sequential:
    """Feature maps ``(B, width, h, w)`` to ``(B, width, h f, w f)``.

    ``"pixelshuffle"``: a convolution to ``width * f^2`` maps rearranged by
    :class:`torch.nn.PixelShuffle` (Shi et al. 2016), x4 as two x2 steps (as EDSR);
    ``"transposed"``: a transposed convolution with kernel and stride ``f`` (no overlapping taps,
    hence no checkerboard).
    """
    if how == "transposed":
        return nn.Sequential(nn.ConvTranspose2d(width, width, factor, stride=factor))
    steps = [2, 2] if factor == 4 else [factor]
    layers = []
    for f in steps:
        layers += [nn.Conv2d(width, width * f * f, 3, padding=1), nn.PixelShuffle(f)]
    return nn.Sequential(*layers)


class ResidualSR(SRModel):
    """EDSR-like single-frame network: head, residual blocks with a long skip, upsampler, tail.

    Parameters
    ----------
    factor, bands, frames, project, psf_sigma, standardize
        As :class:`~eo_sr.learn.base.SRModel`.
    frame : {"first", "median"}, optional
        The frame used: the first valid one (the closest in time; default) or the median of the
        valid frames.
    depth : int, optional
        Residual blocks (default 8; EDSR-baseline has 16).
    width : int, optional
        Feature maps (default 32; EDSR-baseline has 64).
    upsampling : {"pixelshuffle", "transposed"}, optional
        See :func:`upsampler` (default ``"pixelshuffle"``).
    skip : bool, optional
        Add the bicubic upsampling of the frame to the output (default True): the network
        learns the residual to bicubic.
    res_scale : float, optional
        Scale of each block's residual (EDSR uses 0.1 for its widest model; default 1).

    References
    ----------
    .. [1] B. Lim, S. Son, H. Kim, S. Nah and K. M. Lee, "Enhanced deep residual networks for single
       image super-resolution", CVPR Workshops 2017 (EDSR).
    .. [2] W. Shi et al., "Real-time single image and video super-resolution using an efficient
       sub-pixel convolutional neural network", CVPR 2016 (pixel shuffle).
    """

    name = "residual"

    def __init__(self, *, factor: int, bands: int, frames: int = 1, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = True, frame: str = "first", depth: int = 8, width: int = 32,
                 upsampling: str = "pixelshuffle", skip: bool = True, res_scale: float = 1.0):
        super().__init__(factor=factor, bands=bands, frames=frames, project=project, psf_sigma=psf_sigma,
                         standardize=standardize, frame=check_choice(frame, FRAME_CHOICES, "frame"),
                         depth=int(depth), width=int(width),
                         upsampling=check_choice(upsampling, UPSAMPLINGS, "upsampling"), skip=bool(skip),
                         res_scale=float(res_scale))
        self.frame, self.skip = frame, bool(skip)
        self.head = nn.Conv2d(bands, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, res_scale=res_scale) for _ in range(depth)],
                                  nn.Conv2d(width, width, 3, padding=1))
        self.up = upsampler(width, self.factor, upsampling)
        self.tail = nn.Conv2d(width, bands, 3, padding=1)

    def super_resolve(self, lr, mask):
        base = select_frame(lr, mask, self.frame)
        x = self.head(base)
        out = self.tail(self.up(x + self.body(x)))
        return (out + bicubic_upsample(base, self.factor) if self.skip else out), base
