"""Building the default demo patch dataset: pairs per second and where the time goes.

    .venv/bin/python benchmarks/bench_patches.py [--size default]

Runs search-free: the demo world's items are matched (closest LR within 3 days, <= 20 %
cloud, >= 90 % coverage) and every pair is cut into 32x32 LR / 128x128 HR patches in a
fresh store. Prints pairs/s, patch pairs/s, the seconds per stage (read LR; read and
reproject HR, which odc-stac does in one pass; radiometry; co-registration; crop; write;
consolidate into Zarr) and the peak memory (target < 2 GB). Reading should dominate.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default")
    args = ap.parse_args()
    from eo_sr import demo, matching, patches

    world = demo.generate(args.size, seed=0)
    items = {it.id: it for it in world.items()}
    res = matching.match_scenes(world.items(demo.HR_COLLECTION), world.items(demo.LR_COLLECTION),
                                **demo.MATCH_CRITERIA)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest = patches.build_patch_store(res.pairs, items, tmp, progress=False)
        wall = time.perf_counter() - t0
    timings = manifest.attrs["timings"]
    n_pairs = res.pairs["hr_id"].nunique()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"eo-sr patch store benchmark, size={args.size}")
    print(f"  {n_pairs} pairs -> {len(manifest)} patch pairs in {wall:.1f} s: "
          f"{n_pairs / wall:.2f} pairs/s, {len(manifest) / wall:.1f} patch pairs/s")
    total = sum(timings.values())
    for stage, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<20} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
    reading = timings.get("read_lr", 0) + timings.get("read_reproject_hr", 0)
    top = max(timings, key=timings.get)
    print(f"  reading (LR + HR) share: {100 * reading / total:.0f} %; largest stage: {top}")
    print(f"  peak memory: {peak_mb:.0f} MB (target < 2048): {'ok' if peak_mb < 2048 else 'MISSED'}")
    print(f"  patch pairs: {len(manifest)} (target >= 500 at the default size)")
    ok = peak_mb < 2048 and (args.size != "default" or len(manifest) >= 500)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
