"""eo_sr.wald: a patch store from one HR image by Wald's protocol, on real Sentinel-2 pixels."""
from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import xarray as xr

from eo_sr import radiometry
from eo_sr.errors import InvalidInputError, NotFoundError
from eo_sr.store import MANIFEST_COLUMNS, SPLITS, open_store, store_checksum
from eo_sr.wald import SENTINEL2_SNR, real_sentinel2, split_blocks, wald_store

BANDS = ("blue", "green", "red", "nir")


@pytest.fixture(scope="module")
def s2():
    from eo_sr.loading import xrspatial_sentinel2_folder

    if xrspatial_sentinel2_folder(BANDS) is None:
        pytest.fail("xarray-spatial is not installed (its real Sentinel-2 bands are the data of these tests): "
                    "pip install 'xarray-spatial>=0.5' (eo-sr's dev extra)", pytrace=False)
    return real_sentinel2()


@pytest.fixture(scope="module")
def s2_store(s2, tmp_path_factory):
    out = tmp_path_factory.mktemp("wald") / "store"
    manifest = wald_store(s2, out, factor=4, lr_size=8)
    return out, manifest


def synthetic(h=64, w=96, *, bands=BANDS, res=10.0, seed=1):
    rng = np.random.default_rng(seed)
    data = (0.05 + 0.3 * rng.random((len(bands), h, w))).astype(np.float32)
    image = xr.DataArray(data, dims=("band", "y", "x"),
                         coords={"band": list(bands), "y": 5_000_000 - res / 2 - res * np.arange(h),
                                 "x": 300_000 + res / 2 + res * np.arange(w)}, name="synthetic")
    return image.rio.write_crs("EPSG:32633")


# ----------------------------------------------------------------------------- the real image
def test_real_sentinel2_is_reflectance_on_its_grid(s2):
    assert s2.dims == ("band", "y", "x") and s2.shape == (4, 200, 300) and s2.dtype == np.float32
    assert list(s2["band"].values) == list(BANDS)
    assert s2.rio.crs.to_epsg() == 32719
    assert tuple(s2.rio.transform())[:6] == (10.0, 0.0, 600000.0, 0.0, -10.0, 4700020.0)
    # DN / 10000 with no BOA offset: dry steppe, every pixel positive and below 0.35
    med = s2.median(("y", "x")).values
    np.testing.assert_allclose(med, [0.1269, 0.1127, 0.1318, 0.1532], atol=1e-4)
    assert 0.06 < float(s2.min()) and float(s2.max()) < 0.35
    assert s2.attrs["units"] == "reflectance"


def test_real_sentinel2_refuses_unknown_and_mixed_bands(s2):
    with pytest.raises(InvalidInputError, match="unknown band"):
        real_sentinel2(("blue", "cyan"))
    with pytest.raises(InvalidInputError, match="10 m and 20 m"):
        real_sentinel2(("red", "swir1"))
    swir = real_sentinel2(("swir1", "swir2"))
    assert swir.rio.resolution() == (20.0, -20.0)


def test_real_sentinel2_without_xarray_spatial_says_to_install_the_dev_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xrspatial" else real(name, *a))
    with pytest.raises(NotFoundError, match=r"dev extra"):
        real_sentinel2()


# ----------------------------------------------------------------------------- the store
def test_the_store_opens_with_the_real_pixels_as_hr(s2, s2_store):
    out, manifest = s2_store
    store = open_store(out)
    assert list(store.manifest.columns) == list(MANIFEST_COLUMNS)
    assert store.factor == 4 and store.lr_size == 8 and store.frames == 1 and store.bands == list(BANDS)
    assert store.lr_res == 40.0 and store.record["histogram_match"] is False
    assert "no histogram matching" in store.record["radiometry"]
    assert len(manifest) == 6 * 9  # 50 x 75 LR pixels: 6 x 9 windows of 8
    assert store.splits() == list(SPLITS)
    for split in SPLITS:
        g = store.arrays(split)
        n = int((manifest["split"] == split).sum())
        assert g["lr"].shape == (n, 1, 4, 8, 8) and g["hr"].shape == (n, 4, 32, 32)
        assert np.asarray(g["lr_valid"]).all() and np.asarray(g["hr_valid"]).all()
    # HR is the real 10 m pixels at the patch's bounds
    row = manifest.iloc[17]
    patch = store.read_patch(row["patch_id"])
    where = s2.sel(x=slice(row["left"], row["right"]), y=slice(row["top"], row["bottom"]))
    assert where.shape == (4, 32, 32)
    np.testing.assert_array_equal(patch["hr"], where.values)
    assert patch["crs"] == "EPSG:32719" and patch["bounds"][2] - patch["bounds"][0] == 8 * 40.0
    assert set(store.norm_stats()) == {"lr", "hr"}
    assert store.report["status"].tolist() == ["ok"]


def test_lr_is_exactly_the_degraded_hr_patch(s2_store):
    out, manifest = s2_store
    store = open_store(out)
    for pid in manifest["patch_id"].iloc[::7]:
        p = store.read_patch(pid)
        expected = radiometry.degrade(p["hr"], factor=4, sensor="sentinel-2-l2a")
        np.testing.assert_array_equal(p["lr"][0], expected)
    # and it is blurred, not the plain block mean
    mean = p["hr"].reshape(4, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(p["lr"][0] - mean).max() > 1e-4


def test_overlapping_windows_in_larger_blocks(s2, tmp_path):
    """Blocks of 16 LR pixels, windows of 8 every 4: a window is the degraded block cut, and
    without blur the degraded window itself."""
    for sigma in (0.0, None):
        out = tmp_path / f"s{sigma}"
        manifest = wald_store(s2, out, factor=4, lr_size=8, stride=4, split_block=16, psf_sigma=sigma)
        assert len(manifest) == 3 * 4 * 9  # 3 x 4 blocks, 3 x 3 windows each
        store = open_store(out)
        row = manifest[(manifest["row"] == 20) & (manifest["col"] == 36)].iloc[0]  # block (1, 2), offset (4, 4)
        p = store.read_patch(row["patch_id"])
        if sigma == 0.0:
            np.testing.assert_array_equal(p["lr"][0], radiometry.degrade(p["hr"], factor=4, psf_sigma=0))
        else:
            block = s2.values[:, 64:128, 128:192]
            lr = radiometry.degrade(block, factor=4, sensor="sentinel-2-l2a")
            np.testing.assert_array_equal(p["lr"][0], lr[:, 4:12, 4:12])


def test_splits_are_spatially_disjoint(s2, tmp_path):
    manifest = wald_store(s2, tmp_path / "s", factor=4, lr_size=8, stride=4, split_block=16)
    boxes = manifest[["left", "bottom", "right", "top", "split"]].to_numpy()
    for a, b in itertools.combinations(boxes, 2):
        if a[4] != b[4]:
            overlap_x = min(a[2], b[2]) - max(a[0], b[0])
            overlap_y = min(a[3], b[3]) - max(a[1], b[1])
            assert overlap_x <= 0 or overlap_y <= 0, (a, b)
    # every block is in one split, and overlapping windows (one block) share it
    blocks = manifest.assign(by=manifest["row"] // 16, bx=manifest["col"] // 16)
    assert (blocks.groupby(["by", "bx"])["split"].nunique() == 1).all()
    assert set(manifest["split"]) == set(SPLITS)


def test_split_blocks_follow_the_fractions():
    labels = split_blocks(20, (0.7, 0.15, 0.15), seed=3)
    assert sorted(labels.count(s) for s in SPLITS) == [3, 3, 14]
    assert split_blocks(20, seed=3) == labels and split_blocks(20, seed=4) != labels
    assert sorted(split_blocks(3)) == ["test", "train", "val"]  # each split gets a block
    assert split_blocks(2, (1.0, 0.0, 0.0)) == ["train", "train"]


def test_patch_dataset_and_qc_read_it(s2_store):
    from eo_sr import qc
    from eo_sr.dataset import PatchDataset, collate_samples

    out, manifest = s2_store
    ds = PatchDataset(out, "train")
    assert len(ds) == int((manifest["split"] == "train").sum())
    sample = ds[0]
    assert tuple(sample["lr"].shape) == (4, 8, 8) and tuple(sample["hr"].shape) == (4, 32, 32)
    assert sample["crs"] == "EPSG:32719"
    batch = collate_samples([ds[i] for i in range(3)])
    assert tuple(batch["hr"].shape) == (3, 4, 32, 32)
    table = qc.run_qc(out, progress=False)
    assert len(table) == len(manifest) and table["ssim"].min() > 0.8


def test_noise_is_seeded(s2, tmp_path):
    snr = [SENTINEL2_SNR[b] for b in BANDS]
    a = wald_store(s2, tmp_path / "a", factor=4, lr_size=8, snr=snr, seed=5)
    wald_store(s2, tmp_path / "b", factor=4, lr_size=8, snr=snr, seed=5)
    wald_store(s2, tmp_path / "c", factor=4, lr_size=8, snr=snr, seed=6, split_fractions=(0.7, 0.15, 0.15))
    wald_store(s2, tmp_path / "clean", factor=4, lr_size=8, seed=5)
    assert store_checksum(tmp_path / "a") == store_checksum(tmp_path / "b")
    pid = a["patch_id"].iloc[0]
    noisy, clean = (open_store(tmp_path / n).read_patch(pid)["lr"][0] for n in ("a", "clean"))
    residual = (noisy - clean).reshape(4, -1)
    expected = clean.reshape(4, -1).mean(axis=1) / np.array(snr)  # degrade: sigma = band mean / snr
    np.testing.assert_allclose(residual.std(axis=1), expected, rtol=0.35)
    other = open_store(tmp_path / "c")
    assert other.read_patch(pid)["lr"][0].tobytes() != noisy.tobytes()


def test_a_rerun_gives_the_same_store_and_another_image_is_refused(tmp_path):
    image = synthetic()
    wald_store(image, tmp_path / "s", factor=2, lr_size=8)
    first = store_checksum(tmp_path / "s")
    wald_store(image, tmp_path / "s", factor=2, lr_size=8)
    assert store_checksum(tmp_path / "s") == first
    with pytest.raises(InvalidInputError, match="another configuration"):
        wald_store(synthetic(seed=2), tmp_path / "s", factor=2, lr_size=8)
    wald_store(synthetic(seed=2), tmp_path / "s", factor=2, lr_size=8, replace_stale=True)
    assert store_checksum(tmp_path / "s") != first


def test_nan_pixels_are_masked_and_their_windows_dropped(tmp_path):
    image = synthetic()  # 32 x 48 LR pixels at factor 2: 4 x 6 windows of 8
    image.values[1, 5, 7] = np.nan  # in window (0, 0)
    mask = np.ones((64, 96), bool)
    mask[40, 70] = False  # in window (2, 4)
    manifest = wald_store(image, tmp_path / "drop", factor=2, lr_size=8, mask=mask)
    assert len(manifest) == 22 and manifest.attrs["dropped_nodata"] == 2
    kept = set(zip(manifest["row"], manifest["col"]))
    assert (0, 0) not in kept and (16, 32) not in kept
    manifest = wald_store(image, tmp_path / "keep", factor=2, lr_size=8, mask=mask, max_nodata=0.1)
    store = open_store(tmp_path / "keep")
    p = store.read_patch(manifest[(manifest["row"] == 0) & (manifest["col"] == 0)]["patch_id"].iloc[0])
    assert np.isfinite(p["hr"]).all() and np.isfinite(p["lr"]).all()
    assert not p["hr_valid"][5, 7] and p["hr_valid"].sum() == 16 * 16 - 1
    assert not p["lr_valid"][0, 2, 3] and p["lr_valid"].sum() == 64 - 1


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 2.5}, "integer"), ({"factor": True}, "integer"), ({"factor": "4"}, "integer"),
    ({"factor": 1}, ">= 2"), ({"lr_size": 2}, "lr_size"), ({"lr_size": 40}, "smaller than one window"),
    ({"bands": ("blue", "swir1")}, r"\['swir1'\] are not in the image"), ({"split_block": 4}, "inside one block"),
    ({"split_block": 32}, "too few"), ({"psf_sigma": 0.3, "mtf_nyquist": 0.3}, "not both"),
    ({"snr": [100, 100]}, "one per band"), ({"mask": np.ones((3, 3), bool)}, "spatial shape"),
    ({"max_nodata": 1.5}, "max_nodata"),
])
def test_bad_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        wald_store(synthetic(), tmp_path / "s", **{"factor": 2, "lr_size": 8, **kwargs})
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_bad_images_are_refused(tmp_path):
    image = synthetic()
    cases = [
        (image.values, "DataArray"),
        (image.rename(band="channel"), "dimensions"),
        (image.assign_coords(band=[1, 2, 3, 4]), "name the bands"),
        (image * 10000, "digital numbers"),
        ((image * 10000).astype("uint16"), "floats"),
        (xr.DataArray(image.values, dims=image.dims, coords={"band": list(BANDS)}), "no CRS"),
        (image.isel(y=slice(None, None, -1)), "south to north"),
    ]
    for bad, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            wald_store(bad, tmp_path / "s", factor=2, lr_size=8)


def test_the_acquisition_time_comes_from_the_image(tmp_path):
    image = synthetic().assign_coords(time=np.datetime64("2023-06-01T10:30"))
    manifest = wald_store(image, tmp_path / "s", factor=2, lr_size=8)
    assert str(manifest["hr_datetime"].iloc[0]) == "2023-06-01 10:30:00" and (manifest["delta_days"] == 0).all()
    sample = open_store(tmp_path / "s").read_patch(manifest["patch_id"].iloc[0])
    assert sample["dates"] == {"hr": "2023-06-01T10:30:00", "lr": ["2023-06-01T10:30:00"]}
    other = wald_store(synthetic(), tmp_path / "t", factor=2, lr_size=8, datetime="2020-01-02")
    assert str(other["lr_datetime"].iloc[0]) == "2020-01-02 00:00:00"
