"""eo_sr.learn's losses and the low-pass projection."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from eo_sr import metrics  # noqa: E402
from eo_sr.errors import InvalidInputError, UnknownNameError  # noqa: E402
from eo_sr.learn.losses import (CompositeLoss, PerceptualLoss, band_mean_loss, l1_loss, mse_loss,  # noqa: E402
                                ssim, ssim_loss)
from eo_sr.learn.projection import LowPassProjection, lowpass_degrade  # noqa: E402
from eo_sr.learn.resampling import lanczos_shift  # noqa: E402
from eo_sr.learn.shiftnet import ShiftNet  # noqa: E402
from eo_sr.radiometry import degrade  # noqa: E402

torch.set_num_threads(2)


def pair(seed=0, shape=(2, 3, 24, 20)):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    return a, (a + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)


def holes(shape=(2, 1, 24, 20)):
    m = torch.ones(shape, dtype=torch.bool)
    m[0, :, 3:9, 4:10] = False
    m[1, :, 15:, :5] = False
    return m


def test_l1_and_mse_over_valid_pixels_ignore_nan_targets():
    sr, hr = pair()
    m = holes()
    hr_nan = torch.where(m, hr, float("nan"))
    d = (sr - hr)[m.expand_as(sr)]
    sr.requires_grad_(True)
    for fn, expected in ((l1_loss, d.abs().mean()), (mse_loss, (d * d).mean())):
        value = fn(sr, hr_nan, mask=m)
        torch.testing.assert_close(value, expected)
        torch.testing.assert_close(fn(sr, hr_nan), expected)  # NaN targets are invalid without a mask
        (grad,) = torch.autograd.grad(value, sr)
        assert torch.isfinite(grad).all() and (grad[~m.expand_as(sr)] == 0).all()


def test_masks_of_every_documented_shape():
    sr, hr = pair()
    m = holes()
    for mask in (m[:, 0], m, m.expand_as(sr)):
        torch.testing.assert_close(l1_loss(sr, hr, mask=mask), l1_loss(sr, hr, mask=m))
    with pytest.raises(InvalidInputError, match="bool"):
        l1_loss(sr, hr, mask=m.float())
    with pytest.raises(InvalidInputError, match="shape"):
        l1_loss(sr, hr, mask=m[..., :5])


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_ssim_agrees_with_eo_sr_metrics(data_range):
    sr, hr = pair()
    m = holes()
    for mask in (None, m):
        ref = metrics.ssim(sr.numpy(), hr.numpy(), data_range=data_range,
                           mask=None if mask is None else np.broadcast_to(mask.numpy(), sr.shape))
        np.testing.assert_allclose(ssim(sr, hr, data_range=data_range, mask=mask).numpy(), ref, atol=1e-5)
    assert ssim_loss(hr, hr, data_range=1.0).item() == pytest.approx(0.0, abs=1e-12)
    assert 0 < ssim_loss(sr, hr, data_range=1.0).item() < 1


def test_band_mean_loss_uses_the_closest_valid_frame_and_the_valid_ground():
    torch.manual_seed(0)
    lr = torch.rand(2, 3, 4, 6, 6, dtype=torch.float64)
    frame_mask = torch.tensor([[False, True, True], [True, True, True]])
    closest = lr[[0, 1], [1, 0]]
    sr = lr[:, 0].repeat_interleave(2, -1).repeat_interleave(2, -2)
    sr = sr + 0.05  # every band 0.05 brighter than frame 0 on average
    torch.testing.assert_close(band_mean_loss(sr, lr[:, 0]), torch.tensor(0.05, dtype=torch.float64))
    exact = torch.stack([closest[i].mean(dim=(1, 2)) for i in range(2)])
    expected = (sr.mean(dim=(2, 3)) - exact).abs().mean()
    torch.testing.assert_close(band_mean_loss(sr, lr, frame_mask=frame_mask), expected)
    delta_t = torch.tensor([[0.0, -9.0, 4.0], [5.0, -2.0, 7.0]])  # closest valid: frame 2, then frame 1
    chosen = lr[[0, 1], [2, 1]]
    expected = (sr.mean(dim=(2, 3)) - chosen.mean(dim=(2, 3))).abs().mean()
    torch.testing.assert_close(band_mean_loss(sr, lr, frame_mask=frame_mask, delta_t=delta_t), expected)
    # invalid HR pixels (and the LR pixels they touch) are left out of both means
    mask = torch.ones(2, 12, 12, dtype=torch.bool)
    mask[:, :4] = False
    bad = sr.clone()
    bad[:, :, :4] = 50.0
    frame = lr[:, 0]
    expected = (sr[..., 4:, :].mean(dim=(2, 3)) - frame[..., 2:, :].mean(dim=(2, 3))).abs().mean()
    torch.testing.assert_close(band_mean_loss(bad, frame, mask=mask), expected)


class TinyEncoder(nn.Module):
    def __init__(self, bands=3):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(bands, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.5))
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())

    def forward(self, x):
        a = self.a(x)
        return [a, self.b(a)]


def test_perceptual_term_with_a_frozen_encoder():
    torch.manual_seed(0)
    enc = TinyEncoder()
    term = PerceptualLoss(enc).train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    sr, hr = pair()
    sr, hr = sr.float(), hr.float()
    assert term(hr, hr).item() == 0
    sr.requires_grad_(True)
    value = term(sr, hr)
    value.backward()
    assert value.item() > 0 and sr.grad.abs().sum() > 0
    m = holes()
    changed = torch.where(m, hr, hr + 1.0)  # differs only where the target is invalid
    assert term(changed, hr, mask=m).item() == 0
    with pytest.raises(InvalidInputError, match="encoder"):
        PerceptualLoss("vgg")


def test_composite_loss_weights_terms_and_reports_them():
    torch.manual_seed(0)
    sr, hr = pair()
    lr = torch.nn.functional.avg_pool2d(hr, 2)[:, None]
    loss = CompositeLoss({"l1": 1.0, "mse": 2.0, "ssim": 0.5, "band_mean": 0.1, "perceptual": 0.0})
    total, terms = loss(sr, hr, lr=lr)
    assert set(terms) == {"l1", "mse", "ssim", "band_mean"}
    expected = (l1_loss(sr, hr) + 2 * mse_loss(sr, hr) + 0.5 * ssim_loss(sr, hr, data_range=1.0)
                + 0.1 * band_mean_loss(sr, lr))
    torch.testing.assert_close(total, expected)
    assert loss.config == {"weights": {"l1": 1.0, "mse": 2.0, "ssim": 0.5, "band_mean": 0.1}, "data_range": 1.0,
                           "border": 3}
    with_encoder = CompositeLoss({"perceptual": 1.0}, encoder=TinyEncoder().double())
    assert with_encoder(sr, hr)[0] > 0


def test_composite_loss_errors():
    with pytest.raises(UnknownNameError, match="unknown loss term 'vgg'.*l1, mse, ssim, band_mean, perceptual, shift"):
        CompositeLoss({"vgg": 1.0})
    with pytest.raises(InvalidInputError, match="number >= 0"):
        CompositeLoss({"l1": -1.0})
    with pytest.raises(InvalidInputError, match="encoder="):
        CompositeLoss({"perceptual": 1.0})
    with pytest.raises(InvalidInputError, match="shiftnet="):
        CompositeLoss({"shift": 1.0})
    sr, hr = pair()
    with pytest.raises(InvalidInputError, match="lr="):
        CompositeLoss({"band_mean": 1.0})(sr, hr)


def test_registered_loss_forgives_a_sub_pixel_misregistration():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.standard_normal((2, 3, 40, 40)), (0, 0, 2, 2))
    sr = torch.tensor(image[..., 4:36, 4:36], dtype=torch.float32)
    hr = lanczos_shift(sr, torch.tensor([[0.6, -0.4], [-0.3, 0.8]]))
    plain, _ = CompositeLoss({"l1": 1.0}, border=0)(sr, hr)
    registered, terms = CompositeLoss({"l1": 1.0, "shift": 1e-3}, shiftnet=ShiftNet())(sr, hr)
    assert registered < plain / 5
    assert terms["shift"].item() == pytest.approx((0.36 + 0.16 + 0.09 + 0.64) / 2, rel=0.1)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_lowpass_degrade_is_the_sensor_model_without_noise(factor):
    x = torch.rand(2, 3, 5 * factor, 4 * factor, dtype=torch.float64)
    ref = np.stack([degrade(xi, factor=factor, psf_sigma=0.5) for xi in x.numpy()])
    np.testing.assert_allclose(lowpass_degrade(x, factor=factor, psf_sigma=0.5).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("psf_sigma", [0.0, 0.5, 0.6])
def test_projection_reproduces_the_lr_input_exactly(factor, psf_sigma):
    torch.manual_seed(factor)
    sr = torch.rand(2, 4, 6 * factor, 5 * factor)
    lr = torch.rand(2, 4, 6, 5)
    out = LowPassProjection(factor=factor, psf_sigma=psf_sigma)(sr, lr)
    torch.testing.assert_close(lowpass_degrade(out, factor=factor, psf_sigma=psf_sigma), lr, atol=2e-5, rtol=0)
    # it is a projection: an image that already degrades to lr is left as it is
    torch.testing.assert_close(LowPassProjection(factor=factor, psf_sigma=psf_sigma)(out, lr), out, atol=2e-5, rtol=0)
    # what the degradation cannot see (the detail) is kept: the change itself degrades to the residual
    change = (out - sr).double()
    torch.testing.assert_close(lowpass_degrade(change, factor=factor, psf_sigma=psf_sigma),
                               (lr - lowpass_degrade(sr, factor=factor, psf_sigma=psf_sigma)).double(),
                               atol=2e-5, rtol=0)


def test_projection_errors():
    with pytest.raises(InvalidInputError, match="psf_sigma"):
        LowPassProjection(factor=2, psf_sigma=-1)
    with pytest.raises(InvalidInputError, match="not 2 times"):
        LowPassProjection(factor=2)(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 3, 4))
