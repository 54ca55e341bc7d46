"""Models by name, from JSON configs: :func:`build_model`."""
from __future__ import annotations

import inspect

from eo_sr.errors import InvalidInputError, UnknownNameError
from eo_sr.learn.baselines import Bicubic, Lanczos
from eo_sr.learn.highresnet import HighResNet
from eo_sr.learn.residual import ResidualSR
from eo_sr.learn.srcnn import SRCNN

__all__ = ["MODELS", "build_model", "model_names"]

#: The model classes by name.
MODELS = {cls.name: cls for cls in (Bicubic, Lanczos, SRCNN, ResidualSR, HighResNet)}


def model_names() -> list[str]:
    """The names :func:`build_model` knows."""
    return sorted(MODELS)


def options_of(name: str) -> list[str]:
    """The options (keyword arguments) of model ``name``."""
    return [p for p in inspect.signature(MODELS[name].__init__).parameters if p != "self"]


def build_model(name: str, *, factor: int, bands: int, frames: int | None = None, **options):
    """A model by name: ``build_model("highresnet", factor=4, bands=4, frames=8, width=64)``.

    ``build_model(**model.config)`` rebuilds a model with the same architecture (its weights
    come from a checkpoint's state dict).

    Parameters
    ----------
    name : str
        ``"bicubic"``, ``"lanczos"``, ``"srcnn"``, ``"residual"`` or ``"highresnet"``.
    factor : int
        Upsampling factor: 2, 3 or 4.
    bands : int
        Bands of input and output.
    frames : int, optional
        Most LR frames per sample (default: the model's, 1 for single-frame models, 8 for
        HighRes-Net).
    **options
        The model's own options (see its class: :class:`~eo_sr.learn.baselines.Bicubic`,
        :class:`~eo_sr.learn.baselines.Lanczos`, :class:`~eo_sr.learn.srcnn.SRCNN`,
        :class:`~eo_sr.learn.residual.ResidualSR`, :class:`~eo_sr.learn.highresnet.HighResNet`).

    Returns
    -------
    SRModel

    Raises
    ------
    UnknownNameError
        An unknown model name (the message lists the known ones).
    InvalidInputError
        An option the model does not have, or a bad value.
    """
    if name not in MODELS:
        raise UnknownNameError(f"unknown model {name!r}: eo-sr's models are {', '.join(model_names())}")
    known = options_of(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidInputError(f"model {name!r} has no option {', '.join(map(repr, unknown))}: its options are "
                                f"{', '.join(known)}")
    if frames is not None:
        options["frames"] = frames
    return MODELS[name](factor=factor, bands=bands, **options)
