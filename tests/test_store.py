"""eo_sr.store: one owner of the patch store's schema, writes, readers, statistics, checksum."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from eo_sr import demo, matching, patches, store
from eo_sr.errors import InvalidInputError, NotFoundError


@pytest.fixture(scope="module")
def built(tiny_world, tmp_path_factory):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION))
    out = tmp_path_factory.mktemp("store")
    manifest = patches.build_patch_store(res.pairs, {it.id: it for it in tiny_world.items()}, out, progress=False)
    return out, manifest


def test_open_store_reads_the_schema(built):
    out, manifest = built
    s = store.open_store(out)
    assert s.bands == ["blue", "green", "red", "nir"] and s.factor == 4 and s.frames == 1 and s.lr_size == 32
    assert list(s.manifest.columns) == list(store.MANIFEST_COLUMNS)
    pd.testing.assert_frame_equal(s.manifest, manifest)
    for split in s.splits():
        g = s.arrays(split)
        n = len(s.rows(split))
        assert g["lr"].shape == (n, 1, 4, 32, 32) and g["hr"].shape == (n, 4, 128, 128)
        assert {name: str(g[name].dtype) for name in store.ARRAYS} == {k: v[0] for k, v in store.ARRAYS.items()}
    assert (s.report["status"] == "ok").all() and s.failed_pairs().empty


def test_read_patch_by_id_carries_crs_bounds_and_dates(built, tiny_world):
    out, manifest = built
    s = store.open_store(out)
    row = manifest.iloc[len(manifest) // 2]
    patch = s.read_patch(row["patch_id"])
    g = s.arrays(row["split"])
    assert np.array_equal(patch["hr"], g["hr"][int(row["index"])])
    assert patch["lr"].shape == (1, 4, 32, 32) and patch["hr_valid"].dtype == bool
    assert patch["crs"] == "EPSG:32636" and patch["bounds"] == (row.left, row.bottom, row.right, row.top)
    hr_item = next(it for it in tiny_world.items(demo.HR_COLLECTION) if it.id == row["hr_id"])
    assert pd.Timestamp(patch["dates"]["hr"]) == pd.Timestamp(hr_item.datetime)
    with pytest.raises(NotFoundError, match="no patch"):
        s.read_patch("nope")


def test_the_build_saves_the_training_split_statistics(built):
    from eo_sr.radiometry import NormStats, compute_norm_stats

    out, _ = built
    s = store.open_store(out)
    saved = s.norm_stats()
    train = s.arrays("train")
    expected = compute_norm_stats(list(train["hr"][:]), mask=list(train["hr_valid"][:]), method="percentile",
                                  percentiles=(1, 99))
    hr = NormStats.from_dict(saved["hr"])
    assert np.allclose(hr.offset, expected.offset) and np.allclose(hr.scale, expected.scale)
    assert hr.bands == ("blue", "green", "red", "nir") and set(saved) == {"lr", "hr"}


@pytest.mark.parametrize("damage, error, words", [
    ("missing", NotFoundError, "no patch store"),
    ("no_config", NotFoundError, "not a patch store"),
    ("foreign_config", InvalidInputError, "not an eo-sr patch store"),
    ("old_version", InvalidInputError, "another eo-sr version"),
    ("no_manifest", NotFoundError, "incomplete"),
    ("short_split", NotFoundError, "incomplete"),
])
def test_open_store_names_what_is_wrong(built, tmp_path, damage, error, words):
    out, _ = built
    copy = tmp_path / "s"
    if damage != "missing":
        shutil.copytree(out, copy)
    if damage == "no_config":
        (copy / "config.json").unlink()
    elif damage == "foreign_config":
        (copy / "config.json").write_text(json.dumps({"theme": "dark"}))
    elif damage == "old_version":
        record = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**record, "store_version": "1"}))
    elif damage == "no_manifest":
        (copy / "manifest.parquet").unlink()
    elif damage == "short_split":
        m = pd.read_parquet(copy / "manifest.parquet")
        extra = m[m.split == "train"].iloc[:1].assign(index=10_000, patch_id="extra")
        pd.concat([m, extra]).to_parquet(copy / "manifest.parquet")
    with pytest.raises(error, match=words):
        store.open_store(copy)


def test_qc_of_a_missing_store_is_a_clear_error(tmp_path):
    from eo_sr import qc

    with pytest.raises(NotFoundError, match="eo-sr patches"):
        qc.run_qc(tmp_path / "none", progress=False)


def test_checksum_sees_one_changed_pixel(built, tmp_path):
    import zarr

    out, _ = built
    copy = tmp_path / "s"
    shutil.copytree(out, copy)
    assert store.store_checksum(copy) == store.store_checksum(out) == store.open_store(out).checksum()
    g = zarr.open_group(str(copy / "train.zarr"), mode="r+")
    g["hr"][0, 0, 0, 0] = g["hr"][0, 0, 0, 0] + 1e-3
    assert store.store_checksum(copy) != store.store_checksum(out)
