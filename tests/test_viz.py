"""Tests of eo_sr.viz: footprint tables, the static footprint figure, the leafmap map
and true-colour figures, on the tiny demo world."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from eo_sr import viz  # noqa: E402
from eo_sr.demo import HR_COLLECTION, LR_COLLECTION  # noqa: E402
from eo_sr.errors import InvalidInputError  # noqa: E402


@pytest.fixture(scope="module")
def world(tiny_world):
    return tiny_world


@pytest.fixture(scope="module")
def counts(world):
    return {LR_COLLECTION: len(world.item_dicts(LR_COLLECTION)), HR_COLLECTION: len(world.item_dicts(HR_COLLECTION))}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------- package


def test_import_viz_is_light():
    code = ("import sys, eo_sr.viz as v; "
            "heavy = [m for m in ('leafmap', 'ipyleaflet', 'matplotlib', 'geopandas', 'rasterio') if m in sys.modules];"
            "print(heavy, sorted(v.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("[] ['QCExplorer', 'draw_pixel_edges', 'footprint_map', 'footprints_frame', 'patch_map', "
                           "'patches_frame', 'plot_band_histograms', 'plot_bic', 'plot_footprints', "
                           "'plot_patch_splits', 'plot_qc_scatter', 'plot_timeline', 'show_image', 'show_patch_pair', "
                           "'show_rgb', 'stretch_rgb']")


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        viz.nope  # noqa: B018


# ----------------------------------------------------------------- footprints_frame


def test_footprints_frame_rows_columns_crs(world, counts):
    frame = viz.footprints_frame(world.items())
    assert len(frame) == sum(counts.values()) == 27
    assert list(frame.columns) == ["id", "collection", "datetime", "eo:cloud_cover", "platform", "gsd", "geometry"]
    assert frame.crs.to_epsg() == 4326
    assert frame["collection"].value_counts().to_dict() == counts
    assert str(frame["datetime"].dtype) == "datetime64[ns, UTC]"
    assert set(frame.loc[frame.collection == HR_COLLECTION, "gsd"]) == {2.5}
    assert set(frame.loc[frame.collection == LR_COLLECTION, "gsd"]) == {10.0}
    # Values come straight from the items.
    first = world.item_dicts()[0]
    row = frame.iloc[0]
    assert row["id"] == first["id"]
    assert row["eo:cloud_cover"] == pytest.approx(first["properties"]["eo:cloud_cover"])
    assert row["platform"] == first["properties"]["platform"]
    assert row["geometry"].equals(shape(first["geometry"]))
    # Every footprint lies in the AOI (within a few metres of rounding).
    assert frame.geometry.within(world.aoi.buffer(1e-4)).all()


def test_footprints_frame_accepts_items_dicts_and_frames(world):
    a = viz.footprints_frame(world.items())
    b = viz.footprints_frame(world.item_dicts())
    c = viz.footprints_frame(list(world.items()))
    d = viz.footprints_frame({"type": "FeatureCollection", "features": world.item_dicts(HR_COLLECTION)})
    assert a.equals(b) and a.equals(c)
    assert len(d) == 9 and set(d.collection) == {HR_COLLECTION}
    assert viz.footprints_frame(a) is a
    single = viz.footprints_frame(world.items()[0])
    assert len(single) == 1


def test_footprints_frame_missing_values_and_empty():
    item = {"type": "Feature", "id": "x", "collection": "c", "properties": {"datetime": "2022-01-01T00:00:00Z"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}}
    frame = viz.footprints_frame([item])
    assert math.isnan(frame["eo:cloud_cover"].iloc[0]) and math.isnan(frame["gsd"].iloc[0])
    assert frame["platform"].iloc[0] is None
    empty = viz.footprints_frame([])
    assert len(empty) == 0 and empty.crs.to_epsg() == 4326 and "geometry" in empty.columns


@pytest.mark.parametrize("bad", [[42], [{"id": "no-geometry", "properties": {}, "geometry": None}]])
def test_footprints_frame_rejects_bad_input(bad):
    with pytest.raises(InvalidInputError):
        viz.footprints_frame(bad)


# ----------------------------------------------------------------- plot_footprints


def test_plot_footprints_patches_lines_legend(world, counts, tmp_path):
    ax = viz.plot_footprints(world.items(), aoi=world.aoi)
    assert len(ax.patches) == sum(counts.values())  # one polygon per footprint
    assert len(ax.lines) == 1  # the AOI outline
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{LR_COLLECTION} (LR, 18 scenes)", f"{HR_COLLECTION} (HR, 9 scenes)", "AOI"]
    # LR and HR footprints have different colours, the same within a collection.
    faces = {tuple(np.round(p.get_edgecolor()[:3], 3)) for p in ax.patches}
    assert len(faces) == 2
    # Lon/lat axes cover the AOI, aspect corrected for latitude.
    w, s, e, n = world.bbox
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 <= w and x1 >= e and y0 <= s and y1 >= n
    assert ax.get_aspect() == pytest.approx(1 / math.cos(math.radians((s + n) / 2)))
    assert "longitude" in ax.get_xlabel() and "latitude" in ax.get_ylabel()
    out = tmp_path / "footprints.png"
    ax.figure.savefig(out, dpi=60)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_plot_footprints_stacked_fill_reaches_the_target_opacity(world):
    ax = viz.plot_footprints(world.items(LR_COLLECTION), fill_alpha=0.3, legend=False, title=None)
    assert ax.get_legend() is None and len(ax.lines) == 0
    # Each LR tile is seen on 9 dates: 9 stacked fills of alpha a give 1 - (1 - a)^9 = 0.3.
    alpha = ax.patches[0].get_facecolor()[3]
    assert 1 - (1 - alpha) ** 9 == pytest.approx(0.3, abs=1e-6)


def test_plot_footprints_on_given_axes_with_bbox_aoi_and_colors(world):
    fig, ax = plt.subplots()
    out = viz.plot_footprints(world.item_dicts(HR_COLLECTION), aoi=world.bbox, ax=ax,
                              colors={HR_COLLECTION: "red"})
    assert out is ax and len(ax.patches) == 9 and len(ax.lines) == 1
    assert tuple(ax.patches[0].get_edgecolor()[:3]) == (1.0, 0.0, 0.0)
    with pytest.raises(InvalidInputError, match="aoi must be"):
        viz.plot_footprints(world.items(), aoi="Cyprus")


# ----------------------------------------------------------------- footprint_map


def test_footprint_map_layers_features_and_view(world, counts):
    import ipyleaflet
    import leafmap

    m = viz.footprint_map(world.items(), aoi=world.aoi)
    assert isinstance(m, leafmap.Map)
    geo = {layer.name: layer for layer in m.layers if isinstance(layer, ipyleaflet.GeoJSON)}
    assert list(geo) == [f"{LR_COLLECTION} (LR, 18 scenes)", f"{HR_COLLECTION} (HR, 9 scenes)", "AOI"]
    by_collection = {name.split(" ")[0]: layer for name, layer in geo.items() if name != "AOI"}
    for coll, layer in by_collection.items():
        feats = layer.data["features"]
        assert len(feats) == counts[coll]
        assert {f["properties"]["collection"] for f in feats} == {coll}
        assert {"id", "collection", "datetime", "eo:cloud_cover", "platform"} <= set(feats[0]["properties"])
        json.dumps(layer.data)  # serialisable (no NaN, no timestamps) for the widget state
    assert by_collection[LR_COLLECTION].style["color"] != by_collection[HR_COLLECTION].style["color"]
    assert len(geo["AOI"].data["features"]) == 1 and geo["AOI"].style["fill"] is False
    assert any(isinstance(c, ipyleaflet.LayersControl) for c in m.controls)
    assert any(isinstance(c, ipyleaflet.WidgetControl) for c in m.controls)  # the hover panel
    # Centred on the AOI, zoomed in enough that the AOI fills a good part of the map.
    lat, lon = m.center
    assert lat == pytest.approx(world.aoi.centroid.y, abs=1e-3) and lon == pytest.approx(world.aoi.centroid.x, abs=1e-3)
    assert 13 <= m.zoom <= 16


def test_footprint_map_hover_panel_shows_item_facts(world):
    import ipyleaflet
    import ipywidgets

    m = viz.footprint_map(world.items(HR_COLLECTION))
    layer = next(layer for layer in m.layers if isinstance(layer, ipyleaflet.GeoJSON))
    panel = next(c.widget for c in m.controls if isinstance(c, ipyleaflet.WidgetControl)
                 and isinstance(c.widget, ipywidgets.HTML))
    feature = layer.data["features"][0]
    layer._hover_callbacks(feature=feature, id=None, properties=feature["properties"])
    assert feature["properties"]["id"] in panel.value and "cloud cover" in panel.value
    # No AOI given: the map still centres on the footprints, and has no AOI layer.
    assert "AOI" not in [layer.name for layer in m.layers]
    w, s, e, n = viz.footprints_frame(world.items(HR_COLLECTION)).total_bounds
    assert m.center[0] == pytest.approx((s + n) / 2) and m.center[1] == pytest.approx((w + e) / 2)


# ----------------------------------------------------------------- show_rgb / stretch_rgb


def test_stretch_rgb_maps_percentiles_and_masks_nodata():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(100, 200, size=(3, 20, 30)).astype(np.float32)
    rgb[:, 0, 0] = np.nan
    out = viz.stretch_rgb(rgb, percentiles=(0, 100), per_band=True)
    assert out.shape == (20, 30, 4) and out.dtype == np.float32
    assert out[0, 0, 3] == 0 and out[..., 3].sum() == 20 * 30 - 1
    for b in range(3):
        vals = out[..., b][out[..., 3] == 1]
        assert vals.min() == pytest.approx(0) and vals.max() == pytest.approx(1)
    # A joint stretch keeps the ratio between bands: a brighter band stays brighter.
    rgb[0] += 50
    joint = viz.stretch_rgb(rgb)
    assert joint[..., 0][joint[..., 3] == 1].mean() > joint[..., 1][joint[..., 3] == 1].mean() + 0.2
    assert viz.stretch_rgb(np.full((3, 4, 4), np.nan)).sum() == 0
    with pytest.raises(InvalidInputError):
        viz.stretch_rgb(rgb[:2])
    with pytest.raises(InvalidInputError):
        viz.stretch_rgb(rgb, percentiles=(90, 10))


def test_show_rgb_lr_and_hr_side_by_side(world, tmp_path):
    lr = world.items(LR_COLLECTION)[0]
    hr = world.items(HR_COLLECTION)[0]
    fig, axes = plt.subplots(1, 2)
    viz.show_rgb(lr, ax=axes[0])
    viz.show_rgb(hr.to_dict(), ax=axes[1], max_size=64)
    img_lr, img_hr = axes[0].images[0].get_array(), axes[1].images[0].get_array()
    shape = lr.assets["red"].extra_fields["proj:shape"]
    assert img_lr.shape == (*shape, 4)  # small enough: read at full resolution
    assert max(img_hr.shape[:2]) <= 64  # decimated through the overviews
    assert lr.id in axes[0].get_title() and "10 m" in axes[0].get_title()
    assert "EPSG:32636" in axes[0].get_xlabel() and "EPSG:3857" in axes[1].get_xlabel()
    # The image sits on the scene's own grid.
    left, right, bottom, top = axes[0].images[0].get_extent()
    t = lr.assets["red"].extra_fields["proj:transform"]
    assert (left, top) == pytest.approx((t[2], t[5])) and right - left == pytest.approx(shape[1] * t[0])
    out = tmp_path / "rgb.png"
    fig.savefig(out, dpi=50)
    assert out.stat().st_size > 5000


def test_show_rgb_accepts_hrefs_and_marks_nodata(world):
    # The eastern LR tile is cut by the swath edge: its no-data corner is transparent.
    east = next(d for d in world.item_dicts(LR_COLLECTION) if "36SXD" in d["id"])
    hrefs = {b: east["assets"][b]["href"] for b in ("red", "green", "blue")}
    ax = viz.show_rgb(hrefs, title="east")
    alpha = ax.images[0].get_array()[..., 3]
    assert ax.get_title() == "east"
    assert 0 < alpha.mean() < 1
    nodata_pct = east["properties"]["s2:nodata_pixel_percentage"]
    assert 100 * (1 - alpha.mean()) == pytest.approx(nodata_pct, abs=0.5)
    # A false-colour composite (NIR, red, green) from a list of hrefs.
    ax2 = viz.show_rgb([east["assets"]["nir"]["href"], hrefs["red"], hrefs["green"]])
    assert ax2.images and ax2.get_title() == ""


def test_show_rgb_rejects_bad_sources(world):
    item = world.items(HR_COLLECTION)[0]
    with pytest.raises(InvalidInputError, match="no asset for band 'swir16'"):
        viz.show_rgb(item, bands=("swir16", "red", "green"))
    with pytest.raises(InvalidInputError, match="three bands"):
        viz.show_rgb(item, bands=("red", "green"))
    with pytest.raises(InvalidInputError, match="give 3 hrefs"):
        viz.show_rgb(["a.tif"])
    with pytest.raises(InvalidInputError, match="cannot find band assets"):
        viz.show_rgb(42)
