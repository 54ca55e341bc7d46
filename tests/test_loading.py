"""eo_sr.loading on the demo world: loaders agree, harmonisation and masks applied once."""
from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pytest
import rasterio

from eo_sr import demo, loading
from eo_sr import grid as G
from eo_sr.errors import DataReadError, InvalidInputError, UnknownNameError


@pytest.fixture(scope="module")
def lr_items(tiny_world):
    return list(tiny_world.items(demo.LR_COLLECTION))


def _dn(item, band):
    with rasterio.open(item.assets[band].href.removeprefix("file://")) as src:
        return src.read(1)


def test_both_loaders_give_the_same_pixels(lr_items):
    items = lr_items[:6]
    a = loading.load_items(items, bands=["blue", "nir"]).compute()
    b = loading.load_items(items, bands=["blue", "nir"], loader="stackstac").compute()
    assert loading.pixels_equal(a, b)
    assert bool((a["cloud_mask"] == b["cloud_mask"]).all())


def test_both_loaders_agree_after_reprojecting_the_hr_sensor(tiny_world):
    hr = tiny_world.items(demo.HR_COLLECTION)[0]
    lr_grid, hr_grid = G.aligned_grids(tiny_world.truth["scenes"][hr.id]["footprint_utm"], crs="EPSG:32636",
                                       lr_res=10, factor=4)
    a = loading.load_items([hr], grid=hr_grid, resampling="bilinear").compute()
    b = loading.load_items([hr], grid=hr_grid, resampling="bilinear", loader="stackstac").compute()
    assert G.grid_of(a) == hr_grid == G.grid_of(b)
    both = ~np.isnan(a.values) & ~np.isnan(b.values)
    assert both.mean() > 0.95
    assert np.abs(a.values - b.values)[both].max() <= 1.01e-4  # at most 1 DN apart


def test_boa_offset_is_removed_exactly_once(lr_items, tiny_world):
    # the same tile on the last clear date before the baseline change, the first after it (offset in
    # the pixels, flag false) and the first the catalogue harmonised itself (offset removed, flag true)
    def clear(it):
        return it.properties["eo:cloud_cover"] < 8 and "36SWD" in it.id
    truth = tiny_world.truth["scenes"]
    before = max((it for it in lr_items if clear(it) and it.datetime < loading.BASELINE_04_START),
                 key=lambda it: it.datetime)
    after = min((it for it in lr_items if clear(it) and truth[it.id]["boa_offset"]), key=lambda it: it.datetime)
    removed = min((it for it in lr_items if clear(it) and it.properties["earthsearch:boa_offset_applied"]),
                  key=lambda it: it.datetime)
    scenes = [before, after, removed]
    da = loading.read_items(scenes, bands=["red"])
    assert list(da["reflectance_offset"].values[:, 0]) == pytest.approx([0.0, -0.1, 0.0])
    assert list(da["harmonized_by"].values) == ["s2:processing_baseline", "s2:processing_baseline",
                                                "earthsearch:boa_offset_applied"]
    for i, it in enumerate(scenes):
        dn = _dn(it, "red").astype(np.float32)
        valid = dn > 0
        expected = (dn - (1000 if truth[it.id]["boa_offset"] else 0)) * np.float32(1e-4)
        assert np.allclose(da.values[i, 0][valid], expected[valid], atol=1e-6)
        assert np.isnan(da.values[i, 0][~valid]).all()
    # the same landscape weeks apart: consecutive medians close (an offset left or removed twice is 0.1)
    medians = [float(np.nanmedian(da.values[i])) for i in range(3)]
    assert abs(medians[1] - medians[0]) < 0.03 and abs(medians[2] - medians[1]) < 0.03, medians


def _item(props, *, collection="sentinel-2-l2a", raster=None, when=datetime(2022, 6, 1)):
    import pystac

    item = pystac.Item("x", None, None, when, props, collection=collection)
    for key in ("blue", "green", "red", "nir", "scl"):
        item.add_asset(key, pystac.Asset(f"file:///{key}.tif", extra_fields={"raster:bands": [raster or {}]}))
    return item


def test_earth_search_flag_true_means_the_offset_was_already_removed():
    """Finding 1 of issue #12: DN 1500 of a harmonised Earth Search scene is reflectance 0.15, not 0.05."""
    s2 = loading.get_sensor("sentinel-2-l2a")
    es_raster = {"scale": 0.0001, "offset": -0.1}  # written whether or not the offset was removed
    removed = _item({"earthsearch:boa_offset_applied": True, "s2:processing_baseline": "04.00"}, raster=es_raster)
    kept = _item({"earthsearch:boa_offset_applied": False, "s2:processing_baseline": "04.00"}, raster=es_raster)
    old = _item({"earthsearch:boa_offset_applied": False, "s2:processing_baseline": "03.01"}, raster=es_raster)
    v0 = _item({"sentinel:boa_offset_applied": True})  # Earth Search v0's name of the flag
    for item, expected in ((removed, 0.15), (kept, 0.05), (old, 0.15), (v0, 0.15)):
        scale, offset, _ = loading.reflectance_terms(item, s2, "red", "earth-search")
        assert 1500 * scale + offset == pytest.approx(expected), item.properties
    assert not loading.boa_offset_in_data(removed) and loading.boa_offset_in_data(kept)
    assert loading.boa_offset_in_data(_item({"s2:processing_baseline": "04.00"}))
    assert not loading.boa_offset_in_data(_item({"s2:processing_baseline": "03.01"}))
    with pytest.warns(UserWarning, match="processing baseline"):
        assert loading.boa_offset_in_data(_item({}))
    with pytest.warns(UserWarning, match="processing baseline"):
        assert not loading.boa_offset_in_data(_item({}, when=datetime(2021, 6, 1)))
    # a user who knows a flag is wrong says so
    scale, offset, source = loading.reflectance_terms(removed, s2, "red", "earth-search", boa_offset=True)
    assert (1500 * scale + offset, source) == (pytest.approx(0.05), "boa_offset=")


def test_raster_bands_scale_and_offset_are_read():
    """Finding 2: Earth Search's sentinel-2-c1-l2a is known and says its terms in raster:bands."""
    sensor = loading.find_sensor_for_collection("sentinel-2-c1-l2a")
    assert sensor.id == "sentinel-2-l2a"
    item = _item({"s2:processing_baseline": "05.10"}, collection="sentinel-2-c1-l2a",
                 raster={"scale": 0.0001, "offset": -0.1}, when=datetime(2019, 6, 1))
    assert loading.sensor_and_provider(item)[1] == "earth-search-c1"
    scale, offset, source = loading.reflectance_terms(item, sensor, "nir", "earth-search-c1")
    assert (1500 * scale + offset, source) == (pytest.approx(0.05), "raster:bands")
    landsat = loading.get_sensor("landsat-c2-l2")
    item = _item({}, collection="landsat-c2-l2", raster={"scale": 2.75e-05, "offset": -0.2})
    item.add_asset("nir08", item.assets["nir"])
    item.add_asset("qa_pixel", item.assets["scl"])
    scale, offset, source = loading.reflectance_terms(item, landsat, "red", "planetary-computer")
    assert (10000 * scale + offset, source) == (pytest.approx(0.075), "raster:bands")


@pytest.fixture(scope="module")
def four_band_item(tmp_path_factory):
    """A NAIP-like item: one 4-band uint8 GeoTIFF whose bands differ (red 10, green 20, blue 30, nir 40)."""
    import pystac
    from rasterio.transform import from_origin

    folder = tmp_path_factory.mktemp("naip")
    transform = from_origin(500000, 4000000, 1.0, 1.0)
    data = np.stack([np.full((64, 64), v, np.uint8) for v in (10, 20, 30, 40)])
    data[:, 40:, 40:] += np.arange(24, dtype=np.uint8)[None, :, None]  # some texture
    path = folder / "m_3011561_ne_11_060_20220601.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8", crs="EPSG:32611",
                       transform=transform, tiled=True, blockxsize=32, blockysize=32) as dst:
        dst.write(data)
    from pyproj import Transformer
    from shapely.geometry import box, mapping

    to_ll = Transformer.from_crs(32611, 4326, always_xy=True).transform
    (w, e), (s, n) = to_ll([500000, 500064], [3999936, 4000000])
    item = pystac.Item("naip-1", mapping(box(w, s, e, n)), [w, s, e, n], datetime(2022, 6, 1),
                       {"proj:code": "EPSG:32611", "gsd": 1.0}, collection="naip")
    item.add_asset("image", pystac.Asset(path.as_uri(), extra_fields={
        "proj:shape": [64, 64], "proj:transform": list(transform)[:6],
        "eo:bands": [{"name": n, "common_name": n.lower()} for n in ("Red", "Green", "Blue", "NIR")]}))
    return item, data


@pytest.mark.parametrize("loader", loading.LOADERS)
def test_multi_band_assets_are_read_by_band_index(four_band_item, loader):
    """Finding 3: each band of a multi-band asset is its own band, not band 1 four times."""
    item, data = four_band_item
    da = loading.read_items([item], bands=["nir", "red", "blue", "green"], loader=loader)
    assert da.attrs["units"] == "DN" and list(da["harmonized_by"].values) == ["none"]
    for i, k in enumerate((3, 0, 2, 1)):
        assert np.array_equal(da.values[0, i], data[k].astype(np.float32)), (loader, i)


def test_pixels_that_contradict_the_flag_are_reported(lr_items, tiny_world):
    truth = tiny_world.truth["scenes"]
    removed = next(it for it in lr_items if it.properties["earthsearch:boa_offset_applied"]
                   and it.properties["eo:cloud_cover"] < 10)
    kept = next(it for it in lr_items if truth[it.id]["boa_offset"] and it.properties["eo:cloud_cover"] < 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", loading.OffsetWarning)  # right metadata: no warning
        loading.read_items([removed, kept], bands=["blue", "red"])
    wrong = [it.clone() for it in (removed, kept)]
    wrong[0].properties["earthsearch:boa_offset_applied"] = False  # as in Element84/earth-search#66
    wrong[1].properties["earthsearch:boa_offset_applied"] = True  # as in cirrus-geo/cirrus-earth-search#33
    with pytest.warns(loading.OffsetWarning) as caught:
        loading.read_items(wrong, bands=["blue", "red"])
    messages = [str(w.message) for w in caught]
    assert any(removed.id in m and "below DN 1000" in m and "boa_offset=" in m for m in messages), messages
    assert any(kept.id in m and "brighter than reflectance 0.1" in m for m in messages), messages
    fixed = loading.read_items(wrong, bands=["blue", "red"], boa_offset={removed.id: False, kept.id: True},
                               check_offsets=False)
    right = loading.read_items([removed, kept], bands=["blue", "red"])
    assert loading.pixels_equal(fixed.drop_vars("harmonized_by"), right.drop_vars("harmonized_by"))


def test_cloud_mask_follows_the_scl(lr_items):
    cloudy = max(lr_items, key=lambda it: it.properties["eo:cloud_cover"])
    da = loading.load_items([cloudy], bands=["blue"]).compute()
    scl = _dn(cloudy, "scl")
    assert np.array_equal(da["cloud_mask"].values[0], np.isin(scl, [0, 1, 3, 8, 9, 10]))
    assert da["cloud_mask"].values.mean() > 0.3


def test_bad_input(lr_items, tiny_world):
    with pytest.raises(InvalidInputError, match="no items"):
        loading.load_items([])
    with pytest.raises(UnknownNameError, match="swir16|blue"):
        loading.load_items(lr_items[:1], bands=["swir16"])
    with pytest.raises(InvalidInputError, match="loader"):
        loading.load_items(lr_items[:1], loader="gdal")
    broken = lr_items[0].clone()
    del broken.assets["nir"]
    with pytest.raises(InvalidInputError, match="match no provider|lacks asset"):
        loading.load_items([broken])


def test_truncated_cog_is_a_clear_error(lr_items, tmp_path):
    item = lr_items[0].clone()
    src = item.assets["red"].href.removeprefix("file://")
    data = open(src, "rb").read()
    bad = tmp_path / "red.tif"
    bad.write_bytes(data[: len(data) // 3])
    item.assets["red"].href = bad.as_uri()
    with pytest.raises(DataReadError) as info:
        loading.read_items([item], bands=["red"])
    assert "red.tif" in str(info.value) and item.id in str(info.value)
    assert isinstance(info.value, OSError)  # code that catches OSError keeps working


def test_a_multi_band_asset_is_read_as_the_item_describes_it(four_band_item):
    """The item's eo:bands, not the sensor's table, say where a band is: bands swapped in the item are read
    swapped, and a band the asset does not hold is refused by name."""
    item, data = four_band_item
    swapped = item.clone()
    listed = swapped.assets["image"].extra_fields["eo:bands"]
    listed[0], listed[2] = listed[2], listed[0]  # the file holds blue first, says the item
    da = loading.read_items([swapped], bands=["red", "blue"])
    assert np.array_equal(da.values[0, 0], data[2]) and np.array_equal(da.values[0, 1], data[0])
    three = item.clone()
    three.assets["image"].extra_fields["eo:bands"] = listed[:3]
    with pytest.raises(InvalidInputError, match="holds bands .* not 'nir'"):
        loading.load_items([three], bands=["red", "nir"])
    with pytest.raises(InvalidInputError, match="different places"):
        loading.load_items([item, swapped], bands=["red"])


def test_naip_as_planetary_computer_publishes_it():
    """The real item's band order (Red, Green, Blue, NIR) is where the loader looks for each band."""
    import json
    from pathlib import Path

    import pystac

    path = Path(__file__).parent / "data" / "real_items" / "planetary-computer_naip_pr-2022.json"
    item = pystac.Item.from_dict(json.loads(path.read_text()))
    naip, provider = loading.sensor_and_provider(item)
    assert naip.id == "naip"
    assert [loading.band_index(item, naip, b, provider) for b in ("red", "green", "blue", "nir")] == [1, 2, 3, 4]
    lazy = loading.load_items([item], bands=["nir", "red"])  # nothing is read until .compute()
    assert lazy.attrs["units"] == "DN" and lazy.sizes["band"] == 2
    assert np.isnan(lazy["eo:cloud_cover"].values).all()  # NAIP says nothing of clouds: unknown, not 0 or inf
