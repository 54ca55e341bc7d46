"""eo_sr.metrics agrees with scikit-image, batches equal one-by-one, masks behave."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from eo_sr import metrics as M
from eo_sr.errors import InvalidInputError


def realistic(n=6, bands=4, size=64, noise=0.02, seed=0):
    """Smooth reflectance-like fields in [0, 0.5] and a noisy, slightly blurred copy."""
    rng = np.random.default_rng(seed)
    a = ndimage.gaussian_filter(rng.random((n, bands, size, size)), (0, 0, 2, 2)) * 0.5
    b = ndimage.gaussian_filter(a, (0, 0, 0.7, 0.7)) + noise * rng.standard_normal(a.shape)
    return a.astype(np.float32), b.astype(np.float32)


def sk_ssim(a, b, **kw):
    return np.array([[structural_similarity(x, y, **kw) for x, y in zip(ai, bi)] for ai, bi in zip(a, b)])


@pytest.mark.parametrize("kind", ["random", "realistic"])
def test_ssim_agrees_with_scikit_image(kind):
    rng = np.random.default_rng(1)
    if kind == "random":
        a, b = rng.random((4, 3, 48, 48)).astype(np.float32), rng.random((4, 3, 48, 48)).astype(np.float32)
    else:
        a, b = realistic()
    wang = M.ssim(a, b, data_range=1.0)
    ref = sk_ssim(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert np.abs(wang - ref).max() < 1e-4
    uniform = M.ssim(a, b, data_range=1.0, gaussian=False, win_size=7, sample_covariance=True)
    assert np.abs(uniform - sk_ssim(a, b, data_range=1.0)).max() < 1e-4


def test_ssim_on_dn_scale_matches_reflectance_scale():
    a, b = realistic()
    assert np.allclose(M.ssim(a * 10000, b * 10000, data_range=10000.0), M.ssim(a, b, data_range=1.0), atol=1e-5)


def test_psnr_and_mse_agree_with_scikit_image():
    a, b = realistic()
    ref = np.array([[peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(ai, bi)] for ai, bi in zip(a, b)])
    assert np.abs(M.psnr(a, b, data_range=1.0) - ref).max() < 1e-4
    assert np.allclose(M.mse(a, b), ((a.astype(float) - b) ** 2).mean(axis=(-2, -1)))


def test_batch_equals_one_by_one():
    a, b = realistic(n=5)
    batch = M.ssim(a, b, data_range=1.0, batch_size=2)
    single = np.stack([M.ssim(a[i], b[i], data_range=1.0) for i in range(len(a))])
    assert np.allclose(batch, single, atol=1e-6)
    assert np.allclose(M.psnr(a, b, data_range=1.0, reduce="mean"), M.psnr(a, b, data_range=1.0).mean(axis=-1))


def test_masks_change_results_as_they_should():
    a, b = realistic(n=3)
    b[:, :, :, :20] += 0.3  # a corrupted strip (a cloud, say)
    mask = np.ones((3, 64, 64), bool)
    mask[:, :, :20] = False
    masked = M.ssim(a, b, data_range=1.0, mask=mask)
    cropped = M.ssim(a[..., 20:], b[..., 20:], data_range=1.0)
    assert np.allclose(masked, cropped, atol=1e-5)
    assert (masked > M.ssim(a, b, data_range=1.0)).all()
    assert np.allclose(M.psnr(a, b, data_range=1.0, mask=mask), M.psnr(a[..., 20:], b[..., 20:], data_range=1.0))


def test_constant_patches_and_zero_error_stay_finite():
    flat = np.full((2, 1, 32, 32), 0.2, np.float32)
    assert np.allclose(M.ssim(flat, flat, data_range=1.0), 1.0)
    assert np.all(M.psnr(flat, flat, data_range=1.0) == 100.0)
    other = np.full_like(flat, 0.25)
    s = M.ssim(flat, other, data_range=1.0)
    assert np.isfinite(s).all() and (s < 1).all()


def test_bad_input():
    a = np.zeros((2, 1, 32, 32), np.float32)
    with pytest.raises(InvalidInputError, match="differ in shape"):
        M.ssim(a, a[..., :16], data_range=1.0)
    with pytest.raises(InvalidInputError, match="data_range"):
        M.psnr(a, a, data_range=None)
    with pytest.raises(InvalidInputError, match="smaller than"):
        M.ssim(a[..., :8, :8], a[..., :8, :8], data_range=1.0)
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        M.ssim(a, a, data_range=1.0, mask=np.zeros((2, 32, 32), bool))
    nan = M.ssim(a, a, data_range=1.0, mask=np.zeros((2, 32, 32), bool), empty="nan")
    assert np.isnan(nan).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.2))
def test_ssim_properties(seed, noise):
    a, b = realistic(n=1, bands=2, size=32, noise=noise, seed=seed)
    s = M.ssim(a, b, data_range=1.0)
    assert np.all(s <= 1 + 1e-6) and np.all(s >= -1 - 1e-6)
    assert np.allclose(s, M.ssim(b, a, data_range=1.0), atol=1e-6)  # symmetric
    assert np.allclose(M.ssim(a, a, data_range=1.0), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(11, 11), (37, 53), (130, 17)])
def test_ssim_on_odd_shapes_and_its_map_agree_with_scikit_image(shape):
    # sides that are no multiple of the blocks the windowed sums are computed in
    rng = np.random.default_rng(sum(shape))
    a = ndimage.gaussian_filter(rng.random((3, *shape)), 1.5).astype(np.float32)
    b = (a + 0.05 * rng.standard_normal(a.shape)).astype(np.float32)
    ours, maps = M.ssim(a, b, data_range=1.0, return_map=True, batch_size=2)
    for i in range(3):
        ref, full = structural_similarity(a[i], b[i], data_range=1.0, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, full=True)
        assert abs(ours[i] - ref) < 1e-4
        assert maps.shape[1:] == (shape[0] - 10, shape[1] - 10)
        np.testing.assert_allclose(maps[i], full[5:-5, 5:-5], atol=1e-4)


def test_metrics_leave_their_inputs_alone():
    a, b = realistic(n=2)
    a0, b0 = a.copy(), b.copy()
    M.mse(a, b)
    M.ssim(a, b, data_range=1.0, mask=np.ones((2, 64, 64), bool))
    M.bicubic_scores(a, b[..., ::4, ::4], factor=4, data_range=1.0)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_bicubic_upsampling_is_torchs_and_the_one_image_paths():
    import torch

    from eo_sr import bicubic

    lr = np.random.default_rng(3).random((5, 3, 17, 23)).astype(np.float32)
    up = M.upsample_bicubic(lr, 3, batch_size=4)
    ref = torch.nn.functional.interpolate(torch.from_numpy(lr), scale_factor=3, mode="bicubic",
                                          align_corners=False).numpy()
    np.testing.assert_allclose(up, ref, atol=2e-6)
    np.testing.assert_allclose(up[0], bicubic.upsample_bicubic(lr[0], 3), atol=2e-6)
    matrix = bicubic.bicubic_matrix(17, 3)
    assert matrix.shape == (51, 17) and np.allclose(matrix.sum(axis=1), 1.0)


@pytest.mark.parametrize("masked", [False, True])
def test_bicubic_scores_equal_the_metrics_of_the_upsampled_images(masked):
    hr, _ = realistic(n=5, size=64)
    lr = hr.reshape(5, 4, 16, 4, 16, 4).mean(axis=(3, 5)) + 0.01
    hr_dn, lr_dn = (hr * 10000).astype(np.uint16), (lr * 10000).astype(np.uint16)
    mask = None
    if masked:  # a cloud in a different place in each pair
        mask = np.ones((5, 64, 64), bool)
        for i in range(5):
            mask[i, 8 * i:8 * i + 20, 40 - 5 * i:60 - 5 * i] = False
    up = M.upsample_bicubic(lr_dn, 4)
    got = M.bicubic_scores(hr_dn, lr_dn, factor=4, data_range=10000.0, mask=mask, batch_size=3)
    np.testing.assert_allclose(got["mse"], M.mse(hr_dn, up, mask=mask), rtol=1e-5)
    np.testing.assert_allclose(got["psnr"], M.psnr(hr_dn, up, data_range=10000.0, mask=mask), atol=1e-4)
    np.testing.assert_allclose(got["ssim"], M.ssim(hr_dn, up, data_range=10000.0, mask=mask), atol=1e-5)
    mean = M.bicubic_scores(hr_dn, lr_dn, factor=4, data_range=10000.0, mask=mask, reduce="mean")
    assert mean["ssim"].shape == (5,) and np.allclose(mean["ssim"], got["ssim"].mean(axis=-1))


def test_bicubic_scores_bad_input():
    hr = np.zeros((2, 1, 32, 32), np.float32)
    with pytest.raises(InvalidInputError, match="do not fit factor 3"):
        M.bicubic_scores(hr, hr[..., ::4, ::4], factor=3, data_range=1.0)
    with pytest.raises(InvalidInputError, match="positive integer"):
        M.bicubic_scores(hr, hr[..., ::4, ::4], factor=4.5, data_range=1.0)
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        M.bicubic_scores(hr, hr[..., ::4, ::4], factor=4, data_range=1.0, mask=np.zeros((2, 32, 32), bool))
    with pytest.raises(InvalidInputError, match="batch_size"):
        M.ssim(hr, hr, data_range=1.0, batch_size=0)


def test_bicubic_upsampling_keeps_shape_and_smooth_fields():
    lr = realistic(n=2, size=32, noise=0)[0]
    up = M.upsample_bicubic(lr, 4)
    assert up.shape == (2, 4, 128, 128) and up.dtype == np.float32
    assert np.allclose(up.reshape(2, 4, 32, 4, 32, 4).mean(axis=(3, 5)), lr, atol=5e-3)


# --- silent wrong results refused -------------------------------------------------------


def _pair(seed=0, shape=(3, 24, 24)):
    rng = np.random.default_rng(seed)
    a = rng.random(shape, dtype=np.float32)
    return a, np.clip(a + rng.normal(0, 0.05, shape).astype(np.float32), 0, 1)


@pytest.mark.parametrize("fn", ["mse", "psnr", "ssim"])
def test_one_nan_pixel_is_refused_not_spread(fn):
    a, b = _pair()
    b[1, 5, 7] = np.nan
    kwargs = {} if fn == "mse" else {"data_range": 1.0}
    with pytest.raises(InvalidInputError, match=r"NaN or infinite value.*\[1, 5, 7\].*mask="):
        getattr(M, fn)(a, b, reduce="mean", **kwargs)
    # what the message says to do works: the score of the other pixels
    mask = np.isfinite(b).all(axis=0)
    got = getattr(M, fn)(a, np.nan_to_num(b), mask=mask, reduce="mean", **kwargs)
    assert np.isfinite(got)


def test_bicubic_scores_refuse_nan_in_lr():
    rng = np.random.default_rng(1)
    hr = rng.random((2, 32, 32), dtype=np.float32)
    lr = rng.random((2, 8, 8), dtype=np.float32)
    lr[0, 3, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        M.bicubic_scores(hr, lr, factor=4, data_range=1.0)


def test_a_band_without_valid_pixels_makes_the_mean_nan_not_the_mean_of_the_others():
    a, b = _pair()
    mask = np.ones(a.shape, bool)
    mask[2] = False
    per_band = M.psnr(a, b, data_range=1.0, mask=mask, empty="nan")
    assert np.isnan(per_band[2]) and np.isfinite(per_band[:2]).all()
    assert np.isnan(M.psnr(a, b, data_range=1.0, mask=mask, empty="nan", reduce="mean"))


@pytest.mark.parametrize("fn", ["psnr", "ssim"])
def test_dn_images_scored_with_a_reflectance_range_are_refused(fn):
    a, b = _pair()
    dn_a, dn_b = (a * 10000).astype(np.uint16), (b * 10000).astype(np.uint16)
    with pytest.raises(InvalidInputError, match="data_range=10000"):
        getattr(M, fn)(dn_a, dn_b, data_range=1.0)
    assert getattr(M, fn)(dn_a, dn_b, data_range=10000, reduce="mean") > (10 if fn == "psnr" else 0.5)
    # bright reflectance (clouds, snow) above 1 is fine
    assert np.isfinite(getattr(M, fn)(a * 1.3, b * 1.3, data_range=1.0, reduce="mean"))
