"""eo_sr.stac against the real local STAC API serving the tiny demo world."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from shapely.geometry import box, shape

from eo_sr import demo, stac
from eo_sr.errors import EoSrError, InvalidInputError, UnknownNameError

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def catalog(demo_server):
    return stac.open_catalog(demo_server)


def _ids(items):
    return sorted(it.id for it in items)


def _when(d):
    return datetime.fromisoformat(d["properties"]["datetime"].replace("Z", "+00:00"))


def test_every_item_comes_back_across_pages(catalog, tiny_world):
    expected = sorted(d["id"] for d in tiny_world.item_dicts(demo.LR_COLLECTION))
    assert len(expected) > 10
    assert _ids(stac.search(catalog, collections=demo.LR_COLLECTION, limit=3)) == expected


def test_bbox_datetime_and_cloud_filters(catalog, tiny_world):
    items = tiny_world.item_dicts()
    w, s, e, n = tiny_world.bbox
    west_half = [w, s, w + (e - w) * 0.2, n]
    t0, t1 = "2022-01-20", "2022-02-05"
    got = stac.search(catalog, collections=[demo.LR_COLLECTION, demo.HR_COLLECTION], aoi=west_half,
                      datetime=f"{t0}/{t1}", max_cloud_cover=20)
    lo = datetime.fromisoformat(t0 + "T00:00:00+00:00")
    hi = datetime.fromisoformat(t1 + "T00:00:00+00:00") + timedelta(days=1)
    expected = sorted(d["id"] for d in items
                      if shape(d["geometry"]).intersects(box(*west_half)) and lo <= _when(d) < hi
                      and d["properties"]["eo:cloud_cover"] <= 20)
    assert _ids(got) == expected
    assert 0 < len(expected) < len(items)


def test_intersects_with_a_shapely_polygon(catalog, tiny_world):
    hr = tiny_world.item_dicts(demo.HR_COLLECTION)[0]
    poly = shape(hr["geometry"]).centroid.buffer(0.0005)
    got = stac.search(catalog, collections=demo.HR_COLLECTION, aoi=poly)
    expected = sorted(d["id"] for d in tiny_world.item_dicts(demo.HR_COLLECTION)
                      if shape(d["geometry"]).intersects(poly))
    assert hr["id"] in expected and _ids(got) == expected


def test_results_are_sorted_by_time_and_viewable_as_a_table(catalog):
    items = stac.search(catalog, collections=demo.HR_COLLECTION)
    frame = stac.to_geodataframe(items)
    assert list(frame["datetime"]) == sorted(frame["datetime"])
    assert frame.crs.to_epsg() == 4326 and len(frame) == len(items)


def test_unknown_collection_lists_the_available_ones(catalog):
    with pytest.raises(UnknownNameError) as info:
        stac.search(catalog, collections="sentinel-2-l2a")
    assert demo.LR_COLLECTION in str(info.value) and demo.HR_COLLECTION in str(info.value)


@pytest.mark.parametrize("bbox, words", [
    ([35.1, 33.3, 35.2, 33.4], None),  # plausible both ways: no error expected
    ([33.3, 135.1, 33.4, 135.2], "swapped"),
    ([179.5, -17.0, -179.5, -16.0], None),  # west > east crosses the antimeridian: allowed
    ([33.3, 35.2, 33.4, 35.1], "south"),
    ([500000, 3890000, 510000, 3900000], "projected"),
    ([1, 2, 3], "four numbers"),
])
def test_bbox_checks(bbox, words):
    if words is None:
        assert stac.normalize_bbox(bbox) == [float(v) for v in bbox]
    else:
        with pytest.raises(InvalidInputError, match=words):
            stac.normalize_bbox(bbox)


def test_projected_shapely_aoi_is_refused_but_a_geodataframe_is_reprojected():
    import geopandas as gpd

    poly = box(530000, 3890000, 531000, 3891000)
    with pytest.raises(InvalidInputError, match="projected"):
        stac.normalize_aoi(poly)
    frame = gpd.GeoDataFrame(geometry=[poly], crs=32636)
    geom = shape(stac.normalize_aoi(frame)["intersects"])
    assert 33 < geom.centroid.x < 34 and 35 < geom.centroid.y < 36


def test_date_range_checks():
    assert stac.normalize_datetime("2022-01-01/2022-01-31") == \
        "2022-01-01T00:00:00.000000Z/2022-01-31T23:59:59.999999Z"
    assert stac.normalize_datetime(("2022-01-01", None)).endswith("/..")
    with pytest.raises(InvalidInputError, match="before it starts"):
        stac.normalize_datetime(("2022-02-01", "2022-01-01"))
    with pytest.raises(InvalidInputError, match="ISO"):
        stac.normalize_datetime("last tuesday")
    with pytest.raises(InvalidInputError, match="between 0 and 100"):
        stac.cloud_filter(120)


def test_open_catalog_errors():
    with pytest.raises(UnknownNameError, match="earth-search"):
        stac.open_catalog("earth-serch")
    with pytest.raises(EoSrError, match="could not open"):
        stac.open_catalog("http://127.0.0.1:9", max_retries=0, timeout=2)
