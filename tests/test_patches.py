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
from eo_sr.store import SPLITS, store_checksum
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
    assert set(manifest["split"]) <= set(SPLITS)
    total = 0
    for split in SPLITS:
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
    offset = 1000 if tiny_world.truth["scenes"][item.id]["boa_offset"] else 0
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
    assert store_checksum(copy) == store_checksum(out)
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
    assert store_checksum(out) == store_checksum(reference)
    assert not list(out.rglob("*.part"))


def test_ids_that_look_like_paths_stay_inside_the_store(matched, tmp_path):
    """A STAC id is whoever-published-it's text: `../../escape` or `/tmp/x` must not become a path."""
    res, items = matched
    first = res.pairs.sort_values(["hr_id", "rank"]).iloc[0]
    hr, lr = items[first.hr_id], items[first.lr_id]
    evil = {"../../escape": hr.clone(), str(tmp_path / "abs"): hr.clone()}
    pairs, by_id = [], {lr.id: lr}
    for new_id, item in evil.items():
        item.id = new_id
        by_id[new_id] = item
        pairs.append({"hr_id": new_id, "lr_id": lr.id, "rank": 0})
    out = tmp_path / "store"
    manifest = patches.build_patch_store(pd.DataFrame(pairs), by_id, out, progress=False)
    written = {p.resolve() for p in tmp_path.rglob("*")}
    assert all(out.resolve() in p.parents or p == out.resolve() for p in written), written
    assert not (tmp_path / "abs").exists() and not (tmp_path.parent / "escape").exists()
    shards = sorted(p.name for p in (out / "shards").iterdir())
    assert len(shards) == 2 and all("/" not in s and not s.startswith(".") for s in shards)
    assert set(manifest["hr_id"]) == set(evil)  # the ids themselves are kept as they are


def test_a_failed_pair_is_reported_and_rebuilt_when_its_input_is_fixed(matched, tmp_path):
    """A pair that failed once used to stay failed ("skipped") on every rerun, with exit code 0."""
    import shutil

    res, items = matched
    first = res.pairs.sort_values(["hr_id", "rank"]).iloc[0]
    hr = items[first.hr_id].clone()
    asset = next(a for a in hr.assets.values() if a.href.endswith(".tif"))
    original = asset.href
    moved = tmp_path / "moved.tif"
    shutil.copyfile(original.removeprefix("file://"), moved)
    asset.href = str(tmp_path / "missing.tif")
    by_id = {**items, hr.id: hr}
    pairs = res.pairs[res.pairs.hr_id == first.hr_id]
    out = tmp_path / "store"
    manifest = patches.build_patch_store(pairs, by_id, out, progress=False)
    assert len(manifest) == 0
    [failed] = manifest.attrs["failed"]
    assert failed["hr_id"] == hr.id and "missing.tif" in failed["reason"]
    table = pd.read_parquet(out / "pairs.parquet")
    assert table["status"].str.startswith("failed").all()
    # the same input again: still failed, and said so (not silently "done")
    assert patches.build_patch_store(pairs, by_id, out, progress=False).attrs["failed"]
    # the file appears where the item points: --retry-failed tries again
    shutil.copyfile(moved, tmp_path / "missing.tif")
    retried = patches.build_patch_store(pairs, by_id, out, progress=False, retry_failed=True)
    assert len(retried) > 0 and not retried.attrs["failed"]
    # the item is fixed (points at the real file): its content changed, so the pair is rebuilt
    (tmp_path / "missing.tif").unlink()
    out2 = tmp_path / "store2"
    patches.build_patch_store(pairs, by_id, out2, progress=False)
    asset.href = original
    fixed = patches.build_patch_store(pairs, by_id, out2, progress=False)
    assert len(fixed) == len(retried) and not fixed.attrs["failed"]


def test_replacing_a_stale_store_keeps_the_users_files(store, matched, tmp_path):
    import shutil

    out, manifest = store
    res, items = matched
    copy = tmp_path / "cached"
    shutil.copytree(out, copy)
    record = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**record, "store_version": "1"}))
    (copy / "my_notes.md").write_text("keep me")
    (copy / "qc_decisions.parquet").write_bytes(b"decisions")
    (copy / "norm_mine.json").write_text("{}")
    (copy / "draft.part").write_text("half-written by the user's own tool")
    patches.build_patch_store(res.pairs, items, copy, progress=False, replace_stale=True)
    assert (copy / "norm_mine.json").exists() and (copy / "draft.part").exists()
    assert (copy / "my_notes.md").read_text() == "keep me"
    assert (copy / "qc_decisions.parquet").read_bytes() == b"decisions"
    assert store_checksum(copy) == store_checksum(out)


def test_a_folder_with_someone_elses_config_is_not_a_store(matched, tmp_path):
    res, items = matched
    (tmp_path / "config.json").write_text(json.dumps({"my": "settings"}))
    (tmp_path / "data.csv").write_text("1,2,3")
    for replace in (False, True):
        with pytest.raises(InvalidInputError, match="not an eo-sr patch store"):
            patches.build_patch_store(res.pairs, items, tmp_path, progress=False, replace_stale=replace)
    assert (tmp_path / "data.csv").read_text() == "1,2,3"
    assert json.loads((tmp_path / "config.json").read_text()) == {"my": "settings"}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_pairs_must_be_positive(matched, tmp_path, bad):
    res, items = matched
    with pytest.raises(InvalidInputError, match="max_pairs"):
        patches.build_patch_store(res.pairs, items, tmp_path / "s", progress=False, max_pairs=bad)


def test_bad_config():
    with pytest.raises(InvalidInputError, match="integer"):
        patches.PatchConfig(factor=2.5)
    with pytest.raises(InvalidInputError, match="sum"):
        patches.PatchConfig(split_fractions=(0.5, 0.5, 0.5))
    with pytest.raises(InvalidInputError, match="no blue"):
        patches.PatchConfig(bands=("red", "nir"))
    assert patches.PatchConfig(bands=("red", "nir"), hr_cloud_threshold=None).factor is None


def _as(item, *, collection, gsd=None):
    """A copy of a demo item that claims to be of another collection (another sensor)."""
    out = item.clone()
    out.collection_id = collection
    if gsd is not None:
        out.properties["gsd"] = gsd
    return out


def test_geometry_and_units_come_from_the_sensors(matched):
    """Finding 5 of issue #12: lr_res, the factor and the cloud threshold's units are read, not assumed."""
    res, items = matched
    hr_id, lr_id = res.pairs.iloc[0][["hr_id", "lr_id"]]
    hr, lr = items[hr_id], items[lr_id]
    config, lr_res = patches.resolve_config([hr], lr, patches.PatchConfig())
    assert (config.factor, lr_res) == (4, 10.0)  # demo-lr 10 m / demo-hr 2.5 m
    # a 20 m LR band is not silently resampled to 10 m
    s2 = _as(lr, collection="sentinel-2-l2a")
    with pytest.raises(InvalidInputError, match="finer than the 20 m"):
        patches.resolve_config([hr], s2, patches.PatchConfig(bands=("blue", "swir16")), lr_res=10)
    # the factor follows the HR scene's GSD; one far from an integer ratio says what to do
    assert patches.resolve_config([_as(hr, collection="demo-hr", gsd=5.0)], lr, patches.PatchConfig())[0].factor == 2
    with pytest.raises(InvalidInputError, match="pass factor="):
        patches.resolve_config([_as(hr, collection="demo-hr", gsd=3.0)], lr, patches.PatchConfig())
    with pytest.raises(InvalidInputError, match="different factors"):
        patches.resolve_config([hr, _as(hr, collection="demo-hr", gsd=5.0)], lr, patches.PatchConfig())
    assert patches.resolve_config([_as(hr, collection="demo-hr", gsd=3.0)], lr,
                                  patches.PatchConfig(factor=4))[0].factor == 4
    # a reflectance threshold cannot be applied to 8-bit digital numbers (NAIP): refused, not every patch dropped
    naip = _as(hr, collection="naip", gsd=2.5)
    naip.assets["image"] = naip.assets["red"]
    with pytest.raises(InvalidInputError, match="hr_cloud_threshold=0.25 is a blue reflectance.*naip"):
        patches.resolve_config([naip], lr, patches.PatchConfig())
    assert patches.resolve_config([naip], lr, patches.PatchConfig(hr_cloud_threshold=None))[0].factor == 4


@pytest.fixture(scope="module")
def multi_frame(tiny_world, tmp_path_factory):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION),
                                **demo.MULTI_FRAME_CRITERIA)
    out = tmp_path_factory.mktemp("t8")
    manifest = patches.build_patch_store(res.pairs, {it.id: it for it in tiny_world.items()}, out,
                                         config=patches.PatchConfig(lr_size=16, frames=8), progress=False)
    return res, out, manifest


def test_multi_frame_patches_order_frames_by_time_and_pad_missing_partners(multi_frame):
    from eo_sr.store import open_store

    res, out, manifest = multi_frame
    assert len(manifest) > 20
    for row in manifest.itertuples():
        days = np.abs(row.lr_delta_days)
        assert (np.diff(days) >= 0).all() and len(days) == len(row.lr_ids) <= 8
        assert days[0] == pytest.approx(abs(row.delta_days))
        chosen = res.pairs[res.pairs.hr_id == row.hr_id]
        assert sorted(row.lr_ids) == sorted(chosen["lr_id"])  # the strategy's partners, reordered
    store = open_store(out)
    group = store.arrays("train")
    rows = store.rows("train")
    n_frames = rows["lr_ids"].map(len).to_numpy()
    valid = group["lr_valid"][:][rows["index"].to_numpy()]
    assert (n_frames < 8).any(), "the tiny world should have HR scenes with fewer than 8 revisits"
    for v, n in zip(valid, n_frames):
        assert not v[n:].any()  # padded frames carry no valid pixel
        assert v[0].all()  # the reference frame is whole over a kept patch
    partial = valid[:, 1:].mean(axis=(2, 3))
    assert ((partial > 0) & (partial < 1)).any(), "cloudy revisits are masked per pixel, not dropped"
    sample = store.place(rows.iloc[0])
    assert len(sample["dates"]["lr"]) == n_frames[0]
