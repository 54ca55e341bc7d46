"""eo_sr.loading on the demo world: loaders agree, harmonisation and masks applied once."""
from __future__ import annotations

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


def test_boa_offset_is_removed_exactly_once(lr_items):
    # the same tile on the last clear date before the baseline change and the first after it
    def clear(it):
        return it.properties["eo:cloud_cover"] < 5 and "36SWD" in it.id
    before = max((it for it in lr_items if clear(it) and not it.properties["earthsearch:boa_offset_applied"]),
                 key=lambda it: it.datetime)
    after = min((it for it in lr_items if clear(it) and it.properties["earthsearch:boa_offset_applied"]),
                key=lambda it: it.datetime)
    assert (after.datetime - before.datetime).days <= 10
    da = loading.load_items([before, after], bands=["red"]).compute()
    assert list(da["dn_offset"].values) == [0.0, 1000.0]
    for i, it in enumerate((before, after)):
        dn = _dn(it, "red").astype(np.float32)
        valid = dn > 0
        expected = (dn - (1000 if i else 0)) * np.float32(1e-4)
        assert np.allclose(da.values[i, 0][valid], expected[valid])
        assert np.isnan(da.values[i, 0][~valid]).all()
    # same landscape a few days apart: medians comparable only once the offset is gone
    assert abs(np.nanmedian(da.values[0]) - np.nanmedian(da.values[1])) < 0.03


def test_boa_offset_rules_for_each_provider():
    import pystac

    def item(props):
        return pystac.Item("x", None, None, datetime(2022, 6, 1), props)

    assert loading.boa_offset_in_data(item({"earthsearch:boa_offset_applied": True}))
    assert not loading.boa_offset_in_data(item({"earthsearch:boa_offset_applied": False,
                                                "s2:processing_baseline": "04.00"}))
    assert loading.boa_offset_in_data(item({"s2:processing_baseline": "04.00"}))
    assert not loading.boa_offset_in_data(item({"s2:processing_baseline": "03.01"}))
    with pytest.warns(UserWarning, match="processing baseline"):
        assert loading.boa_offset_in_data(item({}))


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
