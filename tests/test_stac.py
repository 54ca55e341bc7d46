"""eo_sr.stac against the real local STAC API serving the tiny demo world."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

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


# ----------------------------------------------------------------------------- empty results, rate limit


def test_an_empty_result_warns_and_says_what_to_widen(catalog):
    with pytest.warns(stac.EmptySearchWarning, match="widen the date range or the AOI, raise max_cloud_cover"):
        items = stac.search(catalog, collections=demo.LR_COLLECTION, datetime="1990-01-01/1990-01-31")
    assert len(items) == 0


def test_rate_limit_spaces_requests(demo_server):
    rate = 20.0
    limited = stac.open_catalog(demo_server, max_requests_per_second=rate)
    before = stac.request_stats(limited)["attempts"]
    t0 = time.perf_counter()
    items = stac.search(limited, collections=demo.LR_COLLECTION, limit=2)
    elapsed = time.perf_counter() - t0
    n = stac.request_stats(limited)["attempts"] - before
    assert n >= 6 and len(items) > 10  # the collection list plus one request per page of 2
    assert elapsed >= (n - 1) / rate
    with pytest.raises(InvalidInputError, match="max_requests_per_second"):
        stac.open_catalog(demo_server, max_requests_per_second=0)


# ----------------------------------------------------------------------------- search cache


class _Offline(EoSrError):
    pass


def _go_offline(monkeypatch):
    """No network from here on: opening a catalog or sending any request raises."""
    import requests

    def refuse(*args, **kwargs):
        raise _Offline("no network in this test")

    monkeypatch.setattr(stac, "open_catalog", refuse)
    monkeypatch.setattr(requests.Session, "send", refuse)


def _dicts(items):
    return [it.to_dict(transform_hrefs=False) for it in items]


def test_cache_replays_a_search_with_no_network(demo_server, catalog, tiny_world, tmp_path, monkeypatch):
    path = tmp_path / "searches.sqlite"
    query = dict(collections=[demo.LR_COLLECTION, demo.HR_COLLECTION], aoi=tiny_world.bbox,
                 datetime="2022-01-01/2022-02-15", max_cloud_cover=50)
    direct = stac.search(catalog, **query)
    first = stac.search(demo_server.url, cache=path, **query)  # a URL: opened because it is not cached yet
    assert _ids(first) == _ids(direct) and len(direct) > 3

    _go_offline(monkeypatch)
    again = stac.search(demo_server.url, cache=path, **query)
    assert _dicts(again) == _dicts(first)
    # The same search through the client (same API root) is the same entry; collections in another order too.
    swapped = dict(query, collections=[demo.HR_COLLECTION, demo.LR_COLLECTION])
    assert _ids(stac.search(catalog, cache=str(path), **swapped)) == _ids(direct)
    # A different search is a miss, and a miss needs the network.
    with pytest.raises(_Offline):
        stac.search(demo_server.url, cache=path, **dict(query, max_cloud_cover=10))
    with pytest.raises(_Offline):
        stac.search(demo_server.url, cache=path, refresh=True, **query)


def test_a_workshop_replays_yesterdays_earth_search_offline(demo_server, tmp_path, monkeypatch):
    """Yesterday, online: search "earth-search" with a cache. Today, no Wi-Fi: the same call works."""
    import sqlite3

    path = tmp_path / "workshop.sqlite"
    real_open = stac.open_catalog
    opened = []
    # Stand-in for Earth Search (unreachable here): the local API answers in its place.
    monkeypatch.setattr(stac, "open_catalog", lambda source, **kw: opened.append(source) or real_open(demo_server))
    yesterday = stac.search("earth-search", collections=demo.HR_COLLECTION, datetime="2022-01-01/2022-12-31",
                            cache=path)
    assert opened == ["earth-search"] and len(yesterday) > 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT api, n_items FROM searches").fetchall() == [
            (stac.KNOWN_CATALOGS["earth-search"], len(yesterday))]

    monkeypatch.undo()
    _go_offline(monkeypatch)
    today = stac.search("earth-search", collections=demo.HR_COLLECTION, datetime=("2022-01-01", "2022-12-31"),
                        cache=path)
    assert _dicts(today) == _dicts(yesterday)


def test_cache_hits_send_no_request_and_refresh_does(demo_server, tmp_path):
    path = tmp_path / "c.sqlite"
    cat = stac.open_catalog(demo_server)
    stac.search(cat, collections=demo.HR_COLLECTION, cache=path)
    sent = stac.request_stats(cat)["attempts"]
    stac.search(cat, collections=demo.HR_COLLECTION, cache=path)
    assert stac.request_stats(cat)["attempts"] == sent
    stac.search(cat, collections=demo.HR_COLLECTION, cache=path, refresh=True)
    assert stac.request_stats(cat)["attempts"] > sent


def test_an_empty_result_is_cached_and_still_warns(catalog, tmp_path):
    path = tmp_path / "c.sqlite"
    for _ in range(2):
        with pytest.warns(stac.EmptySearchWarning):
            assert len(stac.search(catalog, collections=demo.HR_COLLECTION, datetime="1990-01-01", cache=path)) == 0


def test_a_file_that_is_not_a_cache_is_refused(catalog, tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(EoSrError, match="not an eo-sr search cache"):
        stac.search(catalog, collections=demo.HR_COLLECTION, cache=path)
    assert path.read_text().startswith("these are my notes")


# ----------------------------------------------------------------------------- provider fixtures

ITEMS_DIR = Path(__file__).parent / "data" / "stac_items"
PROVIDERS = {"earth-search": "earth-search-sentinel-2-l2a", "planetary-computer": "planetary-computer-sentinel-2-l2a"}


def _fixture(provider):
    return json.loads((ITEMS_DIR / f"{PROVIDERS[provider]}.json").read_text())


@pytest.fixture(scope="module")
def provider_server(cache_root):
    """A second local STAC API serving the Earth Search and the Planetary Computer item, each in a
    collection named after its provider (the demo server stays as the other tests expect it)."""
    from eo_sr.localapi.server import serve

    items, collections = [], []
    for provider in PROVIDERS:
        d = _fixture(provider)
        d["collection"] = PROVIDERS[provider]
        items.append(d)
        collections.append({
            "type": "Collection", "stac_version": "1.0.0", "id": PROVIDERS[provider], "license": "proprietary",
            "description": f"Sentinel-2 L2A as {provider} serves it (one item)", "links": [],
            "extent": {"spatial": {"bbox": [d["bbox"]]},
                       "temporal": {"interval": [[d["properties"]["datetime"], None]]}},
        })
    with serve(collections, items) as server:
        yield server


@pytest.mark.parametrize("provider, keys", [
    ("earth-search", {"blue": "blue", "green": "green", "red": "red", "nir": "nir", "mask": "scl"}),
    ("planetary-computer", {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "mask": "SCL"}),
])
def test_the_sensor_registry_resolves_each_providers_asset_keys(provider, keys):
    import pystac

    from eo_sr import sensors

    item = pystac.Item.from_dict(_fixture(provider))
    sensor = sensors.find_sensor_for_collection(item.collection_id, provider=provider)
    assert sensor.id == "sentinel-2-l2a"
    for name in ("blue", "green", "red", "nir"):
        key = sensor.asset_key(name, provider)
        assert key == keys[name] and key in item.assets
        common = [b["common_name"] for b in item.assets[key].extra_fields["eo:bands"]]
        assert common == [name]  # the asset found by key really holds that band
    assert sensor.mask_asset(provider) == keys["mask"] and keys["mask"] in item.assets
    assert item.properties["s2:processing_baseline"] == "04.00"


def test_the_two_providers_really_differ():
    es, pc = _fixture("earth-search"), _fixture("planetary-computer")
    assert es["properties"]["earthsearch:boa_offset_applied"] is True
    assert es["assets"]["red"]["raster:bands"][0]["scale"] == 0.0001
    assert es["assets"]["red"]["raster:bands"][0]["offset"] == -0.1
    assert "earthsearch:boa_offset_applied" not in pc["properties"] and "raster:bands" not in pc["assets"]["B04"]
    assert pc["properties"]["s2:mgrs_tile"] == "36SXD" and es["properties"]["grid:code"] == "MGRS-36SXD"
    assert not set(es["assets"]) & {"B02", "B03", "B04", "B08", "SCL"}
    assert not set(pc["assets"]) & {"blue", "green", "red", "nir", "scl"}
    assert all(".blob.core.windows.net/" in pc["assets"][k]["href"] for k in ("B04", "B08", "SCL"))
    assert es["assets"]["red"]["href"].startswith("https://sentinel-cogs.s3.us-west-2.amazonaws.com/")


def test_to_geodataframe_reads_both_providers():
    import pystac

    items = [pystac.Item.from_dict(_fixture(p)) for p in PROVIDERS]
    frame = stac.to_geodataframe(items)
    raw = stac.to_geodataframe([_fixture(p) for p in PROVIDERS])  # dicts too, proj:epsg not migrated
    for f in (frame, raw):
        assert list(f["collection"]) == ["sentinel-2-l2a"] * 2
        assert list(f["eo:cloud_cover"]) == [7.36, 7.36]
        assert list(f["platform"]) == ["sentinel-2b", "Sentinel-2B"]
        assert list(f["epsg"]) == [32636, 32636]
        assert list(f["datetime"].dt.strftime("%Y-%m-%d")) == ["2022-03-15", "2022-03-15"]
        assert f.geometry.iloc[0].equals(f.geometry.iloc[1]) and 34 < f.geometry.iloc[0].centroid.x < 36


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_search_serves_each_providers_items(provider_server, provider):
    from eo_sr import sensors

    want = _fixture(provider)
    cat = stac.open_catalog(provider_server)
    sensor = sensors.get_sensor("sentinel-2-l2a")
    lon, lat = box(*want["bbox"]).centroid.coords[0]
    got = stac.search(cat, collections=PROVIDERS[provider], aoi=[lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01],
                      datetime="2022-03-15", max_cloud_cover=10)
    assert _ids(got) == [want["id"]]
    item = got[0]
    for name in ("red", "nir"):
        key = sensor.asset_key(name, provider)
        assert item.assets[key].href == want["assets"][key]["href"]
    assert item.assets[sensor.mask_asset(provider)].href == want["assets"][sensor.mask_asset(provider)]["href"]
    assert item.properties["s2:processing_baseline"] == "04.00"
    assert stac.to_geodataframe(got)["epsg"].tolist() == [32636]
    with pytest.warns(stac.EmptySearchWarning):  # the cloud filter reads the real property name
        assert len(stac.search(cat, collections=PROVIDERS[provider], max_cloud_cover=5)) == 0


# ----------------------------------------------------------------------------- Planetary Computer signing


def _sas(expiry, sig="abc"):
    se = quote(expiry.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return f"st=2022-03-15T00%3A00%3A00Z&se={se}&sp=rl&sv=2021-06-08&sr=c&skoid=a1b2&sig={sig}"


@pytest.fixture
def fake_token_service(monkeypatch):
    """planetary_computer's token service, offline: hands out tokens with a chosen lifetime."""
    from planetary_computer import sas

    calls = []
    lifetime = {"s": 3600}

    def get_token(account, container, **kw):
        # As the real one: a cached token while it has a minute left, else a new one.
        token = sas.TOKEN_CACHE.get(f"{account}/{container}")
        if token is None or token.ttl() < 60:
            calls.append((account, container))
            expiry = datetime.now(timezone.utc) + timedelta(seconds=lifetime["s"])
            token = sas.SASToken(token=_sas(expiry, sig=f"fresh{len(calls)}"), expiry=expiry)
            sas.TOKEN_CACHE[f"{account}/{container}"] = token
        return token

    monkeypatch.setattr(sas, "get_token", get_token)
    monkeypatch.setattr(sas, "TOKEN_CACHE", {})
    return calls, lifetime


def test_token_expiry_reads_the_se_parameter():
    href = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/a/B04.tif?" + _sas(
        datetime(2024, 5, 1, 12, tzinfo=timezone.utc))
    assert stac.token_expiry(href) == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert stac.token_expiry(href.split("?")[0]) is None


def test_expired_tokens_are_renewed_and_fresh_ones_kept(fake_token_service):
    import pystac

    calls, _ = fake_token_service
    item = pystac.Item.from_dict(_fixture("planetary-computer"))
    now = datetime.now(timezone.utc)
    blob = [k for k, a in item.assets.items() if ".blob.core.windows.net" in a.href]
    others = {k: a.href for k, a in item.assets.items() if k not in blob}
    assert len(blob) > 15 and others  # tilejson and rendered_preview are API URLs, never signed
    for key in blob:
        item.assets[key].href += "?" + _sas(now - timedelta(hours=1), sig="stale")
    item.assets["B04"].href = item.assets["B04"].href.split("?")[0] + "?" + _sas(now + timedelta(hours=2), sig="ok")

    assert stac.sign_if_needed([item]) == [item]
    assert calls == [("sentinel2l2a01", "sentinel2-l2")]  # one token for the container
    for key in blob:
        href = item.assets[key].href
        assert href.count("?") == 1 and "stale" not in href
        assert ("sig=ok" in href) if key == "B04" else ("sig=fresh1" in href)
        assert stac.token_expiry(href) > now + timedelta(minutes=30)
    assert {k: item.assets[k].href for k in others} == others


def test_a_token_within_the_margin_is_renewed_and_unsigned_hrefs_are_optional(fake_token_service):
    calls, lifetime = fake_token_service
    d = _fixture("planetary-computer")
    soon = datetime.now(timezone.utc) + timedelta(seconds=100)
    d["assets"]["B04"]["href"] += "?" + _sas(soon, sig="soon")
    stac.sign_if_needed(d, unsigned=False)
    assert "sig=fresh1" in d["assets"]["B04"]["href"] and "?" not in d["assets"]["B08"]["href"]
    stac.sign_if_needed(d, margin=60)
    assert "sig=fresh" in d["assets"]["B08"]["href"] and "sig=fresh1" in d["assets"]["B04"]["href"]
    # The package's cached token is still valid but within our margin: it is dropped and a new one fetched.
    lifetime["s"] = 7200
    n = len(calls)
    stac.sign_if_needed(d, margin=3600)
    assert len(calls) == n + 1 and f"sig=fresh{n + 1}" in d["assets"]["B08"]["href"]


def test_signing_without_network_says_so(monkeypatch):
    from planetary_computer import sas

    def no_network(*a, **k):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(sas, "get_token", no_network)
    monkeypatch.setattr(sas, "TOKEN_CACHE", {})
    with pytest.raises(EoSrError, match="sentinel2l2a01/sentinel2-l2.*network"):
        stac.sign_if_needed(_fixture("planetary-computer"))
    es = _fixture("earth-search")
    assert stac.sign_if_needed(es) == _fixture("earth-search")  # nothing to sign: no network needed


def test_replayed_planetary_computer_items_get_fresh_tokens(provider_server, fake_token_service, tmp_path,
                                                            monkeypatch):
    import planetary_computer

    calls, lifetime = fake_token_service
    path = tmp_path / "pc.sqlite"
    cat = stac.open_catalog(provider_server)
    cat.modifier = planetary_computer.sign_inplace  # what open_catalog("planetary-computer") sets
    lifetime["s"] = 200  # signed now; within 5 minutes of expiry when the workshop replays the search
    first = stac.search(cat, collections=PROVIDERS["planetary-computer"], cache=path)
    assert "sig=fresh1" in first[0].assets["B04"].href

    lifetime["s"] = 3600
    again = stac.search(cat, collections=PROVIDERS["planetary-computer"], cache=path)
    assert "sig=fresh2" in again[0].assets["B04"].href and len(calls) == 2

    def no_network(*a, **k):
        raise ConnectionError("offline")

    from planetary_computer import sas

    monkeypatch.setattr(sas, "get_token", no_network)
    monkeypatch.setattr(sas, "TOKEN_CACHE", {})
    with pytest.warns(UserWarning, match="sign_if_needed"):
        offline = stac.search(cat, collections=PROVIDERS["planetary-computer"], cache=path)
    assert _ids(offline) == _ids(first)


@pytest.mark.parametrize("bbox", [[float("nan"), 35.1, 33.4, 35.2], [33.3, 35.1, float("inf"), 35.2]])
def test_a_nan_bbox_is_refused(bbox):
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        stac.normalize_bbox(bbox)


def test_a_swapped_bbox_that_would_find_items_is_named(catalog, tiny_world):
    """At mid-latitudes both orders are valid boxes: the tell is an empty search that the swap fills."""
    w, s, e, n = tiny_world.bbox
    with pytest.warns(stac.EmptySearchWarning, match="longitude and latitude look swapped"):
        items = stac.search(catalog, collections=demo.HR_COLLECTION, aoi=[s, w, n, e])
    assert len(items) == 0
    # an empty search elsewhere gets the general advice, not the swap
    with pytest.warns(stac.EmptySearchWarning) as record:
        stac.search(catalog, collections=demo.HR_COLLECTION, aoi=[10.0, 40.0, 10.1, 40.1])
    assert "swapped" not in str(record[0].message) and "widen" in str(record[0].message)
