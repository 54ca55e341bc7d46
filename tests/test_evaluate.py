"""eo_sr.evaluate: each score on cases whose answer is known, against libraries where they exist."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio

from eo_sr import evaluate as E
from eo_sr import metrics as M
from eo_sr.bicubic import upsample_bicubic
from eo_sr.errors import InvalidInputError
from eo_sr.radiometry import degrade


def smooth(n=3, bands=4, size=32, seed=0, dtype=np.float64):
    """Textured reflectance-like patches in about [0.05, 0.45]."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((n, bands, size, size)), (0, 0, 1.5, 1.5))
    field = (field - field.min()) / (field.max() - field.min())
    return (0.05 + 0.4 * field).astype(dtype)


def zero_mean_noise(shape, scale=0.01, seed=1, region=(Ellipsis,)):
    """Gaussian noise whose mean over ``region`` of each image band is exactly 0 (no bias to forgive)."""
    noise = scale * np.random.default_rng(seed).standard_normal(shape)
    noise -= noise[region].mean(axis=(-2, -1), keepdims=True)
    return noise


def crop(x, m):
    return x[..., m:x.shape[-2] - m, m:x.shape[-1] - m]


# ---------------------------------------------------------------------------------------------
# cPSNR
# ---------------------------------------------------------------------------------------------

def test_cpsnr_without_shift_or_bias_is_psnr_and_agrees_with_scikit_image():
    hr = smooth()
    sr = hr + 0.01 * np.random.default_rng(1).standard_normal(hr.shape)
    plain = E.cpsnr(sr, hr, data_range=1.0, max_shift=0, bias=False)
    assert np.allclose(plain, M.psnr(sr, hr, data_range=1.0), rtol=0, atol=1e-10)
    sk = np.array([[peak_signal_noise_ratio(h, s, data_range=1.0) for h, s in zip(hi, si)] for hi, si in zip(hr, sr)])
    assert np.allclose(plain, sk, rtol=0, atol=1e-10)


def test_cpsnr_equals_psnr_for_aligned_unbiased_images():
    hr = smooth()
    sr = hr + zero_mean_noise(hr.shape)
    assert np.allclose(E.cpsnr(sr, hr, data_range=1.0, max_shift=0), M.psnr(sr, hr, data_range=1.0), atol=1e-10)
    # with a border to search in, the score is that of the cropped area, unshifted
    m = 3
    sr = hr + zero_mean_noise(hr.shape, region=(Ellipsis, slice(m, -m), slice(m, -m)))
    score, shift = E.cpsnr(sr, hr, data_range=1.0, max_shift=m, return_shift=True)
    assert np.allclose(score, M.psnr(crop(sr, m), crop(hr, m), data_range=1.0), atol=1e-10)
    assert shift.shape == (3, 2) and (shift == 0).all()
    assert np.allclose(E.cpsnr(sr, hr, data_range=1.0, reduce="mean"), score.mean(axis=-1))


def test_cpsnr_forgives_a_constant_bias_and_psnr_does_not():
    hr = smooth()
    sr = hr + zero_mean_noise(hr.shape)
    biased = sr + 0.07
    assert np.allclose(E.cpsnr(biased, hr, data_range=1.0), E.cpsnr(sr, hr, data_range=1.0), atol=1e-9)
    assert (M.psnr(biased, hr, data_range=1.0) < E.cpsnr(biased, hr, data_range=1.0) - 10).all()
    assert (E.cpsnr(biased, hr, data_range=1.0, bias=False) < E.cpsnr(biased, hr, data_range=1.0) - 10).all()


@pytest.mark.parametrize("dy, dx", [(2, -1), (-3, 3), (0, 1)])
def test_cpsnr_recovers_a_known_integer_shift(dy, dx):
    hr = smooth(n=2)
    sr = np.roll(hr, (dy, dx), axis=(-2, -1)) + 0.02  # displaced and brighter
    score, shift = E.cpsnr(sr, hr, data_range=1.0, max_shift=3, return_shift=True)
    assert (shift == [dy, dx]).all()
    assert (score == 100.0).all()  # a perfect match once shift and bias are forgiven
    assert (M.psnr(sr, hr, data_range=1.0) < 40).all()


def test_cpsnr_per_band_shifts():
    hr = smooth(n=1, bands=2)
    sr = np.stack([np.roll(hr[:, 0], (1, 0), axis=(-2, -1)), np.roll(hr[:, 1], (0, -2), axis=(-2, -1))], axis=1)
    _, shift = E.cpsnr(sr, hr, data_range=1.0, per_band=True, return_shift=True)
    assert shift.tolist() == [[[1, 0], [0, -2]]]
    joint, one = E.cpsnr(sr, hr, data_range=1.0, return_shift=True)
    assert one.shape == (1, 2) and (joint < 100).any()


def test_cpsnr_respects_the_mask():
    hr = smooth(n=2)
    m = 2
    mask = np.ones(hr.shape[:1] + hr.shape[-2:], bool)
    mask[:, 10:20, 5:15] = False  # e.g. a cloud on HR
    inner = crop(mask, m)[:, None]
    noise = 0.01 * np.random.default_rng(3).standard_normal(hr.shape)
    c = crop(noise, m)  # a view: zero the mean over the valid cropped pixels
    c -= (c * inner).sum(axis=(-2, -1), keepdims=True) / inner.sum(axis=(-2, -1), keepdims=True)
    sr = hr + noise
    sr[:, :, 10:20, 5:15] = 0.9  # garbage where HR is not valid
    score = E.cpsnr(sr, hr, data_range=1.0, mask=mask, max_shift=m)
    expected = M.psnr(crop(sr, m), crop(hr, m), data_range=1.0, mask=crop(mask, m))
    assert np.allclose(score, expected, atol=1e-10)
    assert (E.cpsnr(sr, hr, data_range=1.0, max_shift=m) < score - 10).all()


def test_cpsnr_empty_images():
    hr = smooth(n=2)
    mask = np.ones(hr.shape[:1] + hr.shape[-2:], bool)
    mask[1] = False
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        E.cpsnr(hr, hr, data_range=1.0, mask=mask)
    score = E.cpsnr(hr, hr, data_range=1.0, mask=mask, empty="nan")
    assert (score[0] == 100).all() and np.isnan(score[1]).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"max_shift": -1}, "max_shift"), ({"max_shift": 1.5}, "max_shift"), ({"max_shift": 16}, "smaller max_shift"),
    ({"data_range": 0}, "data_range"), ({"reduce": "median"}, "reduce"), ({"empty": "zero"}, "empty"),
])
def test_cpsnr_bad_options(kwargs, match):
    hr = smooth(n=1)
    with pytest.raises(InvalidInputError, match=match):
        E.cpsnr(hr, hr, **{"data_range": 1.0, **kwargs})


def test_bad_images_are_refused_clearly():
    hr = smooth(n=1)
    bad = hr.copy()
    bad[0, 0, 3, 3] = np.nan
    for fn in (E.cpsnr, E.cssim):
        with pytest.raises(InvalidInputError, match="differ in shape"):
            fn(hr[..., :30], hr, data_range=1.0)
        with pytest.raises(InvalidInputError, match="NaN"):
            fn(bad, hr, data_range=1.0)
        with pytest.raises(InvalidInputError, match="digital numbers"):
            fn(hr * 10000, hr * 10000, data_range=1.0)
    with pytest.raises(InvalidInputError, match="NaN"):
        E.sam(bad, hr)
    with pytest.raises(InvalidInputError, match="mask shape"):
        E.ergas(hr, hr, factor=4, mask=np.ones((5, 5), bool))


# ---------------------------------------------------------------------------------------------
# cSSIM
# ---------------------------------------------------------------------------------------------

def test_cssim_without_shift_or_bias_is_ssim():
    hr = smooth()
    sr = hr + 0.02 * np.random.default_rng(1).standard_normal(hr.shape)
    assert np.allclose(E.cssim(sr, hr, data_range=1.0, max_shift=0, bias=False), M.ssim(sr, hr, data_range=1.0),
                       atol=1e-12)


def test_cssim_recovers_a_shift_and_forgives_a_bias():
    hr = smooth(n=2)
    sr = np.roll(hr, (-2, 1), axis=(-2, -1))
    score, shift = E.cssim(sr + 0.05, hr, data_range=1.0, return_shift=True)
    assert (shift == [-2, 1]).all()
    assert np.allclose(score, 1.0, atol=1e-5)
    assert (M.ssim(sr + 0.05, hr, data_range=1.0) < 0.9).all()
    # aligned, unbiased: the SSIM of the cropped area
    noisy = hr + zero_mean_noise(hr.shape, scale=0.02, region=(Ellipsis, slice(3, -3), slice(3, -3)))
    assert np.allclose(E.cssim(noisy, hr, data_range=1.0), M.ssim(crop(noisy, 3), crop(hr, 3), data_range=1.0),
                       atol=1e-6)


def test_cssim_at_given_shifts_skips_the_search():
    hr = smooth(n=3)
    sr = np.stack([np.roll(h, s, axis=(-2, -1)) for h, s in zip(hr, [(1, 0), (0, -2), (1, 0)])]) + 0.01
    sr += zero_mean_noise(hr.shape, scale=0.01)
    searched, found = E.cssim(sr, hr, data_range=1.0, return_shift=True)
    _, registered = E.cpsnr(sr, hr, data_range=1.0, return_shift=True)
    assert found.tolist() == registered.tolist() == [[1, 0], [0, -2], [1, 0]]
    assert np.allclose(E.cssim(sr, hr, data_range=1.0, shift=registered), searched, atol=1e-12)
    # elsewhere the score is lower: the given shift is used, not searched
    assert (E.cssim(sr, hr, data_range=1.0, shift=np.zeros((3, 2), int)) < searched - 0.05).all()
    per_band = np.broadcast_to(registered[:, None], (3, 4, 2))
    assert np.allclose(E.cssim(sr, hr, data_range=1.0, per_band=True, shift=per_band), searched, atol=1e-12)
    for bad in (np.zeros((3, 4, 2), int), np.full((3, 2), 4), np.zeros((3, 2))):
        with pytest.raises(InvalidInputError, match="shift must be"):
            E.cssim(sr, hr, data_range=1.0, shift=bad)


def test_cssim_respects_the_mask():
    hr = smooth(n=1, size=40)
    mask = np.ones((1, 40, 40), bool)
    mask[:, 20:, :] = False
    sr = hr.copy()
    sr[..., 20:, :] = 0.0
    assert np.allclose(E.cssim(sr, hr, data_range=1.0, mask=mask), 1.0, atol=1e-5)
    assert (E.cssim(sr, hr, data_range=1.0) < 0.8).all()


# ---------------------------------------------------------------------------------------------
# SAM
# ---------------------------------------------------------------------------------------------

def test_sam_is_zero_for_identical_and_scaled_spectra():
    a = smooth()
    assert (E.sam(a, a) == 0).all()
    assert np.allclose(E.sam(a, 3 * a), 0, atol=1e-7)  # brightness alone does not change the angle


def test_sam_known_angles():
    a = np.zeros((2, 2, 4, 4))
    a[:, 0] = 1.0
    b = np.ones((2, 2, 4, 4))  # (1, 0) vs (1, 1): 45 degrees
    assert np.allclose(E.sam(a, b), np.pi / 4)
    assert np.allclose(E.sam(a, b, degrees=True), 45.0)
    c = np.zeros((1, 3, 2, 2))
    c[:, 1] = 0.2  # (1, 0, 0) vs (0, 0.2, 0): 90 degrees
    d = np.zeros((1, 3, 2, 2))
    d[:, 0] = 0.5
    assert np.allclose(E.sam(c, d, degrees=True), 90.0)
    # a tiny angle, where arccos of the normalised dot product loses it
    e = np.ones((1, 2, 1, 1))
    f = e.copy()
    f[:, 1] += 1e-9
    assert np.isclose(E.sam(e, f)[0], 5e-10, rtol=1e-6)


def test_sam_mask_zero_spectra_and_map():
    a = np.zeros((1, 2, 2, 2))
    a[:, 0] = 1.0
    b = a.copy()
    b[0, :, 0, 0] = [1.0, 1.0]  # 45 degrees at one pixel
    mask = np.ones((1, 2, 2), bool)
    mask[0, 0, 0] = False
    assert E.sam(a, b, mask=mask)[0] == 0
    assert np.isclose(E.sam(a, b, degrees=True)[0], 45 / 4)
    value, angles = E.sam(a, b, degrees=True, return_map=True)
    assert angles.shape == (1, 2, 2) and np.isclose(angles[0, 0, 0], 45)
    b[0, :, 1, 1] = 0  # no spectrum: no angle, left out
    assert np.isclose(E.sam(a, b, degrees=True)[0], 45 / 3)
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        E.sam(a, b, mask=np.zeros((1, 2, 2), bool))
    with pytest.raises(InvalidInputError, match="two bands"):
        E.sam(a[:, :1], b[:, :1])


def test_sam_agrees_with_torchmetrics():
    from torchmetrics.functional import image  # dev extra
    import torch

    a, b = smooth(seed=1), smooth(seed=2)
    ref = image.spectral_angle_mapper(torch.from_numpy(a), torch.from_numpy(b), reduction="none")
    assert np.allclose(E.sam(a, b), ref.numpy().mean(axis=(-2, -1)), atol=1e-7)


# ---------------------------------------------------------------------------------------------
# ERGAS
# ---------------------------------------------------------------------------------------------

def test_ergas_known_value():
    checker = np.indices((8, 8)).sum(axis=0) % 2 * 2 - 1.0  # +-1: mean 0, RMS 1
    mu, err = np.array([0.1, 0.2]), np.array([0.01, 0.04])
    hr = mu[:, None, None] + 0.05 * np.roll(checker, 1, axis=0)[None]
    sr = hr + err[:, None, None] * checker
    # RMSE/mean = 0.1 and 0.2: ERGAS = 100 / 4 * sqrt((0.01 + 0.04) / 2)
    assert np.isclose(E.ergas(sr, hr, factor=4), 25 * np.sqrt(0.025))
    assert np.isclose(E.ergas(sr, hr, factor=2), 50 * np.sqrt(0.025))
    assert E.ergas(hr, hr, factor=4) == 0


def test_ergas_mask_and_errors():
    hr = smooth(n=2)
    sr = hr.copy()
    sr[..., :8, :] = 0.0
    mask = np.ones((2, 32, 32), bool)
    mask[:, :8] = False
    assert (E.ergas(sr, hr, factor=4, mask=mask) == 0).all()
    assert (E.ergas(sr, hr, factor=4) > 5).all()
    with pytest.raises(InvalidInputError, match="factor"):
        E.ergas(sr, hr, factor=2.5)
    with pytest.raises(InvalidInputError, match="mean <= 0"):
        E.ergas(sr, hr - hr.mean(axis=(-2, -1), keepdims=True), factor=4)


def test_ergas_agrees_with_torchmetrics():
    from torchmetrics.functional import image  # dev extra
    import torch

    hr, sr = smooth(seed=1), smooth(seed=2)
    for i in range(len(hr)):
        ref = image.error_relative_global_dimensionless_synthesis(
            torch.from_numpy(sr[i:i + 1]), torch.from_numpy(hr[i:i + 1]), ratio=4)
        assert np.isclose(E.ergas(sr, hr, factor=4)[i], float(ref), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# consistency with the LR input, band means
# ---------------------------------------------------------------------------------------------

def test_consistency_is_perfect_for_an_image_that_degrades_to_its_input():
    lr = smooth(n=2, size=8)
    blocky = np.kron(lr, np.ones((4, 4)))  # every block averages to its LR pixel
    out = E.consistency(blocky, lr, factor=4, data_range=1.0, psf_sigma=0)
    assert (out["psnr"] == 100).all() and np.allclose(out["mae"], 0, atol=1e-15)
    # HR detail that averages out over each block does not count; a brightness change does
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 0.02 - 0.01
    assert np.allclose(E.consistency(blocky + checker, lr, factor=4, data_range=1.0, psf_sigma=0)["mae"], 0,
                       atol=1e-15)
    brighter = E.consistency(blocky + 0.01, lr, factor=4, data_range=1.0, psf_sigma=0)
    assert np.allclose(brighter["mae"], 0.01) and np.allclose(brighter["psnr"], 40.0)


def test_consistency_uses_the_sensor_psf():
    hr = smooth(n=2)
    lr = degrade(hr, factor=4, sensor="demo-lr", channel_axis=None)
    out = E.consistency(hr, lr, factor=4, data_range=1.0, sensor="demo-lr", reduce="mean")
    assert out["psnr"].shape == (2,) and (out["psnr"] == 100).all()
    blurred_wrongly = E.consistency(hr, lr, factor=4, data_range=1.0, psf_sigma=0, reduce="mean")
    assert (blurred_wrongly["psnr"] < 100).all() and (blurred_wrongly["mae"] > 0).all()
    bicubic = E.consistency(upsample_bicubic(lr, 4, channel_axis=None), lr, factor=4, data_range=1.0,
                            sensor="demo-lr", reduce="mean")
    assert (bicubic["psnr"] < 60).all()


def test_consistency_mask_and_errors():
    lr = smooth(n=1, size=8)
    sr = np.kron(lr, np.ones((4, 4)))
    sr[..., :4, :4] = 0.9  # the first LR pixel's block
    mask = np.ones((1, 32, 32), bool)
    mask[:, 0, 0] = False
    assert (E.consistency(sr, lr, factor=4, data_range=1.0, psf_sigma=0, mask=mask)["psnr"] == 100).all()
    assert (E.consistency(sr, lr, factor=4, data_range=1.0, psf_sigma=0)["psnr"] < 100).all()
    with pytest.raises(InvalidInputError, match="do not fit factor"):
        E.consistency(sr, lr, factor=2, data_range=1.0, psf_sigma=0)
    with pytest.raises(InvalidInputError, match="blur"):
        E.consistency(sr, lr, factor=4, data_range=1.0)
    with pytest.raises(InvalidInputError, match="factor"):
        E.consistency(sr, lr, factor=4.5, data_range=1.0, psf_sigma=0)


def test_band_mean_difference():
    lr = smooth(n=2, bands=2, size=8)
    sr = np.kron(lr, np.ones((3, 3)))
    sr[:, 1] -= 0.02  # a model that darkens band 1
    sr[:, 0] += 0.05 * np.tile([[1, -1, 0], [0, 1, -1], [-1, 0, 1]], (8, 8))  # detail without drift in any block
    assert np.allclose(E.band_mean_difference(sr, lr), [[0, 0.02]] * 2, atol=1e-12)
    assert np.allclose(E.band_mean_difference(sr, lr, factor=3, signed=True, reduce="mean"), -0.01, atol=1e-12)
    mask = np.ones((2, 24, 24), bool)
    mask[:, :3, :3] = False
    sr[:, 0, :3, :3] = 1.0
    assert np.allclose(E.band_mean_difference(sr, lr, mask=mask)[:, 0], 0, atol=1e-12)
    with pytest.raises(InvalidInputError, match="integer multiple"):
        E.band_mean_difference(sr[..., :23], lr)


# ---------------------------------------------------------------------------------------------
# correctness (opensr-test)
# ---------------------------------------------------------------------------------------------

def test_correctness_classes():
    hr = smooth(n=2)
    lr = degrade(hr, factor=4, psf_sigma=0.5, channel_axis=None)
    up = upsample_bicubic(lr, 4, channel_axis=None).astype(np.float64)
    perfect = E.correctness(hr, hr, lr, factor=4)
    assert (perfect["improvement"] > 0.9).all()
    total = perfect["improvement"] + perfect["omission"] + perfect["hallucination"]
    assert np.allclose(total, 1.0)
    assert (E.correctness(up, hr, lr, factor=4)["omission"] > 0.9).all()
    invented = np.clip(hr + 3 * (hr - up) + 0.1 * np.random.default_rng(0).standard_normal(hr.shape), 0.01, 1)
    made_up = E.correctness(invented, hr, lr, factor=4)
    assert (made_up["hallucination"] > 0.5).all()
    assert (made_up["hallucination"] > made_up["improvement"]).all()
    percent = E.correctness(hr, hr, lr, factor=4, norm="percent", distance="l1", threshold=0.0)
    assert (percent["improvement"] == 1.0).all()


def test_correctness_mask_and_errors():
    hr = smooth(n=1)
    lr = degrade(hr, factor=4, psf_sigma=0.5, channel_axis=None)
    sr = hr.copy()
    sr[..., :16, :] = 0.9
    mask = np.ones((1, 32, 32), bool)
    mask[:, :16] = False
    assert E.correctness(sr, hr, lr, factor=4, mask=mask)["improvement"][0] > 0.9
    assert E.correctness(sr, hr, lr, factor=4)["improvement"][0] < 0.9
    for kwargs, match in [({"distance": "lpips"}, "distance"), ({"threshold": "median"}, "threshold"),
                          ({"temperature": 0}, "temperature"), ({"norm": "max"}, "norm"), ({"factor": 2}, "factor")]:
        with pytest.raises(InvalidInputError, match=match):
            E.correctness(sr, hr, lr, **{"factor": 4, **kwargs})
    with pytest.raises(InvalidInputError, match="no valid pixel"):
        E.correctness(sr, hr, lr, factor=4, mask=np.zeros((1, 32, 32), bool))


# ---------------------------------------------------------------------------------------------
# win rate, the table, the summary
# ---------------------------------------------------------------------------------------------

def test_win_rate():
    assert E.win_rate([1, 2, 3], [1, 1, 4]) == pytest.approx(1 / 3)  # the tie is not a win
    assert E.win_rate([1, 2, 3], [1, 1, 4], higher_is_better=False) == pytest.approx(1 / 3)
    assert E.win_rate([1, np.nan, 3], [0, 1, 4]) == 0.5
    assert np.isnan(E.win_rate([np.nan], [1.0]))
    with pytest.raises(InvalidInputError, match="differ in shape"):
        E.win_rate([1, 2], [1, 2, 3])


@pytest.fixture(scope="module")
def patches():
    hr = smooth(n=4)
    lr = degrade(hr, factor=4, psf_sigma=0.5, channel_axis=None)
    bicubic = upsample_bicubic(lr, 4, channel_axis=None)
    good = np.where(np.arange(4)[:, None, None, None] < 3, 0.5 * (hr + bicubic), bicubic - 0.02)
    return hr, lr, bicubic, good


def test_evaluate_patches_table(patches):
    hr, lr, bicubic, good = patches
    table = E.evaluate_patches({"good": good, "perfect": hr}, hr, lr, factor=4, data_range=1.0, psf_sigma=0.5,
                               patch_ids=["a", "b", "c", "d"], extra_columns={"cluster": [0, 0, 1, 1]})
    assert len(table) == 12 and list(table["model"].unique()) == ["good", "perfect", "bicubic"]
    assert list(table.columns[:3]) == ["patch_id", "model", "cluster"]
    assert set(E.HIGHER_IS_BETTER) | {f"{k}_gain" for k in E.HIGHER_IS_BETTER} <= set(table.columns)
    bic = table[table.model == "bicubic"].reset_index(drop=True)
    assert np.allclose(bic["psnr"], M.psnr(bicubic, hr, data_range=1.0, reduce="mean"))
    assert np.allclose(bic["cpsnr"], E.cpsnr(bicubic, hr, data_range=1.0, reduce="mean"))
    assert np.allclose(bic["sam"], E.sam(bicubic, hr))
    assert bic["psnr_gain"].isna().all()
    perfect = table[table.model == "perfect"]
    assert (perfect["psnr"] == 100).all() and (perfect["consistency_psnr"] == 100).all()
    assert np.allclose(perfect["psnr_gain"].to_numpy(), 100 - bic["psnr"].to_numpy())
    assert np.allclose(perfect["sam_gain"].to_numpy(), bic["sam"].to_numpy())  # errors: baseline minus model
    assert (table[table.model == "good"]["band_mean_difference"].to_numpy()[3] > 0.019)
    searched = E.evaluate_patches(good, hr, lr, factor=4, data_range=1.0, cssim_search=True, baseline=None)
    assert np.allclose(searched["cssim"], table[table.model == "good"]["cssim"], atol=1e-9)


def test_evaluate_patches_without_baseline_or_psf(patches):
    hr, lr, _, good = patches
    table = E.evaluate_patches(good, hr, lr, factor=4, data_range=1.0, baseline=None, model="m")
    assert len(table) == 4 and (table.model == "m").all() and table["consistency_psnr"].isna().all()
    assert not any(c.endswith("_gain") for c in table.columns)
    assert "psnr_win_rate" not in E.summarise(table).columns


def test_summarise_per_model_and_group(patches):
    hr, lr, bicubic, good = patches
    table = E.evaluate_patches(good, hr, lr, factor=4, data_range=1.0, model="good", psf_sigma=0.5,
                               extra_columns={"cluster": ["x", "x", "y", "y"]})
    summary = E.summarise(table).set_index("model")
    good_rows = table[table.model == "good"]
    assert summary.loc["good", "n_patches"] == 4
    assert np.isclose(summary.loc["good", "psnr_mean"], good_rows["psnr"].mean())
    assert np.isclose(summary.loc["good", "psnr_std"], good_rows["psnr"].std())
    expected = E.win_rate(good_rows["psnr"], table[table.model == "bicubic"]["psnr"])
    assert summary.loc["good", "psnr_win_rate"] == expected == 0.75
    assert np.isnan(summary.loc["bicubic", "psnr_win_rate"])
    per_cluster = E.summarise(table, by=("model", "cluster")).set_index(["model", "cluster"])
    assert per_cluster.loc[("good", "x"), "psnr_win_rate"] == 1.0
    assert per_cluster.loc[("good", "y"), "psnr_win_rate"] == 0.5
    with pytest.raises(InvalidInputError, match="no column"):
        E.summarise(table, by="landcover")


def test_evaluate_patches_bad_input(patches):
    hr, lr, bicubic, good = patches
    kw = {"factor": 4, "data_range": 1.0}
    with pytest.raises(InvalidInputError, match="like the baseline"):
        E.evaluate_patches({"bicubic": good}, hr, lr, **kw)
    with pytest.raises(InvalidInputError, match="one value per patch"):
        E.evaluate_patches(good, hr, lr, patch_ids=[1, 2], **kw)
    with pytest.raises(InvalidInputError, match="one value per patch"):
        E.evaluate_patches(good, hr, lr, extra_columns={"cluster": [1, 2, 3]}, **kw)
    with pytest.raises(InvalidInputError, match="do not fit factor"):
        E.evaluate_patches(good, hr, lr, factor=2, data_range=1.0)
    with pytest.raises(InvalidInputError, match="shape"):
        E.evaluate_patches(good[..., :16], hr, lr, **kw)
    with pytest.raises(InvalidInputError, match="baseline"):
        E.evaluate_patches(good, hr, lr, baseline="lanczos", **kw)
