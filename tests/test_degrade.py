"""Wald's protocol: radiometry.degrade (PSF blur, exact block averaging, noise) and its MTF formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eo_sr import radiometry
from eo_sr.errors import InvalidInputError
from eo_sr.radiometry import degrade, psf_sigma_from_mtf


def _texture(shape=(3, 64, 96), seed=0):
    return np.random.default_rng(seed).random(shape)


@settings(max_examples=25, deadline=None)
@given(value=st.floats(-1e4, 1e4, allow_nan=False), factor=st.integers(1, 5), sigma=st.floats(0, 1.5))
def test_a_constant_image_stays_constant(value, factor, sigma):
    hr = np.full((2, 4 * factor, 3 * factor), value)
    lr = degrade(hr, factor=factor, psf_sigma=sigma)
    assert lr.shape == (2, 4, 3)
    np.testing.assert_allclose(lr, value, rtol=1e-12, atol=1e-9)


def test_a_constant_integer_image_stays_exactly_constant():
    hr = np.full((4, 40, 40), 137, np.uint8)
    lr = degrade(hr, factor=4, mtf_nyquist=0.3, noise=0.0)
    assert lr.dtype == np.uint8 and (lr == 137).all()


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 8])
def test_without_psf_block_averaging_is_exactly_the_reshape_mean(factor):
    hr = _texture((3, 8 * factor, 5 * factor))
    expected = hr.reshape(3, 8, factor, 5, factor).mean(axis=(2, 4))
    assert np.array_equal(degrade(hr, factor=factor, psf_sigma=0), expected)
    # bands last, and leading (time) axes, average the same pixels
    last = degrade(np.moveaxis(hr, 0, -1), factor=factor, psf_sigma=0, channel_axis=-1)
    assert np.array_equal(np.moveaxis(last, -1, 0), expected)
    series = degrade(np.stack([hr, 2 * hr]), factor=factor, psf_sigma=0, channel_axis=1)
    assert np.array_equal(series[1], degrade(2 * hr, factor=factor, psf_sigma=0))


def test_the_blur_takes_away_high_frequencies():
    hr = _texture((1, 256, 256))
    sharp = degrade(hr, factor=4, psf_sigma=0)[0]
    blurred = degrade(hr, factor=4, mtf_nyquist=0.3)[0]

    def high_energy(img):
        spec = np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean()))) ** 2
        fy, fx = np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(n)) for n in img.shape), indexing="ij")
        return spec[np.hypot(fy, fx) > 0.25].sum() / spec.sum()

    assert high_energy(blurred) < 0.75 * high_energy(sharp)
    assert np.isclose(blurred.mean(), hr.mean(), rtol=1e-3)  # the blur keeps the mean
    # more blur, less detail
    assert degrade(hr, factor=4, psf_sigma=1.0).std() < blurred.std() < sharp.std()


@pytest.mark.parametrize("mtf", [0.15, 0.3, 0.5])
def test_the_lr_system_has_the_mtf_it_was_given(mtf):
    """A sine of known frequency comes through with the Gaussian's and the square pixel's MTF."""
    factor, n, f = 4, 128, 0.25  # f in cycles per LR pixel
    x = (np.arange(n * factor) + 0.5) / factor
    hr = np.tile(np.sin(2 * np.pi * f * x), (64, 1))[None]
    lr = degrade(hr, factor=factor, mtf_nyquist=mtf)[0, 8]
    amplitude = np.abs(np.fft.rfft(lr))[int(f * n)] / (n / 2)
    sigma = psf_sigma_from_mtf(mtf)
    expected = math.exp(-2 * math.pi ** 2 * sigma ** 2 * f ** 2) * np.sinc(f)
    assert amplitude == pytest.approx(expected, rel=0.02)
    # and at Nyquist the model gives back the number itself
    assert math.exp(-math.pi ** 2 * sigma ** 2 / 2) * 2 / math.pi == pytest.approx(mtf)


def test_psf_sigma_from_mtf_follows_the_gaussian_formula():
    assert psf_sigma_from_mtf(0.3, includes_pixel=False) == pytest.approx(math.sqrt(-2 * math.log(0.3)) / math.pi)
    # the demo world's LR sensor: a 0.55-pixel Gaussian sampled at pixel centres
    assert psf_sigma_from_mtf(radiometry.MTF_AT_NYQUIST["demo-lr"], includes_pixel=False) == pytest.approx(0.55,
                                                                                                          abs=1e-3)
    assert psf_sigma_from_mtf(2 / math.pi) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InvalidInputError, match="sharper than square pixels"):
        psf_sigma_from_mtf(0.8)
    for bad in (0, 1, -0.1, "0.3", True):
        with pytest.raises(InvalidInputError, match="mtf_nyquist"):
            psf_sigma_from_mtf(bad)


def test_the_sensor_gives_the_mtf():
    hr = _texture((2, 32, 32))
    by_sensor = degrade(hr, factor=4, sensor="sentinel-2-l2a")
    assert np.array_equal(by_sensor, degrade(hr, factor=4, mtf_nyquist=0.3))
    with pytest.raises(InvalidInputError, match="MTF of sensor naip is not known"):
        degrade(hr, factor=4, sensor="naip")
    with pytest.raises(InvalidInputError, match="needs the LR sensor's blur"):
        degrade(hr, factor=4)
    with pytest.raises(InvalidInputError, match="not both"):
        degrade(hr, factor=4, psf_sigma=0.5, mtf_nyquist=0.3)


@pytest.mark.parametrize("snr", [20.0, 100.0])
def test_noise_has_the_level_asked_for(snr):
    hr = np.full((2, 512, 512), 0.25)
    sigma = 0.01
    lr = degrade(hr, factor=2, psf_sigma=0, noise=sigma, seed=1)
    assert lr.std(axis=(1, 2)) == pytest.approx([sigma, sigma], rel=0.03)
    assert lr.mean() == pytest.approx(0.25, abs=1e-3)
    by_snr = degrade(hr, factor=2, psf_sigma=0, snr=snr, seed=1)
    assert by_snr.std(axis=(1, 2)) == pytest.approx([0.25 / snr] * 2, rel=0.03)
    per_band = degrade(hr, factor=2, psf_sigma=0, noise=[0.01, 0.03], seed=1)
    assert per_band.std(axis=(1, 2)) == pytest.approx([0.01, 0.03], rel=0.03)


def test_the_seed_makes_it_deterministic():
    hr = _texture()
    a = degrade(hr, factor=4, mtf_nyquist=0.3, noise=0.05, seed=7)
    assert np.array_equal(a, degrade(hr, factor=4, mtf_nyquist=0.3, noise=0.05, seed=7))
    assert not np.array_equal(a, degrade(hr, factor=4, mtf_nyquist=0.3, noise=0.05, seed=8))
    with pytest.raises(InvalidInputError, match="noise .* or snr, not both"):
        degrade(hr, factor=4, psf_sigma=0, noise=0.1, snr=10)


def test_dtype_is_kept():
    hr = _texture().astype(np.float32)
    assert degrade(hr, factor=4, psf_sigma=0.5).dtype == np.float32
    dn = (hr * 250).astype(np.uint8)
    lr = degrade(dn, factor=4, psf_sigma=0, noise=100.0, seed=0)
    assert lr.dtype == np.uint8 and lr.min() == 0 and lr.max() == 255  # clipped, not wrapped
    exact = degrade(dn, factor=4, psf_sigma=0)
    expected = np.clip(np.rint(dn.astype(float).reshape(3, 16, 4, 24, 4).mean(axis=(2, 4))), 0, 255)
    assert np.array_equal(exact, expected.astype(np.uint8))


def test_factor_and_shape_are_checked():
    hr = _texture((1, 30, 32))
    for bad in (2.5, "4", 0, -2, True):
        with pytest.raises(InvalidInputError, match="factor"):
            degrade(hr, factor=bad, psf_sigma=0)
    assert degrade(hr, factor=2.0, psf_sigma=0).shape == (1, 15, 16)  # 2.0 is an integer
    with pytest.raises(InvalidInputError, match=r"30 x 32 pixels, not a multiple of factor 4.*crop=True"):
        degrade(hr, factor=4, psf_sigma=0)
    cropped = degrade(hr, factor=4, psf_sigma=0, crop=True)
    assert np.array_equal(cropped, degrade(hr[:, :28, :32], factor=4, psf_sigma=0))


def test_masked_and_nan_pixels_take_no_part():
    hr = _texture((2, 32, 32))
    holed = hr.copy()
    holed[:, 4:6, 8:10] = np.nan  # inside LR pixel (1, 2) of factor 4
    lr = degrade(holed, factor=4, psf_sigma=0)
    assert np.isnan(lr[:, 1, 2]).all() and np.isfinite(np.delete(lr.reshape(2, -1), 1 * 8 + 2, axis=1)).all()
    # with min_valid, the LR pixel is the mean of its valid HR pixels
    lenient = degrade(holed, factor=4, psf_sigma=0, min_valid=0.5)
    block = holed[:, 4:8, 8:12]
    assert np.allclose(lenient[:, 1, 2], np.nanmean(block, axis=(1, 2)))
    # a mask does what NaN does; the blur renormalises over valid pixels, so a far hole changes nothing
    mask = np.isfinite(holed[0])
    assert np.allclose(degrade(hr, factor=4, psf_sigma=0, mask=mask), lr, equal_nan=True)
    blurred = degrade(holed, factor=4, psf_sigma=0.5)
    clean = degrade(hr, factor=4, psf_sigma=0.5)
    assert np.allclose(blurred[:, 6:, :], clean[:, 6:, :])
    # an integer image needs a nodata value for the LR pixels left empty
    dn = (hr * 1000 + 1).astype(np.uint16)
    dn[:, 4:6, 8:10] = 0
    with pytest.raises(InvalidInputError, match="nodata"):
        degrade(dn, factor=4, psf_sigma=0, mask=dn[0] != 0)
    out = degrade(dn, factor=4, psf_sigma=0, nodata=0)
    assert out.dtype == np.uint16 and (out[:, 1, 2] == 0).all() and (np.delete(out.reshape(2, -1), 10, 1) > 0).all()
    with pytest.raises(InvalidInputError, match="mask must be boolean"):
        degrade(hr, factor=4, psf_sigma=0, mask=np.ones((32, 32)))


def test_a_dataarray_keeps_its_coordinates_and_crs():
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    from affine import Affine

    hr = xr.DataArray(_texture((3, 16, 24)), dims=("band", "y", "x"),
                      coords={"band": ["red", "green", "blue"], "x": 500000 + 2.5 * (np.arange(24) + 0.5),
                              "y": 3890000 - 2.5 * (np.arange(16) + 0.5)}, attrs={"units": "reflectance"})
    hr = hr.rio.write_crs("EPSG:32636").rio.write_transform(Affine(2.5, 0, 500000, 0, -2.5, 3890000))
    lr = degrade(hr, factor=4, psf_sigma=0)
    assert lr.dims == hr.dims and list(lr["band"].values) == ["red", "green", "blue"]
    assert lr.attrs["units"] == "reflectance"
    assert np.allclose(lr["x"], 500000 + 10 * (np.arange(6) + 0.5))
    assert lr.rio.crs.to_epsg() == 32636
    assert tuple(lr.rio.transform())[:6] == (10.0, 0.0, 500000.0, 0.0, -10.0, 3890000.0)
    assert np.array_equal(lr.values, degrade(hr.values, factor=4, psf_sigma=0))
