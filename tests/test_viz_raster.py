"""Tests of eo_sr.viz.raster: true-colour images of loaded arrays, band histograms, pixel
edges of exact grids, and the patch-store map and its static twin."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import to_hex, to_rgba  # noqa: E402
from pyproj import Transformer  # noqa: E402

from eo_sr import viz  # noqa: E402
from eo_sr.errors import InvalidInputError  # noqa: E402
from eo_sr.grid import GridSpec  # noqa: E402
from eo_sr.viz import raster  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _scene(grid: GridSpec, bands=("blue", "green", "red", "nir"), seed=0):
    """A (band, y, x) DataArray with pixel-centre coordinates on ``grid`` and a CRS."""
    import rioxarray  # noqa: F401

    rng = np.random.default_rng(seed)
    x, y = grid.coords()
    data = rng.uniform(0.0, 0.5, size=(len(bands), grid.height, grid.width)).astype(np.float32)
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": list(bands), "x": x, "y": y})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def _manifest():
    """Three patches of 320 m in EPSG:32636: two train (one place seen twice), one test."""
    rows = []
    for pid, split, left, top in [("a", "train", 532600.0, 3895800.0), ("b", "train", 532600.0, 3895800.0),
                                  ("c", "test", 534000.0, 3894000.0)]:
        rows.append({"patch_id": pid, "pair_id": "p", "split": split, "left": left, "bottom": top - 320,
                     "right": left + 320, "top": top, "crs": "EPSG:32636"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- package


def test_viz_exports_the_raster_functions_lazily():
    for name in ("show_image", "plot_band_histograms", "draw_pixel_edges", "patch_map", "plot_patch_splits"):
        assert name in viz.__all__
        assert getattr(viz, name) is getattr(raster, name)


# ----------------------------------------------------------------- rgb_limits / rgb_image


def test_rgb_limits_are_joint_percentiles_over_valid_masked_pixels():
    rgb = np.stack([np.arange(100, dtype=np.float32).reshape(10, 10)] * 3)
    assert raster.rgb_limits(rgb, percentiles=(0, 100)) == (0.0, 99.0)
    lo, hi = raster.rgb_limits(rgb, percentiles=(10, 90))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(np.arange(100), [10, 90])))
    rgb[1, 0, :] = np.nan  # the first row has no data in one band: excluded from all three
    assert raster.rgb_limits(rgb, percentiles=(0, 100))[0] == 10.0
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    assert raster.rgb_limits(rgb, percentiles=(0, 100), mask=mask) == (50.0, 99.0)
    assert raster.rgb_limits(np.full((3, 2, 2), np.nan)) == (0.0, 1.0)
    with pytest.raises(InvalidInputError, match="percentiles"):
        raster.rgb_limits(rgb, percentiles=(50, 10))
    with pytest.raises(InvalidInputError, match="mask has shape"):
        raster.rgb_limits(rgb, mask=np.ones((3, 3), bool))


def test_rgb_image_maps_limits_to_0_1_and_nodata_to_transparent():
    rgb = np.array([[[0.0, 0.1, 0.2, np.nan]]] * 3, dtype=np.float32)  # (3, 1, 4)
    img = raster.rgb_image(rgb, limits=(0.0, 0.1))
    assert img.shape == (1, 4, 4) and img.dtype == np.float32
    np.testing.assert_allclose(img[0, :, 0], [0.0, 1.0, 1.0, 0.0])  # clipped at 1, NaN drawn as 0
    np.testing.assert_array_equal(img[0, :, 3], [1, 1, 1, 0])
    with pytest.raises(InvalidInputError, match="high > low"):
        raster.rgb_image(rgb, limits=(0.2, 0.1))


def test_rgb_image_picks_bands_by_name():
    values = np.stack([np.full((2, 2), v, np.float32) for v in (0.1, 0.2, 0.3, 0.4)])  # blue, green, red, nir
    img = raster.rgb_image(values, limits=(0.0, 0.4))  # four unnamed bands: eo-sr's default order
    np.testing.assert_allclose(img[0, 0, :3], [0.75, 0.5, 0.25])  # red, green, blue
    img = raster.rgb_image(values, bands=("nir", "red", "green"), limits=(0.0, 0.4))
    np.testing.assert_allclose(img[0, 0, :3], [1.0, 0.75, 0.5])
    da = xr.DataArray(values[::-1], dims=("band", "y", "x"), coords={"band": ["nir", "red", "green", "blue"]})
    np.testing.assert_allclose(raster.rgb_image(da, limits=(0.0, 0.4))[0, 0, :3], [0.75, 0.5, 0.25])
    with_time = da.expand_dims(time=[0])
    np.testing.assert_allclose(raster.rgb_image(with_time, limits=(0.0, 0.4))[0, 0, :3], [0.75, 0.5, 0.25])
    with pytest.raises(InvalidInputError, match="no band"):
        raster.rgb_image(values, bands=("red", "green", "swir16"))
    with pytest.raises(InvalidInputError, match="band_names"):
        raster.rgb_image(np.zeros((5, 2, 2)))
    with pytest.raises(InvalidInputError, match="shape"):
        raster.rgb_image(np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="select one"):
        raster.rgb_image(da.expand_dims(time=[0, 1]))


# ----------------------------------------------------------------- show_image


def test_show_image_draws_in_crs_units_with_an_overlay():
    grid = GridSpec("EPSG:32636", 500000.0, 3900000.0, 10.0, 6, 8)
    da = _scene(grid)
    overlay = np.zeros((6, 8), bool)
    overlay[2, 3] = True
    ax = raster.show_image(da, overlay=overlay, overlay_color="#00ff00", overlay_alpha=0.4, title="t",
                           nodata_color="0.5")
    left, right, bottom, top = ax.images[0].get_extent()
    assert (left, bottom, right, top) == pytest.approx(grid.bounds)
    layer = ax.images[1].get_array()
    assert tuple(layer[2, 3]) == pytest.approx(to_rgba("#00ff00", 0.4))
    assert layer[0, 0, 3] == 0  # nothing drawn where the overlay is False
    assert ax.get_title() == "t" and "EPSG:32636" in ax.get_xlabel()
    assert to_hex(ax.get_facecolor()) == to_hex("0.5")
    ax = raster.show_image(da.values, axis_labels=False)
    assert ax.images[0].get_extent() == pytest.approx((-0.5, 7.5, 5.5, -0.5))  # pixel indices
    assert list(ax.get_xticks()) == []
    with pytest.raises(InvalidInputError, match="overlay"):
        raster.show_image(da, overlay=np.zeros((2, 2), bool))


def test_show_image_of_a_loaded_scene(tiny_world):
    from eo_sr import demo, loading

    item = tiny_world.items(demo.LR_COLLECTION)[0]
    grid = loading.native_grid(item, "red")
    scene = loading.load_items([item], bands=["red", "green", "blue"], grid=grid).compute()
    ax = raster.show_image(scene, overlay=scene["cloud_mask"].isel(time=0))
    left, right, bottom, top = ax.images[0].get_extent()
    assert (left, bottom, right, top) == pytest.approx(grid.bounds)
    assert ax.images[0].get_array().shape == (grid.height, grid.width, 4)


# ----------------------------------------------------------------- histograms


def test_plot_band_histograms_uses_only_valid_pixels():
    a = np.zeros((2, 10, 10), np.float32)
    a[:, :5] = 0.1
    a[:, 5:] = 0.9
    b = np.full((2, 4, 4), 0.5, np.float32)  # another size: densities are comparable
    b[0, 0, 0] = np.nan
    keep_top = np.zeros((10, 10), bool)
    keep_top[:5] = True
    axes = raster.plot_band_histograms({"a": a, "b": b}, masks={"a": keep_top}, band_names=["red", "nir"], bins=10,
                                       value_range={"red": (0.0, 1.0), "nir": (0.0, 1.0)}, colors={"b": "#123456"})
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["red", "nir"]
    for ax in axes:
        assert len(ax.patches) == 2  # one step outline per image
        outline_a, outline_b = (p.get_xy() for p in ax.patches)
        peak_a = outline_a[np.argmax(outline_a[:, 1]), 0]
        assert 0.1 <= peak_a < 0.2  # the masked 0.9 pixels are not counted
        assert outline_a[:, 1].max() == pytest.approx(10.0)  # density: all valid pixels in one 0.1 bin
        assert 0.5 <= outline_b[np.argmax(outline_b[:, 1]), 0] < 0.6
        assert to_hex(ax.patches[1].get_edgecolor()) == "#123456"
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == ["a", "b"]


def test_plot_band_histograms_on_given_axes_and_errors():
    img = xr.DataArray(np.random.default_rng(1).uniform(size=(3, 5, 5)), dims=("band", "y", "x"),
                       coords={"band": ["red", "green", "blue"]})
    _, axes = plt.subplots(1, 2)
    out = raster.plot_band_histograms({"x": img}, bands=["blue", "red"], axes=axes)
    assert [ax.get_title() for ax in out] == ["blue", "red"]
    with pytest.raises(InvalidInputError, match="at least one image"):
        raster.plot_band_histograms({})
    with pytest.raises(InvalidInputError, match="unknown image"):
        raster.plot_band_histograms({"x": img}, masks={"y": np.ones((5, 5), bool)})
    with pytest.raises(InvalidInputError, match="mask of 'x'"):
        raster.plot_band_histograms({"x": img}, masks={"x": np.ones((4, 5), bool)})
    with pytest.raises(InvalidInputError, match="no band"):
        raster.plot_band_histograms({"x": img}, bands=["nir"])
    with pytest.raises(InvalidInputError, match="axes for"):
        raster.plot_band_histograms({"x": img}, axes=axes)


# ----------------------------------------------------------------- pixel edges


def test_draw_pixel_edges_on_the_grid_lattice():
    lr = GridSpec("EPSG:32636", 1000.0, 2000.0, 10.0, 20, 20)
    hr = lr.refine(4)
    _, ax = plt.subplots()
    ax.set_xlim(1020.0, 1065.0)
    ax.set_ylim(1900.0, 1950.0)
    lines = raster.draw_pixel_edges(ax, lr, color="yellow")
    segments = lines.get_segments()
    xs = sorted(s[0][0] for s in segments if s[0][0] == s[1][0])
    ys = sorted(s[0][1] for s in segments if s[0][1] == s[1][1])
    assert xs == [1020.0, 1030.0, 1040.0, 1050.0, 1060.0]
    assert ys == [1900.0, 1910.0, 1920.0, 1930.0, 1940.0, 1950.0]
    fine = raster.draw_pixel_edges(ax, hr, bounds=(1020.0, 1900.0, 1060.0, 1950.0))
    fine_xs = sorted(s[0][0] for s in fine.get_segments() if s[0][0] == s[1][0])
    assert len(fine_xs) == 17 and set(xs[:-1]) <= set(fine_xs)  # every LR edge is an HR edge
    assert to_hex(lines.get_colors()[0]) == to_hex("yellow")
    # the view is clipped to the grid
    ax.set_xlim(900.0, 1015.0)
    assert {s[0][0] for s in raster.draw_pixel_edges(ax, lr).get_segments() if s[0][0] == s[1][0]} == {1000.0, 1010.0}
    with pytest.raises(InvalidInputError, match="does not overlap"):
        raster.draw_pixel_edges(ax, lr, bounds=(0.0, 0.0, 10.0, 10.0))
    with pytest.raises(InvalidInputError, match="zoom in"):
        raster.draw_pixel_edges(ax, GridSpec("EPSG:32636", 0.0, 10000.0, 1.0, 10000, 10000),
                                bounds=(0.0, 0.0, 10000.0, 10000.0))


# ----------------------------------------------------------------- patch stores


def test_patches_frame_reprojects_bounds_to_lonlat():
    manifest = _manifest()
    frame = raster.patches_frame(manifest)
    assert str(frame.crs) == "EPSG:4326" and len(frame) == 3
    assert list(frame["patch_id"]) == ["a", "b", "c"]
    assert not {"left", "bottom", "right", "top"} & set(frame.columns)
    to_ll = Transformer.from_crs(32636, 4326, always_xy=True)
    for rec, geom in zip(manifest.itertuples(), frame.geometry):
        corner = to_ll.transform(rec.left, rec.top)
        assert min(np.hypot(x - corner[0], y - corner[1]) for x, y in geom.exterior.coords) < 1e-9
    assert len(raster.patches_frame(manifest.iloc[:0])) == 0
    with pytest.raises(InvalidInputError, match="lacks column"):
        raster.patches_frame(manifest.drop(columns="crs"))


def test_plot_patch_splits_one_square_per_patch_coloured_by_split():
    manifest = _manifest()
    ax = raster.plot_patch_splits(manifest, aoi=[33.36, 35.13, 33.45, 35.21])
    assert len(ax.patches) == 3
    faces = [to_hex(p.get_facecolor()) for p in ax.patches]
    assert faces.count(raster.SPLIT_COLORS["train"]) == 2 and faces.count(raster.SPLIT_COLORS["test"]) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["train (2)", "test (1)", "AOI"]
    assert ax.get_aspect() == pytest.approx(1 / np.cos(np.radians(35.17)), rel=1e-3)
    ax = raster.plot_patch_splits(manifest, colors={"test": "#000000"}, legend=False, title=None)
    assert to_hex(ax.patches[2].get_facecolor()) == "#000000" and ax.get_legend() is None


def test_patch_map_layers_per_split_and_aoi():
    import ipyleaflet

    m = raster.patch_map(_manifest(), aoi=[33.36, 35.13, 33.45, 35.21])
    layers = {layer.name: layer for layer in m.layers if isinstance(layer, ipyleaflet.GeoJSON)}
    assert list(layers) == ["train (2 patches)", "test (1 patches)", "AOI"]
    train = layers["train (2 patches)"]
    assert [f["properties"]["patch_id"] for f in train.data["features"]] == ["a", "b"]
    assert train.style["color"] == raster.SPLIT_COLORS["train"]
    assert any(isinstance(c, ipyleaflet.LayersControl) for c in m.controls)
    lat, lon = m.center
    assert lat == pytest.approx(35.17) and lon == pytest.approx(33.405)
    with pytest.raises(InvalidInputError, match="no patch"):
        raster.patch_map(_manifest().iloc[:0])
