"""Interpolation baselines behind the models' interface: bicubic and Lanczos-3 upsampling.

No parameters: they are what every network has to beat, called exactly as the networks are
(``model(lr, mask)``), so training, evaluation and the command line treat them alike.
"""
from __future__ import annotations

from eo_sr.learn.base import FRAME_CHOICES, SRModel, check_choice, select_frame
from eo_sr.learn.resampling import bicubic_upsample, lanczos_upsample

__all__ = ["Bicubic", "Lanczos"]


class Bicubic(SRModel):
    """Bicubic upsampling of one frame, identical to :func:`eo_sr.bicubic.upsample_bicubic`.

    Parameters
    ----------
    factor, bands, frames, project, psf_sigma, standardize
        As :class:`~eo_sr.learn.base.SRModel`.
    frame : {"first", "median"}, optional
        The first valid frame (the closest in time; default) or the per-pixel median of the
        valid frames.

    References
    ----------
    .. [1] R. Keys, "Cubic convolution interpolation for digital image processing", IEEE
       Transactions on Acoustics, Speech, and Signal Processing 29 (1981) 1153-1160.
    """

    name = "bicubic"

    def __init__(self, *, factor: int, bands: int, frames: int = 1, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = False, frame: str = "first"):
        super().__init__(factor=factor, bands=bands, frames=frames, project=project, psf_sigma=psf_sigma,
                         standardize=standardize, frame=check_choice(frame, FRAME_CHOICES, "frame"))
        self.frame = frame

    def super_resolve(self, lr, mask):
        base = select_frame(lr, mask, self.frame)
        return bicubic_upsample(base, self.factor), base


class Lanczos(SRModel):
    """Lanczos upsampling of one frame (a = 3 lobes by default; :func:`~eo_sr.learn.resampling.lanczos_matrix`).

    Parameters
    ----------
    factor, bands, frames, project, psf_sigma, standardize
        As :class:`~eo_sr.learn.base.SRModel`.
    frame : {"first", "median"}, optional
        As :class:`Bicubic`.
    a : int, optional
        Lobes of the Lanczos kernel (default 3).

    References
    ----------
    .. [1] C. E. Duchon, "Lanczos filtering in one and two dimensions", Journal of Applied
       Meteorology 18(8):1016-1022, 1979.
    """

    name = "lanczos"

    def __init__(self, *, factor: int, bands: int, frames: int = 1, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = False, frame: str = "first", a: int = 3):
        check_choice(a, (2, 3, 4, 5), "a (the Lanczos lobes)")
        super().__init__(factor=factor, bands=bands, frames=frames, project=project, psf_sigma=psf_sigma,
                         standardize=standardize, frame=check_choice(frame, FRAME_CHOICES, "frame"), a=a)
        self.frame, self.a = frame, a

    def super_resolve(self, lr, mask):
        base = select_frame(lr, mask, self.frame)
        return lanczos_upsample(base, self.factor, a=self.a), base
