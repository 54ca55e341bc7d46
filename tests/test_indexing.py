"""index_folder and ``eo-sr index``: folders of GeoTIFFs (written here with rasterio, at real coordinates on
the Mesaoria plain) become STAC items that ``eo-sr match`` pairs and eo_sr.loading reads."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import box, shape

from eo_sr import indexing, sensors, stac
from eo_sr.cli import main
from eo_sr.errors import InvalidInputError, NotFoundError

HR_SENSOR = """\
id: byo-hr
name: NAIP-like test camera
gsd: 2.5
dtype: uint8
nodata: 0
bands:
  - {name: Red, common_name: red}
  - {name: Green, common_name: green}
  - {name: Blue, common_name: blue}
  - {name: NIR, common_name: nir}
providers:
  - {name: local, collection: byo-hr, multiband_asset: image}
"""

LR_SENSOR = """\
id: byo-lr
name: Sentinel-2-like test sensor
gsd: 10
dtype: uint16
scale: 0.0001
offset: 0
nodata: 0
bands:
  - {name: B02, common_name: blue, center_wavelength: 0.49}
  - {name: B03, common_name: green, center_wavelength: 0.56}
  - {name: B04, common_name: red, center_wavelength: 0.665}
  - {name: B08, common_name: nir, center_wavelength: 0.842}
providers:
  - {name: local, collection: byo-lr, assets: common_name, mask_asset: scl}
cloud_mask:
  name: SCL
  kind: classification
  classes: {0: no_data, 3: cloud_shadows, 4: vegetation, 5: not_vegetated, 9: cloud_high_probability}
  invalid: [0, 3, 9]
"""

# The centre of the demo world's area (Mesaoria plain, Cyprus), in UTM 36N and Web Mercator.
LON, LAT = 33.40, 35.17
UTM_X, UTM_Y = Transformer.from_crs(4326, 32636, always_xy=True).transform(LON, LAT)
MERC_X, MERC_Y = Transformer.from_crs(4326, 3857, always_xy=True).transform(LON, LAT)


def _write(path, data, *, crs, transform, nodata=None, tags=None, scales=None, offsets=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, crs=crs, transform=transform, nodata=nodata, photometric="MINISBLACK")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        if scales:
            dst.scales, dst.offsets = scales, offsets
    return path


@pytest.fixture
def sensor_files(tmp_path):
    hr, lr = tmp_path / "hr_sensor.yaml", tmp_path / "lr_sensor.yaml"
    hr.write_text(HR_SENSOR)
    lr.write_text(LR_SENSOR)
    yield hr, lr
    for sid in ("byo-hr", "byo-lr"):
        sensors.unregister_sensor(sid)


@pytest.fixture
def folders(tmp_path):
    """An HR folder (two 4-band 8-bit scenes in EPSG:3857, one with a nodata strip) and an LR folder (one
    scene, a file per band plus SCL, in UTM 36N, covering both)."""
    rng = np.random.default_rng(0)
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    px = 2.5 / np.cos(np.radians(LAT))  # 2.5 m on the ground, in Web Mercator metres
    image = rng.integers(1, 256, (4, 96, 128), dtype=np.uint8)
    _write(hr_dir / "field_a.tif", image, crs="EPSG:3857", transform=from_origin(MERC_X - 64 * px, MERC_Y + 48 * px,
                                                                                   px, px),
           nodata=0, tags={"TIFFTAG_DATETIME": "2023:06:01 08:40:00"})
    part = image.copy()
    part[:, :, :32] = 0  # the western quarter has no data
    _write(hr_dir / "field_b_2023-06-03.tif", part, crs="EPSG:3857",
           transform=from_origin(MERC_X - 64 * px, MERC_Y + 48 * px, px, px), nodata=0)

    transform = from_origin(round(UTM_X) - 400, round(UTM_Y) + 300, 10, 10)
    for i, band in enumerate(("blue", "green", "red", "nir")):
        dn = rng.integers(500, 3000, (60, 80), dtype=np.uint16)
        _write(lr_dir / f"T36SWD_20230602T083601_{band}.tif", dn, crs="EPSG:32636", transform=transform, nodata=0,
               scales=(0.0001,), offsets=(0.0,))
    scl = np.full((60, 80), 4, np.uint8)
    scl[:6] = 9  # 10 % cloud
    _write(lr_dir / "T36SWD_20230602T083601_scl.tif", scl, crs="EPSG:32636", transform=transform, nodata=0)
    return hr_dir, lr_dir


def test_a_multiband_folder_becomes_items(sensor_files, folders):
    hr_sensor, _ = sensor_files
    hr_dir, _ = folders
    items = indexing.index_folder(hr_dir, sensor=hr_sensor)
    assert [it.id for it in items] == ["field_a", "field_b_2023-06-03"]
    a, b = items
    assert a.collection_id == "byo-hr" and a.properties["gsd"] == 2.5
    assert a.datetime == pd.Timestamp("2023-06-01T08:40:00Z")  # TIFFTAG_DATETIME
    assert b.datetime == pd.Timestamp("2023-06-03T00:00:00Z")  # the date in the name
    p = a.properties
    assert p["proj:code"] == "EPSG:3857" and p["proj:shape"] == [96, 128] and len(p["proj:transform"]) == 6
    assert list(a.assets) == ["image"]  # the provider's multi-band asset
    asset = a.assets["image"].to_dict()
    assert [e["common_name"] for e in asset["eo:bands"]] == ["red", "green", "blue", "nir"]
    assert [r["data_type"] for r in asset["raster:bands"]] == ["uint8"] * 4
    assert all(r["nodata"] == 0 for r in asset["raster:bands"])
    assert asset["href"].startswith("file:///") and asset["type"] == "image/tiff; application=geotiff"
    assert any("projection" in e for e in a.stac_extensions) and any("raster" in e for e in a.stac_extensions)
    # the footprint is in lon/lat, around the place the file was written at; b's misses its nodata quarter
    foot_a, foot_b = shape(a.geometry), shape(b.geometry)
    assert foot_a.contains(box(LON - 1e-4, LAT - 1e-4, LON + 1e-4, LAT + 1e-4))
    assert foot_b.area == pytest.approx(0.75 * foot_a.area, rel=0.02)
    assert a.bbox == pytest.approx(list(foot_a.bounds), abs=1e-6)
    # sensor: and provider: resolve from the items alone (the sensor file registered the sensor)
    from eo_sr.loading import sensor_and_provider

    assert sensor_and_provider(a)[0].id == "byo-hr" and sensor_and_provider(a)[1] == "local"


def test_a_folder_of_band_files_becomes_one_item_per_scene(sensor_files, folders):
    _, lr_sensor = sensor_files
    _, lr_dir = folders
    (item,) = indexing.index_folder(lr_dir, sensor=lr_sensor)
    assert item.id == "T36SWD_20230602T083601" and item.datetime == pd.Timestamp("2023-06-02T08:36:01Z")
    assert sorted(item.assets) == ["blue", "green", "nir", "red", "scl"]
    red = item.assets["red"].to_dict()
    assert red["raster:bands"] == [{"data_type": "uint16", "nodata": 0, "scale": 0.0001, "offset": 0.0,
                                    "spatial_resolution": 10.0}]
    assert red["eo:bands"] == [{"name": "B04", "common_name": "red", "center_wavelength": 0.665}]
    assert item.properties["eo:cloud_cover"] == pytest.approx(10.0)  # from the SCL file
    assert item.properties["proj:code"] == "EPSG:32636" and item.properties["proj:shape"] == [60, 80]
    assert "cloud" in item.assets["scl"].roles

    # the pixels load back through the items alone, on their native grid
    from eo_sr import loading

    grid = loading.native_grid(item, "red")
    da = loading.load_items([item], bands=["red", "nir"], grid=grid, harmonize=False).compute()
    with rasterio.open(lr_dir / "T36SWD_20230602T083601_red.tif") as src:
        assert np.array_equal(da.sel(band="red").isel(time=0).values, src.read(1))
    assert int(da["cloud_mask"].sum()) == 6 * 80


def test_eo_sr_index_then_match_pairs_the_scenes(sensor_files, folders, tmp_path, capsys):
    hr_sensor, lr_sensor = sensor_files
    hr_dir, lr_dir = folders
    out = tmp_path / "results"
    assert main(["index", str(hr_dir), "--sensor", str(hr_sensor), "--out", str(out / "hr.ndjson")]) == 0
    printed = capsys.readouterr().out
    assert f"2 item(s) of byo-hr (collection byo-hr) from {hr_dir} -> {out / 'hr.ndjson'}" in printed
    assert "no eo:cloud_cover" in printed and "unknown" in printed  # said: match notes unknown cloud
    assert main(["index", str(lr_dir), "--sensor", str(lr_sensor), "--out", str(out / "lr.ndjson")]) == 0
    assert len(stac.read_items(out / "hr.ndjson")) == 2
    lines = (out / "lr.ndjson").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["collection"] == "byo-lr"

    assert main(["match", "--hr", str(out / "hr.ndjson"), "--lr", str(out / "lr.ndjson"), "--max-days", "2",
                 "--max-cloud", "20", "--out", str(tmp_path / "matches")]) == 0
    pairs = pd.read_parquet(tmp_path / "matches" / "pairs.parquet")
    assert sorted(pairs["hr_id"]) == ["field_a", "field_b_2023-06-03"]
    assert set(pairs["lr_id"]) == {"T36SWD_20230602T083601"}
    assert pairs["coverage"].min() > 0.99 and pairs["lr_cloud_cover"].tolist() == [10.0, 10.0]


def test_datetime_collection_cloud_cover_and_properties_can_be_given(sensor_files, folders):
    hr_sensor, _ = sensor_files
    hr_dir, _ = folders
    items = indexing.index_folder(hr_dir, sensor=hr_sensor, pattern="field_a*.tif", datetime="2022-12-31T10:00:00",
                                  collection="my-flights", cloud_cover=0, properties={"platform": "plane-1"},
                                  footprint="bounds")
    (item,) = items
    assert item.datetime == pd.Timestamp("2022-12-31T10:00:00Z") and item.collection_id == "my-flights"
    assert item.properties["eo:cloud_cover"] == 0.0 and item.properties["platform"] == "plane-1"
    collection = indexing.items_collection(items)
    assert collection.id == "my-flights" and collection.extent.spatial.bboxes[0] == pytest.approx(item.bbox)


def test_datetime_from_name():
    assert indexing.datetime_from_name("a_2023-06-01.tif") == pd.Timestamp("2023-06-01T00:00:00Z")
    assert indexing.datetime_from_name("S2B_20230601T103021_B04") == pd.Timestamp("2023-06-01T10:30:21Z")
    assert indexing.datetime_from_name("tile_2023-06-01T10:30") == pd.Timestamp("2023-06-01T10:30:00Z")
    assert indexing.datetime_from_name("tile_12345678_v2") is None  # digits that are no date
    assert indexing.datetime_from_name("field") is None


def test_clear_errors(sensor_files, folders, tmp_path):
    hr_sensor, lr_sensor = sensor_files
    hr_dir, lr_dir = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="is empty"):
        indexing.index_folder(empty, sensor=hr_sensor)
    with pytest.raises(InvalidInputError, match=r"no file in .* matches pattern '\*\.tiff'; it holds field_a.tif"):
        indexing.index_folder(hr_dir, sensor=hr_sensor, pattern="*.tiff")
    with pytest.raises(NotFoundError):
        indexing.index_folder(tmp_path / "nope", sensor=hr_sensor)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes_2023-06-01.tif").write_text("not a raster")
    with pytest.raises(InvalidInputError, match=r"notes_2023-06-01.tif is not a raster that GDAL can read"):
        indexing.index_folder(bad, sensor=hr_sensor)

    nocrs = tmp_path / "nocrs"
    nocrs.mkdir()
    _write(nocrs / "x_2023-06-01.tif", np.ones((4, 8, 8), np.uint8), crs=None, transform=from_origin(0, 8, 1, 1))
    with pytest.raises(InvalidInputError, match=r"x_2023-06-01.tif has no CRS"):
        indexing.index_folder(nocrs, sensor=hr_sensor)

    three = tmp_path / "three"
    three.mkdir()
    _write(three / "rgb_2023-06-01.tif", np.ones((3, 8, 8), np.uint8), crs="EPSG:32636",
           transform=from_origin(UTM_X, UTM_Y, 2.5, 2.5))
    with pytest.raises(InvalidInputError, match=r"rgb_2023-06-01.tif has 3 band\(s\), but sensor byo-hr has 4"):
        indexing.index_folder(three, sensor=hr_sensor)

    (hr_dir / "field_c.tif").write_bytes((hr_dir / "field_a.tif").read_bytes())
    _strip_tag(hr_dir / "field_c.tif")
    with pytest.raises(InvalidInputError, match="no date for scene 'field_c'.*pass datetime="):
        indexing.index_folder(hr_dir, sensor=hr_sensor, pattern="field_c.tif")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for band, crs in (("blue", 32636), ("green", 32636), ("red", 32635), ("nir", 32636)):
        _write(mixed / f"s_2023-06-01_{band}.tif", np.ones((8, 8), np.uint16), crs=f"EPSG:{crs}",
               transform=from_origin(UTM_X, UTM_Y, 10, 10))
    with pytest.raises(InvalidInputError, match=r"different CRSs: .*s_2023-06-01_red.tif \(EPSG:32635\)"):
        indexing.index_folder(mixed, sensor=lr_sensor)
    (mixed / "s_2023-06-01_red.tif").unlink()
    with pytest.raises(InvalidInputError, match=r"lacks band\(s\) red"):
        indexing.index_folder(mixed, sensor=lr_sensor)

    # a multi-band file for a sensor whose provider stores one asset per band
    with pytest.raises(InvalidInputError, match="no provider of sensor byo-lr stores all bands in one asset"):
        indexing.index_folder(hr_dir, sensor=lr_sensor, pattern="field_a.tif")


def _strip_tag(path):
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(TIFFTAG_DATETIME="")


def test_the_cli_says_what_is_wrong_in_one_line(sensor_files, folders, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EO_SR_CACHE", str(tmp_path / "cache"))  # --register keeps the file in the cache
    hr_sensor, _ = sensor_files
    hr_dir, _ = folders
    code = main(["index", str(hr_dir), "--sensor", str(hr_sensor), "--pattern", "*.jp2",
                 "--out", str(tmp_path / "x.ndjson")])
    err = capsys.readouterr().err
    assert code == 2 and "eo-sr: error: no file in" in err and "Traceback" not in err
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text(HR_SENSOR.replace("dtype: uint8", "dtype: byte"))
    assert main(["index", str(hr_dir), "--sensor", str(bad_yaml), "--out", str(tmp_path / "x.ndjson")]) == 2
    assert "line 4: dtype: must be one of" in capsys.readouterr().err
    assert main(["sensors", "--register", str(hr_sensor)]) == 0
    out = capsys.readouterr().out
    assert "sensor 'byo-hr' is valid (4 bands, 2.5 m" in out and "byo-hr" in out.split("\n", 1)[1]


@pytest.mark.server
def test_eo_sr_serve_items_serves_the_indexed_folders(sensor_files, folders, tmp_path):
    """`eo-sr serve --items` puts the items of `eo-sr index` behind the local STAC API; a search finds them."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    hr_sensor, lr_sensor = sensor_files
    hr_dir, lr_dir = folders
    hr = stac.write_items(indexing.index_folder(hr_dir, sensor=hr_sensor), tmp_path / "hr.ndjson")
    lr = stac.write_items(indexing.index_folder(lr_dir, sensor=lr_sensor), tmp_path / "lr.ndjson")
    env = {**os.environ, "EO_SR_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "eo_sr.cli", "serve", "--items", str(hr), str(lr)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 120
        while "STAC API serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        assert "STAC API serving 3 items of byo-hr, byo-lr at http://127.0.0.1:" in line
        url = re.search(r"(http://127\.0\.0\.1:\d+\S*)", line).group(1)
        catalog = stac.open_catalog(url)
        found = stac.search(catalog, collections="byo-hr", aoi=[LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01])
        assert sorted(it.id for it in found) == ["field_a", "field_b_2023-06-03"]
        assert found[0].assets["image"].href.startswith("file:///")
        clear = stac.search(catalog, collections="byo-lr", max_cloud_cover=20)
        assert [it.id for it in clear] == ["T36SWD_20230602T083601"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()


def test_band_names_and_mask_keys_with_underscores(tmp_path):
    """Landsat's product band names (SR_B4) and mask asset (qa_pixel) hold underscores; a bit-field mask gives the
    cloud cover."""
    folder = tmp_path / "landsat"
    folder.mkdir()
    scene = "LC09_L2SP_176036_20230601_20230603_02_T1"
    transform = from_origin(round(UTM_X), round(UTM_Y), 30, 30)
    landsat = sensors.get_sensor("landsat-c2-l2")
    for band in landsat.bands:
        _write(folder / f"{scene}_{band.name}.tif", np.full((20, 20), 9000, np.uint16), crs="EPSG:32636",
               transform=transform, nodata=0)
    qa = np.full((20, 20), 1 << 6, np.uint16)  # clear
    qa[:5] = (1 << 3) | (1 << 1)  # cloud (and dilated cloud): 25 %
    qa[:, :4] = 1  # fill: no data in the western 4 columns
    _write(folder / f"{scene}_QA_PIXEL.tif", qa, crs="EPSG:32636", transform=transform)
    (item,) = indexing.index_folder(folder, sensor="landsat")
    assert item.id == scene and item.datetime == pd.Timestamp("2023-06-01T00:00:00Z")  # the first date: acquisition
    assert item.collection_id == "landsat-c2-l2"
    assert sorted(item.assets) == sorted([*landsat.common_names, "qa_pixel"])  # Earth Search's keys
    assert item.properties["eo:cloud_cover"] == pytest.approx(100 * 5 * 16 / (20 * 16))
    pc = indexing.index_folder(folder, sensor="landsat", provider="planetary-computer")[0]
    assert sorted(pc.assets) == sorted(item.assets)


def test_your_own_folders_become_a_patch_store_from_the_command_line(sensor_files, folders, tmp_path):
    """The whole path in separate processes, as a user runs it: register the sensor files once, index, match,
    cut patches. The 4-band 8-bit HR file is read band by band (not band 1 four times), without a cloud test."""
    import os
    import subprocess
    import sys

    hr_sensor, lr_sensor = sensor_files
    hr_dir, lr_dir = folders
    env = {**os.environ, "EO_SR_CACHE": str(tmp_path / "cache")}

    def eo_sr(*args):
        proc = subprocess.run([sys.executable, "-m", "eo_sr.cli", *map(str, args)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = eo_sr("sensors", "--register", hr_sensor, lr_sensor)
    assert "registered for later eo-sr commands" in out
    assert sorted(p.name for p in (tmp_path / "cache" / "sensors").iterdir()) == ["byo-hr.yaml", "byo-lr.yaml"]
    eo_sr("index", hr_dir, "--sensor", "byo-hr", "--out", tmp_path / "hr.ndjson")  # known by name from now on
    eo_sr("index", lr_dir, "--sensor", "byo-lr", "--out", tmp_path / "lr.ndjson")
    eo_sr("match", "--hr", tmp_path / "hr.ndjson", "--lr", tmp_path / "lr.ndjson", "--max-days", "2",
          "--out", tmp_path / "matches")
    eo_sr("patches", "--matches", tmp_path / "matches", "--lr-size", "8", "--hr-cloud-threshold", "none",
          "--out", tmp_path / "store")
    from eo_sr.store import open_store

    store = open_store(tmp_path / "store")
    assert (store.factor, store.record["lr_res"]) == (4, 10.0)  # 10 m / 2.5 m, read from the sensor files
    assert len(store.manifest) > 0
    hr = store.arrays(store.splits()[0])["hr"][:]
    corr = np.corrcoef(hr[:, 0].ravel(), hr[:, 3].ravel())[0, 1]
    assert corr < 0.9, corr  # red and nir are different bands of the file (random, independent here)
