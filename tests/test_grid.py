"""eo_sr.grid: exact aligned grids, reprojection onto them, co-registration."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from eo_sr import grid as G
from eo_sr.errors import InvalidInputError


@settings(max_examples=100, deadline=None)
@given(left=st.floats(1e5, 9e5), bottom=st.floats(1e6, 9e6), w=st.floats(10, 5000), h=st.floats(10, 5000),
       lr_res=st.sampled_from([10.0, 20.0, 30.0, 5.0]), factor=st.integers(2, 8))
def test_aligned_grids_are_exact(left, bottom, w, h, lr_res, factor):
    lr, hr = G.aligned_grids((left, bottom, left + w, bottom + h), crs="EPSG:32636", lr_res=lr_res, factor=factor)
    # covers the bounds, edges on the LR lattice, HR edges coincide with LR edges
    l_, b_, r_, t_ = lr.bounds
    tol = 1e-6  # snapping treats edges within 1e-9 pixel of the lattice as on it
    assert l_ <= left + tol and b_ <= bottom + tol and r_ >= left + w - tol and t_ >= bottom + h - tol
    for v in (lr.left, lr.top):
        assert v / lr_res == pytest.approx(round(v / lr_res), abs=1e-6)
    assert hr.bounds == pytest.approx(lr.bounds, abs=1e-9)
    assert hr.transform.a * factor == pytest.approx(lr.transform.a, rel=1e-12)
    assert (hr.left, hr.top) == (lr.left, lr.top)
    G.check_alignment(lr, hr, factor)


def test_hr_averaged_by_the_factor_lands_on_lr_pixels():
    lr, hr = G.aligned_grids((535461, 3891003, 536099, 3891647), crs="EPSG:32636", lr_res=10, factor=4)
    hx, hy = hr.coords()
    lx, ly = lr.coords()
    assert np.allclose(hx.reshape(-1, 4).mean(axis=1), lx)
    assert np.allclose(hy.reshape(-1, 4).mean(axis=1), ly)


def test_bad_grids():
    with pytest.raises(InvalidInputError, match="positive integer"):
        G.aligned_grids((0, 0, 100, 100), crs="EPSG:32636", lr_res=10, factor=2.5)
    with pytest.raises(InvalidInputError, match="empty or inverted"):
        G.aligned_grids((0, 100, 100, 0), crs="EPSG:32636", lr_res=10, factor=2)
    lr, hr = G.aligned_grids((0, 0, 100, 100), crs="EPSG:32636", lr_res=10, factor=4)
    with pytest.raises(InvalidInputError, match="not aligned"):
        G.check_alignment(lr, G.GridSpec(hr.crs, hr.left + 1.0, hr.top, hr.res, hr.height, hr.width), 4)
    with pytest.raises(InvalidInputError, match="multiple"):
        G.GridSpec("EPSG:32636", 0, 0, 10, 5, 5).coarsen(2)


def test_inner_grid_keeps_whole_blocks_inside():
    lr, _ = G.aligned_grids((0, 0, 1000, 1000), crs="EPSG:32636", lr_res=10, factor=4)
    inner = G.inner_grid(lr, (15, 25, 985, 700), multiple=32)
    assert inner.height % 32 == 0 and inner.width % 32 == 0
    l_, b_, r_, t_ = inner.bounds
    assert l_ >= 15 and b_ >= 25 and r_ <= 985 and t_ <= 700
    with pytest.raises(InvalidInputError, match="no whole"):
        G.inner_grid(lr, (0, 0, 100, 100), multiple=32)


def _raster(values, grid):
    x, y = grid.coords()
    da = xr.DataArray(values, dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def test_reprojection_lands_exactly_on_the_grid_and_average_equals_block_mean():
    import rioxarray  # noqa: F401

    rng = np.random.default_rng(0)
    lr, hr = G.aligned_grids((535000, 3890000, 536280, 3891280), crs="EPSG:32636", lr_res=10, factor=4)
    fine = _raster(rng.random(hr.shape).astype(np.float32), hr)
    down = G.reproject_to_grid(fine, lr, resampling="average")
    assert G.grid_of(down) == lr
    block = fine.values.reshape(lr.height, 4, lr.width, 4).mean(axis=(1, 3))
    assert np.allclose(down.values, block, atol=1e-6)


def test_reprojection_from_web_mercator():
    import rioxarray  # noqa: F401
    from pyproj import Transformer

    to3857 = Transformer.from_crs(32636, 3857, always_xy=True)
    lr, hr = G.aligned_grids((535000, 3890000, 535640, 3890640), crs="EPSG:32636", lr_res=10, factor=4)
    x0, y0 = to3857.transform(534900, 3890740)
    src = G.GridSpec("EPSG:3857", round(x0), round(y0), 3.0, 400, 400)
    sx, sy = src.coords()
    # a smooth ramp in UTM x: after reprojection the value must equal UTM x at each HR pixel centre
    ux, _ = Transformer.from_crs(3857, 32636, always_xy=True).transform(*np.meshgrid(sx, sy))
    out = G.reproject_to_grid(_raster(ux.astype(np.float64), src), hr, resampling="bilinear")
    hx, _ = hr.coords()
    assert np.allclose(out.values, hx[None, :], atol=0.05)


def test_reprojection_errors():
    da = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"))
    import rioxarray  # noqa: F401

    with pytest.raises(InvalidInputError, match="no CRS"):
        G.reproject_to_grid(da, G.GridSpec("EPSG:32636", 0, 0, 10, 4, 4))
    with pytest.raises(InvalidInputError, match="resampling"):
        G.reproject_to_grid(da, G.GridSpec("EPSG:32636", 0, 0, 10, 4, 4), resampling="bicubicc")


@pytest.mark.parametrize("dy, dx", [(0.3, -0.2), (-1.25, 0.5), (0.0, 0.0)])
def test_pair_shift_finds_subpixel_shifts(dy, dx):
    from scipy import ndimage

    rng = np.random.default_rng(1)
    hr = ndimage.gaussian_filter(rng.random((256, 256)), 3)
    lr = hr.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    moved = ndimage.shift(hr, (dy * 4, dx * 4), order=3, mode="wrap")
    got_dy, got_dx, err = G.pair_shift(lr, moved, 4)
    assert got_dy == pytest.approx(-dy, abs=0.08) and got_dx == pytest.approx(-dx, abs=0.08)
    assert 0 <= err < 0.5
