"""eo_sr.patches: aligned tiles, filters, spatial splits, an atomic and resumable store."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import zarr

from eo_sr import demo, matching, patches
from eo_sr.errors import InvalidInputError

BUILD = """
import sys
from eo_sr import demo, matching, patches
world = demo.open_world(sys.argv[1])
items = {it.id: it for it in world.items()}
res = matching.match_scenes(world.items("demo-hr"), world.items("demo-s2-l2a"))
patches.build_patch_store(res.pairs, items, sys.argv[2], progress=False)
"""


@pytest.fixture(scope="module")
def matched(tiny_world):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION))
    return res, {it.id: it for it in tiny_world.items()}


@pytest.fixture(scope="module")
def store(matched, tmp_path_factory):
    res, items = matched
    out = tmp_path_factory.mktemp("store")
    manifest = patches.build_patch_store(res.pairs, items, out, progress=False)
    return out, manifest


def test_patches_are_aligned_and_match_their_lr(matched, tiny_world):
    res, items = matched
    hr_id = next(k for k, v in tiny_world.truth["scenes"].items() if v.get("role") == "single")
    lr_id = res.pairs.set_index("hr_id").loc[hr_id, "lr_id"]
    cfg = patches.PatchConfig()
    cut = patches.cut_pair(items[hr_id], [items[lr_id]], cfg)
    assert cut.lr.shape[1:] == (1, 4, 32, 32) and cut.hr.shape[1:] == (4, 128, 128)
    assert len(cut.lr) >= 1
    # averaging HR by the factor lands on the LR pixels: strongly correlated, same level after matching
    down = cut.hr.reshape(len(cut.hr), 4, 32, 4, 32, 4).mean(axis=(3, 5))
    lr = cut.lr[:, 0]
    for b in range(4):
        corr = np.corrcoef(down[:, b].ravel(), lr[:, b].ravel())[0, 1]
        assert corr > 0.9, (b, corr)
        assert abs(down[:, b].mean() - lr[:, b].mean()) < 0.01
    # the bounds of every patch are whole LR pixels of the LR scene's grid
    assert np.allclose(cut.bounds % 10, 0)
    assert np.allclose(cut.bounds[:, 2] - cut.bounds[:, 0], 320)


def test_cloudy_and_nodata_tiles_are_dropped_and_counted(matched, tiny_world):
    res, items = matched
    hr_id = next(k for k, v in tiny_world.truth["scenes"].items() if v.get("role") == "cloudy_hr")
    lr_id = res.pairs.set_index("hr_id").loc[hr_id, "lr_id"]
    cut = patches.cut_pair(items[hr_id], [items[lr_id]], patches.PatchConfig(lr_size=16))
    assert cut.info["dropped_hr_cloud"] > 0
    assert cut.info["candidates"] == len(cut.lr) + sum(v for k, v in cut.info.items() if k.startswith("dropped"))
    assert all(v.mean() > 0.95 for v in cut.hr_valid)


def test_store_layout_and_manifest(store, matched):
    out, manifest = store
    assert set(manifest["split"]) <= set(patches.SPLITS)
    total = 0
    for split in patches.SPLITS:
        group = zarr.open_group(str(out / f"{split}.zarr"), mode="r")
        n = int((manifest["split"] == split).sum())
        assert group["lr"].shape == (n, 1, 4, 32, 32) and group["hr"].shape == (n, 4, 128, 128)
        total += n
    assert total == len(manifest) > 8
    for col in ("patch_id", "pair_id", "hr_id", "lr_ids", "hr_datetime", "lr_datetime", "delta_days",
                "left", "bottom", "right", "top", "crs"):
        assert col in manifest.columns
    assert manifest["patch_id"].is_unique and (manifest["crs"] == "EPSG:32636").all()
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert set(pairs["hr_id"]) == set(matched[0].pairs["hr_id"])


def test_splits_are_spatial_blocks(store):
    _, manifest = store
    cfg = patches.PatchConfig()
    block = (manifest["left"] // cfg.split_block_m).astype(int).astype(str) + "_" + \
        (manifest["bottom"] // cfg.split_block_m).astype(int).astype(str)
    centre_block = ((manifest["left"] + manifest["right"]) / 2 // cfg.split_block_m).astype(int).astype(str) + \
        "_" + ((manifest["bottom"] + manifest["top"]) / 2 // cfg.split_block_m).astype(int).astype(str)
    assert manifest.groupby(centre_block)["split"].nunique().max() == 1
    assert len(set(block)) > 1


def test_lr_pixels_are_the_harmonised_dn(store, tiny_world):
    """The BOA offset and the scale are applied exactly once on the way into the store."""
    import rasterio

    out, manifest = store
    row = manifest.iloc[0]
    item = {it.id: it for it in tiny_world.items(demo.LR_COLLECTION)}[row["lr_ids"][0]]
    group = zarr.open_group(str(out / f"{row['split']}.zarr"), mode="r")
    lr = group["lr"][int(row["index"])][0]
    offset = 1000 if item.properties["earthsearch:boa_offset_applied"] else 0
    with rasterio.open(item.assets["red"].href.removeprefix("file://")) as src:
        window = rasterio.windows.from_bounds(row["left"], row["bottom"], row["right"], row["top"],
                                              src.transform)
        dn = src.read(1, window=window).astype(np.float32)
    assert np.allclose(lr[2], (dn - offset) * np.float32(1e-4), atol=1e-6)


def test_rerun_skips_done_pairs_and_other_config_is_refused(store, matched):
    out, manifest = store
    res, items = matched
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    again = patches.build_patch_store(res.pairs, items, out, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == before
    pd.testing.assert_frame_equal(again, manifest)
    with pytest.raises(InvalidInputError, match="another configuration"):
        patches.build_patch_store(res.pairs, items, out, config=patches.PatchConfig(lr_size=16), progress=False)


def test_a_store_of_an_older_version_is_refused_or_replaced(store, matched, tmp_path):
    import shutil

    out, manifest = store
    res, items = matched
    copy = tmp_path / "cached"
    shutil.copytree(out, copy)
    assert patches.is_current(copy)
    record = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**record, "store_version": "1"}))
    assert not patches.is_current(copy)
    with pytest.raises(InvalidInputError, match="another configuration or eo-sr version"):
        patches.build_patch_store(res.pairs, items, copy, progress=False)
    rebuilt = patches.build_patch_store(res.pairs, items, copy, progress=False, replace_stale=True)
    assert patches.is_current(copy)
    assert patches.store_checksum(copy) == patches.store_checksum(out)
    pd.testing.assert_frame_equal(rebuilt, manifest)


def test_killed_build_resumes_to_the_same_store(store, tiny_world, tmp_path):
    reference, _ = store
    out = tmp_path / "killed"
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-c", BUILD, str(tiny_world.root), str(out)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "shards").glob("*.npz"))) < 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((out / "shards").glob("*.npz"))
    assert 2 <= len(done) < 6, "the kill came too late to test resuming"
    assert not (out / "manifest.parquet").exists()
    subprocess.run([sys.executable, "-c", BUILD, str(tiny_world.root), str(out)], env=env, check=True)
    assert patches.store_checksum(out) == patches.store_checksum(reference)
    assert not list(out.rglob("*.part"))


def test_bad_config():
    with pytest.raises(InvalidInputError, match="integer"):
        patches.PatchConfig(factor=2.5)
    with pytest.raises(InvalidInputError, match="sum"):
        patches.PatchConfig(split_fractions=(0.5, 0.5, 0.5))
