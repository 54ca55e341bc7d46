"""The interface every eo-sr super-resolution model shares, and its input checks.

A model takes LR frames ``lr`` of shape ``(B, T, C, h, w)`` (T frames of one place, ordered
by their time distance to the HR target, as the patch stores write them) and an optional
frame validity mask ``(B, T)`` (bool; False for missing, cloudy or padding frames), and
returns the SR image ``(B, C, h * f, w * f)``. Invalid frames take no part: their pixels may
be anything, NaN included. Single-frame models use one frame (``frame="first"``: the first
valid frame, the closest in time; ``frame="median"``: the per-pixel median of the valid
frames); multi-frame models fuse them all.

Every model carries a JSON-serialisable :attr:`SRModel.config` from which
:func:`eo_sr.learn.registry.build_model` rebuilds it.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from eo_sr.errors import InvalidInputError

__all__ = ["FACTORS", "FRAME_CHOICES", "SRModel", "check_choice", "check_frames", "first_valid", "median_valid",
           "select_frame"]

#: The upsampling factors eo-sr's models are built for (HR/LR resolution ratios of the sensor pairs).
FACTORS = (2, 3, 4)
#: How a single-frame model picks its frame.
FRAME_CHOICES = ("first", "median")


def check_choice(value, choices, what: str):
    """``value`` if it is one of ``choices``, else InvalidInputError naming them."""
    if value not in choices:
        raise InvalidInputError(f"{what} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def check_frames(lr, mask, *, bands: int, frames: int):
    """Validate model input; return ``(lr, mask)`` with invalid frames zeroed.

    Parameters
    ----------
    lr : Tensor, shape (B, T, C, h, w) or (B, C, h, w)
        A 4-D input is one frame per sample.
    mask : Tensor of bool, shape (B, T), optional
        True for valid frames (default: all valid).
    bands : int
        Bands the model was built for.
    frames : int
        Most frames the model takes.

    Returns
    -------
    lr : Tensor, shape (B, T, C, h, w)
        Floating point; the pixels of invalid frames set to 0, so that NaNs there reach nothing.
    mask : Tensor of bool, shape (B, T)

    Raises
    ------
    InvalidInputError
        Not a floating-point tensor of 4 or 5 dimensions, another band count, more frames than
        the model takes, a bad mask, a sample without a valid frame, or NaN/inf in a valid frame.
    """
    if not isinstance(lr, torch.Tensor) or not lr.is_floating_point():
        raise InvalidInputError(f"lr must be a floating-point torch tensor (B, T, C, h, w), not {type(lr).__name__}"
                                f"{'' if not isinstance(lr, torch.Tensor) else ' of ' + str(lr.dtype)}: convert it "
                                "with torch.as_tensor(x, dtype=torch.float32)")
    if lr.ndim == 4:
        lr = lr[:, None]
    if lr.ndim != 5:
        raise InvalidInputError(f"lr must have shape (B, T, C, h, w) (or (B, C, h, w) for one frame), not "
                                f"{tuple(lr.shape)}")
    B, T, C = lr.shape[:3]
    if C != bands:
        raise InvalidInputError(f"the input has {C} bands (lr shape {tuple(lr.shape)}) but the model was built for "
                                f"{bands}: select the bands it was trained on, or build a model with bands={C}")
    if T > frames:
        raise InvalidInputError(f"the input has {T} frames but the model takes at most {frames}: keep the {frames} "
                                f"closest in time, or build a model with frames={T}")
    if mask is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=lr.device)
    else:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise InvalidInputError(f"the frame mask must be a bool tensor (B, T), True for valid frames, not "
                                    f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.ndim == 1 and T == 1:
            mask = mask[:, None]
        if tuple(mask.shape) != (B, T):
            raise InvalidInputError(f"the frame mask has shape {tuple(mask.shape)}; it must be (B, T) = {(B, T)}")
        mask = mask.to(lr.device)
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise InvalidInputError(f"samples {empty} of the batch have no valid frame: drop them, or mark at least one "
                                "frame valid")
    valid = mask[:, :, None, None, None]
    if not torch.isfinite(torch.where(valid, lr, 0.0)).all():
        raise InvalidInputError("the valid frames of lr hold NaN or infinite values: fill masked pixels (e.g. with "
                                "the median of the valid frames) or mark such frames invalid in the frame mask")
    return torch.where(valid, lr, torch.zeros((), dtype=lr.dtype, device=lr.device)), mask


def first_valid(lr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The first valid frame of each sample, ``(B, C, h, w)`` (the closest in time in eo-sr's stores)."""
    index = mask.to(torch.int8).argmax(dim=1)  # argmax returns the first of the maxima
    return lr[torch.arange(lr.shape[0], device=lr.device), index]


def median_valid(lr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel median of the valid frames, ``(B, C, h, w)``; the mean of the middle two for an even count.

    HighRes-Net's reference frame [1]_ (there: ``torch.median``, the lower of the middle two).

    References
    ----------
    .. [1] M. Deudon et al., "HighRes-net: recursive fusion for multi-frame super-resolution of
       satellite imagery", arXiv:2002.06460, 2020.
    """
    valid = mask[:, :, None, None, None]
    ordered = torch.where(valid, lr, torch.full((), float("inf"), dtype=lr.dtype, device=lr.device)).sort(dim=1).values
    n = mask.sum(dim=1)
    shape = (-1, 1, *lr.shape[2:])
    lo = ordered.gather(1, ((n - 1) // 2).view(-1, 1, 1, 1, 1).expand(shape))
    hi = ordered.gather(1, (n // 2).view(-1, 1, 1, 1, 1).expand(shape))
    return ((lo + hi) / 2)[:, 0]


def select_frame(lr: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """The frame a single-frame model uses: ``"first"`` valid or the ``"median"`` of the valid ones."""
    return first_valid(lr, mask) if how == "first" else median_valid(lr, mask)


class SRModel(nn.Module):
    """Base class of eo-sr's SR models: input checks, the JSON config, the optional projection.

    Subclasses set :attr:`name`, call ``super().__init__`` with their options (which
    become the config) and implement :meth:`super_resolve`.

    Parameters
    ----------
    factor : int
        Upsampling factor: 2, 3 or 4.
    bands : int
        Bands of input and output.
    frames : int, optional
        Most LR frames per sample (default 1); fewer are taken as if the rest were missing.
    project : bool, optional
        Correct the output so that it degrades exactly to its LR frame
        (:class:`eo_sr.learn.projection.LowPassProjection`; default False).
    psf_sigma : float, optional
        Gaussian PSF sigma of that degradation, in LR pixels (default 0.5, about Sentinel-2's).
    standardize : bool, optional
        Run the network on each sample's bands scaled to zero mean and unit spread (over its first
        valid frame) and scale the output back (the networks' default; False here). The network
        then sees contrast, not the brightness and gain of the sensor it was trained on, which
        carries to other imagery: a residual net trained 3 minutes on the demo world gained
        +0.76 dB cPSNR over bicubic on real Sentinel-2 (Wald's protocol) with it and lost 0.49 dB
        without (``benchmarks/bench_wald.py``). The linear baselines are unchanged by it.
    **options
        The subclass's own options, kept in :attr:`config`.

    Raises
    ------
    InvalidInputError
        A factor outside {2, 3, 4}, or a band or frame count that is not a positive integer.
    """

    name = ""

    def __init__(self, *, factor: int, bands: int, frames: int = 1, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = False, **options):
        super().__init__()
        if isinstance(factor, bool) or factor not in FACTORS:
            raise InvalidInputError(f"factor must be one of {FACTORS} (the HR/LR resolution ratio), not {factor!r}")
        self.factor = int(factor)
        self.bands = _positive_int(bands, "bands")
        self.frames = _positive_int(frames, "frames")
        for flag, value in (("project", project), ("standardize", standardize)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{flag} must be True or False, not {value!r}")
        self.standardize = standardize
        self._config = {"name": self.name, "factor": self.factor, "bands": self.bands, "frames": self.frames,
                        "project": project, "psf_sigma": float(psf_sigma), "standardize": standardize, **options}
        self.projection = None
        if project:
            from eo_sr.learn.projection import LowPassProjection

            self.projection = LowPassProjection(factor=self.factor, psf_sigma=psf_sigma)

    @property
    def config(self) -> dict:
        """The JSON-serialisable options: ``build_model(**model.config)`` rebuilds this model."""
        return dict(self._config)

    def forward(self, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Super-resolve ``lr`` ``(B, T, C, h, w)`` with frame mask ``(B, T)``: ``(B, C, h f, w f)``.

        Raises
        ------
        InvalidInputError
            See :func:`check_frames`.
        """
        lr, mask = check_frames(lr, mask, bands=self.bands, frames=self.frames)
        if self.standardize:
            ref = first_valid(lr, mask)
            mean = ref.mean(dim=(-2, -1), keepdim=True)
            spread = ref.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
            lr = (lr - mean[:, None]) / spread[:, None]
            sr, base = self.super_resolve(lr, mask)
            sr, base = sr * spread + mean, base * spread + mean
        else:
            sr, base = self.super_resolve(lr, mask)
        return sr if self.projection is None else self.projection(sr, base)

    def super_resolve(self, lr: torch.Tensor, mask: torch.Tensor):
        """``(sr, base)``: the output and the LR frame ``(B, C, h, w)`` it should be consistent with."""
        raise NotImplementedError
