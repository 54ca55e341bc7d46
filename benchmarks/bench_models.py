"""SR models against bicubic on the default demo world: the targets of the models issue.

Every model trains on the same multi-frame store (T = 8 LR frames per patch, +-30 days; the
single-frame models see frame 0, the closest in time) and is scored on the test split's
QC-kept patches (``eo_sr.evaluate.evaluate_checkpoint``). Each figure is the mean and spread
over seeds.

Targets (2 CPU cores, each training under 10 minutes):

- HighRes-Net (T = 8): cPSNR gain over bicubic >= +1.0 dB and better than bicubic on >= 90 % of
  the test patches;
- the best single-frame model: >= +0.5 dB and >= 80 % wins; SRCNN above bicubic on average;
- multi-frame beats the best single-frame model by >= 0.3 dB;
- outputs keep the LR radiometry: mean |band-mean difference| (SR averaged down vs LR) < 0.005.

``--ablations`` adds the seeds' claims as a table (one seed): without QC filtering, without
histogram-matched targets, with ShiftNet, without the band-mean loss (how far the band means
drift), with the perceptual term (an encoder trained on the store's HR patches). Runs are kept in the cache and reused (a rerun only scores them again); an interrupted
training resumes.

    .venv/bin/python benchmarks/bench_models.py                      # 3 seeds x 3 models, ~90 min
    .venv/bin/python benchmarks/bench_models.py --seeds 0 --minutes 4
    .venv/bin/python benchmarks/bench_models.py --seeds 0 --ablations --json results.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

HRN_GAIN, HRN_WINS = 1.0, 0.9
SINGLE_GAIN, SINGLE_WINS = 0.5, 0.8
MULTI_OVER_SINGLE = 0.3
BAND_MEAN = 0.005
MAX_MINUTES = 10.0

#: The models and their settings (sized for 2 CPU cores).
MODELS = {
    "srcnn": {"model": "srcnn"},
    "residual": {"model": "residual", "options": {"width": 32, "depth": 4}},
    "highresnet": {"model": "highresnet", "options": {"width": 32, "blocks": 2}, "frames": 8},
}
ABLATIONS = {
    "residual, no QC filtering": ("residual", {"qc": False}, "store"),
    "residual, HR not histogram-matched": ("residual", {}, "unmatched"),
    "residual, no band-mean loss": ("residual", {"loss": {"l1": 1.0}}, "store"),
    "highresnet, with ShiftNet": ("highresnet", {"shiftnet": True}, "store"),
    "residual, with perceptual term": ("residual", {"loss": {"l1": 1.0, "band_mean": 0.1, "perceptual": 0.1}},
                                       "store"),
}


def stores(size: str, *, unmatched: bool):
    """The T = 8 demo store, and (for the ablation) the same without histogram matching."""
    from eo_sr import demo, matching, patches
    from eo_sr.paths import cache_dir
    from eo_sr.pipeline.demo_qc import default_lr_size, prepare_demo_qc

    data = prepare_demo_qc(size, frames=8)
    out = {"store": data.store}
    if unmatched:
        path = cache_dir("bench", "models", size, "T8-unmatched")
        config = patches.PatchConfig(lr_size=default_lr_size(size), frames=8, histogram_match=False)
        if not patches.is_current(path, config):
            res = matching.match_scenes(data.world.items(demo.HR_COLLECTION), data.world.items(demo.LR_COLLECTION),
                                        **demo.MULTI_FRAME_CRITERIA)
            patches.build_patch_store(res.pairs, {it.id: it for it in data.world.items()}, path, config=config,
                                      replace_stale=True, progress=False)
        out["unmatched"] = path
    return out


def run(store, name: str, settings: dict, *, seed: int, minutes: float, size: str, eval_store=None) -> dict:
    """Train (or reuse) one model and score it on the test split of ``eval_store`` (default ``store``)."""
    from eo_sr import evaluate
    from eo_sr.learn.train import TrainConfig, train
    from eo_sr.paths import cache_dir

    config = TrainConfig.from_dict({"epochs": 200, "patience": 12, **settings, "seed": seed, "max_minutes": minutes,
                                    "progress": False})
    tag = name.replace(", ", "-").replace(" ", "_")
    t = time.perf_counter()
    result = train(store, config, out=cache_dir("bench", "models", size, f"{tag}-seed{seed}"), replace_stale=True)
    train_s = float(result.metrics["seconds"].max()) if len(result.metrics) else time.perf_counter() - t
    _, summary = evaluate.evaluate_checkpoint(result.best, eval_store or store, split="test")
    scores = evaluate.report(summary)
    model = scores[config.model]
    return {"name": name, "seed": seed, "train_s": train_s, "epochs": len(result.metrics),
            "cpsnr_gain": model["cpsnr_gain"], "cpsnr_win_rate": model["cpsnr_win_rate"],
            "psnr_gain": model["psnr_gain"], "ssim_gain": model["ssim_gain"], "cpsnr": model["cpsnr"],
            "bicubic_cpsnr": scores["bicubic"]["cpsnr"], "band_mean_difference": model["band_mean_difference"],
            "n_patches": model["n_patches"]}


def spread(rows: list[dict], key: str) -> tuple[float, float]:
    values = np.array([r[key] for r in rows], float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--minutes", type=float, default=MAX_MINUTES, help="training budget per model")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--ablations", action="store_true", help="also the ablation table (first seed)")
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args(argv)

    paths = stores(args.size, unmatched=args.ablations)
    rows = []
    for seed in args.seeds:
        for name in args.models:
            rows.append(run(paths["store"], name, MODELS[name], seed=seed, minutes=args.minutes, size=args.size))
            r = rows[-1]
            print(f"{name:>11} seed {seed}: cPSNR gain {r['cpsnr_gain']:+.3f} dB, wins {r['cpsnr_win_rate']:.0%}, "
                  f"|band-mean diff| {r['band_mean_difference']:.4f}, {r['epochs']} epochs in {r['train_s']:.0f} s",
                  flush=True)
    by = {name: [r for r in rows if r["name"] == name] for name in args.models}
    print(f"\n{'model':>11} {'cPSNR gain (dB)':>17} {'wins':>13} {'|band-mean diff|':>17} {'train (s)':>10}")
    for name, rs in by.items():
        g, gs = spread(rs, "cpsnr_gain")
        w, ws = spread(rs, "cpsnr_win_rate")
        b, _ = spread(rs, "band_mean_difference")
        s, _ = spread(rs, "train_s")
        print(f"{name:>11} {g:+8.3f} ± {gs:5.3f} {w:7.1%} ± {ws:4.1%} {b:17.4f} {s:10.0f}")
    mean = {name: spread(rs, "cpsnr_gain")[0] for name, rs in by.items()}
    wins = {name: spread(rs, "cpsnr_win_rate")[0] for name, rs in by.items()}
    checks = []
    if "highresnet" in by:
        checks.append((f"HighRes-Net gain >= {HRN_GAIN} dB and wins >= {HRN_WINS:.0%}",
                       mean["highresnet"] >= HRN_GAIN and wins["highresnet"] >= HRN_WINS))
    single = [n for n in ("srcnn", "residual") if n in by]
    if single:
        best = max(single, key=mean.get)
        checks.append((f"best single-frame ({best}) gain >= {SINGLE_GAIN} dB and wins >= {SINGLE_WINS:.0%}",
                       mean[best] >= SINGLE_GAIN and wins[best] >= SINGLE_WINS))
        if "highresnet" in by:
            checks.append((f"multi-frame beats {best} by >= {MULTI_OVER_SINGLE} dB",
                           mean["highresnet"] - mean[best] >= MULTI_OVER_SINGLE))
    if "srcnn" in by:
        checks.append(("SRCNN above bicubic on average", mean["srcnn"] > 0))
    checks.append((f"|band-mean difference| < {BAND_MEAN}", all(r["band_mean_difference"] < BAND_MEAN for r in rows)))
    checks.append((f"each training under {MAX_MINUTES:g} min", all(r["train_s"] < MAX_MINUTES * 60 for r in rows)))
    print()
    for text, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")

    ablation_rows = []
    if args.ablations:
        seed = args.seeds[0]
        base = {r["name"]: r for r in rows if r["seed"] == seed}
        print(f"\nablations (seed {seed}; scored on the same histogram-matched, QC-kept test patches):")
        print(f"{'run':>36} {'cPSNR gain':>11} {'vs full':>8} {'wins':>6} {'|band-mean diff|':>17}")
        for label, (model, change, store_key) in ABLATIONS.items():
            r = run(paths[store_key], label, {**MODELS[model], **change}, seed=seed, minutes=args.minutes,
                    size=args.size, eval_store=paths["store"])
            ablation_rows.append(r)
            ref = base.get(model)
            delta = f"{r['cpsnr_gain'] - ref['cpsnr_gain']:+8.3f}" if ref else f"{'':>8}"
            print(f"{label:>36} {r['cpsnr_gain']:+11.3f} {delta} {r['cpsnr_win_rate']:6.0%} "
                  f"{r['band_mean_difference']:17.4f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": rows, "ablations": ablation_rows, "checks": dict(checks)}, f, indent=1)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
