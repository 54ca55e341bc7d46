"""PyTorch datasets over a patch store (see :mod:`eo_sr.store`), in torchgeo's style.

A sample is a dict that carries its place, as torchgeo's samples do, so that tiled
inference and the land-cover experiment can put every output back on the map::

    {"lr": (T, B, s, s) or (B, s, s), "hr": (B, S, S), "lr_valid": ..., "hr_valid": ...,
     "patch_id": str, "crs": "EPSG:32636", "bounds": (left, bottom, right, top),
     "dates": {"hr": iso, "lr": [iso, ...]}, "bands": [...]}

Transforms are callables on that dict (``transforms=Compose([Normalize.from_store(store),
RandomDihedral(seed=0)])``), applied to LR, HR and the masks alike so that the pair stays
aligned. :func:`collate_samples` batches samples for a ``DataLoader`` (with workers too).

References
----------
.. [1] A. J. Stewart et al., "TorchGeo: deep learning with geospatial data", SIGSPATIAL 2022:
   samples as dicts with ``crs`` and ``bounds``; transforms on samples; ``stack_samples``.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from eo_sr.errors import InvalidInputError
from eo_sr.store import ARRAYS, PatchStore, open_store

__all__ = ["PatchDataset", "Compose", "Normalize", "RandomDihedral", "collate_samples", "paired_augment"]

Sample = dict


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


class Compose:
    """Apply transforms in order; ``set_epoch`` reaches every transform that has one."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for t in self.transforms:
            sample = t(sample)
        return sample

    def set_epoch(self, epoch: int) -> None:
        for t in self.transforms:
            if hasattr(t, "set_epoch"):
                t.set_epoch(epoch)

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class Normalize:
    """``(x - offset) / scale`` per band on ``lr`` and ``hr`` (optionally clipped to [0, 1]).

    Parameters
    ----------
    lr, hr : eo_sr.radiometry.NormStats or dict
        Statistics (or their ``to_dict()``) for each side; :meth:`from_store` reads the
        training split's statistics that the store build saved.
    clip : bool
        Clip to [0, 1] (outliers beyond the 1st/99th percentiles).
    """

    def __init__(self, lr, hr, *, clip: bool = False):
        self.lr, self.hr = (self._arrays(s) for s in (lr, hr))
        self.clip = clip

    @staticmethod
    def _arrays(stats) -> tuple[torch.Tensor, torch.Tensor]:
        d = stats if isinstance(stats, dict) else stats.to_dict()
        offset = torch.tensor(d["offset"], dtype=torch.float32)
        scale = torch.tensor(d["scale"], dtype=torch.float32)
        return offset, scale

    @classmethod
    def from_store(cls, store, *, clip: bool = False) -> Normalize:
        store = store if isinstance(store, PatchStore) else open_store(store)
        stats = store.norm_stats()
        return cls(stats["lr"], stats["hr"], clip=clip)

    def _apply(self, x: torch.Tensor, stats) -> torch.Tensor:
        offset, scale = stats
        if x.shape[-3] != offset.numel():
            raise InvalidInputError(f"Normalize has {offset.numel()} band(s) of statistics but the sample has "
                                    f"{x.shape[-3]}")
        y = (x - offset[:, None, None]) / scale[:, None, None]
        return y.clamp_(0, 1) if self.clip else y

    def __call__(self, sample: Sample) -> Sample:
        return {**sample, "lr": self._apply(sample["lr"], self.lr), "hr": self._apply(sample["hr"], self.hr)}

    def __repr__(self) -> str:
        return f"Normalize(clip={self.clip})"


class RandomDihedral:
    """One of the 8 symmetries of the square (rotations by 90 degrees, flips), the same for
    LR, HR and their masks.

    The draw depends on ``seed``, the epoch (:meth:`set_epoch`) and the patch id only, so
    a sample is augmented the same way whichever worker loads it.
    """

    def __init__(self, *, seed: int = 0):
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, sample: Sample) -> Sample:
        key = zlib.crc32(str(sample.get("patch_id", "")).encode())
        rng = np.random.default_rng([self.seed, self.epoch, key])
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        out = dict(sample)
        for name in ARRAYS:
            if name in out:
                x = torch.rot90(out[name], k, dims=(-2, -1))
                out[name] = (x.flip(-1) if flip else x).contiguous()
        return out

    def __repr__(self) -> str:
        return f"RandomDihedral(seed={self.seed})"


class PatchDataset(torch.utils.data.Dataset):
    """A split of a patch store as a map-style torch dataset of dict samples.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
        The patch store (opened and validated with :func:`eo_sr.store.open_store`).
    split : {"train", "val", "test"}
    frames : int, optional
        LR frames per sample (default: all the store has; 1 gives ``lr`` of ``(B, s, s)``).
    transforms : callable, optional
        Applied to each sample dict (e.g. :class:`Compose` of :class:`Normalize` and
        :class:`RandomDihedral`).
    keep : sequence of str, optional
        Patch ids to keep (e.g. ``eo_sr.qc.keep_ids(table)``); default all.
    in_memory : bool
        Read the split once into memory (small stores, fast epochs).

    Raises
    ------
    InvalidInputError
        Unknown split, or more frames asked than stored.
    NotFoundError
        No (complete) store at ``store``.
    """

    def __init__(self, store, split: str = "train", *, frames: int | None = None,
                 transforms: Callable[[Sample], Sample] | None = None, keep=None, in_memory: bool = True):
        self.store = store if isinstance(store, PatchStore) else open_store(store)
        rows = self.store.rows(split)
        self.split = split
        stored = self.store.frames
        if frames is not None and not 1 <= frames <= stored:
            raise InvalidInputError(f"the store has {stored} LR frame(s) per patch; frames={frames} is not possible")
        self.frames = frames or stored
        if keep is not None:
            rows = rows[rows["patch_id"].isin(set(keep))].reset_index(drop=True)
        self.manifest = rows
        self.indices = rows["index"].to_numpy()
        self.transforms = transforms
        self._places = [self.store.place(r) for _, r in rows.iterrows()]
        self._group = self.store.arrays(split)
        self._cache = {name: self._group[name][:] for name in ARRAYS} if in_memory else None

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per epoch)."""
        if hasattr(self.transforms, "set_epoch"):
            self.transforms.set_epoch(epoch)

    def _read(self, name: str, i: int) -> np.ndarray:
        return self._cache[name][i] if self._cache is not None else self._group[name][i]

    def __getitem__(self, idx: int) -> Sample:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} patches")
        i = int(self.indices[idx])
        lr = self._read("lr", i)[: self.frames]
        lr_valid = self._read("lr_valid", i)[: self.frames]
        if self.frames == 1:
            lr, lr_valid = lr[0], lr_valid[0]
        sample = {"lr": torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
                  "hr": torch.from_numpy(np.ascontiguousarray(self._read("hr", i), dtype=np.float32)),
                  "lr_valid": torch.from_numpy(np.ascontiguousarray(lr_valid)),
                  "hr_valid": torch.from_numpy(np.ascontiguousarray(self._read("hr_valid", i))),
                  **self._places[idx]}
        sample["dates"] = {"hr": sample["dates"]["hr"], "lr": list(sample["dates"]["lr"])}
        return self.transforms(sample) if self.transforms is not None else sample


def collate_samples(samples: Sequence[Sample]) -> Sample:
    """Batch dict samples for ``torch.utils.data.DataLoader(collate_fn=collate_samples)``.

    Tensors are stacked along a new first axis; everything else (ids, CRS, bounds, dates,
    bands) becomes a list with one entry per sample, as torchgeo's ``stack_samples`` does.
    """
    if not samples:
        raise InvalidInputError("collate_samples got no samples")
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out
