"""eo_sr.radiometry: histogram matching, normalisation, cloud flags."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from skimage.exposure import match_histograms as sk_match

from eo_sr import radiometry as rad
from eo_sr.errors import InvalidInputError, NotFoundError

# ---------------------------------------------------------------------------------------------
# realistic data
# ---------------------------------------------------------------------------------------------

def _field(rng, shape, sigma):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (f - f.min()) / (f.max() - f.min())


def reflectance(seed: int, size: int = 320, outliers: int = 25):
    """(4, size, size) float32 surface reflectance with a cloud and bright outliers, and the cloud."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    bands = [(0.02, 0.14), (0.04, 0.18), (0.03, 0.24), (0.12, 0.48)]
    land = np.stack([lo + (hi - lo) * (0.6 * _field(rng, shape, 10) + 0.4 * _field(rng, shape, 2))
                     for lo, hi in bands]) + rng.normal(0, 0.003, (4, *shape))
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - size * 0.4) ** 2 + (xx - size * 0.6) ** 2) / (2 * (size / 10) ** 2))
    blob *= 0.7 + 0.3 * _field(rng, shape, 3)
    cloud = blob > 0.35
    img = np.where(cloud, 0.5 + 0.4 * blob + rng.normal(0, 0.01, (4, *shape)), land)
    ys, xs = rng.integers(0, size, (2, outliers))
    img[:, ys, xs] = rng.uniform(0.6, 1.0, (4, outliers))
    return np.clip(img, 0, None).astype(np.float32), cloud


@pytest.fixture(scope="module")
def scenes():
    image, cloud = reflectance(1)
    other, ref_cloud = reflectance(2)
    ref = (0.01 + np.array([0.9, 1.05, 0.95, 1.1])[:, None, None] * other ** 1.1).astype(np.float32)
    ref = ndimage.gaussian_filter(ref, (0, 1.0, 1.0)).astype(np.float32)
    return image, ref, cloud, ref_cloud


def sk_per_band(image, ref):
    return np.stack([sk_match(image[c], ref[c]) for c in range(image.shape[0])])


# ---------------------------------------------------------------------------------------------
# agreement with scikit-image
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,high", [(np.uint16, 10000), (np.uint8, 255)])
def test_integers_agree_with_skimage_within_one_count(dtype, high):
    rng = np.random.default_rng(0)
    image = rng.integers(0, high, (3, 200, 150)).astype(dtype)
    ref = (rng.gamma(2.0, high / 8, (3, 120, 90)).clip(0, high)).astype(dtype)
    ours = rad.match_histograms(image, ref)
    theirs = sk_match(image, ref, channel_axis=0)
    assert ours.dtype == dtype and ours.shape == image.shape
    diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    assert diff.max() <= 1  # we round, scikit-image truncates
    # Before rounding the two are the same numbers: rounding differs only where the fraction >= 0.5.
    assert (diff > 0).mean() < 0.6


def test_uint16_reflectance_agrees_with_skimage(scenes):
    image, ref, _, _ = scenes
    iu, ru = (image * 10000).round().astype(np.uint16), (ref * 10000).round().astype(np.uint16)
    ours = rad.match_histograms(iu, ru)
    assert np.abs(ours.astype(int) - sk_match(iu, ru, channel_axis=0).astype(int)).max() <= 1


def test_float_reflectance_agrees_with_skimage_within_5e4(scenes):
    image, ref, _, _ = scenes
    assert image[0].size > rad.DEFAULT_N_BINS  # the binned fast path
    ours = rad.match_histograms(image, ref)
    theirs = sk_match(image, ref, channel_axis=0)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 5e-4
    # and far closer than that for nearly all pixels
    assert np.quantile(np.abs(ours - theirs), 0.99) < 1e-4


def test_quantised_float_reflectance_agrees_with_skimage(scenes):
    """Reflectance stored as DN / 10000 has many ties; the binned path must handle them."""
    image, ref, _, _ = scenes
    iq = ((image * 10000).round() / 10000).astype(np.float32)
    rq = ((ref * 10000).round() / 10000).astype(np.float32)
    assert np.abs(rad.match_histograms(iq, rq) - sk_match(iq, rq, channel_axis=0)).max() < 5e-4


def test_exact_method_reproduces_skimage(scenes):
    image, ref, _, _ = scenes
    ours = rad.match_histograms(image[:, :200, :200], ref, method="exact")
    np.testing.assert_allclose(ours, sk_match(image[:, :200, :200], ref, channel_axis=0), rtol=1e-6, atol=0)


def test_binned_error_shrinks_with_more_bins(scenes):
    image, ref, _, _ = scenes
    theirs = sk_match(image[0], ref[0])
    coarse = np.abs(rad.match_histograms(image[0], ref[0], channel_axis=None, n_bins=1024) - theirs).max()
    fine = np.abs(rad.match_histograms(image[0], ref[0], channel_axis=None) - theirs).max()
    assert fine < coarse
    assert coarse < 0.05  # coarse bins are still bounded by the tolerance


def test_reference_of_another_size_is_the_target_distribution(scenes):
    image, ref, _, _ = scenes
    small = ref[:, ::4, ::4]  # e.g. the LR image itself
    ours = rad.match_histograms(image, small)
    assert ours.shape == image.shape
    assert np.abs(ours - sk_match(image, small, channel_axis=0)).max() < 5e-4
    # the matched image takes the reference's quantiles
    for c in range(4):
        np.testing.assert_allclose(np.quantile(ours[c], [0.1, 0.5, 0.9]), np.quantile(small[c], [0.1, 0.5, 0.9]),
                                   atol=2e-3)


def test_channel_last_and_single_band(scenes):
    image, ref, _, _ = scenes
    last = rad.match_histograms(np.moveaxis(image, 0, -1), np.moveaxis(ref, 0, -1), channel_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(last, -1, 0), rad.match_histograms(image, ref))
    one = rad.match_histograms(image[2], ref[2], channel_axis=None)
    np.testing.assert_array_equal(one, rad.match_histograms(image, ref)[2])


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["float32", "uint16", "float32-small"])
def test_mask_matches_the_valid_pixels_only_and_leaves_the_rest(scenes, kind):
    image, ref, cloud, ref_cloud = scenes
    if kind == "uint16":
        image, ref = (image * 10000).round().astype(np.uint16), (ref * 10000).round().astype(np.uint16)
    if kind == "float32-small":  # the exact (sorting) path
        image, ref, cloud, ref_cloud = image[:, :150, :150], ref[:, :150, :150], cloud[:150, :150], ref_cloud[:150, :150]
    valid = ~ndimage.binary_dilation(cloud, iterations=2)
    valid[:, :20] = False  # a nodata stripe
    ref_valid = ~ref_cloud
    image = image.copy()
    if image.dtype.kind == "f":
        image[:, :, :20] = np.nan  # nodata as NaN: fine where masked
    out = rad.match_histograms(image, ref, image_mask=valid, reference_mask=ref_valid)
    tol = 1 if kind == "uint16" else 5e-4
    for c in range(4):
        expected = sk_match(image[c][valid], ref[c][ref_valid])
        assert np.abs(out[c][valid].astype(np.float64) - expected).max() <= tol
    # masked pixels unchanged, bit for bit (NaN included)
    np.testing.assert_array_equal(out[:, ~valid], image[:, ~valid])
    # and the clouds did not pull the valid pixels: unmasked matching differs a lot
    plain = rad.match_histograms(np.nan_to_num(image), ref)
    assert np.abs(plain[:, valid].astype(np.float64) - out[:, valid]).max() > 10 * tol


def test_per_band_mask(scenes):
    image, ref, cloud, _ = scenes
    masks = np.stack([~cloud, np.ones_like(cloud), ~cloud, np.ones_like(cloud)])
    masks[1, :, :10] = False
    out = rad.match_histograms(image, ref, image_mask=masks)
    for c in range(4):
        expected = sk_match(image[c][masks[c]], ref[c].ravel())
        assert np.abs(out[c][masks[c]] - expected).max() < 5e-4
        np.testing.assert_array_equal(out[c][~masks[c]], image[c][~masks[c]])


def test_masked_reference_pixels_are_excluded(scenes):
    image, ref, _, _ = scenes
    ref = ref.copy()
    bad = np.zeros(ref.shape[1:], bool)
    bad[:50] = True
    ref[:, bad] = 9.0  # garbage (e.g. a nodata value) under the mask
    out = rad.match_histograms(image, ref, reference_mask=~bad)
    assert out.max() < 2
    assert np.abs(out - sk_match(image, ref[:, ~bad][:, None, :], channel_axis=0)).max() < 5e-4
    exact = rad.match_histograms(image, ref, reference_mask=~bad, method="exact")
    np.testing.assert_allclose(exact, sk_match(image, ref[:, ~bad][:, None, :], channel_axis=0), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# dtype, monotonicity, identity (hypothesis)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(3)
    image = (rng.random((2, 40, 30)) * 200).astype(dtype)
    ref = (rng.random((2, 25, 25)) * 250).astype(np.float32)
    out = rad.match_histograms(image, ref)
    assert out.dtype == np.dtype(dtype) and out.shape == image.shape
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        assert out.min() >= info.min and out.max() <= info.max


def test_integer_output_is_clipped_to_the_dtype():
    image = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    ref = np.linspace(-50, 400, 256).reshape(1, 16, 16)
    out = rad.match_histograms(image, ref)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


_dtypes = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64])


@st.composite
def image_and_reference(draw):
    dtype = draw(_dtypes)
    if np.dtype(dtype).kind == "u":
        elements = st.integers(0, np.iinfo(dtype).max)
    else:
        elements = st.floats(-1e3, 1e3, width=np.dtype(dtype).itemsize * 8, allow_nan=False)
    shape = draw(st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)))
    image = draw(hnp.arrays(dtype, shape, elements=elements))
    rshape = (shape[0], draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    ref = draw(hnp.arrays(dtype, rshape, elements=elements))
    return image, ref


@settings(max_examples=150, deadline=None)
@given(image_and_reference(), st.sampled_from(["auto", "binned"]))
def test_matching_is_monotone_in_the_input(data, method):
    image, ref = data
    out = rad.match_histograms(image, ref, method=method, n_bins=64)
    assert out.dtype == image.dtype
    for c in range(image.shape[0]):
        order = np.argsort(image[c].ravel(), kind="stable")
        assert np.all(np.diff(out[c].ravel()[order].astype(np.float64)) >= 0)


@settings(max_examples=150, deadline=None)
@given(image_and_reference())
def test_matching_an_image_to_itself_is_the_identity(data):
    image, _ = data
    out = rad.match_histograms(image, image)
    np.testing.assert_array_equal(out, image)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 3.0), st.sampled_from([np.float32, np.float64]))
def test_binned_identity_and_monotone_on_large_images(seed, spread, dtype):
    rng = np.random.default_rng(seed)
    image = (rng.gamma(2.0, spread / 4, (1, 300, 300))).astype(dtype)
    image[0, :3, :3] = spread * 20  # outliers
    out = rad.match_histograms(image, image)
    span = np.subtract(*np.quantile(image, [0.998, 0.002]))
    assert np.abs(out - image).max() <= 3.5e-4 * span + 1e-7  # the documented bound is ~3.1e-4
    order = np.argsort(image.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= 0)
    assert np.abs(rad.match_histograms(image, image[:, ::3, ::3]) - sk_match(image, image[:, ::3, ::3])).max() \
        <= 3.5e-4 * span + 1e-6


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_nan_in_image_is_an_error_unless_masked():
    rng = np.random.default_rng(0)
    image = rng.random((2, 300, 300)).astype(np.float32)
    ref = rng.random((2, 50, 50)).astype(np.float32)
    image[1, 5, 5] = np.nan
    for method in ("auto", "exact"):
        with pytest.raises(InvalidInputError, match=r"band 1 of image has 1 NaN.*mask them out"):
            rad.match_histograms(image, ref, method=method)
    small = image[:, :20, :20]
    with pytest.raises(InvalidInputError, match="NaN"):
        rad.match_histograms(small, ref)
    mask = np.ones(image.shape[1:], bool)
    mask[5, 5] = False
    out = rad.match_histograms(image, ref, image_mask=mask)
    assert np.isnan(out[1, 5, 5]) and np.isfinite(np.delete(out[1].ravel(), 5 * 300 + 5)).all()
    image[1, 5, 5] = np.inf
    with pytest.raises(InvalidInputError, match="infinite"):
        rad.match_histograms(image, ref)


def test_nan_in_reference_is_an_error():
    rng = np.random.default_rng(0)
    image = rng.random((1, 300, 300)).astype(np.float32)
    ref = rng.random((1, 300, 300)).astype(np.float32)
    ref[0, 0, :3] = np.nan
    with pytest.raises(InvalidInputError, match="band 0 of reference has 3 NaN"):
        rad.match_histograms(image, ref)
    with pytest.raises(InvalidInputError, match="reference has 3 NaN"):
        rad.match_histograms(image, ref[:, :50, :50])


def test_all_masked_is_an_error():
    image = np.ones((2, 10, 10), np.float32)
    with pytest.raises(InvalidInputError, match="no valid pixel.*~cloud_mask"):
        rad.match_histograms(image, image, image_mask=np.zeros((10, 10), bool))
    with pytest.raises(InvalidInputError, match="band 0 of reference has no valid pixel"):
        rad.match_histograms(image, image, reference_mask=np.zeros((10, 10), bool))


def test_mismatched_bands_and_bad_masks_are_errors():
    image = np.ones((4, 10, 10), np.float32)
    with pytest.raises(InvalidInputError, match="4 band.*reference has 3"):
        rad.match_histograms(image, np.ones((3, 10, 10), np.float32))
    with pytest.raises(InvalidInputError, match="dimensions"):
        rad.match_histograms(image, np.ones((10, 10), np.float32))
    with pytest.raises(InvalidInputError, match="boolean"):
        rad.match_histograms(image, image, image_mask=np.ones((10, 10)))
    with pytest.raises(InvalidInputError, match="shape"):
        rad.match_histograms(image, image, image_mask=np.ones((10, 9), bool))
    with pytest.raises(InvalidInputError, match="method"):
        rad.match_histograms(image, image, method="fast")
    with pytest.raises(InvalidInputError, match="integer or float"):
        rad.match_histograms(image.astype(bool), image)
    assert issubclass(InvalidInputError, ValueError)


def test_dataarray_in_dataarray_out(scenes):
    xr = pytest.importorskip("xarray")
    image, ref, _, _ = scenes
    da = xr.DataArray(image, dims=("band", "y", "x"),
                      coords={"band": ["blue", "green", "red", "nir"], "y": np.arange(image.shape[1]) * 10.0,
                              "x": np.arange(image.shape[2]) * 10.0}, attrs={"sensor": "demo-hr"})
    out = rad.match_histograms(da, xr.DataArray(ref, dims=("band", "y", "x")), channel_axis="band")
    assert isinstance(out, xr.DataArray)
    assert out.attrs == {"sensor": "demo-hr"} and list(out.band.values) == ["blue", "green", "red", "nir"]
    np.testing.assert_array_equal(out.values, rad.match_histograms(image, ref))


# ---------------------------------------------------------------------------------------------
# bicubic upsampling and matching towards it
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [2, 3, 4])
def test_upsample_bicubic_is_torchs(factor):
    torch = pytest.importorskip("torch")
    lr = np.random.default_rng(factor).random((3, 17, 23)).astype(np.float32)
    ours = rad.upsample_bicubic(lr, factor)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(lr)[None], scale_factor=factor, mode="bicubic",
                                             align_corners=False)[0].numpy()
    assert ours.shape == (3, 17 * factor, 23 * factor) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=5e-6)


def test_match_to_bicubic_without_masks_is_matching_to_the_upsampled_lr(scenes):
    image, ref, _, _ = scenes
    lr = ref[:, ::4, ::4]
    out = rad.match_to_bicubic(image, lr, factor=4)
    np.testing.assert_array_equal(out, rad.match_histograms(image, rad.upsample_bicubic(lr, 4)))


def test_match_to_bicubic_uses_pixels_valid_in_both(scenes):
    image, ref, cloud, _ = scenes
    lr = ref[:, ::4, ::4].copy()
    lr_valid = np.ones(lr.shape[1:], bool)
    lr_valid[:10, :] = False
    lr[:, :10, :] = np.nan  # LR nodata must not leak into the reference
    hr_valid = ~cloud
    out = rad.match_to_bicubic(image, lr, factor=4, hr_mask=hr_valid, lr_mask=lr_valid)
    assert np.isfinite(out).all()
    up = rad.upsample_bicubic(np.nan_to_num(lr), 4)
    # HR rows 0..39 lie on invalid LR rows 0..9; HR row i uses LR rows floor((i + 0.5) / 4 - 0.5) - 1
    # to + 2 (all four weights non-zero at factor 4), so rows 0..45 touch an invalid LR row.
    fit = hr_valid.copy()
    fit[:46] = False
    for c in range(4):
        expected = sk_match(image[c][fit], up[c][fit])
        assert np.abs(out[c][fit] - expected).max() < 5e-4
    np.testing.assert_array_equal(out[:, cloud], image[:, cloud])  # masked HR unchanged
    assert not np.array_equal(out[:, :40][:, ~cloud[:40]], image[:, :40][:, ~cloud[:40]])  # still matched


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_match_to_bicubic_of_integer_hr_with_pixels_brighter_than_every_fitted_one(dtype):
    """An 8-bit HR scene (NAIP) whose brightest pixels lie outside the fit (masked LR there) is matched,
    not an IndexError; those pixels take the top of the reference, as in skimage."""
    rng = np.random.default_rng(0)
    lr = rng.uniform(40, 230, (4, 16, 16)).astype(np.float32)  # the same units (DN), another spread
    hr = rng.integers(10, 200, (4, 64, 64)).astype(dtype)
    hr[:, :8] = np.iinfo(dtype).max
    lr_valid = np.ones((16, 16), bool)
    lr_valid[:3] = False  # HR rows 0..11 have no fit
    out = rad.match_to_bicubic(hr, lr, factor=4, lr_mask=lr_valid)
    assert out.dtype == dtype
    rest = out[:, 20:].astype(float)
    assert (rest.mean(axis=(1, 2)) > hr[:, 20:].mean(axis=(1, 2)) + 10).all()  # really matched
    assert (out[:, :8].min(axis=(1, 2)) >= rest.max(axis=(1, 2))).all()


def test_match_to_bicubic_checks_shapes():
    with pytest.raises(InvalidInputError, match="factor"):
        rad.match_to_bicubic(np.ones((2, 40, 40)), np.ones((2, 10, 10)), factor=3)
    with pytest.raises(InvalidInputError, match="positive integer"):
        rad.match_to_bicubic(np.ones((2, 40, 40)), np.ones((2, 10, 10)), factor=2.5)


def _half_shaded_pair(seed=0, shaded=0.55):
    """HR (another sensor's gains and offsets) and LR of one landscape; an unmasked cloud
    shadow darkens the left ``shaded`` share of HR only (it passed hours apart), by 10 to
    65 % as the cloud above thins and thickens."""
    rng = np.random.default_rng(seed)
    truth = ndimage.gaussian_filter(rng.random((4, 256, 256)), (0, 6, 6))
    truth = 0.05 + 0.4 * (truth - truth.min()) / np.ptp(truth)  # reflectance 0.05 .. 0.45
    lr = truth.reshape(4, 64, 4, 64, 4).mean(axis=(2, 4))
    hr = truth * np.array([0.93, 0.97, 1.05, 0.90])[:, None, None] + np.array([0.012, 0.008, 0.004, 0.01])[:, None,
                                                                                                       None]
    shade = np.zeros((256, 256), bool)
    shade[:, : int(256 * shaded)] = True
    thickness = ndimage.gaussian_filter(rng.random((256, 256)), 12)
    dark = 0.35 + 0.55 * (thickness - thickness.min()) / np.ptp(thickness)
    hr = np.where(shade, hr * dark, hr)
    return hr.astype(np.float32), lr.astype(np.float32), shade


def test_consistent_pixels_find_the_clear_part_of_a_half_shaded_scene():
    hr, lr, shade = _half_shaded_pair()
    same = rad.consistent_pixels(hr, lr, factor=4)
    shade_lr = shade.reshape(64, 4, 64, 4).all(axis=(1, 3))
    clear_lr = ~shade.reshape(64, 4, 64, 4).any(axis=(1, 3))
    assert same.shape == (64, 64) and same.dtype == bool
    assert same[clear_lr].mean() > 0.95 and same[shade_lr].mean() < 0.05
    np.testing.assert_array_equal(same, rad.consistent_pixels(hr, lr, factor=4))  # deterministic
    # masked pixels are never consistent
    mask = np.ones((64, 64), bool)
    mask[:, -8:] = False
    assert not rad.consistent_pixels(hr, lr, factor=4, lr_mask=mask)[:, -8:].any()


def test_matching_fitted_on_consistent_pixels_keeps_the_clear_part_right():
    hr, lr, shade = _half_shaded_pair()
    up = rad.upsample_bicubic(lr, 4)
    inner = ~ndimage.binary_dilation(shade, iterations=8)  # clear, away from the shadow's edge

    def clear_ratio(matched):
        return float(np.median(matched[:, inner] / up[:, inner]))

    naive = rad.match_to_bicubic(hr, lr, factor=4)
    robust = rad.match_to_bicubic(hr, lr, factor=4, lr_mask=rad.consistent_pixels(hr, lr, factor=4))
    assert clear_ratio(naive) > 1.1  # the shaded half drags the match: the clear half comes out too bright
    assert abs(clear_ratio(robust) - 1) < 0.02


def test_match_to_bicubic_keeps_unfitted_haze_and_shadow_beyond_the_fitted_range():
    """Quantile mapping alone would clamp a shadow left out of the fit to the darkest fitted
    value and haze to the brightest, and QC would no longer see them."""
    rng = np.random.default_rng(0)
    lr = rng.uniform(0.2, 0.4, (1, 32, 32))
    lr[:, :8, :8], lr[:, -4:, -4:] = 0.05, 0.8
    hr = np.repeat(np.repeat(lr, 4, 1), 4, 2) * 0.9 + 0.01  # another gain and offset
    fit = np.ones((32, 32), bool)
    fit[:8, :8] = fit[-4:, -4:] = False
    out = rad.match_to_bicubic(hr, lr, factor=4, lr_mask=fit)
    fitted = out[0, 40:100, 40:100]
    assert out[0, :28, :28].max() < fitted.min() and out[0, -12:, -12:].min() > fitted.max()
    assert out[0, :28, :28].mean() == pytest.approx(0.05, abs=0.02)
    assert out[0, -12:, -12:].mean() == pytest.approx(0.8, abs=0.05)


def test_open_water_is_fitted_with_the_fields():
    """A lake has its own colour: off the line the fields follow between the sensors, so the
    consistency test leaves it out, and a match fitted without it would brighten it several
    times. Dark in NIR and darker there than in green, it is fitted with the fields."""
    lr = np.full((4, 8, 8), 0.1)
    lr[3] = 0.3  # fields: bright in NIR
    lr[:, :2, :2] = np.array([0.06, 0.05, 0.03, 0.015])[:, None, None]  # water
    lr[:, 6:, 6:] = np.array([0.05, 0.05, 0.05, 0.12])[:, None, None]  # a field under a cloud's shadow
    water = rad.open_water(lr, green=1, nir=3)
    assert water[:2, :2].all() and water.sum() == 4


def test_consistent_pixels_bad_input():
    hr, lr, _ = _half_shaded_pair()
    with pytest.raises(InvalidInputError, match="do not fit factor 3"):
        rad.consistent_pixels(hr, lr, factor=3)
    with pytest.raises(InvalidInputError, match="at least 50"):
        rad.consistent_pixels(hr, lr, factor=4, lr_mask=np.zeros((64, 64), bool))


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------

def test_percentile_normalisation_round_trip(scenes):
    image, _, cloud, _ = scenes
    stats = rad.compute_norm_stats(image, mask=~cloud)
    assert stats.method == "percentile" and stats.n_bands == 4 and stats.percentiles == (1.0, 99.0)
    for c in range(4):
        lo, hi = np.percentile(image[c][~cloud], [1, 99])
        assert stats.low[c] == pytest.approx(lo) and stats.high[c] == pytest.approx(hi)
    norm = rad.normalize(image, stats)
    assert norm.dtype == np.float32 and norm.min() == 0 and norm.max() == 1
    back = rad.denormalize(norm, stats)
    inside = (image >= np.array(stats.low)[:, None, None]) & (image <= np.array(stats.high)[:, None, None])
    np.testing.assert_allclose(back[inside], image[inside], rtol=1e-5, atol=1e-6)
    assert inside.mean() > 0.85
    raw = rad.normalize(image, stats, clip=False)
    np.testing.assert_allclose(rad.denormalize(raw, stats), image, rtol=1e-5, atol=1e-6)
    dn = rad.denormalize(rad.normalize(image * 10000, rad.compute_norm_stats(image * 10000)),
                         rad.compute_norm_stats(image * 10000), dtype=np.uint16)
    assert dn.dtype == np.uint16


def test_clouds_move_the_stats_unless_masked(scenes):
    image, _, cloud, _ = scenes
    clean = rad.compute_norm_stats(image, mask=~cloud)
    cloudy = rad.compute_norm_stats(image)
    assert cloudy.high[0] > 2 * clean.high[0]


def test_median_method(scenes):
    image, _, cloud, _ = scenes
    stats = rad.compute_norm_stats(image, method="median", mask=~cloud)
    np.testing.assert_allclose(stats.scale, np.median(image[:, ~cloud], axis=1), rtol=1e-6)
    assert stats.offset == (0.0, 0.0, 0.0, 0.0)
    norm = rad.normalize(image, stats)
    np.testing.assert_allclose(np.median(norm[:, ~cloud], axis=1), 1.0, rtol=1e-5)
    assert norm.max() > 1  # not clipped
    np.testing.assert_allclose(rad.denormalize(norm, stats), image, rtol=1e-6)


def test_stats_over_many_tiles_pool_their_pixels(scenes):
    image, _, cloud, _ = scenes
    tiles = [image[:, :100], image[:, 100:250], image[:, 250:]]
    masks = [~cloud[:100], ~cloud[100:250], ~cloud[250:]]
    pooled = rad.compute_norm_stats((t for t in tiles), mask=masks)
    whole = rad.compute_norm_stats(image, mask=~cloud)
    np.testing.assert_allclose(pooled.offset, whole.offset)
    np.testing.assert_allclose(pooled.scale, whole.scale)
    thinned = rad.compute_norm_stats(tiles, max_samples=20000)  # memory cap: approximate
    exact = rad.compute_norm_stats(tiles)
    np.testing.assert_allclose(thinned.offset, exact.offset, rtol=0.05)
    np.testing.assert_allclose(thinned.scale, exact.scale, rtol=0.05)


def test_stats_json_round_trip(tmp_path, scenes):
    image, _, _, _ = scenes
    stats = rad.compute_norm_stats(image, percentiles=(2, 98))
    stats = rad.NormStats(**{**stats.__dict__, "bands": ("blue", "green", "red", "nir")})
    path = stats.save(tmp_path / "stats" / "hr.json")
    assert json.loads(path.read_text())["method"] == "percentile"
    loaded = rad.NormStats.load(path)
    assert loaded == stats
    assert rad.NormStats.from_dict(stats.to_dict()) == stats
    np.testing.assert_array_equal(rad.normalize(image, loaded), rad.normalize(image, stats))
    assert not list((tmp_path / "stats").glob(".*tmp"))  # no temporary left behind


def test_normalisation_errors(scenes):
    image, _, _, _ = scenes
    stats = rad.compute_norm_stats(image)
    with pytest.raises(InvalidInputError, match="3 band.*statistics have 4"):
        rad.normalize(image[:3], stats)
    with pytest.raises(InvalidInputError, match="constant"):
        rad.compute_norm_stats(np.ones((2, 10, 10)))
    with pytest.raises(InvalidInputError, match="median"):
        rad.compute_norm_stats(np.zeros((1, 10, 10)), method="median")
    bad = image.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        rad.compute_norm_stats(bad)
    mask = np.ones(image.shape[1:], bool)
    mask[0, 0] = False
    rad.compute_norm_stats(bad, mask=mask)
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        rad.compute_norm_stats(image, mask=np.zeros(image.shape[1:], bool))
    with pytest.raises(InvalidInputError, match="no image"):
        rad.compute_norm_stats([])
    with pytest.raises(InvalidInputError, match="band"):
        rad.compute_norm_stats([image, image[:3]])
    with pytest.raises(InvalidInputError, match="NormStats"):
        rad.NormStats.from_dict({"method": "percentile"})
    with pytest.raises(NotFoundError, match="not found"):
        rad.NormStats.load("/nonexistent/stats.json")


# ---------------------------------------------------------------------------------------------
# clouds
# ---------------------------------------------------------------------------------------------

def test_blue_threshold_finds_a_bright_blob():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.02, 0.12, (4, 60, 80)).astype(np.float32)
    yy, xx = np.mgrid[:60, :80]
    blob = (yy - 30) ** 2 + (xx - 40) ** 2 <= 10 ** 2
    image[0][blob] = 0.45
    image[3][~blob] = 0.4  # bright NIR (vegetation) is not cloud
    cloud = rad.blue_threshold_cloud_mask(image)
    assert cloud.dtype == bool and cloud.shape == (60, 80)
    np.testing.assert_array_equal(cloud, blob)
    grown = rad.blue_threshold_cloud_mask(image, dilation=2)
    assert grown.sum() > blob.sum() and grown[blob].all() and not grown[30, 53] and grown[30, 51]
    # digital numbers: Sentinel-2 L2A from baseline 04.00 (offset -1000 DN = -0.1)
    dn = (image * 10000 + 1000).astype(np.uint16)
    np.testing.assert_array_equal(rad.blue_threshold_cloud_mask(dn, scale=1e-4, offset=-0.1), blob)
    # the seed: a threshold of 100 on Deimos-2 blue DN
    deimos = (image * 400).astype(np.uint16)
    np.testing.assert_array_equal(rad.blue_threshold_cloud_mask(deimos, threshold=100), blob)
    nan = image.copy()
    nan[0, 30, 40] = np.nan
    assert not rad.blue_threshold_cloud_mask(nan)[30, 40]


def test_blue_threshold_on_a_dataarray_by_band_name():
    xr = pytest.importorskip("xarray")
    image = np.zeros((3, 5, 5), np.float32)
    image[2, 1, 1] = 0.5
    da = xr.DataArray(image, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue"], "y": np.arange(5)})
    cloud = rad.blue_threshold_cloud_mask(da, blue_index="blue")
    assert isinstance(cloud, xr.DataArray) and cloud.dims == ("y", "x") and int(cloud.sum()) == 1
    with pytest.raises(InvalidInputError, match="no band named"):
        rad.blue_threshold_cloud_mask(da, blue_index="coastal")
    with pytest.raises(InvalidInputError, match="blue_index"):
        rad.blue_threshold_cloud_mask(image, blue_index=5)
