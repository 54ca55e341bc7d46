"""eo_sr.learn's models, registry, Lanczos shifts and ShiftNet."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import ndimage  # noqa: E402

from eo_sr.bicubic import upsample_bicubic  # noqa: E402
from eo_sr.errors import InvalidInputError, UnknownNameError  # noqa: E402
from eo_sr.learn.base import median_valid  # noqa: E402
from eo_sr.learn.losses import mse_loss, register  # noqa: E402
from eo_sr.learn.projection import lowpass_degrade  # noqa: E402
from eo_sr.learn.registry import build_model, model_names  # noqa: E402
from eo_sr.learn.resampling import lanczos_matrix, lanczos_shift  # noqa: E402
from eo_sr.learn.shiftnet import ShiftNet  # noqa: E402

torch.set_num_threads(2)
NETWORKS = ("srcnn", "residual", "highresnet")
#: Tiny networks: the tests check wiring and learning, not quality.
TINY = {"srcnn": {"n1": 32, "n2": 16}, "residual": {"depth": 2, "width": 8}, "highresnet": {"width": 8, "blocks": 1}}


def tiny(name, **kw):
    return build_model(name, **{**TINY.get(name, {}), **kw})


def test_the_registry_knows_the_models():
    assert model_names() == ["bicubic", "highresnet", "lanczos", "residual", "srcnn"]


@pytest.mark.parametrize("name", ["bicubic", "lanczos", *NETWORKS])
@pytest.mark.parametrize("factor", [2, 3, 4])
def test_output_shape(name, factor):
    for T in (1, 3, 8):
        for bands in (3, 4):
            model = tiny(name, factor=factor, bands=bands, frames=T)
            out = model(torch.rand(2, T, bands, 5, 6))
            assert out.shape == (2, bands, 5 * factor, 6 * factor)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["bicubic", "lanczos", *NETWORKS])
def test_config_round_trip_through_json(name):
    torch.manual_seed(0)
    model = tiny(name, factor=3, bands=4, frames=3, project=True)
    config = json.loads(json.dumps(model.config))
    again = build_model(**config)
    assert again.config == model.config
    again.load_state_dict(model.state_dict())  # the same architecture: the weights fit
    x = torch.rand(2, 3, 4, 6, 6)
    torch.testing.assert_close(again(x), model(x))


def test_bicubic_is_eo_sr_bicubic():
    x = torch.rand(2, 3, 4, 7, 9, dtype=torch.float64)
    for factor in (2, 3, 4):
        out = build_model("bicubic", factor=factor, bands=4, frames=3)(x)
        expected = np.stack([upsample_bicubic(frame, factor) for frame in x[:, 0].numpy()])
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-10)


def test_single_frame_models_use_the_first_valid_frame_or_the_median():
    x = torch.rand(2, 3, 3, 6, 6, dtype=torch.float64)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    first = build_model("bicubic", factor=2, bands=3, frames=3)(x, mask)
    alone = build_model("bicubic", factor=2, bands=3)(x[[0, 1], [1, 0]][:, None])
    torch.testing.assert_close(first, alone)
    median = build_model("bicubic", factor=2, bands=3, frames=3, frame="median")(x, mask)
    ref = torch.stack([x[0, 1:].mean(0), x[1].median(0).values])
    torch.testing.assert_close(median, build_model("bicubic", factor=2, bands=3)(ref))


def test_median_of_valid_frames():
    x = torch.tensor([1.0, 7.0, 3.0, 100.0]).view(1, 4, 1, 1, 1).repeat(2, 1, 1, 1, 1)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    assert median_valid(x, mask).flatten().tolist() == [3.0, 4.0]


def test_lanczos_upsampling_is_closer_to_a_band_limited_signal_than_bicubic():
    np.testing.assert_allclose(lanczos_matrix(7, 3).sum(axis=1), 1.0)  # flat images stay flat
    np.testing.assert_allclose(lanczos_matrix(5, 1), np.eye(5), atol=1e-12)  # factor 1: the same centres
    n, f = 32, 3
    signal = lambda t: np.cos(2 * np.pi * t / 12.0)  # noqa: E731
    centres = (np.arange(n * f) + 0.5) / f - 0.5  # the output pixel centres, in input pixels
    image = torch.tensor(np.tile(signal(np.arange(n)), (n, 1))).view(1, 1, 1, n, n)
    up = build_model("lanczos", factor=f, bands=1)(image)[0, 0, n, 10:-10].numpy()
    bic = upsample_bicubic(image[0, 0].numpy(), f)[0, n, 10:-10]
    truth = signal(centres)[10:-10]
    assert np.abs(up - truth).max() < min(0.01, np.abs(bic - truth).max() / 2)


@pytest.mark.parametrize("T", [1, 2, 3, 5])
def test_highresnet_ignores_masked_frames(T):
    """T frames with k padding frames (NaN, masked) anywhere give the output of the T frames alone."""
    torch.manual_seed(0)
    model = tiny("highresnet", factor=2, bands=3, frames=8).double()
    frames = torch.rand(3, T, 3, 6, 6, dtype=torch.float64)
    alone = model(frames)
    for k in (1, 2, 8 - T):
        padded = torch.cat([frames, torch.full((3, k, 3, 6, 6), float("nan"), dtype=torch.float64)], dim=1)
        mask = torch.arange(T + k)[None].repeat(3, 1) < T
        keep = torch.randperm(T + k)[:T].sort().values  # missing frames anywhere, the valid ones in order
        scattered = torch.full_like(padded, float("nan"))
        scattered[:, keep] = frames
        smask = torch.zeros(3, T + k, dtype=torch.bool)
        smask[:, keep] = True
        torch.testing.assert_close(model(padded, mask), alone, atol=1e-10, rtol=0)
        torch.testing.assert_close(model(scattered, smask), alone, atol=1e-10, rtol=0)


def test_highresnet_uses_every_valid_frame_for_odd_counts():
    torch.manual_seed(0)
    model = tiny("highresnet", factor=2, bands=3, frames=3).double()
    frames = torch.rand(1, 3, 3, 6, 6, dtype=torch.float64)
    changed = frames.clone()
    changed[:, 1] += 0.5  # the middle frame: HighRes-Net's original fusion drops it at odd T
    assert (model(changed) - model(frames)).abs().max() > 1e-4


def test_highresnet_batches_samples_with_different_frame_counts():
    torch.manual_seed(0)
    model = tiny("highresnet", factor=2, bands=3, frames=4).double()
    x = torch.rand(3, 4, 3, 6, 6, dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True], [True, False, True, False], [True, False, False, False]])
    out = model(x, mask)
    for i in range(3):
        torch.testing.assert_close(out[i], model(x[i:i + 1, mask[i]])[0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_overfits_a_tiny_batch(name):
    """The loss falls 10x, and below bicubic's: the network learnt detail that bicubic cannot give."""
    torch.manual_seed(0)
    model = tiny(name, factor=2, bands=3, frames=3)
    hr = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 14, 14), 3, stride=1)  # texture at a few pixels
    lr = torch.nn.functional.avg_pool2d(hr, 2)[:, None].repeat(1, 3, 1, 1, 1)
    lr = lr + 0.01 * torch.randn_like(lr)
    bicubic = mse_loss(build_model("bicubic", factor=2, bands=3, frames=3)(lr), hr).item()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(500):
        loss = mse_loss(model(lr), hr)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < min(first / 10, bicubic), (first, bicubic, loss.item())


def test_projection_option_makes_outputs_degrade_to_their_frame():
    torch.manual_seed(0)
    model = tiny("residual", factor=4, bands=3, frames=2, project=True, psf_sigma=0.5).double()
    lr = torch.rand(2, 2, 3, 6, 5, dtype=torch.float64)
    out = model(lr)
    torch.testing.assert_close(lowpass_degrade(out, factor=4, psf_sigma=0.5), lr[:, 0], atol=1e-10, rtol=0)


def test_unknown_names_and_options():
    with pytest.raises(UnknownNameError, match="unknown model 'edsr'.*bicubic, highresnet, lanczos, residual, srcnn"):
        build_model("edsr", factor=2, bands=4)
    with pytest.raises(InvalidInputError, match="no option 'dpeth'.*depth"):
        build_model("residual", factor=2, bands=4, dpeth=3)
    with pytest.raises(InvalidInputError, match="upsampling must be one of 'pixelshuffle', 'transposed'"):
        build_model("residual", factor=2, bands=4, upsampling="nearest")
    with pytest.raises(InvalidInputError, match="frame must be one of"):
        build_model("srcnn", factor=2, bands=4, frame="last")


@pytest.mark.parametrize("factor", [1, 5, 2.5, True, "4"])
def test_factor_outside_2_3_4(factor):
    with pytest.raises(InvalidInputError, match=r"factor must be one of \(2, 3, 4\)"):
        build_model("srcnn", factor=factor, bands=4)


def test_bad_input():
    model = tiny("highresnet", factor=2, bands=4, frames=3)
    with pytest.raises(InvalidInputError, match="3 bands.*built for 4.*bands=3"):
        model(torch.rand(1, 2, 3, 6, 6))
    with pytest.raises(InvalidInputError, match="4 frames.*at most 3.*frames=4"):
        model(torch.rand(1, 4, 4, 6, 6))
    x = torch.rand(2, 3, 4, 6, 6)
    x[1, 2, 0, 3, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        model(x)
    model(x, torch.tensor([[True, True, True], [True, True, False]]))  # a NaN in a masked frame is fine
    with pytest.raises(InvalidInputError, match="no valid frame"):
        model(torch.rand(2, 3, 4, 6, 6), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(InvalidInputError, match="bool tensor"):
        model(torch.rand(2, 3, 4, 6, 6), torch.ones(2, 3))
    with pytest.raises(InvalidInputError, match="floating-point"):
        model(np.zeros((1, 3, 4, 6, 6)))


def smooth_periodic(size=64):
    y, x = np.mgrid[0:size, 0:size]
    return np.sin(2 * np.pi * x / 16) * np.cos(2 * np.pi * y / 32) + 0.3 * np.sin(2 * np.pi * (x + y) / (size / 5))


@pytest.mark.parametrize("shift", [(0.3, -0.7), (1.4, 0.25), (-2.6, 1.0)])
def test_lanczos_shift_moves_a_smooth_image_as_scipy(shift):
    image = smooth_periodic()
    out = lanczos_shift(torch.tensor(image)[None, None], torch.tensor([shift]))[0, 0].numpy()
    spline = ndimage.shift(image, shift, order=3, mode="grid-wrap")
    fourier = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(image), shift)).real  # exact: the image is periodic
    inner = (slice(8, -8), slice(8, -8))  # lanczos_shift replicates edges, scipy wraps them here
    moved = np.abs(image - fourier)[inner].max()
    for ref in (spline, fourier):
        assert np.abs(out - ref)[inner].max() < 0.015 < moved / 20


def test_lanczos_shift_by_whole_pixels_is_exact():
    image = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    out = lanczos_shift(image, torch.tensor([[2.0, -1.0], [0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(out[0, :, 2:, :-1], image[0, :, :-2, 1:])
    torch.testing.assert_close(out[1], image[1])


def shifted_pairs(rng, n, size=32):
    images = ndimage.gaussian_filter(rng.standard_normal((n, size + 16, size + 16)), (0, 2, 2))
    shifts = rng.uniform(-1.5, 1.5, (n, 2))
    moved = np.stack([ndimage.shift(im, s, order=3, mode="nearest") for im, s in zip(images, shifts)])
    inner = (slice(None), None, slice(8, 8 + size), slice(8, 8 + size))
    return (torch.tensor(images[inner], dtype=torch.float32), torch.tensor(moved[inner], dtype=torch.float32),
            torch.tensor(shifts, dtype=torch.float32))


def test_shiftnet_trained_briefly_recovers_a_known_shift():
    """Trained through the registered loss (no shift labels), as HighRes-Net trains it."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = ShiftNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(20):
        sr, hr, _ = shifted_pairs(rng, 8)
        shifted, _, valid = register(sr, hr, net, border=4)
        loss = mse_loss(shifted, hr, mask=valid)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sr, hr, truth = shifted_pairs(rng, 16)
    with torch.no_grad():
        found = net(sr, hr)
        aligned = mse_loss(net.transform(sr, found)[..., 4:-4, 4:-4], hr[..., 4:-4, 4:-4])
    assert (found - truth).abs().max() < 0.1
    assert aligned < mse_loss(sr, hr) / 20
    assert ShiftNet(**json.loads(json.dumps(net.config))).config == net.config


def test_shiftnet_is_independent_of_the_band_count_and_scale():
    sr, hr, truth = shifted_pairs(np.random.default_rng(1), 4)
    net = ShiftNet()
    with torch.no_grad():
        one = net(sr, hr)
        four = net(sr.repeat(1, 4, 1, 1) * 0.1 + 0.3, hr.repeat(1, 4, 1, 1) * 0.1 + 0.3)
    torch.testing.assert_close(one, four, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["residual", "srcnn", "highresnet"])
def test_standardized_models_follow_a_change_of_brightness_and_gain(name):
    torch.manual_seed(0)
    model = build_model(name, factor=4, bands=3, frames=3 if name == "highresnet" else 1, standardize=True).eval()
    lr = torch.rand(2, 3 if name == "highresnet" else 1, 3, 8, 8)
    gain, offset = torch.tensor([2.0, 0.5, 1.5])[:, None, None], torch.tensor([0.1, -0.2, 0.3])[:, None, None]
    with torch.no_grad():
        a = model(lr)
        b = model(lr * gain + offset)
    torch.testing.assert_close(b, a * gain + offset, atol=1e-4, rtol=1e-4)
    assert model.config["standardize"] is True


def test_standardizing_leaves_bicubic_as_it_is():
    lr = torch.rand(2, 1, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(build_model("bicubic", factor=4, bands=4, standardize=True)(lr),
                                   build_model("bicubic", factor=4, bands=4)(lr), atol=1e-5, rtol=1e-5)
