"""Super-resolve the patches of a store with a trained model (a checkpoint), in reflectance.

:func:`predict_split` is what ``eo-sr evaluate`` scores: it scales the inputs as the model was
trained (the checkpoint's statistics), runs it in batches without gradients, and undoes the
scaling, so that outputs are reflectance like the store's HR patches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from eo_sr.errors import InvalidInputError

__all__ = ["Prediction", "check_store_fits", "predict_split"]


@dataclass
class Prediction:
    """SR outputs of one split, with what they are scored against.

    Attributes
    ----------
    sr, hr : ndarray, shape (N, B, H, W)
        Reflectance.
    lr : ndarray, shape (N, B, h, w)
        The LR frame the model should agree with (the closest in time).
    mask : ndarray of bool, shape (N, H, W)
        Valid HR pixels.
    patch_ids : list of str
    manifest : pandas.DataFrame
        The split's rows (in the order of the arrays).
    """

    sr: np.ndarray
    hr: np.ndarray
    lr: np.ndarray
    mask: np.ndarray
    patch_ids: list
    manifest: object


def check_store_fits(checkpoint, store) -> None:
    """Refuse a store the checkpoint's model cannot take.

    Raises
    ------
    InvalidInputError
        Other bands (by name, when the checkpoint knows them), another factor, a model without
        normalisation statistics.
    """
    if not checkpoint.norm_stats:
        raise InvalidInputError("the checkpoint has no normalisation statistics, so its inputs cannot be scaled as "
                                "in training: use a checkpoint that eo-sr's trainer wrote (RUN_DIR/best.pt)")
    trained = checkpoint.norm_stats["lr"].get("bands")
    if trained is not None and list(trained) != list(store.bands):
        raise InvalidInputError(f"the model was trained on bands {list(trained)}, the store holds {list(store.bands)}: "
                                "build the store with those bands (eo-sr patches --bands ...), or train on this one")
    checkpoint.check_input(bands=len(store.bands), factor=store.factor)


def predict_split(checkpoint, store, split: str = "test", *, keep=None, batch_size: int = 16,
                  device: str = "auto", progress: bool = False) -> Prediction:
    """Super-resolve a split of a store with a checkpoint's model.

    Parameters
    ----------
    checkpoint : eo_sr.learn.checkpoint.Checkpoint or path
    store : path or eo_sr.store.PatchStore
    split : {"train", "val", "test"}
    keep : sequence of str, optional
        Patch ids to score (e.g. those QC keeps); default all.
    batch_size : int
    device : {"auto", "cpu", "cuda"}
    progress : bool

    Returns
    -------
    Prediction

    Raises
    ------
    InvalidInputError
        A store the model does not fit (:func:`check_store_fits`), an empty selection, CUDA
        asked for and absent.
    """
    from tqdm.auto import tqdm

    from eo_sr.dataset import Normalize, PatchDataset, collate_samples
    from eo_sr.learn.base import first_valid
    from eo_sr.learn.checkpoint import Checkpoint, load_checkpoint
    from eo_sr.learn.train import batch_inputs, resolve_device
    from eo_sr.store import PatchStore, open_store

    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    store = store if isinstance(store, PatchStore) else open_store(store)
    check_store_fits(ckpt, store)
    device = resolve_device(device)
    frames = min(ckpt.config["frames"], store.frames)
    stats = ckpt.norm_stats["lr"]
    dataset = PatchDataset(store, split, frames=frames, keep=keep,
                           transforms=Normalize(stats, stats))
    if len(dataset) == 0:
        held = [s for s in store.splits() if s != split]
        raise InvalidInputError(f"the store's {split} split has no patch to score"
                                f"{' among those QC keeps' if keep is not None else ''}: score another split "
                                f"(it holds {', '.join(held) or 'none'}; --split), or build a larger store")
    offset = torch.tensor(stats["offset"], dtype=torch.float32)[:, None, None]
    scale = torch.tensor(stats["scale"], dtype=torch.float32)[:, None, None]
    model = ckpt.model.to(device).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)
    parts = {"sr": [], "hr": [], "lr": [], "mask": []}
    with torch.no_grad():
        for batch in tqdm(loader, desc=f"predict: {split}", disable=not progress):
            lr, frame_mask, hr, hr_mask = batch_inputs(batch)
            sr = model(lr.to(device), frame_mask.to(device)).float().cpu()
            parts["sr"].append(sr * scale + offset)
            parts["hr"].append(hr * scale + offset)
            parts["lr"].append(first_valid(lr, frame_mask) * scale + offset)
            parts["mask"].append(hr_mask)
    arrays = {k: torch.cat(v).numpy() for k, v in parts.items()}
    return Prediction(**arrays, patch_ids=list(dataset.manifest["patch_id"]), manifest=dataset.manifest)
