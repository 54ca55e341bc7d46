"""PyTorch datasets over a patch store (see :mod:`eo_sr.patches`).

``PatchDataset`` gives ``(lr, hr)`` pairs: ``lr`` is ``(B, s, s)`` for single-image
SR or ``(T, B, s, s)`` with ``frames=T`` for multi-frame models; ``hr`` is
``(B, S, S)``. Augmentations (flips, 90-degree rotations) are drawn once per sample
and applied identically to LR, HR and their masks, so the pair stays aligned.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eo_sr.errors import InvalidInputError

SPLITS = ("train", "val", "test")


def paired_augment(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """Apply one random flip/rot90 (the 8 symmetries of the square) to every array.

    The last two axes are the spatial ones; LR and HR may differ in size.
    """
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        if flip:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


class PatchDataset:
    """A split of a patch store as a map-style torch dataset.

    Parameters
    ----------
    store : path
        The patch store folder (``manifest.parquet``, ``<split>.zarr``).
    split : {"train", "val", "test"}
    frames : int, optional
        LR frames per sample (default: all the store has; 1 gives ``(B, s, s)``).
    augment : bool
        Random paired flips and rotations (use for training only).
    norm : eo_sr.radiometry.NormStats or (NormStats, NormStats), optional
        Normalisation applied to LR and HR (one for both, or one each).
    keep : sequence of str, optional
        Patch ids to keep (e.g. a QC-filtered view); default all.
    with_masks : bool
        Also return the validity masks.
    seed : int
        Seed of the augmentation stream (per-sample streams derive from it).
    in_memory : bool
        Read the split once into memory (small stores, fast epochs).

    Raises
    ------
    InvalidInputError
        Unknown split, missing store, or more frames asked than stored.
    """

    def __init__(self, store, split: str = "train", *, frames: int | None = None, augment: bool = False,
                 norm=None, keep=None, with_masks: bool = False, seed: int = 0, in_memory: bool = True):
        import pandas as pd
        import zarr

        if split not in SPLITS:
            raise InvalidInputError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
        self.store = Path(store)
        path = self.store / f"{split}.zarr"
        if not path.exists():
            raise InvalidInputError(f"{path} not found: build the store first (eo_sr.patches.build_patch_store "
                                    "or 'eo-sr patches')")
        self.group = zarr.open_group(str(path), mode="r")
        stored = int(self.group.attrs["frames"])
        if frames is not None and not 1 <= frames <= stored:
            raise InvalidInputError(f"the store has {stored} LR frame(s) per patch; frames={frames} is not possible")
        self.frames = frames or stored
        manifest = pd.read_parquet(self.store / "manifest.parquet")
        manifest = manifest[manifest["split"] == split].sort_values("index")
        if keep is not None:
            manifest = manifest[manifest["patch_id"].isin(set(keep))]
        self.manifest = manifest.reset_index(drop=True)
        self.indices = self.manifest["index"].to_numpy()
        self.augment, self.with_masks, self.seed = augment, with_masks, seed
        self.norm = norm if isinstance(norm, tuple) or norm is None else (norm, norm)
        self._epoch = 0
        self._cache = {name: self.group[name][:] for name in ("lr", "hr", "lr_valid", "hr_valid")} \
            if in_memory else None

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        self._epoch = int(epoch)

    def _read(self, name: str, i: int) -> np.ndarray:
        return self._cache[name][i] if self._cache is not None else self.group[name][i]

    def __getitem__(self, idx: int):
        import torch

        i = int(self.indices[idx])
        lr = self._read("lr", i)[: self.frames]
        hr = self._read("hr", i)
        lr_valid = self._read("lr_valid", i)[: self.frames]
        hr_valid = self._read("hr_valid", i)
        if self.norm is not None:
            from eo_sr.radiometry import normalize

            lr = np.stack([normalize(f, self.norm[0]) for f in lr])
            hr = normalize(hr, self.norm[1])
        if self.augment:
            rng = np.random.default_rng([self.seed, self._epoch, i])
            lr, hr, lr_valid, hr_valid = paired_augment(rng, lr, hr, lr_valid, hr_valid)
        if self.frames == 1:
            lr, lr_valid = lr[0], lr_valid[0]
        out = (torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
               torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)))
        if self.with_masks:
            out += (torch.from_numpy(np.ascontiguousarray(lr_valid)), torch.from_numpy(np.ascontiguousarray(hr_valid)))
        return out
