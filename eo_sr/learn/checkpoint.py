"""Checkpoints: a trained model with what it needs to be used again, read without pickle.

A checkpoint holds the state dict, the model's JSON config, the normalisation
statistics it was trained with, the checksum of the patch store it was trained on and
the eo-sr version. It is a plain dict of tensors, strings and numbers, so
``torch.load(path, weights_only=True)`` reads it: loading a checkpoint from someone else
cannot run their code.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from eo_sr.errors import InvalidInputError, NotFoundError

#: Written into every checkpoint; another format is refused with a clear message.
FORMAT = "eo-sr-checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes
    ----------
    model : SRModel
        Rebuilt from :attr:`config` with its trained weights, in eval mode.
    config : dict
        ``build_model(**config)`` rebuilds the architecture.
    norm_stats : dict or None
        The normalisation statistics of the training data (a patch store's ``norm_stats``).
    store_checksum : str or None
        Checksum of the patch store the model was trained on.
    eo_sr_version : str
    extra : dict
        Whatever the trainer kept (epoch, metrics, ...), JSON.
    optimizer : dict or None
        The optimizer's state dict, to resume training.
    """

    model: object
    config: dict
    norm_stats: dict | None = None
    store_checksum: str | None = None
    eo_sr_version: str = ""
    extra: dict = field(default_factory=dict)
    optimizer: dict | None = None

    def check_input(self, *, bands: int | None = None, frames: int | None = None, factor: int | None = None,
                    store_checksum: str | None = None) -> None:
        """Refuse data the model was not trained for.

        Raises
        ------
        InvalidInputError
            Another band count, more frames than the model takes, another factor, or (when
            both are known) a store other than the training store.
        """
        cfg = self.config
        if bands is not None and bands != cfg["bands"]:
            raise InvalidInputError(f"the checkpoint's model takes {cfg['bands']} band(s), the data has {bands}: "
                                    "select the bands it was trained on, or train a model for these")
        if frames is not None and frames > cfg["frames"]:
            raise InvalidInputError(f"the checkpoint's model takes at most {cfg['frames']} LR frame(s), the data has "
                                    f"{frames}: pass frames={cfg['frames']} to the dataset, or train with more")
        if factor is not None and factor != cfg["factor"]:
            raise InvalidInputError(f"the checkpoint's model upsamples by {cfg['factor']}, the data needs factor "
                                    f"{factor}: train a model for factor {factor}")
        if store_checksum is not None and self.store_checksum is not None and store_checksum != self.store_checksum:
            raise InvalidInputError("this store is not the one the model was trained on (checksums differ): "
                                    "evaluate on the training store's test split, or retrain")


def save_checkpoint(path: str | Path, model, *, norm_stats: dict | None = None, store_checksum: str | None = None,
                    extra: dict | None = None, optimizer=None) -> Path:
    """Write a checkpoint atomically (a killed save never leaves a half-written file).

    Parameters
    ----------
    path : path
    model : SRModel
        Any eo-sr model (it has a JSON ``config``).
    norm_stats, store_checksum, extra :
        See :class:`Checkpoint`; ``norm_stats`` and ``extra`` must be JSON-serialisable.
    optimizer : torch.optim.Optimizer, optional
        Its state is saved to resume training.

    Returns
    -------
    Path
    """
    import torch

    from eo_sr import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "eo_sr_version": __version__,
        "config": json.dumps(model.config),
        "norm_stats": json.dumps(norm_stats),
        "store_checksum": store_checksum or "",
        "extra": json.dumps(extra or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    tmp = path.with_name(path.name + ".part")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, *, map_location: str = "cpu") -> Checkpoint:
    """Read a checkpoint with ``torch.load(..., weights_only=True)`` and rebuild its model.

    Raises
    ------
    NotFoundError
        No file at ``path``.
    InvalidInputError
        A corrupt file, or one that is not an eo-sr checkpoint (another tool's, or one
        that needs pickle to be read).
    """
    import pickle

    import torch

    from eo_sr.learn.registry import build_model

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no checkpoint at {path}: give the .pt file a training run wrote (RUN_DIR/best.pt)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise InvalidInputError(f"{path} is not a readable eo-sr checkpoint (corrupt, or it holds objects that "
                                f"only pickle can read, which eo-sr refuses to run): {str(exc)[:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not an eo-sr checkpoint (format {FORMAT!r} expected): train a model with "
                                "eo-sr, or convert the weights into one with save_checkpoint")
    config = json.loads(payload["config"])
    config.setdefault("standardize", False)  # written before the option existed: models ran without it
    model = build_model(**config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InvalidInputError(f"{path}: the weights do not fit the model its config describes: "
                                f"{str(exc)[:200]}") from None
    model.eval()
    return Checkpoint(model=model, config=config, norm_stats=json.loads(payload["norm_stats"]),
                      store_checksum=payload["store_checksum"] or None, eo_sr_version=payload["eo_sr_version"],
                      extra=json.loads(payload["extra"]), optimizer=payload.get("optimizer"))
