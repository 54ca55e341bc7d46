"""SR on real Sentinel-2 pixels: train and score on a Wald's-protocol store of one real image.

The store (:func:`eo_sr.wald.wald_store`) is made from the real Sentinel-2 10 m bands that ship
with xarray-spatial (200 x 300 px, EPSG:32719; :func:`eo_sr.wald.real_sentinel2`): HR = the real
10 m pixels, LR = their degraded version at 40 m (factor 4; Sentinel-2's PSF from its MTF at
Nyquist, or ``--sensor demo-lr`` for the demo world's LR sensor; Sentinel-2's SNR per band
unless ``--no-noise``), split by spatial blocks into train / val /
test. A residual network trains on the train windows (``eo_sr.learn.train.train``, QC off: the
pairs are clean by construction) and is scored on the test windows
(``eo_sr.evaluate.evaluate_checkpoint``); the figure printed is its cPSNR gain over bicubic.

``--checkpoint PATH`` scores a model trained elsewhere (e.g. on the demo world: the quickstart's
``best.pt``) on the same test windows, with no training here: does what it learned from the
simulated world carry over to real pixels?

    .venv/bin/python benchmarks/bench_wald.py --minutes 3
    .venv/bin/python benchmarks/bench_wald.py --checkpoint data/cache/quickstart/run/best.pt
    .venv/bin/python benchmarks/bench_wald.py --minutes 3 --checkpoint OTHER/best.pt --json out.json

Timings on 2 shared CPU cores are noisy; the gain is the figure to read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def build_store(args):
    from eo_sr.paths import cache_dir
    from eo_sr.wald import SENTINEL2_SNR, real_sentinel2, wald_store

    image = real_sentinel2()
    bands = [str(b) for b in image["band"].values]
    snr = None if args.no_noise else [SENTINEL2_SNR[b] for b in bands]
    tag = (f"{args.sensor}-x{args.factor}-s{args.lr_size}-st{args.stride}-b{args.split_block}-"
           f"{'clean' if snr is None else 'snr'}-seed{args.seed}")
    out = cache_dir("bench", "wald", tag)
    t = time.perf_counter()
    manifest = wald_store(image, out, factor=args.factor, lr_size=args.lr_size, stride=args.stride,
                          split_block=args.split_block, sensor=args.sensor, snr=snr, seed=args.seed,
                          replace_stale=True)
    counts = manifest["split"].value_counts().to_dict()
    print(f"Wald store {out}: {len(manifest)} windows ({', '.join(f'{s} {counts.get(s, 0)}' for s in ('train', 'val', 'test'))}), "
          f"LR {args.lr_size} px at {10 * args.factor} m, HR {args.lr_size * args.factor} px at 10 m, "
          f"PSF of {args.sensor}, noise {'off' if snr is None else 'Sentinel-2 SNR'}; built in {time.perf_counter() - t:.1f} s")
    return out


def score(checkpoint, store, label: str) -> dict:
    from eo_sr import evaluate

    _, summary = evaluate.evaluate_checkpoint(checkpoint, store, split="test", qc=False)
    scores = evaluate.report(summary)
    name = next(k for k in scores if k != "bicubic")
    model, bicubic = scores[name], scores["bicubic"]
    row = {"label": label, "model": name, "checkpoint": str(checkpoint), "n_patches": int(model["n_patches"]),
           "cpsnr": model["cpsnr"], "bicubic_cpsnr": bicubic["cpsnr"], "cpsnr_gain": model["cpsnr_gain"],
           "cpsnr_win_rate": model["cpsnr_win_rate"], "ssim_gain": model.get("ssim_gain")}
    print(f"{label:>28}: cPSNR {row['cpsnr']:.2f} dB vs bicubic {row['bicubic_cpsnr']:.2f} dB, gain "
          f"{row['cpsnr_gain']:+.3f} dB, wins {row['cpsnr_win_rate']:.0%} of {row['n_patches']} test windows")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget (0: no training)")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="also score this best.pt (trained elsewhere) on the test windows; repeatable")
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--lr-size", type=int, default=8, help="LR window side (HR = x factor)")
    parser.add_argument("--stride", type=int, default=None, help="LR pixels between windows in a block")
    parser.add_argument("--split-block", type=int, default=None, help="split block side, LR pixels (default a window)")
    parser.add_argument("--sensor", default="sentinel-2-l2a",
                        help="whose PSF blurs the LR (demo-lr: the demo world's LR sensor, what a demo-trained model saw)")
    parser.add_argument("--no-noise", action="store_true", help="LR without Sentinel-2's noise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    store = build_store(args)
    rows = []
    if args.minutes > 0:
        from eo_sr.learn.train import TrainConfig, train
        from eo_sr.paths import cache_dir

        config = TrainConfig(model="residual", options={"width": args.width, "depth": args.depth}, epochs=1000,
                             patience=50, max_minutes=args.minutes, qc=False, seed=args.seed, progress=False)
        t = time.perf_counter()
        result = train(store, config, out=cache_dir("bench", "wald", f"run-{store.name}-{args.minutes:g}min"),
                       replace_stale=True)
        print(f"trained residual (width {args.width}, depth {args.depth}) for {len(result.metrics)} epochs in "
              f"{time.perf_counter() - t:.0f} s; best validation gain {result.best_gain:+.3f} dB")
        rows.append({**score(result.best, store, "trained on the Wald store"), "epochs": len(result.metrics)})
    for path in args.checkpoint:
        rows.append(score(path, store, "checkpoint from elsewhere"))
    if not rows:
        print("nothing to score: give --minutes > 0 or --checkpoint PATH", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
