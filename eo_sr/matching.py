"""Pair every high-resolution (HR) scene with low-resolution (LR) scenes that cover
the same ground, close in time and clear of clouds; say why when none fits.

A candidate LR scene for an HR scene must

* cover at least ``min_coverage`` of the HR footprint with valid data (STAC item
  geometries are valid-data footprints, so ``1 - coverage`` is the share of the HR
  footprint that would be nodata in the LR scene),
* be acquired within ``max_days`` of the HR scene,
* have a cloud cover of at most ``max_cloud_cover`` percent.

Among the candidates a *strategy* selects the partners: the closest in time, the
least cloudy, the best ``k`` (for multi-frame models) or ``k`` spread as uniformly as
possible over a period (DeepSatData's criteria: low cloud, large overlap, little
nodata, uniform in time). Overlapping tiles of one datatake (same platform, same
time) count once: the tile that covers most of the HR footprint is kept.

References
----------
.. [1] J. Wasala et al., "AutoSR4EO: An AutoML Approach to Super-Resolution for
       Earth Observation Images", Remote Sensing 16(3):443, 2024.
.. [2] M. Tarasiou and S. Zafeiriou, "DeepSatData: Building large scale datasets of
       satellite images for training machine learning models", Imperial College London.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_sr.errors import InvalidInputError

STRATEGIES = ("closest", "least_cloudy", "best_k", "uniform")
REASONS = {
    "no_overlap": "no LR scene touches the HR footprint",
    "no_lr_in_window": "no overlapping LR scene within the time window",
    "insufficient_overlap": "LR scenes in the window cover too little of the HR footprint",
    "too_cloudy": "every LR scene in the window is over the cloud limit",
}
_CHUNK = 2000


def fix_antimeridian(geom):
    """Split a polygon that wraps across the antimeridian into a MultiPolygon.

    GeoJSON (RFC 7946) asks for such footprints to be split; a polygon whose
    longitudes jump from +179 to -179 instead spans the whole globe. Geometries that
    do not wrap are returned unchanged.
    """
    import shapely
    from shapely.geometry import box

    if geom is None or geom.is_empty:
        return geom
    w, _, e, _ = geom.bounds
    if e - w <= 180:
        return geom
    shifted = shapely.transform(geom, lambda xy: np.where(xy[:, :1] < 0, xy + [360.0, 0.0], xy))
    east = shifted.intersection(box(-180, -90, 180, 90))
    west = shapely.transform(shifted.intersection(box(180, -90, 540, 90)), lambda xy: xy - [360.0, 0.0])
    return shapely.union(east, west)


def scene_table(items) -> Any:
    """Items as a GeoDataFrame for matching: id, datetime (UTC), cloud cover, platform,
    footprint (EPSG:4326, split at the antimeridian)."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import shape

    if hasattr(items, "geometry") and hasattr(items, "crs"):
        frame = items.copy()
        frame["geometry"] = [fix_antimeridian(g) for g in frame.geometry]
        return frame
    rows = []
    sensor_gsd: dict = {}  # per collection: a registry lookup per item would cost 100k lookups
    for it in items:
        d = it if isinstance(it, dict) else it.to_dict(transform_hrefs=False)
        p = d.get("properties", {})
        if not d.get("geometry"):
            raise InvalidInputError(f"item {d.get('id')} has no geometry; matching needs footprints")
        if not p.get("datetime"):
            raise InvalidInputError(f"item {d.get('id')} has no datetime; matching needs acquisition times")
        rows.append({
            "id": d["id"], "collection": d.get("collection"), "datetime": pd.Timestamp(p["datetime"]),
            "eo:cloud_cover": float(p.get("eo:cloud_cover", np.nan)), "platform": p.get("platform"),
            "gsd": _item_gsd(d, sensor_gsd), "geometry": fix_antimeridian(shape(d["geometry"])),
        })
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, columns=["id", "collection", "datetime", "eo:cloud_cover",
                                                         "platform", "gsd", "geometry"]),
                             geometry="geometry", crs="EPSG:4326")
    if len(frame):
        frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


def _item_gsd(d: dict, sensor_gsd: dict) -> float:
    """The item's ground sample distance in metres: its ``gsd``, else its sensor's (looked up once
    per collection into ``sensor_gsd``), else NaN."""
    from eo_sr.errors import EoSrError
    from eo_sr.sensors import find_sensor_for_collection

    gsd = d.get("properties", {}).get("gsd")
    if isinstance(gsd, (int, float)) and gsd > 0:
        return float(gsd)
    collection = d.get("collection")
    if collection not in sensor_gsd:
        try:
            sensor_gsd[collection] = float(find_sensor_for_collection(collection).gsd) if collection else np.nan
        except EoSrError:
            sensor_gsd[collection] = np.nan
    return sensor_gsd[collection]


def _check_roles(hr, lr) -> None:
    """Refuse inputs whose HR side is not finer than their LR side: a silent self-match otherwise."""
    same = set(hr["id"]) & set(lr["id"])
    if same:
        raise InvalidInputError(f"{len(same)} scene(s) are given as both HR and LR (e.g. {sorted(same)[0]!r}): "
                                "pass the HR search results as hr_items and the LR ones as lr_items")
    if "gsd" not in hr or "gsd" not in lr:
        return
    hr_gsd, lr_gsd = np.nanmedian(hr["gsd"]) if hr["gsd"].notna().any() else np.nan, \
        np.nanmedian(lr["gsd"]) if lr["gsd"].notna().any() else np.nan
    if np.isfinite(hr_gsd) and np.isfinite(lr_gsd) and hr_gsd >= lr_gsd:
        raise InvalidInputError(f"the HR scenes ({hr_gsd:g} m) are not finer than the LR scenes ({lr_gsd:g} m): "
                                "are HR and LR swapped? HR is the fine sensor (e.g. 2.5 m), LR the coarse one "
                                "(e.g. Sentinel-2, 10 m)")


def _days(frame) -> np.ndarray:
    """Datetimes as float days since 1970 (UTC)."""
    import pandas as pd

    stamps = pd.to_datetime(frame["datetime"], utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy() / 86400.0


def candidate_pairs(hr, lr, *, max_days: float) -> Any:
    """Every (HR, LR) pair whose footprints intersect and whose times differ by at
    most ``max_days``, with the share of the HR footprint the LR scene covers.

    Work is bounded by time-sorted chunks and an STRtree per chunk, so it scales with
    the number of real candidates, not with ``len(hr) * len(lr)``.
    """
    import pandas as pd
    import shapely

    t_hr, t_lr = _days(hr), _days(lr)
    order_lr = np.argsort(t_lr, kind="stable")
    t_lr_sorted = t_lr[order_lr]
    order_hr = np.argsort(t_hr, kind="stable")
    hr_geom, lr_geom = hr.geometry.to_numpy(), lr.geometry.to_numpy()
    out_h, out_l = [], []
    for start in range(0, len(order_hr), _CHUNK):
        chunk = order_hr[start:start + _CHUNK]
        lo = np.searchsorted(t_lr_sorted, t_hr[chunk].min() - max_days, side="left")
        hi = np.searchsorted(t_lr_sorted, t_hr[chunk].max() + max_days, side="right")
        if hi <= lo:
            continue
        sub = order_lr[lo:hi]
        tree = shapely.STRtree(lr_geom[sub])
        q_hr, q_lr = tree.query(hr_geom[chunk], predicate="intersects")
        h, l_ = chunk[q_hr], sub[q_lr]
        keep = np.abs(t_lr[l_] - t_hr[h]) <= max_days + 1e-9
        out_h.append(h[keep])
        out_l.append(l_[keep])
    h = np.concatenate(out_h) if out_h else np.zeros(0, int)
    l_ = np.concatenate(out_l) if out_l else np.zeros(0, int)
    inter = shapely.area(shapely.intersection(hr_geom[h], lr_geom[l_]))
    area = shapely.area(hr_geom[h])
    return pd.DataFrame({
        "hr_index": h, "lr_index": l_,
        "hr_id": hr["id"].to_numpy()[h], "lr_id": lr["id"].to_numpy()[l_],
        "delta_days": t_lr[l_] - t_hr[h],
        "coverage": np.divide(inter, area, out=np.zeros_like(inter), where=area > 0),
        "lr_cloud_cover": lr["eo:cloud_cover"].to_numpy()[l_],
        "lr_platform": lr["platform"].to_numpy()[l_] if "platform" in lr else None,
        "lr_datetime": lr["datetime"].iloc[l_].to_numpy() if len(l_) else lr["datetime"].iloc[:0].to_numpy(),
    })


def _check_options(max_days, max_cloud_cover, min_coverage, strategy, k):
    if not max_days > 0:
        raise InvalidInputError(f"max_days must be positive, got {max_days!r}")
    if not 0 <= max_cloud_cover <= 100:
        raise InvalidInputError(f"max_cloud_cover is a percentage between 0 and 100, got {max_cloud_cover!r}")
    if not 0 < min_coverage <= 1:
        raise InvalidInputError(f"min_coverage is a fraction in (0, 1], got {min_coverage!r}")
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")


def _dedupe_datatakes(cands):
    """Overlapping tiles of one datatake (same platform, same time to the minute) are
    one acquisition: keep the tile covering most of the HR footprint."""
    import pandas as pd

    minute = pd.to_datetime(cands["lr_datetime"], utc=True).dt.floor("min").astype(str)
    key = minute + "|" + cands["lr_platform"].astype(str)
    cands = cands.assign(_datatake=key.to_numpy())
    cands = cands.sort_values(["hr_id", "_datatake", "coverage", "lr_cloud_cover"],
                              ascending=[True, True, False, True])
    return cands.drop_duplicates(["hr_id", "_datatake"]).drop(columns="_datatake")


def _select(group, strategy, k, period, max_days, max_cloud):
    """Rows of one HR scene's candidates to keep, best first."""
    g = group.assign(abs_days=group["delta_days"].abs())
    # One score for tie-breaks and best_k: time, cloud and missing coverage, each scaled to [0, 1].
    g["score"] = (g["abs_days"] / max_days + g["lr_cloud_cover"].fillna(100) / max(max_cloud, 1e-9)
                  + (1 - g["coverage"]) * 2)
    if strategy == "closest":
        return g.sort_values(["abs_days", "score"]).head(k)
    if strategy == "least_cloudy":
        return g.sort_values(["lr_cloud_cover", "abs_days"]).head(k)
    if strategy == "best_k":
        return g.sort_values("score").head(k)
    # uniform: k targets evenly spread over the period, each filled by the nearest unused scene
    t = _days(g.rename(columns={"lr_datetime": "datetime"}))
    if period is not None:
        t0, t1 = (np.datetime64(p, "s").astype(np.int64) / 86400.0 for p in period)
    else:
        t0, t1 = t.min(), t.max()
    targets = np.linspace(t0, t1, k) if k > 1 else np.array([(t0 + t1) / 2])
    chosen, free = [], np.ones(len(g), bool)
    for target in targets:
        if not free.any():
            break
        cost = np.abs(t - target) + 0.1 * g["score"].to_numpy()
        cost[~free] = np.inf
        i = int(np.argmin(cost))
        chosen.append(i)
        free[i] = False
    return g.iloc[sorted(chosen, key=lambda i: t[i])]


@dataclass
class MatchResult:
    """What :func:`match_scenes` found.

    Attributes
    ----------
    pairs : pandas.DataFrame
        The selected (HR, LR) pairs: hr_id, lr_id, delta_days, coverage,
        nodata_fraction, lr_cloud_cover, rank.
    candidates : pandas.DataFrame
        Every pair that passed all criteria (before datatake de-duplication and selection).
    report : geopandas.GeoDataFrame
        One row per HR scene: status (matched: one candidate; multiple: several, e.g.
        overlapping tiles or several dates; unmatched), every candidate's id, the chosen
        LR ids, and for unmatched scenes the reason and a concrete suggestion.
    criteria : dict
    """

    pairs: Any
    candidates: Any
    report: Any
    criteria: dict

    @property
    def unmatched(self):
        return self.report[self.report["status"] == "unmatched"]

    @property
    def multiple(self):
        return self.report[self.report["status"] == "multiple"]

    def save(self, path: str | Path) -> Path:
        """Write the report as GeoParquet (criteria in the file's metadata), atomically."""
        import json
        import os

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        frame = self.report.copy()
        frame.attrs = {}
        frame.to_parquet(tmp, schema_version=None)
        import pyarrow.parquet as pq

        table = pq.read_table(tmp)
        meta = {**(table.schema.metadata or {}), b"eo_sr:match_criteria": json.dumps(self.criteria).encode()}
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, path)
        return path

    def summary(self) -> str:
        counts = self.report["status"].value_counts()
        lines = [f"{len(self.report)} HR scenes: {counts.get('matched', 0)} matched, "
                 f"{counts.get('multiple', 0)} with several candidates, {counts.get('unmatched', 0)} unmatched"]
        for _, row in self.unmatched.iterrows():
            lines.append(f"  {row['hr_id']}: {row['reason']} - {row['suggestion']}")
        return "\n".join(lines)


def _explain(hr_row, spatial, in_window, covering, max_days, max_cloud, min_cov):
    """Reason and suggestion for an HR scene without candidates."""
    lat = hr_row.geometry.centroid.y
    if len(covering):
        cloud = float(covering["lr_cloud_cover"].min())
        tip = (f"the least cloudy LR scene in the window has {cloud:.0f}% cloud cover (limit {max_cloud:.0f}%): "
               f"raise max_cloud_cover to {np.ceil(cloud):.0f}, or widen max_days beyond {max_days:g}")
        if abs(lat) < 15:
            tip += "; this area lies near the equator, where clouds persist - an area farther from it may match"
        return "too_cloudy", tip
    if len(in_window):
        best = float(in_window["coverage"].max())
        return "insufficient_overlap", (
            f"the best LR scene covers {best:.0%} of the HR footprint (minimum {min_cov:.0%}): lower min_coverage "
            f"to {np.floor(best * 100) / 100:.2f}, or crop the HR scene to the LR swath")
    if len(spatial):
        nearest = float(spatial["delta_days"].abs().min())
        return "no_lr_in_window", (f"the nearest LR scene over this footprint is {nearest:.1f} days away: "
                                   f"widen max_days to {np.ceil(nearest):.0f} (land cover may change between dates)")
    return "no_overlap", ("no LR scene touches this footprint: search the LR catalog over the HR footprints "
                          "(or a larger AOI) and a longer period")


def match_scenes(hr_items, lr_items, *, max_days: float = 3.0, max_cloud_cover: float = 20.0,
                 min_coverage: float = 0.9, strategy: str = "closest", k: int = 1,
                 period: tuple | None = None, progress: bool = False) -> MatchResult:
    """Match HR scenes to LR scenes in space and time.

    Parameters
    ----------
    hr_items, lr_items : ItemCollection, list of items/dicts, or GeoDataFrame
        HR and LR scenes (GeoDataFrames as made by :func:`scene_table`).
    max_days : float
        Largest time difference, in days, between an HR scene and its partner.
    max_cloud_cover : float
        Largest LR cloud cover in percent.
    min_coverage : float
        Smallest share (0-1) of the HR footprint the LR scene's valid data must cover.
    strategy : {"closest", "least_cloudy", "best_k", "uniform"}
        How partners are selected among the candidates.
    k : int
        Partners per HR scene (e.g. the frames of a multi-frame model).
    period : (start, end), optional
        For ``strategy="uniform"``: the period to spread over (default: the candidates' span).
    progress : bool
        Show a progress bar over HR scenes (for very large inputs).

    Returns
    -------
    MatchResult

    Raises
    ------
    InvalidInputError
        An option is out of range, or an item lacks a footprint or a datetime.
    """
    import geopandas as gpd
    import pandas as pd

    _check_options(max_days, max_cloud_cover, min_coverage, strategy, k)
    hr, lr = scene_table(hr_items), scene_table(lr_items)
    _check_roles(hr, lr)
    criteria = {"max_days": max_days, "max_cloud_cover": max_cloud_cover, "min_coverage": min_coverage,
                "strategy": strategy, "k": int(k)}
    spatial_window = max(max_days * 10, 60.0)  # look further back/forward to explain "no LR in window"
    everything = candidate_pairs(hr, lr, max_days=spatial_window) if len(hr) and len(lr) else \
        candidate_pairs(hr.iloc[:0], lr.iloc[:0], max_days=1)
    in_window = everything[everything["delta_days"].abs() <= max_days + 1e-9]
    covering = in_window[in_window["coverage"] >= min_coverage - 1e-9]
    cands = covering[covering["lr_cloud_cover"].fillna(np.inf) <= max_cloud_cover]
    deduped = _dedupe_datatakes(cands) if len(cands) else cands.assign(abs_days=[], score=[])

    selected = []
    groups = dict(tuple(deduped.groupby("hr_id", sort=False))) if len(deduped) else {}
    by_hr = {name: dict(tuple(frame.groupby("hr_id", sort=False))) if len(frame) else {}
             for name, frame in (("spatial", everything), ("window", in_window), ("covering", covering),
                                 ("candidates", cands))}
    empty = everything.iloc[:0]
    rows = []
    iterator = hr.iterrows()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(hr), desc="matching HR scenes")
    for _, row in iterator:
        hid = row["id"]
        group = groups.get(hid)
        all_cands = by_hr["candidates"].get(hid, empty)
        base = {"hr_id": hid, "hr_datetime": row["datetime"], "hr_cloud_cover": row["eo:cloud_cover"],
                "n_candidates": len(all_cands), "candidate_ids": sorted(all_cands["lr_id"]),
                "geometry": row.geometry}
        if group is None:
            reason, tip = _explain(row, by_hr["spatial"].get(hid, empty), by_hr["window"].get(hid, empty),
                                   by_hr["covering"].get(hid, empty), max_days, max_cloud_cover, min_coverage)
            rows.append({**base, "status": "unmatched", "lr_ids": [], "reason": reason, "suggestion": tip,
                         "best_coverage": float(by_hr["window"].get(hid, empty)["coverage"].max())
                         if hid in by_hr["window"] else 0.0,
                         "min_abs_days": np.nan, "max_lr_cloud_cover": np.nan})
            continue
        chosen = _select(group, strategy, k, period, max_days, max_cloud_cover)
        chosen = chosen.assign(rank=np.arange(1, len(chosen) + 1))
        selected.append(chosen)
        rows.append({**base, "status": "multiple" if len(all_cands) > 1 else "matched",
                     "lr_ids": list(chosen["lr_id"]), "reason": None, "suggestion": None,
                     "best_coverage": float(group["coverage"].max()),
                     "min_abs_days": float(chosen["delta_days"].abs().min()),
                     "max_lr_cloud_cover": float(chosen["lr_cloud_cover"].max())})
    columns = ["hr_id", "hr_datetime", "hr_cloud_cover", "status", "n_candidates", "candidate_ids", "lr_ids",
               "reason", "suggestion",
               "best_coverage", "min_abs_days", "max_lr_cloud_cover", "geometry"]
    report = gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry", crs="EPSG:4326")
    pair_cols = ["hr_id", "lr_id", "rank", "delta_days", "coverage", "nodata_fraction", "lr_cloud_cover",
                 "lr_datetime"]
    if selected:
        pairs = pd.concat(selected, ignore_index=True)
        pairs["nodata_fraction"] = 1 - pairs["coverage"]
        pairs = pairs[pair_cols]
    else:
        pairs = pd.DataFrame(columns=pair_cols)
    cand_cols = ["hr_id", "lr_id", "delta_days", "coverage", "lr_cloud_cover", "lr_datetime"]
    return MatchResult(pairs=pairs, candidates=cands[cand_cols].reset_index(drop=True), report=report,
                       criteria=criteria)
