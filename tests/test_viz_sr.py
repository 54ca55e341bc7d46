"""Figures of SR results (eo_sr.viz.sr): values placed where they belong, not only drawn."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from eo_sr.errors import InvalidInputError
from eo_sr.evaluate import evaluate_patches
from eo_sr.viz import sr as srviz


def _patches(n=3, size=16, factor=4, seed=0):
    rng = np.random.default_rng(seed)
    hr = rng.uniform(0.05, 0.4, (n, 4, size * factor, size * factor))
    lr = hr.reshape(n, 4, size, factor, size, factor).mean(axis=(3, 5))
    return lr, hr


def test_to_rgb_stretches_to_unit_range_and_orders_bands():
    img = np.stack([np.full((2, 2), v) for v in (0.1, 0.2, 0.3, 0.4)])
    rgb = srviz.to_rgb(img, np.array([[0.0, 0.6], [0.0, 0.4], [0.0, 0.2]]))
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], [0.5, 0.5, 0.5])  # red = band 2, green = 1, blue = 0
    with pytest.raises(InvalidInputError):
        srviz.to_rgb(img[None])


def test_mosaic_places_patches_by_their_bounds():
    a, b = np.zeros((1, 2, 4, 4)), np.ones((1, 2, 4, 4))
    manifest = pd.DataFrame({"left": [0.0, 40.0], "right": [40.0, 80.0], "bottom": [0.0, -40.0],
                             "top": [40.0, 0.0], "crs": ["EPSG:32636"] * 2})
    canvas, bounds, crs = srviz.mosaic(np.concatenate([a, b]), manifest)
    assert canvas.shape == (2, 8, 8) and bounds == (0.0, -40.0, 80.0, 40.0) and crs == "EPSG:32636"
    assert (canvas[:, :4, :4] == 0).all() and (canvas[:, 4:, 4:] == 1).all()
    assert np.isnan(canvas[:, :4, 4:]).all() and np.isnan(canvas[:, 4:, :4]).all()
    with pytest.raises(InvalidInputError, match="several CRSs"):
        srviz.mosaic(np.concatenate([a, b]), manifest.assign(crs=["EPSG:32636", "EPSG:32637"]))


def test_gain_scatter_pairs_each_patch_and_counts_wins():
    lr, hr = _patches()
    table = evaluate_patches(hr + 0.001, hr, lr, factor=4, data_range=1.0, model="near_perfect")
    fig, ax = plt.subplots()
    wide = srviz.plot_gain_scatter(table, model="near_perfect", ax=ax)
    assert len(wide) == 3 and (wide["near_perfect"] > wide["bicubic"]).all()
    assert "wins 100% of 3" in ax.get_title()
    (diagonal,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    x, y = diagonal.get_data()
    np.testing.assert_allclose(x, y)
    with pytest.raises(InvalidInputError, match="no model"):
        srviz.plot_gain_scatter(table, model="other")
    plt.close(fig)


def test_band_histograms_report_masked_means():
    a = np.zeros((1, 4, 4, 4))
    a[0, 1, :2] = 1.0
    mask = np.zeros((1, 4, 4), bool)
    mask[0, 2:] = True
    fig, ax = plt.subplots()
    means = srviz.plot_band_histograms({"all": a, "masked": a}, band=1, masks={"masked": mask}, ax=ax)
    assert means == {"all": 0.5, "masked": 0.0}
    assert len(ax.patches) == 2
    plt.close(fig)


def test_sr_panels_show_one_row_per_patch():
    lr, hr = _patches(n=2)
    fig = srviz.plot_sr_panels(lr, hr, hr, factor=4, labels=["a", "b"])
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 12
    assert axes[5].get_title().endswith("mean 0.0000")  # SR equals HR: no error
    plt.close(fig)
    with pytest.raises(InvalidInputError):
        srviz.plot_sr_panels(lr, hr, hr, factor=2)


def test_swipe_static_joins_the_two_halves():
    left, right = np.zeros((4, 8, 10)), np.ones((4, 8, 10))
    fig, ax = plt.subplots()
    srviz.plot_swipe(left, right, split=0.3, limits=np.array([[0, 1]] * 3), ax=ax)
    shown = ax.images[0].get_array()
    assert (shown[:, :3] == 0).all() and (shown[:, 3:] == 1).all()
    plt.close(fig)


def test_swipe_map_holds_both_images_offline():
    pytest.importorskip("ipyleaflet")
    import ipyleaflet
    from PIL import Image

    left, right = np.zeros((4, 8, 8)), np.ones((4, 8, 8))
    m = srviz.swipe_map(left, right, bounds=(535620.0, 3892130.0, 535780.0, 3892290.0), crs="EPSG:32636",
                        limits=np.array([[0.0, 1.0]] * 3))
    overlays = [layer for layer in m.layers if isinstance(layer, ipyleaflet.ImageOverlay)]
    assert [o.name for o in overlays] == ["bicubic", "SR"]
    assert all(o.url.startswith("data:image/png;base64,") for o in overlays)
    png = Image.open(io.BytesIO(base64.b64decode(overlays[1].url.split(",", 1)[1])))
    assert png.size == (8, 8) and np.asarray(png)[..., :3].min() == 255
    (s, w), (n, e) = overlays[0].bounds
    assert 35.1 < s < n < 35.3 and 33.3 < w < e < 33.5  # UTM 36N: the demo AOI in Cyprus
    assert any(isinstance(c, ipyleaflet.SplitMapControl) for c in m.controls)
    assert "AOI" in [layer.name for layer in m.layers]
