"""Targets of the foundation: the default demo world and the local STAC API.

    .venv/bin/python benchmarks/bench_demo_world.py [--size default]

Measures, in one run, on this machine:
  * generating the world (fresh, in a temporary folder): wall time (target < 60 s on 2 cores),
    size on disk (< 500 MB), peak memory of the generating process (< 2 GB, Binder's limit);
  * the local STAC API: time until it answers (start + pgstac migrate, target < 5 s), time to
    load the world's items, and one full search;
  * how many 32x32 LR / 128x128 HR patch pairs the matched HR scenes can give (target >= 500).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATE = """
import json, resource, sys, time
from eo_sr.demo.world import build_world
from pathlib import Path
t = build_world(Path(sys.argv[1]), sys.argv[2], 0, progress=False)
t["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(t))
"""


def patch_capacity(world, lr_patch_m: float = 320.0) -> int:
    """Whole LR patches inside each matched HR footprint, minus the cloudy share."""
    total = 0
    for v in world.truth["scenes"].values():
        if v["kind"] != "hr" or v["expected_match"]["status"] == "unmatched":
            continue
        x0, y0, x1, y1 = v["footprint_utm"]
        per_axis = lambda a, b: int(((b - a) - 10.0) // lr_patch_m)  # noqa: E731  first whole 10 m pixel
        total += int(per_axis(x0, x1) * per_axis(y0, y1) * (1 - v["cloud_fraction"] - v["shadow_fraction"]))
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default")
    args = ap.parse_args()
    from eo_sr import demo, stac

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", GENERATE, str(root), args.size], capture_output=True,
                             text=True, check=True)
        wall = time.perf_counter() - t0
        timings = json.loads(out.stdout.strip().splitlines()[-1])
        disk_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
        world = demo.open_world(root)
        n_items = len(world.item_dicts())

        from eo_sr.localapi.server import LocalStacServer

        server = LocalStacServer()
        t1 = time.perf_counter()
        server.start()
        ready = time.perf_counter() - t1
        t2 = time.perf_counter()
        server.load(world.collections(), world.items_path)
        load = time.perf_counter() - t2
        t3 = time.perf_counter()
        found = stac.search(stac.open_catalog(server), collections=[demo.LR_COLLECTION, demo.HR_COLLECTION],
                            limit=50)
        search = time.perf_counter() - t3
        server.stop()
        capacity = patch_capacity(world)

    rows = [
        ("world generation (s)", wall, 60, "lower"),
        ("  of which landscape / LR / HR / truth (s)",
         f"{timings['landscape_s']:.1f} / {timings['lr_s']:.1f} / {timings['hr_s']:.1f} / "
         f"{timings['write_truth_s']:.1f}", None, None),
        ("world on disk (MB)", disk_mb, 500, "lower"),
        ("peak memory while generating (MB)", timings["peak_rss_mb"], 2048, "lower"),
        ("STAC API ready: start + migrate (s)", ready, 5, "lower"),
        (f"load {n_items} items (s)", load, None, None),
        (f"search all {len(found)} items, pages of 50 (s)", search, None, None),
        ("32x32 LR / 128x128 HR patch pairs available", capacity, 500, "higher"),
    ]
    print(f"eo-sr demo world benchmark, size={args.size}")
    ok = True
    for name, value, target, better in rows:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        verdict = ""
        if target is not None:
            passed = value < target if better == "lower" else value >= target
            ok &= passed
            verdict = f"target {'<' if better == 'lower' else '>='} {target}: {'ok' if passed else 'MISSED'}"
        print(f"  {name:<48} {shown:>24}  {verdict}")
    assert len(found) == n_items, "search did not return every item"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
