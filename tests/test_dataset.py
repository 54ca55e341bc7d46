"""eo_sr.dataset: torch datasets over the patch store, with paired augmentations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eo_sr import demo, matching, patches
from eo_sr.dataset import PatchDataset, paired_augment
from eo_sr.errors import InvalidInputError


@pytest.fixture(scope="module")
def multi_store(tiny_world, tmp_path_factory):
    """Two LR frames per patch: partners within 10 days, best two."""
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION),
                                max_days=10, max_cloud_cover=20, strategy="best_k", k=2)
    pairs = res.pairs[res.pairs.groupby("hr_id")["lr_id"].transform("size") == 2]
    out = tmp_path_factory.mktemp("multi")
    patches.build_patch_store(pairs, {it.id: it for it in tiny_world.items()}, out,
                              config=patches.PatchConfig(frames=2), progress=False)
    return out


def test_single_and_multi_frame_samples(multi_store):
    ds = PatchDataset(multi_store, "train", with_masks=True)
    assert len(ds) > 0
    lr, hr, lr_valid, hr_valid = ds[0]
    assert lr.shape == (2, 4, 32, 32) and hr.shape == (4, 128, 128)
    assert lr_valid.shape == (2, 32, 32) and hr_valid.dtype == torch.bool
    single = PatchDataset(multi_store, "train", frames=1)
    assert single[0][0].shape == (4, 32, 32)
    assert torch.equal(single[0][0], lr[0])
    loader = torch.utils.data.DataLoader(single, batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.shape[1:] == (4, 32, 32) and yb.shape[1:] == (4, 128, 128)


def test_augmentations_keep_lr_and_hr_aligned():
    rng = np.random.default_rng(0)
    hr = rng.random((4, 16, 16)).astype(np.float32)
    lr = hr.reshape(4, 4, 4, 4, 4).mean(axis=(2, 4))
    seen = set()
    for seed in range(40):
        a_lr, a_hr = paired_augment(np.random.default_rng(seed), lr, hr)
        assert np.allclose(a_hr.reshape(4, 4, 4, 4, 4).mean(axis=(2, 4)), a_lr)
        seen.add(a_hr.tobytes())
    assert len(seen) == 8  # the eight symmetries of the square


def test_augmented_dataset_is_deterministic_per_epoch(multi_store):
    ds = PatchDataset(multi_store, "train", augment=True, seed=3)
    a = ds[0][1].clone()
    assert torch.equal(ds[0][1], a)
    changed = False
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        changed |= not torch.equal(ds[0][1], a)
    assert changed


def test_keep_filters_patches_and_errors(multi_store):
    full = PatchDataset(multi_store, "train")
    some = PatchDataset(multi_store, "train", keep=list(full.manifest["patch_id"][:3]))
    assert len(some) == min(3, len(full))
    with pytest.raises(InvalidInputError, match="frames"):
        PatchDataset(multi_store, "train", frames=3)
    with pytest.raises(InvalidInputError, match="split"):
        PatchDataset(multi_store, "training")
    with pytest.raises(InvalidInputError, match="build the store"):
        PatchDataset(multi_store / "nowhere", "train")
