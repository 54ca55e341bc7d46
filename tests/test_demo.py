"""The demo world: deterministic, atomic, and as realistic as it claims."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import box, shape
from shapely.ops import transform as shp_transform

from eo_sr import demo
from eo_sr.demo import acquisition as acq
from eo_sr.demo import landscape as ls
from eo_sr.demo import scenario as sc
from eo_sr.demo import world as wd
from eo_sr.errors import InvalidInputError, NotFoundError, UnknownNameError


def _read(href: str) -> np.ndarray:
    with rasterio.open(href.removeprefix("file://")) as src:
        return src.read(1)


def _items(world, collection):
    return {d["id"]: d for d in world.item_dicts(collection)}


def _when(item) -> datetime:
    return datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))


# --- determinism and atomic writes ---------------------------------------------------

def test_same_seed_same_checksums_other_seed_differs(tmp_path, tiny_world):
    again = demo.generate("tiny", seed=0, root=tmp_path / "again", progress=False)
    other = demo.generate("tiny", seed=1, root=tmp_path / "other", progress=False)
    sums = json.loads((tiny_world.root / "checksums.json").read_text())
    assert sums == json.loads((again.root / "checksums.json").read_text())
    assert len(sums) > 50
    other_sums = json.loads((other.root / "checksums.json").read_text())
    assert sums["truth/landcover_before.tif"] != other_sums["truth/landcover_before.tif"]


def test_generate_reuses_an_existing_world(tiny_world):
    stamp = (tiny_world.root / "truth.json").stat().st_mtime_ns
    again = demo.generate("tiny", seed=0, progress=False)
    assert again.root == tiny_world.root
    assert (again.root / "truth.json").stat().st_mtime_ns == stamp


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(wd, "_write_labels", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        demo.generate("tiny", seed=3, root=tmp_path / "w", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size, seed, error", [
    ("huge", 0, UnknownNameError), ("tiny", -1, InvalidInputError), ("tiny", 1.5, InvalidInputError),
    ("tiny", True, InvalidInputError), ("tiny", 2**32, InvalidInputError),
])
def test_bad_size_or_seed_is_a_clear_error(tmp_path, size, seed, error):
    with pytest.raises(error) as info:
        demo.generate(size, seed=seed, root=tmp_path / "w", progress=False)
    if error is UnknownNameError:
        assert "tiny" in str(info.value) and "default" in str(info.value)
    else:
        assert "seed" in str(info.value)
    assert not (tmp_path / "w").exists()


def test_open_world_rejects_a_folder_without_a_world(tmp_path):
    with pytest.raises(NotFoundError, match="no demo world"):
        demo.open_world(tmp_path)


def test_a_folder_that_is_not_a_world_is_never_written_over(tmp_path):
    """`eo-sr demo --root DIR` on a user's folder used to delete it, even without --overwrite."""
    mine = tmp_path / "my-data"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(InvalidInputError, match="not empty and holds no demo world"):
            demo.generate("tiny", seed=0, root=mine, overwrite=overwrite, progress=False)
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        demo.generate("tiny", seed=0, root=tmp_path / "a-file", progress=False)


def test_a_world_with_a_users_file_inside_is_not_regenerated(tmp_path, tiny_world):
    import shutil

    root = tmp_path / "w"
    shutil.copytree(tiny_world.root, root)
    (root / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="notes.txt"):
        demo.generate("tiny", seed=0, root=root, overwrite=True, progress=False)
    assert (root / "notes.txt").read_text() == "mine"
    (root / "notes.txt").unlink()
    world = demo.generate("tiny", seed=0, root=root, overwrite=True, progress=False)  # only its own files: fine
    assert world.truth["size"] == "tiny"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert demo.generate("tiny", seed=0, root=empty, progress=False).root == empty.resolve()


# --- STAC metadata --------------------------------------------------------------------

def test_items_have_absolute_file_hrefs_and_extensions(tiny_world):
    items = tiny_world.item_dicts()
    assert len(items) == len(tiny_world.truth["scenes"])
    for it in items:
        assert any("projection" in e for e in it["stac_extensions"])
        for asset in it["assets"].values():
            assert asset["href"].startswith("file:///")
            assert (tiny_world.root / asset["href"].split(str(tiny_world.root) + "/")[1]).is_file()
    # pystac reads them
    assert len(tiny_world.items(demo.LR_COLLECTION)) + len(tiny_world.items(demo.HR_COLLECTION)) == len(items)


def test_metadata_cloud_cover_equals_the_mask(tiny_world):
    for it in _items(tiny_world, demo.LR_COLLECTION).values():
        scl = _read(it["assets"]["scl"]["href"])
        valid = scl > 0
        cloudy = np.isin(scl, acq.SCL_CLOUDY) & valid
        assert it["properties"]["eo:cloud_cover"] == pytest.approx(100 * cloudy.sum() / valid.sum(), abs=1e-3)
        assert it["properties"]["s2:nodata_pixel_percentage"] == pytest.approx(100 * (~valid).mean(), abs=1e-3)
    for item_id, it in _items(tiny_world, demo.HR_COLLECTION).items():
        mask = _read(tiny_world.hr_truth_mask_path(item_id).as_uri())
        valid = _read(it["assets"]["red"]["href"]) > 0
        cloud = (mask & 1).astype(bool) & valid
        assert it["properties"]["eo:cloud_cover"] == pytest.approx(100 * cloud.sum() / valid.sum(), abs=1e-3)


def test_boa_offset_is_flagged_as_earth_search_flags_it(tiny_world):
    """Earth Search's convention: `earthsearch:boa_offset_applied: true` means the catalogue already
    removed the offset (Element84/earth-search#9, #66); the asset offset is -0.1 from baseline 04.00
    on either way. The pixels, not the metadata, are the judge here."""
    seen = set()
    for it in _items(tiny_world, demo.LR_COLLECTION).values():
        baseline4 = it["properties"]["s2:processing_baseline"] >= "04.00"
        removed = it["properties"]["earthsearch:boa_offset_applied"]
        assert baseline4 == (_when(it) >= sc.BASELINE_04_START)
        assert removed == (_when(it) >= sc.PROVIDER_HARMONISED_FROM)
        assert it["assets"]["nir"]["raster:bands"][0]["offset"] == (-0.1 if baseline4 else 0.0)
        blue = _read(it["assets"]["blue"]["href"])
        dark = np.percentile(blue[blue > 0], 0.5)  # vegetation: blue ~0.03 -> ~300 DN, +1000 with the offset
        in_pixels = baseline4 and not removed
        assert (dark > 1000) == in_pixels, (it["id"], dark)
        assert tiny_world.truth["scenes"][it["id"]]["boa_offset"] is in_pixels
        seen.add((baseline4, removed))
    assert seen == {(False, False), (True, False), (True, True)}


def test_hr_grid_is_web_mercator_and_not_exactly_nominal(tiny_world):
    lat = tiny_world.aoi.centroid.y
    for it in _items(tiny_world, demo.HR_COLLECTION).values():
        assert it["properties"]["proj:code"] == "EPSG:3857"
        t = it["assets"]["red"]["proj:transform"]
        assert t[0] == pytest.approx(3.0) and t[4] == pytest.approx(-3.0)
        ground = t[0] * np.cos(np.radians(lat))
        assert 2.4 < ground < 2.5 and abs(ground - it["properties"]["gsd"]) > 0.02


def test_eastern_tile_is_cut_by_the_swath_edge(tiny_world):
    for it in _items(tiny_world, demo.LR_COLLECTION).values():
        geom, bbox_area = shape(it["geometry"]), box(*it["bbox"]).area
        if "36SXD" in it["id"]:
            assert it["properties"]["s2:nodata_pixel_percentage"] > 10
        else:
            assert it["properties"]["s2:nodata_pixel_percentage"] == 0
            assert geom.area == pytest.approx(bbox_area, rel=0.02)


# --- realism against the truth model ------------------------------------------------

@pytest.fixture(scope="module")
def truth_landscape(tiny_world):
    t = tiny_world.truth
    return ls.make_landscape(np.random.default_rng([t["seed"], 1]), t["extent_m"], tuple(t["origin_utm"]))


def _lr_model(world, land, item, shift_m):
    """The LR image the PSF model predicts from the truth (no clouds, no noise)."""
    from scipy import ndimage

    when = _when(item)
    after = when > datetime.fromisoformat(world.truth["land_cover_change"]["time"])
    sigma = acq.LR_PSF_SIGMA_PX * 10.0 / ls.TRUTH_GSD
    shade = land.shade(*world.truth["scenes"][item["id"]]["object_shadow_sun"])
    maps = ls.blurred_class_maps(land, sigma, after_change=after, shade=shade)
    table = ls.spectra(wd._day_of_season(when))
    shape_ = item["assets"]["red"]["proj:shape"]
    c0 = int(round((item["assets"]["red"]["proj:transform"][2] - world.truth["origin_utm"][0]) / 10))
    rows, cols = np.mgrid[0:shape_[0], c0:c0 + shape_[1]] + 0.5
    coords = np.stack([(rows * 10 + shift_m[1]) / ls.TRUTH_GSD - 0.5, (cols * 10 + shift_m[0]) / ls.TRUTH_GSD - 0.5])
    return sum(table[c][:, None, None] * ndimage.map_coordinates(m, coords, order=1, mode="nearest")[None]
               for c, m in maps.items())


def test_lr_equals_truth_through_the_psf_within_noise(tiny_world, truth_landscape):
    items = _items(tiny_world, demo.LR_COLLECTION)
    clearest = min((it for it in items.values() if "36SWD" in it["id"]),
                   key=lambda it: it["properties"]["eo:cloud_cover"])
    shift = tiny_world.truth["scenes"][clearest["id"]]["shift_m"]
    offset = 1000 if tiny_world.truth["scenes"][clearest["id"]]["boa_offset"] else 0
    bands = ["blue", "green", "red", "nir"]
    observed = np.stack([(_read(clearest["assets"][b]["href"]).astype(float) - offset) / 1e4 for b in bands])
    scl = _read(clearest["assets"]["scl"]["href"])
    clear = np.isin(scl, (acq.SCL_VEG, acq.SCL_BARE, acq.SCL_WATER))
    clear[:2], clear[-2:], clear[:, :2], clear[:, -2:] = False, False, False, False
    model = _lr_model(tiny_world, truth_landscape, clearest, shift)
    resid = (observed - model)[:, clear]
    expected_sigma = acq.REFERENCE_REFLECTANCE / acq.LR_SNR * np.sqrt(np.clip(model[:, clear], 1e-4, None)
                                                                       / acq.REFERENCE_REFLECTANCE).mean(axis=1)
    assert np.abs(resid.mean(axis=1)).max() < 5e-4
    assert np.all(resid.std(axis=1) < 1.5 * expected_sigma + 3e-4)
    # the test can fail: a model shifted by one LR pixel does not fit
    wrong = _lr_model(tiny_world, truth_landscape, clearest, [shift[0] + 10, shift[1]])
    assert np.all((observed - wrong)[:, clear].std(axis=1) > 3 * resid.std(axis=1))


def test_lr_scenes_have_subpixel_coregistration_error(tiny_world):
    shifts = np.array([v["shift_m"] for v in tiny_world.truth["scenes"].values() if v["kind"] == "lr"])
    assert np.abs(shifts).max() <= 3.0 + 1e-9  # <= 0.3 of a 10 m pixel
    assert shifts.std() > 0.5


@pytest.mark.parametrize("azimuth, elevation, height", [(131.0, 22.0, 1000.0), (160.0, 35.0, 1400.0)])
def test_cloud_shadows_fall_away_from_the_sun(azimuth, elevation, height):
    field = acq.CloudField(np.random.default_rng(0), 3000.0, 0.2, sun_azimuth=azimuth, sun_elevation=elevation,
                           cloud_height=height, step=20.0)
    # the shadow field is the cloud field moved by the offset: find the move by cross-correlation
    a = field.thickness - field.thickness.mean()
    b = field.shadow - field.shadow.mean()
    corr = np.fft.irfft2(np.fft.rfft2(b) * np.conj(np.fft.rfft2(a)), s=a.shape)
    d_row, d_col = np.unravel_index(np.argmax(corr), corr.shape)
    d_row, d_col = [(d + n // 2) % n - n // 2 for d, n in zip((d_row, d_col), a.shape)]
    reach = height / np.tan(np.radians(elevation)) / 20.0
    away = np.array([np.cos(np.radians(azimuth)), -np.sin(np.radians(azimuth))])  # (row, col)
    assert np.allclose([d_row, d_col], reach * away, atol=1.5)


def test_hr_scene_cast_as_cloudy_shows_clouds_and_shadows(tiny_world):
    scenes = tiny_world.truth["scenes"]
    for item_id, v in scenes.items():
        if v["kind"] == "hr":
            cloudy = v["role"] == "cloudy_hr"
            assert (v["cloud_fraction"] > 0.1) == cloudy and (v["shadow_fraction"] > 0.01) == cloudy, item_id


def test_hr_passes_earlier_so_shadows_point_elsewhere(tiny_world):
    lr = _items(tiny_world, demo.LR_COLLECTION)
    for hr_id, hr in _items(tiny_world, demo.HR_COLLECTION).items():
        for lr_id in tiny_world.truth["scenes"][hr_id]["expected_match"]["lr_ids"]:
            p, q = hr["properties"], lr[lr_id]["properties"]
            assert p["view:sun_elevation"] < q["view:sun_elevation"] - 5
            assert abs(p["view:sun_azimuth"] - q["view:sun_azimuth"]) > 10


def test_land_cover_change_and_misregistration_truth(tiny_world):
    before = _read(tiny_world.landcover_path().as_uri())
    after = _read(tiny_world.landcover_path(after_change=True).as_uri())
    changed = before != after
    assert changed.any() and np.all(after[changed] == ls.CLASS_IDS["built_up"])
    scenes = tiny_world.truth["scenes"]
    for item_id, v in scenes.items():
        if v["kind"] != "hr":
            continue
        mask = _read(tiny_world.hr_truth_mask_path(item_id).as_uri())
        assert ((mask & 4).mean() > 0.05) == v["misregistered"], item_id
        if v["role"] == "land_cover_change":
            assert v["after_land_cover_change"]
            assert not any(scenes[lr]["after_land_cover_change"] for lr in v["expected_match"]["lr_ids"])


def test_labels_are_parcels_with_class_and_year(tiny_world):
    import geopandas as gpd

    labels = gpd.read_parquet(tiny_world.labels_path)
    assert labels.crs.to_epsg() == 32636
    assert {"parcel_id", "ground_truth", "class_name", "year", "geometry"} <= set(labels.columns)
    assert len(labels) > 10 and set(labels["class_name"]) <= set(ls.CROP_CLASSES)
    assert labels["parcel_id"].is_unique and (labels["year"] == 2022).all()


# --- the scenario is realised: expected matches follow from the written metadata -------

def _coverage(hr, lr) -> float:
    to_utm = Transformer.from_crs(4326, 32636, always_xy=True).transform
    a, b = shp_transform(to_utm, shape(hr["geometry"])), shp_transform(to_utm, shape(lr["geometry"]))
    return a.intersection(b).area / a.area


def test_expected_matches_follow_from_metadata(tiny_world):
    crit = tiny_world.truth["match_criteria"]
    lr_items = _items(tiny_world, demo.LR_COLLECTION)
    roles = set()
    for hr_id, hr in _items(tiny_world, demo.HR_COLLECTION).items():
        expected = tiny_world.truth["scenes"][hr_id]["expected_match"]
        in_window = [lr for lr in lr_items.values()
                     if abs(_when(lr) - _when(hr)) <= timedelta(days=crit["max_days"])]
        overlapping = [lr for lr in in_window if _coverage(hr, lr) >= crit["min_coverage"]]
        clear = [lr["id"] for lr in overlapping if lr["properties"]["eo:cloud_cover"] <= crit["max_cloud_cover"]]
        assert sorted(clear) == sorted(expected["lr_ids"]), hr_id
        status = {0: "unmatched", 1: "matched"}.get(len(clear), "multiple")
        assert status == expected["status"]
        reason = (None if clear else "no_lr_in_window" if not in_window
                  else "insufficient_overlap" if not overlapping else "too_cloudy")
        assert reason == expected["reason"], hr_id
        roles.add(tiny_world.truth["scenes"][hr_id]["role"])
    assert {"single", "overlap_multiple", "between_dates_multiple", "too_cloudy", "no_lr_in_window",
            "outside_swath", "cloudy_hr", "misregistered", "land_cover_change"} <= roles


def test_expected_matches_table(tiny_world):
    table = tiny_world.expected_matches()
    assert set(table["status"]) == {"matched", "multiple", "unmatched"}
    assert set(table.loc[table.status == "unmatched", "reason"]) == {
        "too_cloudy", "no_lr_in_window", "insufficient_overlap"}


def test_default_world_has_room_for_500_patch_pairs():
    """Counted on the scenario alone (no rendering): whole 320 m LR patches in matched HR footprints."""
    scen = sc.make_scenario("default", 0, np.random.default_rng(0))
    side = scen.hr_side_m
    per_scene = int((side - 10) // 320) ** 2
    matched = [s for s in scen.hr_scenes if s.expected_status != "unmatched"]
    clear = sum(1 - s.cloud_fraction for s in matched)
    assert clear * per_scene >= 500
