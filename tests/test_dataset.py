"""eo_sr.dataset: torch datasets over the patch store, with paired augmentations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eo_sr import demo, matching, patches
from eo_sr.dataset import Compose, Normalize, PatchDataset, RandomDihedral, collate_samples, paired_augment
from eo_sr.errors import InvalidInputError, NotFoundError
from eo_sr.store import open_store


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


def test_single_and_multi_frame_samples_carry_their_place(multi_store):
    ds = PatchDataset(multi_store, "train")
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) > 0
    sample = ds[0]
    assert sample["lr"].shape == (2, 4, 32, 32) and sample["hr"].shape == (4, 128, 128)
    assert sample["lr_valid"].shape == (2, 32, 32) and sample["hr_valid"].dtype == torch.bool
    row = ds.manifest.iloc[0]
    assert sample["patch_id"] == row["patch_id"] and sample["crs"] == row["crs"] == "EPSG:32636"
    left, bottom, right, top = sample["bounds"]
    assert (right - left, top - bottom) == (320.0, 320.0)  # 32 LR pixels of 10 m
    assert sample["dates"]["hr"].startswith(str(row["hr_datetime"].date()))
    single = PatchDataset(multi_store, "train", frames=1)
    assert single[0]["lr"].shape == (4, 32, 32)
    assert torch.equal(single[0]["lr"], sample["lr"][0])
    # the same patch read through the store: same pixels, same place
    direct = open_store(multi_store).read_patch(sample["patch_id"])
    assert np.array_equal(direct["hr"], sample["hr"].numpy()) and direct["bounds"] == sample["bounds"]


def test_dataloader_with_workers_batches_dict_samples(multi_store):
    ds = PatchDataset(multi_store, "train", frames=1, transforms=RandomDihedral(seed=1))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_samples)
    batch = next(iter(loader))
    assert batch["lr"].shape == (3, 4, 32, 32) and batch["hr"].shape == (3, 4, 128, 128)
    assert len(batch["patch_id"]) == 3 and len(batch["bounds"]) == 3 and batch["crs"] == ["EPSG:32636"] * 3
    # a worker draws the same augmentation as the main process: it depends on the patch only
    for k in range(3):
        assert torch.equal(batch["hr"][k], ds[k]["hr"])


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


def test_random_dihedral_transforms_lr_hr_and_masks_alike():
    hr = torch.rand(4, 16, 16)
    lr = hr.reshape(4, 4, 4, 4, 4).mean(dim=(2, 4))
    valid = torch.zeros(16, 16, dtype=torch.bool)
    valid[:3, :5] = True
    seen = set()
    for i in range(40):
        t = RandomDihedral(seed=i)
        out = t({"lr": lr, "hr": hr, "hr_valid": valid, "patch_id": "p"})
        assert torch.allclose(out["hr"].reshape(4, 4, 4, 4, 4).mean(dim=(2, 4)), out["lr"], atol=1e-6)
        # the mask moved with the image: the pixels it marks are the same pixels
        assert torch.equal(out["hr"][:, out["hr_valid"]].sort(dim=1).values, hr[:, valid].sort(dim=1).values)
        seen.add(out["hr"].numpy().tobytes())
    assert len(seen) == 8


def test_augmented_dataset_is_deterministic_per_epoch(multi_store):
    ds = PatchDataset(multi_store, "train", transforms=Compose([RandomDihedral(seed=3)]))
    a = ds[0]["hr"].clone()
    assert torch.equal(ds[0]["hr"], a)
    changed = False
    for epoch in range(1, 6):
        ds.set_epoch(epoch)
        changed |= not torch.equal(ds[0]["hr"], a)
    assert changed


def test_normalize_from_the_store_statistics(multi_store):
    raw = PatchDataset(multi_store, "train", frames=1)
    norm = PatchDataset(multi_store, "train", frames=1, transforms=Normalize.from_store(multi_store))
    stats = open_store(multi_store).norm_stats()
    offset, scale = (torch.tensor(stats["hr"][k])[:, None, None] for k in ("offset", "scale"))
    assert torch.allclose(norm[0]["hr"], (raw[0]["hr"] - offset) / scale)
    # over the training split's valid HR pixels, about 1 % fall below 0 and 1 % above 1
    hr = torch.stack([norm[i]["hr"] for i in range(len(norm))])
    valid = torch.stack([norm[i]["hr_valid"] for i in range(len(norm))])[:, None].expand_as(hr)
    below, above = (hr[valid] < 0).float().mean(), (hr[valid] > 1).float().mean()
    assert 0.005 < below < 0.02 and 0.005 < above < 0.02, (below, above)


def test_keep_filters_patches_and_errors(multi_store):
    full = PatchDataset(multi_store, "train")
    some = PatchDataset(multi_store, "train", keep=list(full.manifest["patch_id"][:3]))
    assert len(some) == min(3, len(full))
    with pytest.raises(IndexError):
        some[len(some)]
    with pytest.raises(InvalidInputError, match="frames"):
        PatchDataset(multi_store, "train", frames=3)
    with pytest.raises(InvalidInputError, match="split"):
        PatchDataset(multi_store, "training")
    with pytest.raises(NotFoundError, match="eo-sr patches"):
        PatchDataset(multi_store / "nowhere", "train")
