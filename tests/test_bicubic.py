"""eo_sr.bicubic: PyTorch's bicubic upsampling, one image in numpy or a batch with torch."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from eo_sr import bicubic, metrics, radiometry
from eo_sr.bicubic import upsample_bicubic
from eo_sr.errors import InvalidInputError


def _torch_bicubic(x: np.ndarray, factor: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    return torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=factor, mode="bicubic",
                                           align_corners=False).numpy()


def test_one_function_behind_every_name():
    assert metrics.upsample_bicubic is upsample_bicubic and radiometry.upsample_bicubic is upsample_bicubic
    assert radiometry.bicubic_matrix is bicubic.bicubic_matrix


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_both_call_styles_are_torchs(factor):
    x = np.random.default_rng(factor).random((2, 3, 7, 9)).astype(np.float32)
    theirs = _torch_bicubic(x, factor)
    batch = upsample_bicubic(x, factor)  # (N, B, h, w): the batched path
    assert batch.shape == (2, 3, 7 * factor, 9 * factor) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, theirs, atol=1e-5)
    np.testing.assert_allclose(upsample_bicubic(x, factor, batch_size=1), theirs, atol=1e-5)
    for i in range(2):  # one (band, y, x) image at a time: the numpy path
        one = upsample_bicubic(x[i], factor, channel_axis=0)
        assert one.dtype == np.float32
        np.testing.assert_allclose(one, theirs[i], atol=1e-5)


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_the_two_call_styles_give_the_same_numbers(factor):
    rng = np.random.default_rng(10 + factor)
    image = rng.random((4, 13, 11)).astype(np.float32)
    one = upsample_bicubic(image, factor, channel_axis=0)
    batched = upsample_bicubic(image, factor, batch_size=2)
    assert one.shape == batched.shape == (4, 13 * factor, 11 * factor)
    np.testing.assert_allclose(one, batched, atol=2e-6)  # float64 then rounded, vs float32 products
    np.testing.assert_array_equal(upsample_bicubic(image, factor), one)  # a plain 3-D call is one image
    # the bands anywhere, or none
    np.testing.assert_array_equal(upsample_bicubic(np.moveaxis(image, 0, -1), factor, channel_axis=-1),
                                  np.moveaxis(one, 0, -1))
    np.testing.assert_array_equal(upsample_bicubic(image[1], factor, channel_axis=None), one[1])
    # a batch of any leading shape, and a plain (h, w)
    stack = np.stack([image, image[::-1]])
    np.testing.assert_array_equal(upsample_bicubic(stack, factor)[0], batched)
    np.testing.assert_allclose(upsample_bicubic(image[1][None, None], factor)[0, 0], one[1], atol=2e-6)
    np.testing.assert_array_equal(upsample_bicubic(image[1], factor), upsample_bicubic(image[1:2], factor,
                                                                                      batch_size=1)[0])


def test_dtypes_of_the_two_paths():
    dn = np.random.default_rng(0).integers(0, 10000, (2, 8, 8)).astype(np.uint16)
    assert upsample_bicubic(dn, 2).dtype == np.float32
    assert upsample_bicubic(dn.astype(np.float64), 2).dtype == np.float64
    assert upsample_bicubic(dn.astype(np.float64), 2, batch_size=4).dtype == np.float32
    np.testing.assert_allclose(upsample_bicubic(dn, 2), upsample_bicubic(dn, 2, batch_size=4), rtol=1e-6, atol=1e-3)


def test_bicubic_matrix_is_the_one_image_path():
    x = np.random.default_rng(1).random((5, 6))
    rows, cols = bicubic.bicubic_matrix(5, 3), bicubic.bicubic_matrix(6, 3)
    assert rows.shape == (15, 5) and np.allclose(rows.sum(axis=1), 1.0)
    np.testing.assert_allclose(rows @ x @ cols.T, upsample_bicubic(x, 3, channel_axis=None), atol=1e-12)


def test_a_dataarray_keeps_its_coordinates():
    xr = pytest.importorskip("xarray")
    data = np.random.default_rng(2).random((3, 4, 5)).astype(np.float32)
    da = xr.DataArray(data, dims=("band", "y", "x"), name="reflectance", attrs={"sensor": "demo-lr"},
                      coords={"band": ["blue", "green", "red"], "y": 1000.0 - 10.0 * np.arange(4),
                              "x": 500.0 + 10.0 * np.arange(5), "time": np.datetime64("2024-05-01")})
    for kwargs in ({"channel_axis": "band"}, {"channel_axis": 0}, {"batch_size": 2}):
        up = upsample_bicubic(da, 2, **kwargs)
        assert isinstance(up, xr.DataArray) and up.dims == ("band", "y", "x") and up.shape == (3, 8, 10)
        assert up.name == "reflectance" and up.attrs == {"sensor": "demo-lr"}
        assert list(up.band.values) == ["blue", "green", "red"] and up.time.values == da.time.values
        # new pixel centres: 5 m apart, the first a quarter of an old pixel inside the old edge
        np.testing.assert_allclose(up.x.values, 497.5 + 5.0 * np.arange(10))
        np.testing.assert_allclose(up.y.values, 1002.5 - 5.0 * np.arange(8))
    np.testing.assert_array_equal(upsample_bicubic(da, 2, channel_axis="band").values, upsample_bicubic(data, 2))
    np.testing.assert_array_equal(upsample_bicubic(da, 2, batch_size=2).values, upsample_bicubic(data, 2, batch_size=2))
    # bands last, by name
    last = upsample_bicubic(da.transpose("y", "x", "band"), 2, channel_axis="band")
    assert last.dims == ("y", "x", "band")
    np.testing.assert_array_equal(last.transpose("band", "y", "x").values, upsample_bicubic(data, 2))


def test_a_georeferenced_dataarray_gets_the_finer_transform():
    pytest.importorskip("rioxarray")  # registers the .rio accessor
    xr = pytest.importorskip("xarray")
    from affine import Affine

    data = np.zeros((2, 4, 6), np.float32)
    da = xr.DataArray(data, dims=("band", "y", "x"),
                      coords={"band": [1, 2], "y": 995.0 - 10.0 * np.arange(4), "x": 505.0 + 10.0 * np.arange(6)})
    da = da.rio.write_crs("EPSG:32633").rio.write_transform(Affine(10.0, 0, 500.0, 0, -10.0, 1000.0))
    up = upsample_bicubic(da, 5, channel_axis="band")
    assert up.rio.crs == da.rio.crs
    assert up.rio.transform() == Affine(2.0, 0, 500.0, 0, -2.0, 1000.0)
    assert up.rio.shape == (20, 30)


@pytest.mark.parametrize("factor", [0, 2.5, True, -1, "2", None])
def test_bad_factors_are_refused(factor):
    image = np.ones((2, 4, 4), np.float32)
    with pytest.raises(InvalidInputError, match="positive integer"):
        upsample_bicubic(image, factor)
    with pytest.raises(InvalidInputError, match="positive integer"):
        upsample_bicubic(image, factor, batch_size=2)
    with pytest.raises(InvalidInputError, match="positive integer"):
        upsample_bicubic(image[None], factor)
    with pytest.raises(InvalidInputError, match="positive integer"):
        bicubic.bicubic_matrix(4, factor)
    with pytest.raises(InvalidInputError, match="positive integer"):
        bicubic.check_factor(factor)


def test_bad_input():
    with pytest.raises(InvalidInputError, match="at least 2 dimensions"):
        upsample_bicubic(np.ones(5), 2)
    with pytest.raises(InvalidInputError, match="batch_size"):
        upsample_bicubic(np.ones((2, 4, 4)), 2, batch_size=0)
    with pytest.raises(InvalidInputError, match="last two axes"):  # bands last, but a batch
        upsample_bicubic(np.ones((3, 4, 4, 2)), 2, channel_axis=-1)
    with pytest.raises(InvalidInputError, match="last two axes"):
        upsample_bicubic(np.ones((4, 4, 2)), 2, channel_axis=-1, batch_size=2)
    with pytest.raises(InvalidInputError, match="integer or float"):
        upsample_bicubic(np.array([["a", "b"], ["c", "d"]]), 2, channel_axis=None)
    with pytest.raises(InvalidInputError, match="dimension name"):
        upsample_bicubic(np.ones((2, 4, 4)), 2, channel_axis="band")
    assert bicubic.check_factor(np.int64(3)) == 3 and type(bicubic.check_factor(np.int64(3))) is int


def test_one_image_needs_no_torch():
    code = ("import sys; sys.modules['torch'] = None; import numpy as np, eo_sr.radiometry, eo_sr.bicubic; "
            "print([m for m in ('torch', 'sklearn', 'skimage', 'xarray') if sys.modules.get(m)]); "
            "print(eo_sr.bicubic.upsample_bicubic(np.ones((2, 3, 3), np.float32), 2).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "(2, 6, 6)"
