"""eo_sr.matching: candidates, selection strategies, reasons, and geometry properties."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box, mapping

from eo_sr import demo, matching
from eo_sr.errors import InvalidInputError

T0 = datetime(2022, 3, 1, 10, 0, tzinfo=timezone.utc)


NO_CLOUD = object()  # an item without eo:cloud_cover (NAIP, items indexed from a user's GeoTIFFs)


def item(item_id, geom, when, cloud=0.0, platform="p", **props):
    """An item dict; ``cloud=NO_CLOUD`` leaves out eo:cloud_cover, ``platform=None`` the platform;
    ``props`` are further properties (``:`` written as ``__``, e.g. ``sat__relative_orbit=7``)."""
    properties = {"datetime": when.isoformat(), "eo:cloud_cover": cloud, "platform": platform,
                  **{k.replace("__", ":"): v for k, v in props.items()}}
    if cloud is NO_CLOUD:
        del properties["eo:cloud_cover"]
    if platform is None:
        del properties["platform"]
    return {"type": "Feature", "id": item_id, "geometry": mapping(geom), "bbox": list(geom.bounds),
            "properties": properties, "assets": {}, "links": []}


# --- the demo world: outcomes as the truth manifest says --------------------------------

def test_demo_world_matches_as_the_truth_says(tiny_world):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION),
                                **{k: v for k, v in tiny_world.truth["match_criteria"].items()})
    report = res.report.set_index("hr_id")
    expected = tiny_world.expected_matches().set_index("hr_id")
    assert sorted(report.index) == sorted(expected.index)
    for hr_id, exp in expected.iterrows():
        got = report.loc[hr_id]
        assert got["status"] == exp["status"], hr_id
        assert got["candidate_ids"] == sorted(exp["lr_ids"]), hr_id
        assert got["reason"] == exp["reason"], hr_id
        assert (got["suggestion"] is None) == (exp["reason"] is None)
    # one partner each; overlapping tiles of one datatake count once
    assert res.pairs.groupby("hr_id").size().max() == 1


@pytest.mark.server
def test_matching_items_found_through_the_local_api(demo_server, tiny_world):
    from eo_sr import stac

    catalog = stac.open_catalog(demo_server)
    hr = stac.search(catalog, collections=demo.HR_COLLECTION, aoi=tiny_world.bbox)
    lr = stac.search(catalog, collections=demo.LR_COLLECTION, aoi=tiny_world.bbox)
    res = matching.match_scenes(hr, lr)
    assert set(res.unmatched["reason"]) == {"too_cloudy", "no_lr_in_window", "insufficient_overlap"}


def test_report_round_trips_through_geoparquet(tiny_world, tmp_path):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION))
    path = res.save(tmp_path / "sub" / "report.parquet")
    back = gpd.read_parquet(path)
    assert list(back["hr_id"]) == list(res.report["hr_id"])
    assert back.crs.to_epsg() == 4326
    assert [list(v) for v in back["lr_ids"]] == list(res.report["lr_ids"])
    import pyarrow.parquet as pq

    assert b"eo_sr:match_criteria" in pq.read_schema(path).metadata
    assert not list((tmp_path / "sub").glob("*.part"))


# --- reasons and suggestions --------------------------------------------------------------

def test_reasons_with_concrete_suggestions():
    fp = box(10, 50, 10.1, 50.1)
    hr = [item("h_cloud", fp, T0), item("h_gap", fp, T0 + timedelta(days=40)),
          item("h_edge", box(10.2, 50, 10.3, 50.1), T0), item("h_none", box(-70, -10, -69.9, -9.9), T0)]
    lr = [item("l_cloudy", fp.buffer(0.01), T0 + timedelta(days=1), cloud=65.0),
          item("l_far", fp.buffer(0.01), T0 + timedelta(days=45.5)),
          item("l_edge", box(10.2, 50, 10.25, 50.1), T0)]
    rep = matching.match_scenes(hr, lr, max_days=3, max_cloud_cover=20).report.set_index("hr_id")
    assert rep.loc["h_cloud", "reason"] == "too_cloudy" and "raise max_cloud_cover to 65" in rep.loc[
        "h_cloud", "suggestion"]
    assert rep.loc["h_gap", "reason"] == "no_lr_in_window" and "widen max_days to 6" in rep.loc[
        "h_gap", "suggestion"]
    assert rep.loc["h_edge", "reason"] == "insufficient_overlap" and "50%" in rep.loc["h_edge", "suggestion"]
    assert rep.loc["h_none", "reason"] == "no_overlap"


def test_equatorial_cloud_suggests_moving_away_from_the_equator():
    fp = box(20, 1, 20.1, 1.1)
    rep = matching.match_scenes([item("h", fp, T0)], [item("l", fp, T0, cloud=90.0)]).report
    assert "equator" in rep.loc[0, "suggestion"]


# --- strategies -----------------------------------------------------------------------------

@pytest.fixture
def many_dates():
    fp = box(0, 0, 1, 1)
    hr = [item("h", fp, T0)]
    lr = [item(f"l{d:+d}", fp, T0 + timedelta(days=d), cloud=float(c))
          for d, c in [(-9, 0), (-6, 5), (-3, 15), (-1, 12), (2, 1), (4, 0), (8, 10), (10, 3)]]
    return hr, lr


@pytest.mark.parametrize("strategy, k, expected", [
    ("closest", 1, ["l-1"]),
    ("closest", 3, ["l-1", "l+2", "l-3"]),
    ("least_cloudy", 2, ["l+4", "l-9"]),  # equally clear: the closer first
    ("uniform", 3, ["l-9", "l+2", "l+10"]),
])
def test_strategies(many_dates, strategy, k, expected):
    hr, lr = many_dates
    res = matching.match_scenes(hr, lr, max_days=10, max_cloud_cover=20, strategy=strategy, k=k)
    assert list(res.pairs["lr_id"]) == expected
    assert list(res.pairs["rank"]) == list(range(1, k + 1))


def test_best_k_trades_time_cloud_and_coverage(many_dates):
    hr, lr = many_dates
    res = matching.match_scenes(hr, lr, max_days=10, max_cloud_cover=20, strategy="best_k", k=2)
    assert set(res.pairs["lr_id"]) == {"l+2", "l+4"}  # close, clear, full coverage


def test_overlapping_tiles_of_one_datatake_count_once():
    fp = box(0, 0, 1, 1)
    hr = [item("h", fp, T0)]
    lr = [item("tile_a", box(-0.5, -0.5, 1.5, 1.5), T0, platform="s2a"),
          item("tile_b", box(-0.5, -0.5, 0.98, 1.5), T0 + timedelta(seconds=5), platform="s2a")]
    res = matching.match_scenes(hr, lr, min_coverage=0.9)
    assert res.report.loc[0, "status"] == "multiple"
    assert list(res.pairs["lr_id"]) == ["tile_a"]


def test_tiles_of_one_datatake_minutes_apart_count_once():
    """Issue #12: two tiles of one datatake 7 minutes apart were kept as two acquisitions
    (the key was the exact minute); the least cloudy of equally covering tiles is kept."""
    fp = box(0, 0, 1, 1)
    lr = [item("tile_a", fp.buffer(0.5), T0, cloud=10.0, platform="sentinel-2a", sat__relative_orbit=7),
          item("tile_b", fp.buffer(0.5), T0 + timedelta(minutes=7), cloud=3.0, platform="sentinel-2a",
               sat__relative_orbit=7)]
    res = matching.match_scenes([item("h", fp, T0)], lr, k=2)
    assert list(res.pairs["lr_id"]) == ["tile_b"]
    assert res.report.loc[0, "status"] == "multiple" and res.report.loc[0, "candidate_ids"] == ["tile_a", "tile_b"]
    # one minute boundary between them, 20 seconds apart: still one datatake
    lr = [item("a", fp.buffer(0.5), T0 + timedelta(seconds=50), platform="s2a"),
          item("b", fp.buffer(0.2), T0 + timedelta(seconds=70), platform="s2a")]
    assert list(matching.match_scenes([item("h", fp, T0)], lr, k=2).pairs["lr_id"]) == ["a"]


def test_datatake_ids_decide_when_present():
    fp = box(0, 0, 1, 1)
    dt = "GS2A_20220301T100000_035000_N04.00"
    same = [item("a", fp.buffer(0.5), T0, platform=None, s2__datatake_id=dt),
            item("b", fp.buffer(0.5), T0 + timedelta(minutes=2), cloud=1.0, platform=None, s2__datatake_id=dt)]
    assert list(matching.match_scenes([item("h", fp, T0)], same, k=2).pairs["lr_id"]) == ["a"]
    other = [same[0], item("b", fp.buffer(0.5), T0 + timedelta(minutes=2), platform=None,
                           s2__datatake_id=dt.replace("035000", "035001"))]
    assert len(matching.match_scenes([item("h", fp, T0)], other, k=2).pairs) == 2


@pytest.mark.parametrize("second", [
    {"platform": "sentinel-2b"},  # another satellite the same day: another acquisition
    {"platform": "sentinel-2a", "sat__relative_orbit": 8},  # another orbit
    {"platform": "sentinel-2a", "minutes": 45},  # beyond the tolerance
])
def test_different_acquisitions_the_same_day_are_not_merged(second):
    fp = box(0, 0, 1, 1)
    second = {"sat__relative_orbit": 7, "minutes": 7, **second}
    minutes = second.pop("minutes")
    lr = [item("a", fp.buffer(0.5), T0, platform="sentinel-2a", sat__relative_orbit=7),
          item("b", fp.buffer(0.5), T0 + timedelta(minutes=minutes), **second)]
    res = matching.match_scenes([item("h", fp, T0)], lr, k=2)
    assert sorted(res.pairs["lr_id"]) == ["a", "b"]


@settings(max_examples=40, deadline=None)
@given(scenes=st.lists(st.tuples(st.sampled_from(["s2a", "s2b"]), st.integers(0, 3 * 24 * 60)), min_size=1,
                       max_size=8, unique=True))
def test_datatakes_are_chains_of_scenes_of_one_platform_within_the_tolerance(scenes):
    """As many partners as chains of one platform's scenes with gaps of at most 30 minutes."""
    fp = box(0, 0, 1, 1)
    lr = [item(f"l{i}", fp.buffer(0.5), T0 + timedelta(minutes=m), platform=p) for i, (p, m) in enumerate(scenes)]
    res = matching.match_scenes([item("h", fp, T0)], lr, k=len(lr), max_days=4, strategy="least_cloudy")
    expected = 0
    for platform in ("s2a", "s2b"):
        times = sorted(m for p, m in scenes if p == platform)
        expected += sum(1 for a, b in zip([None, *times], times) if a is None or b - a > 30)
    assert len(res.pairs) == expected
    kept = {i for i, lid in enumerate(lr) if lid["id"] in set(res.pairs["lr_id"])}
    assert len({scenes[i][0] for i in kept}) == len({p for p, _ in scenes})  # each platform keeps a scene


def test_datatake_tolerance_is_an_option():
    fp = box(0, 0, 1, 1)
    lr = [item("a", fp.buffer(0.5), T0, platform="s2a"),
          item("b", fp.buffer(0.5), T0 + timedelta(minutes=45), platform="s2a")]
    res = matching.match_scenes([item("h", fp, T0)], lr, k=2, datatake_minutes=60)
    assert list(res.pairs["lr_id"]) == ["a"] and res.criteria["datatake_minutes"] == 60
    with pytest.raises(InvalidInputError, match="datatake_minutes"):
        matching.match_scenes([item("h", fp, T0)], lr, datatake_minutes=-1)


@pytest.mark.parametrize("max_cloud", [20.0, 100.0])
def test_uniform_prefers_a_clear_frame_near_the_slot_centre_to_a_cloudy_one_at_it(max_cloud):
    """Issue #12: a 16 % cloudy frame at the slot centre beat a clear one a day away."""
    fp = box(0, 0, 1, 1)
    lr = [item("cloudy", fp, T0, cloud=16.0), item("clear", fp, T0 + timedelta(days=1), cloud=0.0)]
    res = matching.match_scenes([item("h", fp, T0)], lr, max_days=5, max_cloud_cover=max_cloud,
                                strategy="uniform", k=1, period=(T0 - timedelta(days=5), T0 + timedelta(days=5)))
    assert list(res.pairs["lr_id"]) == ["clear"]
    # but cloud does not override time: a frame of the next slot does not steal this one's place
    lr += [item("far_clear", fp, T0 + timedelta(days=4), cloud=0.0)]
    res = matching.match_scenes([item("h", fp, T0)], lr, max_days=5, max_cloud_cover=max_cloud,
                                strategy="uniform", k=2, period=(T0 - timedelta(days=1), T0 + timedelta(days=4)))
    assert list(res.pairs["lr_id"]) == ["clear", "far_clear"]


# --- missing cloud cover is unknown, not infinite --------------------------------------------

@pytest.mark.parametrize("as_frame", [False, True])
@pytest.mark.parametrize("max_cloud", [20.0, 100.0])
def test_lr_scenes_without_cloud_cover_match_and_say_so(as_frame, max_cloud):
    """Issue #12: items without eo:cloud_cover (NAIP, own GeoTIFFs) never matched, and the
    report said 'nan%' and 'raise max_cloud_cover to nan'."""
    fp = box(0, 0, 1, 1)
    hr = [item("h", fp, T0), item("h2", box(5, 5, 6, 6), T0)]
    lr = [item("l", fp, T0 + timedelta(days=1), cloud=NO_CLOUD), item("l2", box(5, 5, 6, 6), T0, cloud=NO_CLOUD)]
    if as_frame:
        hr, lr = matching.scene_table(hr), matching.scene_table(lr).drop(columns="eo:cloud_cover")
    res = matching.match_scenes(hr, lr, max_cloud_cover=max_cloud)
    rep = res.report.set_index("hr_id")
    assert list(rep["status"]) == ["matched", "matched"]
    assert list(res.pairs["lr_id"]) == ["l", "l2"] and not res.pairs["lr_cloud_known"].any()
    assert not res.candidates["lr_cloud_known"].any()
    assert list(rep["lr_cloud_known"]) == [False, False]
    assert "cloud cover unknown" in rep.loc["h", "note"]
    text = res.summary()
    assert "2 pairs with LR cloud cover unknown" in text
    assert "nan" not in text.lower() and "nan" not in " ".join(rep["note"]).lower()


@pytest.mark.parametrize("value", [None, -1, "n/a", float("nan")])
def test_null_or_invalid_cloud_cover_is_unknown(value):
    """An explicit null (some catalogs), -1 (USGS: not computed), text or NaN: unknown, not an error."""
    fp = box(0, 0, 1, 1)
    table = matching.scene_table([item("l", fp, T0, cloud=value)])
    assert table["eo:cloud_cover"].isna().all()
    res = matching.match_scenes([item("h", fp, T0, cloud=value)], [item("l", fp, T0, cloud=value)])
    assert res.report.loc[0, "status"] == "matched"
    assert not res.report.loc[0, "hr_cloud_known"] and not res.report.loc[0, "lr_cloud_known"]


def test_unknown_cloud_ranks_after_known_clear_but_is_not_excluded():
    fp = box(0, 0, 1, 1)
    hr = [item("h", fp, T0)]
    lr = [item("unknown", fp, T0, cloud=NO_CLOUD), item("clear", fp, T0 + timedelta(days=1), cloud=5.0),
          item("cloudy", fp, T0 + timedelta(days=2), cloud=15.0)]
    period = (T0 - timedelta(days=3), T0 + timedelta(days=3))

    def chosen(strategy, k):
        res = matching.match_scenes(hr, lr, max_days=3, strategy=strategy, k=k, period=period)
        return list(res.pairs["lr_id"])

    assert chosen("least_cloudy", 3) == ["clear", "cloudy", "unknown"]
    assert chosen("best_k", 1) == ["clear"]
    assert chosen("uniform", 1) == ["clear"]
    assert chosen("closest", 1) == ["unknown"]  # time first: the unknown scene is the closest
    assert sorted(chosen("uniform", 3)) == sorted(chosen("best_k", 3)) == ["clear", "cloudy", "unknown"]


def test_unknown_cloud_is_ranked_below_known_scenes_at_the_limit():
    fp = box(0, 0, 1, 1)
    lr = [item("unknown", fp, T0, cloud=NO_CLOUD), item("limit", fp, T0 + timedelta(days=1), cloud=20.0)]
    res = matching.match_scenes([item("h", fp, T0)], lr, strategy="least_cloudy", k=2)
    assert list(res.pairs["lr_id"]) == ["limit", "unknown"]


def test_hr_scenes_without_cloud_cover_are_reported():
    fp = box(0, 0, 1, 1)
    hr = [item("h", fp, T0, cloud=NO_CLOUD), item("h_null", fp, T0, cloud=None), item("h_known", fp, T0)]
    res = matching.match_scenes(hr, [item("l", fp, T0, cloud=3.0)])
    rep = res.report.set_index("hr_id")
    assert list(rep["status"]) == ["matched"] * 3
    assert list(rep["hr_cloud_known"]) == [False, False, True]
    assert "HR cloud cover unknown" in rep.loc["h", "note"] and rep.loc["h_known", "note"] is None
    assert list(rep["lr_cloud_known"]) == [True] * 3
    assert "2 HR scenes with cloud cover unknown" in res.summary()
    assert "nan" not in res.summary().lower()


def test_too_cloudy_ignores_scenes_of_unknown_cloud_cover_and_never_says_nan():
    """An HR scene whose only LR scenes in the window are cloudy is still too_cloudy, with a number."""
    fp = box(0, 0, 1, 1)
    lr = [item("cloudy", fp, T0, cloud=65.0), item("edge_unknown", box(0, 0, 0.5, 1), T0, cloud=NO_CLOUD,
                                                    platform="other")]
    rep = matching.match_scenes([item("h", fp, T0)], lr).report
    assert rep.loc[0, "reason"] == "too_cloudy"
    assert "raise max_cloud_cover to 65" in rep.loc[0, "suggestion"]


@pytest.mark.parametrize("kwargs, words", [
    ({"max_days": 0}, "max_days"), ({"max_cloud_cover": 120}, "percentage"), ({"min_coverage": 0}, "fraction"),
    ({"strategy": "best"}, "closest"), ({"k": 0}, "positive integer"),
])
def test_bad_options(kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        matching.match_scenes([], [], **kwargs)


def test_items_without_time_or_footprint_are_refused():
    bad = item("x", box(0, 0, 1, 1), T0)
    bad["properties"].pop("datetime")
    with pytest.raises(InvalidInputError, match="datetime"):
        matching.scene_table([bad])


def test_no_scenes_gives_an_empty_report():
    res = matching.match_scenes([], [])
    assert len(res.report) == 0 and len(res.pairs) == 0


# --- properties: overlap and time window ------------------------------------------------------

coords = st.floats(-60, 60, allow_nan=False, allow_subnormal=False)
sizes = st.floats(0.01, 2.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(x=coords, y=coords, w=sizes, h=sizes, dx=st.floats(-3, 3), dy=st.floats(-3, 3), sw=sizes, sh=sizes,
       days=st.floats(-10, 10, allow_nan=False), max_days=st.floats(0.5, 8))
def test_coverage_and_window_properties(x, y, w, h, dx, dy, sw, sh, days, max_days):
    hr_fp = box(x, y, x + w, y + h)
    lr_fp = box(x + dx, y + dy, x + dx + sw, y + dy + sh)
    res = matching.match_scenes([item("h", hr_fp, T0)], [item("l", lr_fp, T0 + timedelta(days=days))],
                                max_days=max_days, min_coverage=0.5, max_cloud_cover=100)
    true_cov = hr_fp.intersection(lr_fp).area / hr_fp.area
    matched = res.report.loc[0, "status"] == "matched"
    # near the thresholds either answer is acceptable: floating point
    if abs(abs(days) - max_days) > 1e-6 and abs(true_cov - 0.5) > 1e-9:
        assert matched == (abs(days) <= max_days and true_cov >= 0.5)
    if matched:
        pair = res.pairs.iloc[0]
        assert pair["coverage"] == pytest.approx(true_cov, abs=1e-9)
        assert pair["nodata_fraction"] == pytest.approx(1 - true_cov, abs=1e-9)
        assert pair["delta_days"] == pytest.approx(days, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.05, 0.9), b=st.floats(0.05, 0.9), lat=st.floats(-60, 60, allow_subnormal=False))
def test_antimeridian_footprints(a, b, lat):
    """A footprint written with longitudes jumping from +179 to -179 is split, not stretched round the globe."""
    wrapped = Polygon([(180 - a, lat), (-180 + b, lat), (-180 + b, lat + 0.5), (180 - a, lat + 0.5)])
    fixed = matching.fix_antimeridian(wrapped)
    assert fixed.area == pytest.approx((a + b) * 0.5, rel=1e-6)
    assert fixed.bounds[0] == pytest.approx(-180) and fixed.bounds[2] == pytest.approx(180)
    for hr_fp in (box(-180, lat, -180 + b, lat + 0.5), box(180 - a, lat, 180, lat + 0.5)):
        res = matching.match_scenes([item("h", hr_fp, T0)], [item("l", wrapped, T0)], min_coverage=0.99)
        assert res.report.loc[0, "status"] == "matched"
    far = box(0, lat, 1, lat + 0.5)  # the unsplit polygon would have covered this
    assert matching.match_scenes([item("h", far, T0)], [item("l", wrapped, T0)]).report.loc[0, "reason"] == \
        "no_overlap"


@settings(max_examples=40, deadline=None)
@given(hole=st.floats(0.05, 0.45), min_cov=st.floats(0.3, 0.99))
def test_polygons_with_holes(hole, min_cov):
    """An LR footprint with a hole (e.g. a cut-out of invalid data) covers less of the HR footprint."""
    outer = [(0, 0), (1, 0), (1, 1), (0, 1)]
    inner = [(0.5 - hole, 0.5 - hole), (0.5 + hole, 0.5 - hole), (0.5 + hole, 0.5 + hole), (0.5 - hole, 0.5 + hole)]
    lr_fp = Polygon(outer, [inner])
    coverage = 1 - (2 * hole) ** 2
    res = matching.match_scenes([item("h", box(0, 0, 1, 1), T0)], [item("l", lr_fp, T0)], min_coverage=min_cov)
    if abs(coverage - min_cov) > 1e-9:
        assert (res.report.loc[0, "status"] == "matched") == (coverage >= min_cov)


def test_hr_and_lr_that_are_the_same_or_swapped_are_refused(tiny_world):
    """`match --hr X --lr X` used to match every scene with itself."""
    hr, lr = tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION)
    with pytest.raises(InvalidInputError, match="both HR and LR"):
        matching.match_scenes(hr, hr)
    with pytest.raises(InvalidInputError, match="swapped"):
        matching.match_scenes(lr, hr)
