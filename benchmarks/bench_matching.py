"""Matching at scale: 10,000 HR scenes against 100,000 LR items (synthetic footprints).

    .venv/bin/python benchmarks/bench_matching.py

LR items are 500 overlapping tiles (1.1 x 1.1 degrees on a 1-degree grid) revisited every
5 days for 1000 days; HR scenes are 0.05-degree squares at random places and times inside the
same area and period. Target: the 10,000 x 100,000 match in under 30 s on 2 cores, using a
spatial index (not all pairs). Prints the time for 1,000 / 3,000 / 10,000 HR scenes and the
scaling exponent (1.0 = linear).
"""
from __future__ import annotations

import sys
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def synthetic(n_hr: int, n_tiles=(20, 25), n_dates=200, seed=0):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2020-01-01", tz="UTC")
    gx, gy = np.meshgrid(np.arange(n_tiles[0]), np.arange(n_tiles[1]))
    tiles = shapely.box(gx.ravel() - 0.05, gy.ravel() - 0.05, gx.ravel() + 1.05, gy.ravel() + 1.05)
    dates = t0 + pd.to_timedelta(np.arange(n_dates) * 5, unit="D")
    lr = gpd.GeoDataFrame({
        "id": [f"lr{i}" for i in range(len(tiles) * n_dates)],
        "datetime": np.repeat(dates, len(tiles)),
        "eo:cloud_cover": rng.uniform(0, 100, len(tiles) * n_dates),
        "platform": "s2",
        "geometry": np.tile(tiles, n_dates),
    }, crs=4326)
    x = rng.uniform(0, n_tiles[0] - 0.05, n_hr)
    y = rng.uniform(0, n_tiles[1] - 0.05, n_hr)
    hr = gpd.GeoDataFrame({
        "id": [f"hr{i}" for i in range(n_hr)],
        "datetime": t0 + pd.to_timedelta(rng.uniform(0, n_dates * 5, n_hr), unit="D"),
        "eo:cloud_cover": rng.uniform(0, 10, n_hr), "platform": "hr",
        "geometry": shapely.box(x, y, x + 0.05, y + 0.05),
    }, crs=4326)
    return hr, lr


def main() -> int:
    from eo_sr import matching

    sizes = [1000, 3000, 10000]
    _, lr = synthetic(1)
    print(f"LR items: {len(lr):,}")
    times = []
    for n in sizes:
        hr, _ = synthetic(n)
        t = time.perf_counter()
        res = matching.match_scenes(hr, lr, max_days=3, max_cloud_cover=30, min_coverage=0.9)
        times.append(time.perf_counter() - t)
        counts = res.report["status"].value_counts().to_dict()
        print(f"  {n:>6,} HR x {len(lr):,} LR: {times[-1]:6.2f} s   {counts}")
    slope = np.polyfit(np.log(sizes), np.log(times), 1)[0]
    ok = times[-1] < 30
    print(f"scaling exponent 1k->10k: {slope:.2f} (1.0 = linear)")
    print(f"10,000 x 100,000 in {times[-1]:.1f} s: target < 30 s {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
