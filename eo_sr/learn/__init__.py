"""Super-resolution models and losses (the learning layer; torch is imported by the submodules only).

- :mod:`eo_sr.learn.registry`: :func:`~eo_sr.learn.registry.build_model` by name (``bicubic``,
  ``lanczos``, ``srcnn``, ``residual``, ``highresnet``) from a JSON config;
- :mod:`eo_sr.learn.base`: the interface every model shares (:class:`~eo_sr.learn.base.SRModel`:
  frames ``(B, T, C, h, w)`` and a frame mask ``(B, T)`` in, ``(B, C, h f, w f)`` out) and the
  input checks;
- :mod:`eo_sr.learn.baselines`, :mod:`eo_sr.learn.srcnn`, :mod:`eo_sr.learn.residual`,
  :mod:`eo_sr.learn.highresnet`: the models;
- :mod:`eo_sr.learn.shiftnet` and :mod:`eo_sr.learn.resampling`: ShiftNet and the Lanczos kernels
  (upsampling, sub-pixel shifts);
- :mod:`eo_sr.learn.projection`: the low-pass projection that makes an output degrade exactly to its
  LR input;
- :mod:`eo_sr.learn.losses`: masked L1, MSE and SSIM, the band-mean and perceptual terms, and
  :class:`~eo_sr.learn.losses.CompositeLoss` (shift-aware with a ShiftNet);
- :mod:`eo_sr.learn.checkpoint`: checkpoints that ``torch.load(..., weights_only=True)`` reads,
  with the model's config, the normalisation statistics and the store's checksum;
- :mod:`eo_sr.learn.encoder`: a feature encoder trained on the store's HR patches (the perceptual term);
- :mod:`eo_sr.learn.train`: :func:`~eo_sr.learn.train.train` on a patch store (Lightning), resumable;
- :mod:`eo_sr.learn.predict`: a store's split through a checkpoint, in reflectance.

``import eo_sr.learn`` imports no torch: the names below load their submodule on first use.
"""
from __future__ import annotations

import importlib

_NAMES = {
    "SRModel": "base", "build_model": "registry", "model_names": "registry",
    "Bicubic": "baselines", "Lanczos": "baselines", "SRCNN": "srcnn", "ResidualSR": "residual",
    "HighResNet": "highresnet", "ShiftNet": "shiftnet", "lanczos_shift": "resampling",
    "LowPassProjection": "projection", "CompositeLoss": "losses",
    "Checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "TrainConfig": "train", "predict_split": "predict", "DomainEncoder": "encoder",
    "train_encoder": "encoder",
}
_SUBMODULES = {"base", "baselines", "checkpoint", "encoder", "highresnet", "losses", "predict", "projection",
               "registry", "resampling", "residual", "shiftnet", "srcnn"}

__all__ = sorted(_NAMES) + sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"eo_sr.learn.{_NAMES[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"eo_sr.learn.{name}")
    raise AttributeError(f"module 'eo_sr.learn' has no attribute {name!r}")
