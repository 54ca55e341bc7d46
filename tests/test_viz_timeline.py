"""Tests of eo_sr.viz.timeline (the HR/LR timeline) and eo_sr.viz.widgets (the notebook
apps), on the tiny demo world: markers, rows, pair lines and what the apps show."""
from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from eo_sr import demo, matching, viz  # noqa: E402
from eo_sr.errors import InvalidInputError  # noqa: E402
from eo_sr.viz import timeline  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def scenes(tiny_world):
    return tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION)


@pytest.fixture(scope="module")
def result(scenes):
    hr, lr = scenes
    return matching.match_scenes(hr, lr, **demo.MATCH_CRITERIA)


def _gid(ax, gid):
    return [c for c in ax.collections if c.get_gid() == gid]


def _n_markers(ax, gid):
    return sum(len(c.get_offsets()) for c in _gid(ax, gid))


def _segments(ax, gid):
    (lines,) = _gid(ax, gid)
    return lines.get_segments()


# ----------------------------------------------------------------- the table


@pytest.mark.parametrize("item_id, tile", [
    ("S2A_36SWD_20220110_0_L2A", "36SWD"),  # Earth Search
    ("S2B_MSIL2A_20220115T083239_R021_T36SXD_20220115T105512", "36SXD"),  # Planetary Computer / ESA
    ("DEMO_S2A_36SWD_20220110_L2A", "36SWD"),
    ("LC09_L2SP_176036_20220110_20220112_02_T1", None),  # Landsat: WRS path/row, no MGRS tile
    ("DEMO_HR_20220125T063509_000", None),
])
def test_tile_read_from_ids(item_id, tile):
    assert timeline._tile_of_id(item_id) == tile


def test_tile_read_from_properties():
    assert timeline._tile_of_properties({"grid:code": "MGRS-36SWD"}) == "36SWD"
    assert timeline._tile_of_properties({"s2:mgrs_tile": "36SXD"}) == "36SXD"
    assert timeline._tile_of_properties({"mgrs:utm_zone": 6, "mgrs:latitude_band": "S",
                                         "mgrs:grid_square": "WD"}) == "06SWD"
    assert timeline._tile_of_properties({"landsat:wrs_path": "176", "landsat:wrs_row": "36"}) == "176/036"
    assert timeline._tile_of_properties({}) is None


def test_timeline_frame_from_items_tables_and_frames(scenes, tiny_world):
    hr, lr = scenes
    frame = timeline.timeline_frame(lr)
    assert list(frame.columns) == ["id", "collection", "datetime", "eo:cloud_cover", "tile"]
    assert len(frame) == len(lr)
    assert set(frame["tile"]) == {"36SWD", "36SXD"}
    assert (frame["tile"] == frame["id"].str.split("_").str[2]).all()
    assert str(frame["datetime"].dt.tz) == "UTC"
    clouds = {it.id: it.properties["eo:cloud_cover"] for it in lr}
    assert np.allclose(frame["eo:cloud_cover"], [clouds[i] for i in frame["id"]])
    # The footprint table has no tile column: the tile comes from the ids.
    from_table = timeline.timeline_frame(viz.footprints_frame(lr))
    pd.testing.assert_frame_equal(from_table, frame)
    # An HR scene has no tile.
    assert timeline.timeline_frame(hr)["tile"].isna().all()
    # A table with its own tile column.
    own = pd.DataFrame({"id": ["a", "b"], "datetime": ["2022-01-01T10:00Z", "2022-01-02T10:00Z"],
                        "tile": ["X", "Y"]})
    got = timeline.timeline_frame(own)
    assert list(got["tile"]) == ["X", "Y"] and got["eo:cloud_cover"].isna().all()


def test_timeline_frame_rejects_bad_input():
    with pytest.raises(InvalidInputError, match="lacks the column"):
        timeline.timeline_frame(pd.DataFrame({"id": ["a"]}))
    with pytest.raises(InvalidInputError, match="no acquisition time"):
        timeline.timeline_frame(pd.DataFrame({"id": ["a"], "datetime": [None]}))


# ----------------------------------------------------------------- the figure


def test_plot_timeline_returns_axes_with_one_marker_per_scene(scenes):
    hr, lr = scenes
    ax = viz.plot_timeline(hr, lr)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert _n_markers(ax, "lr") == len(lr) == 18
    assert _n_markers(ax, "hr") == len(hr) == 9
    assert not _gid(ax, "pairs") and not _gid(ax, "candidates") and not _gid(ax, "windows")
    # One row per LR tile, HR on top.
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["LR 36SXD", "LR 36SWD", f"HR {demo.HR_COLLECTION}"]
    assert list(ax.get_yticks()) == [0, 1, 2]


def test_plot_timeline_places_markers_at_time_and_row(scenes):
    hr, lr = scenes
    ax = viz.plot_timeline(hr, lr, legend=False, colorbar=False)
    (points,) = _gid(ax, "lr")
    rows = {"36SXD": 0, "36SWD": 1}
    expected = sorted((mdates.date2num(it.datetime.replace(tzinfo=None)), rows[it.id.split("_")[2]]) for it in lr)
    got = sorted(map(tuple, points.get_offsets()))
    assert np.allclose(got, expected)
    # The colours are the cloud covers.
    assert np.allclose(sorted(points.get_array()), sorted(it.properties["eo:cloud_cover"] for it in lr))
    (hr_points,) = _gid(ax, "hr")
    assert set(np.asarray(hr_points.get_offsets())[:, 1]) == {2}


def test_plot_timeline_draws_one_line_per_pair(scenes, result):
    hr, lr = scenes
    ax = viz.plot_timeline(hr, lr, pairs=result)
    segments = _segments(ax, "pairs")
    assert len(segments) == len(result.pairs) == (result.report["status"] != "unmatched").sum() > 0
    # Each line runs from its HR marker (top row) to its LR marker.
    lr_when = {it.id: mdates.date2num(it.datetime.replace(tzinfo=None)) for it in lr}
    hr_when = {it.id: mdates.date2num(it.datetime.replace(tzinfo=None)) for it in hr}
    for seg, row in zip(segments, result.pairs.itertuples()):
        (x0, y0), (x1, y1) = seg
        assert (x0, y0) == pytest.approx((hr_when[row.hr_id], 2))
        assert x1 == pytest.approx(lr_when[row.lr_id]) and y1 in (0, 1)
    # The same pairs as a list of tuples or a table give the same lines.
    tuples = list(zip(result.pairs["hr_id"], result.pairs["lr_id"]))
    for pairs in (tuples, result.pairs):
        again = viz.plot_timeline(hr, lr, pairs=pairs)
        assert np.allclose(np.asarray(_segments(again, "pairs")), np.asarray(segments))


def test_plot_timeline_candidates_windows_status_and_cloud_limit(scenes, result):
    hr, lr = scenes
    ax = viz.plot_timeline(hr, lr, pairs=result, candidates=result, report=result, max_days=3,
                           max_cloud_cover=20)
    chosen = set(zip(result.pairs["hr_id"], result.pairs["lr_id"]))
    others = [p for p in zip(result.candidates["hr_id"], result.candidates["lr_id"]) if p not in chosen]
    assert len(_segments(ax, "candidates")) == len(others) == result.report["n_candidates"].sum() - len(chosen)
    assert len(others) >= len(result.multiple) > 0
    windows = _segments(ax, "windows")
    assert len(windows) == len(hr)
    assert all(np.isclose(w[1][0] - w[0][0], 6.0) for w in windows)
    # HR markers coloured by status, as many per status as the report says.
    counts = result.report["status"].value_counts()
    by_color = {}
    for coll in _gid(ax, "hr"):
        by_color[to_hex(coll.get_facecolor()[0])] = len(coll.get_offsets())
    assert by_color == {timeline.STATUS_COLORS[s]: int(n) for s, n in counts.items()}
    assert _n_markers(ax, "hr") == len(hr)
    # LR scenes over the limit are crossed out.
    over = sum(1 for it in lr if it.properties["eo:cloud_cover"] > 20)
    assert over > 0 and _n_markers(ax, "over_limit") == over
    assert _n_markers(ax, "lr") == len(lr)


def test_plot_timeline_on_given_axes_and_empty_pairs(scenes):
    hr, lr = scenes
    _, ax = plt.subplots()
    assert viz.plot_timeline(hr, lr, ax=ax, pairs=[], title="t") is ax
    assert len(_segments(ax, "pairs")) == 0
    assert ax.get_title() == "t"


def test_plot_timeline_rejects_unknown_scenes_and_bad_options(scenes):
    hr, lr = scenes
    with pytest.raises(InvalidInputError, match="not in the frames"):
        viz.plot_timeline(hr, lr, pairs=[(hr[0].id, "NOPE")])
    with pytest.raises(InvalidInputError, match="max_days"):
        viz.plot_timeline(hr, lr, max_days=0)
    with pytest.raises(InvalidInputError, match="hr_id and lr_id"):
        viz.plot_timeline(hr, lr, pairs=pd.DataFrame({"a": [1]}))
    with pytest.raises(InvalidInputError, match="report"):
        viz.plot_timeline(hr, lr, report=42)


# ----------------------------------------------------------------- widgets


def _png(output):
    (shown,) = output.outputs
    png = base64.b64decode(shown["data"]["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return png


def test_pair_chooser_shows_factor_or_error():
    from eo_sr.viz.widgets import PairChooser

    app = PairChooser()
    assert app.check.factor == 4 and "factor 4" in app.result.value
    app.hr.value = "planetscope"
    assert app.check is None and "3.33" in app.result.value and "not a usable pair" in app.result.value
    app.lr.value, app.hr.value = "landsat-c2-l2", "sentinel-2-l2a"
    assert app.check.factor == 3 and "SR_B5" in app.result.value
    with pytest.raises(InvalidInputError, match="not among"):
        PairChooser(["demo-lr", "demo-hr"], lr="sentinel-2-l2a")


def test_match_explorer_rematches_on_slider_changes(scenes, result, tiny_world):
    from eo_sr.viz.widgets import MatchExplorer

    hr, lr = scenes
    app = MatchExplorer(hr, lr, **demo.MATCH_CRITERIA)
    pd.testing.assert_frame_equal(app.result.pairs, result.pairs)
    truth = tiny_world.expected_matches()["status"].value_counts()
    assert (f"<b>{truth['matched']}</b> matched, <b>{truth['multiple']}</b> multiple, "
            f"<b>{truth['unmatched']}</b> unmatched") in app.counts.value
    assert "too_cloudy" in app.counts.value
    first = _png(app.output)
    app.cloud.value = 100  # the cloudy LR scene now matches: "too_cloudy" disappears
    assert "too_cloudy" not in app.counts.value
    assert (app.result.report["reason"] == "too_cloudy").sum() == 0
    app.max_days.value = 8  # the gap is bridged too
    expected = matching.match_scenes(hr, lr, max_days=8, max_cloud_cover=100, min_coverage=0.9)
    pd.testing.assert_frame_equal(app.result.report.drop(columns="geometry"),
                                  expected.report.drop(columns="geometry"))
    assert _png(app.output) != first


def test_match_chooser_records_choices(scenes, result):
    from eo_sr.viz.widgets import MatchChooser

    hr, lr = scenes
    app = MatchChooser(result, hr, lr, max_size=128)
    multiple = result.multiple
    assert [v for _, v in app.scene.options] == list(multiple["hr_id"])
    first = multiple.iloc[0]
    assert app.candidate.options[0][1] == first["lr_ids"][0]  # the matcher's choice first
    assert sorted(v for _, v in app.candidate.options) == sorted(first["candidate_ids"])
    png = _png(app.output)
    assert "No choice recorded yet" in app.table.value
    other = next(i for i in first["candidate_ids"] if i != first["lr_ids"][0])
    app.candidate.value = other
    assert _png(app.output) != png
    app.keep.click()
    assert app.choices == {first["hr_id"]: other}
    frame = app.choices_frame()
    assert frame.to_dict("records") == [{"hr_id": first["hr_id"], "chosen_lr_id": other,
                                         "matcher_lr_id": first["lr_ids"][0], "same_as_matcher": False}]
    assert other in app.table.value and f"1 of {len(multiple)} choices" in app.table.value
    # Back on a scene, its recorded choice is selected again.
    app.scene.value = multiple.iloc[1]["hr_id"]
    app.scene.value = first["hr_id"]
    assert app.candidate.value == other
    with pytest.raises(InvalidInputError, match="not a candidate"):
        app.choose("DEMO_S2B_36SWD_20220125_L2A")


def test_search_explorer_searches_again(demo_server, tiny_world):
    from eo_sr import stac
    from eo_sr.viz.widgets import SearchExplorer

    catalog = stac.open_catalog(demo_server)
    collections = [demo.HR_COLLECTION, demo.LR_COLLECTION]
    items = list(tiny_world.items())
    first = min(it.datetime for it in items).date()
    last = max(it.datetime for it in items).date()
    start = first - pd.Timedelta(days=3)  # two stops before the first scene
    app = SearchExplorer(catalog, collections=collections, aoi=tiny_world.aoi, start=start, end=last)
    assert app.counts == {c: len(tiny_world.item_dicts(c)) for c in collections}
    assert f"<b>{len(items)} scenes</b>" in app.count.value
    _png(app.output)
    app.cloud.value = 10
    clear = [it for it in items if it.properties["eo:cloud_cover"] <= 10]
    assert 0 < len(clear) < len(items)
    assert sum(app.counts.values()) == len(app.items) == len(clear)
    lo, hi = app.dates.options[10][1], app.dates.options[30][1]
    app.dates.value = (lo, hi)
    expected = [it.id for it in clear if lo <= it.datetime.date() <= hi]
    assert expected and sorted(it.id for it in app.items) == sorted(expected)
    app.cloud.value = 0
    app.dates.value = (app.dates.options[0][1], app.dates.options[1][1])  # before the first scene
    assert app.counts == {demo.HR_COLLECTION: 0, demo.LR_COLLECTION: 0} and "<b>0 scenes</b>" in app.count.value
