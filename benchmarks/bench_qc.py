"""QC metrics at scale: 20,000 pairs (4 bands, 32x32 LR, 128x128 HR).

    .venv/bin/python benchmarks/bench_qc.py [--pairs 20000] [--loop-sample 500]

Measures in one run: eo-sr's bicubic upsampling + PSNR + SSIM for all pairs, in one pass
(``metrics.bicubic_scores``, target < 30 s on 2 cores) and function by function, and a loop over scikit-image (per pair and band:
skimage.transform.resize order=3, peak_signal_noise_ratio, structural_similarity) on a
sample, extrapolated to all pairs (target: eo-sr at least 5x faster), each step timed
apart. Also reports the largest SSIM difference between the two on the same images.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import ndimage


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((64, 4, 160, 160)), (0, 0, 2, 2)).astype(np.float32) * 0.4
    idx = rng.integers(0, 64, n)
    oy, ox = rng.integers(0, 32, n), rng.integers(0, 32, n)
    hr = np.stack([base[i, :, y:y + 128, x:x + 128] for i, y, x in zip(idx, oy, ox)])
    lr = hr.reshape(n, 4, 32, 4, 32, 4).mean(axis=(3, 5))
    return lr + 0.002 * rng.standard_normal(lr.shape).astype(np.float32), hr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--loop-sample", type=int, default=500)
    args = ap.parse_args()
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.transform import resize

    from eo_sr import metrics

    lr, hr = data(args.pairs)
    t = time.perf_counter()
    fused = metrics.bicubic_scores(hr, lr, factor=4, data_range=1.0)
    total = time.perf_counter() - t

    # the same, one function at a time (the upsampled images stored in between)
    t_ours = {"upsampling": 0.0, "psnr": 0.0, "ssim": 0.0}
    for s in range(0, args.pairs, 2048):
        t = time.perf_counter()
        up = metrics.upsample_bicubic(lr[s:s + 2048], 4)
        t_ours["upsampling"] += time.perf_counter() - t
        t = time.perf_counter()
        metrics.psnr(hr[s:s + 2048], up, data_range=1.0)
        t_ours["psnr"] += time.perf_counter() - t
        t = time.perf_counter()
        metrics.ssim(hr[s:s + 2048], up, data_range=1.0)
        t_ours["ssim"] += time.perf_counter() - t

    # the loop a user would write: per pair and band, 2-D resize (faster than one 3-D resize
    # of the band stack, which also interpolates across bands), PSNR, SSIM
    k = args.loop_sample
    t_loop = {"upsampling": 0.0, "psnr": 0.0, "ssim": 0.0}
    ref = np.empty((k, 4))
    for i in range(k):
        for b in range(4):
            t = time.perf_counter()
            up_ib = resize(lr[i, b], (128, 128), order=3, mode="edge", anti_aliasing=False)
            t_loop["upsampling"] += time.perf_counter() - t
            t = time.perf_counter()
            peak_signal_noise_ratio(hr[i, b], up_ib, data_range=1.0)
            t_loop["psnr"] += time.perf_counter() - t
            t = time.perf_counter()
            ref[i, b] = structural_similarity(hr[i, b], up_ib, data_range=1.0, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False)
            t_loop["ssim"] += time.perf_counter() - t
    t_loop = {key: v / k * args.pairs for key, v in t_loop.items()}

    sample = metrics.ssim(hr[:k], metrics.upsample_bicubic(lr[:k], 4), data_range=1.0)
    same_up = np.stack([[resize(lr[i, b], (128, 128), order=3, mode="edge", anti_aliasing=False)
                         for b in range(4)] for i in range(8)])
    agree = np.abs(metrics.ssim(hr[:8], same_up.astype(np.float32), data_range=1.0) - ref[:8]).max()
    total_loop = sum(t_loop.values())
    ratio = total_loop / total
    print(f"{args.pairs} pairs (4 bands, 32x32 -> 128x128), torch threads {torch.get_num_threads()}")
    for key in t_ours:
        print(f"  {key:>10}: eo-sr {t_ours[key]:6.1f} s   scikit-image loop {t_loop[key]:6.1f} s   "
              f"x{t_loop[key] / t_ours[key]:.1f}")
    print(f"  eo-sr step by step: {sum(t_ours.values()):.1f} s")
    print(f"  eo-sr bicubic_scores (one pass, nothing stored): {total:.1f} s (target < 30 s): "
          f"{'ok' if total < 30 else 'MISSED'}; mean SSIM {fused['ssim'].mean():.4f}")
    print(f"  scikit-image loop: {total_loop:.1f} s (extrapolated from {k} pairs)")
    print(f"  speed-up: x{ratio:.1f} (target >= 5): {'ok' if ratio >= 5 else 'MISSED'}")
    print(f"  SSIM agreement on the same upsampled images: max |diff| {agree:.2e}; "
          f"mean SSIM ours {sample.mean():.4f} vs skimage-resize upsampling {ref.mean():.4f}")
    return 0 if total < 30 and ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
