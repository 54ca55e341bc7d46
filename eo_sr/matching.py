"""Pair every high-resolution (HR) scene with low-resolution (LR) scenes that cover
the same ground, close in time and clear of clouds; say why when none fits.

A candidate LR scene for an HR scene must

* cover at least ``min_coverage`` of the HR footprint with valid data (STAC item
  geometries are valid-data footprints, so ``1 - coverage`` is the share of the HR
  footprint that would be nodata in the LR scene),
* be acquired within ``max_days`` of the HR scene,
* have a cloud cover of at most ``max_cloud_cover`` percent.

A scene without ``eo:cloud_cover`` (NAIP, items indexed from one's own GeoTIFFs; also
values outside 0-100, such as the -1 USGS writes when it did not compute one) has an
*unknown* cloud cover, not an infinite one: it passes the cloud limit, and the report
says so (``lr_cloud_known`` / ``hr_cloud_known`` columns, a ``note`` per HR scene and a
count in :meth:`MatchResult.summary`). Strategies that rank by cloud treat an unknown
cloud cover as if it were at the limit, the worst a candidate may be: known clear
scenes come first, unknown ones still fill the remaining places.

Among the candidates a *strategy* selects the partners: the closest in time, the
least cloudy, the best ``k`` (for multi-frame models) or ``k`` spread as uniformly as
possible over a period (DeepSatData's criteria: low cloud, large overlap, little
nodata, uniform in time).

Overlapping tiles of one datatake count once, the tile that covers most of the HR
footprint (then the least cloudy) being kept. Tiles of one Sentinel-2 datatake on
neighbouring MGRS tiles share platform, relative orbit and day, and their datetimes
differ by seconds to minutes, so two LR scenes are one acquisition when

* both carry a datatake id (``s2:datatake_id``) and the ids are equal, or otherwise
* they share platform (the collection stands in for a missing platform) and relative
  orbit (``sat:relative_orbit``, where present) and were taken at most
  ``datatake_minutes`` (30 by default) apart; scenes chain, so three tiles 20 minutes
  apart each are one datatake.

Scenes of different satellites, of different orbits, or with different datatake ids
are never merged, however close in time.

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
from eo_sr.loading import cloud_cover

STRATEGIES = ("closest", "least_cloudy", "best_k", "uniform")
REASONS = {
    "no_overlap": "no LR scene touches the HR footprint",
    "no_lr_in_window": "no overlapping LR scene within the time window",
    "insufficient_overlap": "LR scenes in the window cover too little of the HR footprint",
    "too_cloudy": "every LR scene in the window is over the cloud limit",
}
_CHUNK = 2000
#: For ``strategy="uniform"``: percentage points of lost pixels (cloud, plus nodata in the
#: HR footprint) that cost as much as lying half a slot away from the slot's centre.
UNIFORM_LOSS_SCALE = 10.0
DATATAKE_MINUTES = 30.0


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


def _label(value):
    """An orbit number or a datatake id as a string (``7`` and ``7.0`` alike); None when missing."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


_TABLE_COLUMNS = ["id", "collection", "datetime", "eo:cloud_cover", "platform", "relative_orbit", "datatake_id",
                  "gsd", "geometry"]


def scene_table(items) -> Any:
    """Items as a GeoDataFrame for matching.

    Parameters
    ----------
    items : ItemCollection, sequence of items or item dicts, or GeoDataFrame
        A GeoDataFrame (e.g. from :func:`eo_sr.stac.to_geodataframe`) is completed with
        the columns it lacks.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``id``, ``collection``, ``datetime`` (UTC), ``eo:cloud_cover`` (percent,
        NaN when unknown), ``platform``, ``relative_orbit`` (from ``sat:relative_orbit``),
        ``datatake_id`` (from ``s2:datatake_id``), ``gsd`` (metres) and ``geometry``
        (EPSG:4326, split at the antimeridian).

    Raises
    ------
    InvalidInputError
        An item has no footprint or no datetime.
    """
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import shape

    if hasattr(items, "geometry") and hasattr(items, "crs"):
        frame = items.copy()
        frame["geometry"] = [fix_antimeridian(g) for g in frame.geometry]
        for column, source in (("eo:cloud_cover", None), ("platform", None), ("collection", None),
                               ("relative_orbit", "sat:relative_orbit"), ("datatake_id", "s2:datatake_id")):
            if column not in frame:
                frame[column] = frame[source] if source in frame else None
        cloud = pd.to_numeric(frame["eo:cloud_cover"], errors="coerce").astype(float)
        frame["eo:cloud_cover"] = cloud.where((cloud >= 0) & (cloud <= 100))  # as loading.cloud_cover does
        for column in ("relative_orbit", "datatake_id"):
            values = frame[column]
            frame[column] = pd.Series([_label(v) for v in values] if values.notna().any() else None,
                                      index=frame.index, dtype=object)
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
            "eo:cloud_cover": cloud_cover(p.get("eo:cloud_cover")), "platform": p.get("platform"),
            "relative_orbit": _label(p.get("sat:relative_orbit")), "datatake_id": _label(p.get("s2:datatake_id")),
            "gsd": _item_gsd(d, sensor_gsd), "geometry": fix_antimeridian(shape(d["geometry"])),
        })
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, columns=_TABLE_COLUMNS), geometry="geometry", crs="EPSG:4326")
    frame["eo:cloud_cover"] = frame["eo:cloud_cover"].astype(float)
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

    Parameters
    ----------
    hr, lr : geopandas.GeoDataFrame
        Scene tables as made by :func:`scene_table`.
    max_days : float
        Largest time difference in days.

    Returns
    -------
    pandas.DataFrame
        One row per pair: indices and ids of both scenes, ``delta_days`` (LR minus HR),
        ``coverage``, the LR cloud cover (NaN when unknown) and ``lr_cloud_known``, and
        what identifies the LR scene's datatake (platform, collection, relative orbit,
        datatake id, datetime).

    Notes
    -----
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
    cloud = (pd.to_numeric(lr["eo:cloud_cover"], errors="coerce").to_numpy(float)[l_] if "eo:cloud_cover" in lr
             else np.full(len(l_), np.nan))

    def column(name):
        return lr[name].to_numpy(object)[l_] if name in lr else np.full(len(l_), None, object)

    return pd.DataFrame({
        "hr_index": h, "lr_index": l_,
        "hr_id": hr["id"].to_numpy()[h], "lr_id": lr["id"].to_numpy()[l_],
        "delta_days": t_lr[l_] - t_hr[h],
        "coverage": np.divide(inter, area, out=np.zeros_like(inter), where=area > 0),
        "lr_cloud_cover": cloud, "lr_cloud_known": np.isfinite(cloud),
        "lr_platform": column("platform"), "lr_collection": column("collection"),
        "lr_orbit": column("relative_orbit"), "lr_datatake_id": column("datatake_id"),
        "lr_datetime": lr["datetime"].iloc[l_].to_numpy() if len(l_) else lr["datetime"].iloc[:0].to_numpy(),
    })


def _check_options(max_days, max_cloud_cover, min_coverage, strategy, k, datatake_minutes):
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
    is_number = isinstance(datatake_minutes, (int, float, np.integer, np.floating))
    if isinstance(datatake_minutes, bool) or not is_number or not 0 <= datatake_minutes < np.inf:
        raise InvalidInputError("datatake_minutes is the largest time, in minutes, between two tiles of one "
                                f"datatake: a number >= 0, got {datatake_minutes!r}")


def _text(values) -> np.ndarray:
    """Labels as strings, missing ones as ``""``."""
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values], dtype=object)


def _dedupe_datatakes(cands, *, minutes: float = DATATAKE_MINUTES):
    """Keep one LR scene per datatake and HR scene: the one covering most of the HR
    footprint (to 0.01 %), then the least cloudy (unknown cloud last), then the closest in time.

    Two scenes are one datatake when both have a datatake id and the ids are equal, or,
    when one of them has none, when they share platform (else collection) and relative
    orbit and lie at most ``minutes`` apart (scenes sorted in time chain).
    """
    import pandas as pd

    platform = _text(cands["lr_platform"])
    platform = np.where(platform == "", "collection:" + _text(cands["lr_collection"]), platform)
    orbit, datatake = _text(cands["lr_orbit"]), _text(cands["lr_datatake_id"])
    t = _days(cands.rename(columns={"lr_datetime": "datetime"})) * 1440.0  # minutes
    hr_id = cands["hr_id"].astype(str).to_numpy(object)
    order = np.lexsort((t, orbit, platform, hr_id))
    hr_id, platform, orbit, datatake, t = hr_id[order], platform[order], orbit[order], datatake[order], t[order]
    joined = np.zeros(len(order), bool)
    if len(order) > 1:
        same = (hr_id[1:] == hr_id[:-1]) & (platform[1:] == platform[:-1]) & (orbit[1:] == orbit[:-1])
        both_ids = (datatake[1:] != "") & (datatake[:-1] != "")
        joined[1:] = same & np.where(both_ids, datatake[1:] == datatake[:-1], t[1:] - t[:-1] <= minutes + 1e-6)
    group = np.empty(len(order), np.int64)
    group[order] = np.cumsum(~joined)
    ranked = cands.assign(_datatake=group, _cov=-np.round(cands["coverage"].to_numpy(float), 4),
                          _unknown=~cands["lr_cloud_known"].to_numpy(bool), _abs=cands["delta_days"].abs())
    ranked = ranked.sort_values(["_datatake", "_cov", "_unknown", "lr_cloud_cover", "_abs"], kind="stable")
    kept = ranked.drop_duplicates("_datatake").drop(columns=["_datatake", "_cov", "_unknown", "_abs"])
    return kept.sort_values(["hr_id", "lr_datetime"], kind="stable") if len(kept) else kept


def _uniform(t, abs_days, lost, k, period) -> list:
    """Positions chosen by the ``uniform`` strategy (see :func:`match_scenes`), in time order.

    ``t`` are the candidates' times (days), ``abs_days`` their distances to the HR scene and
    ``lost`` their percentages of cloud plus nodata.
    """
    if period is not None:
        t0, t1 = (np.datetime64(p, "s").astype(np.int64) / 86400.0 for p in period)
    else:
        t0, t1 = t.min(), t.max()
    if k > 1:
        targets, half = np.linspace(t0, t1, k), (t1 - t0) / (k - 1) / 2
    else:
        targets, half = np.array([(t0 + t1) / 2]), (t1 - t0) / 2
    half = max(abs(half), 1e-6)  # every candidate at one instant: time cannot decide
    chosen, free = {}, np.ones(len(t), bool)
    # First every slot takes the best of its own frames; then empty slots take the best frame left.
    for own_slot in (True, False):
        for j, target in enumerate(targets):
            if j in chosen or not free.any():
                continue
            dist = np.abs(t - target)
            idx = np.flatnonzero(free & (dist <= half + 1e-9) if own_slot else free)
            if not len(idx):
                continue
            cost = dist[idx] / half + lost[idx] / UNIFORM_LOSS_SCALE
            i = int(idx[np.lexsort((abs_days[idx], cost))[0]])
            chosen[j] = i
            free[i] = False
    return sorted(chosen.values(), key=lambda i: t[i])


def _select(group, strategy, k, period, max_days, max_cloud):
    """Rows of one HR scene's candidates to keep, best first (with ``abs_days`` and ``score``)."""
    abs_days = np.abs(group["delta_days"].to_numpy(float))
    unknown = ~group["lr_cloud_known"].to_numpy(bool)
    # An unknown cloud cover counts as the limit: the worst a candidate may be.
    cloud = np.where(unknown, max_cloud, group["lr_cloud_cover"].to_numpy(float))
    coverage = group["coverage"].to_numpy(float)
    # One score for tie-breaks and best_k: time, cloud and missing coverage, each scaled to [0, 1].
    score = abs_days / max_days + cloud / max(max_cloud, 1e-9) + (1 - coverage) * 2
    if strategy == "closest":
        order = np.lexsort((unknown, score, abs_days))[:k]
    elif strategy == "least_cloudy":
        order = np.lexsort((abs_days, unknown, cloud))[:k]
    elif strategy == "best_k":
        order = np.lexsort((abs_days, unknown, score))[:k]
    else:
        order = np.asarray(_uniform(_days(group.rename(columns={"lr_datetime": "datetime"})), abs_days,
                                    cloud + 100 * (1 - coverage), k, period), dtype=int)
    return group.iloc[order].assign(abs_days=abs_days[order], score=score[order])


@dataclass
class MatchResult:
    """What :func:`match_scenes` found.

    Attributes
    ----------
    pairs : pandas.DataFrame
        The selected (HR, LR) pairs: hr_id, lr_id, rank, delta_days, coverage,
        nodata_fraction, lr_cloud_cover (NaN when unknown), lr_cloud_known, lr_datetime.
    candidates : pandas.DataFrame
        Every pair that passed all criteria (before datatake de-duplication and selection).
    report : geopandas.GeoDataFrame
        One row per HR scene: status (matched: one candidate; multiple: several, e.g.
        overlapping tiles or several dates; unmatched), every candidate's id, the chosen
        LR ids, and for unmatched scenes the reason and a concrete suggestion.
        ``hr_cloud_known`` says whether the HR scene has a cloud cover, ``lr_cloud_known``
        whether every chosen LR scene has one (None when unmatched; ``max_lr_cloud_cover``
        is over the known ones), and ``note`` says which are unknown (None when all are known).
    criteria : dict
        The options the matching ran with.
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
        """Counts by status, scenes of unknown cloud cover, and each unmatched scene's reason."""
        counts = self.report["status"].value_counts()
        lines = [f"{len(self.report)} HR scenes: {counts.get('matched', 0)} matched, "
                 f"{counts.get('multiple', 0)} with several candidates, {counts.get('unmatched', 0)} unmatched"]
        n_lr = int((~self.pairs["lr_cloud_known"].astype(bool)).sum()) if "lr_cloud_known" in self.pairs else 0
        if n_lr:
            lines.append(f"  {n_lr} pair{'s' if n_lr > 1 else ''} with LR cloud cover unknown: matched without a "
                         "cloud check (look at them in QC)")
        n_hr = int((~self.report["hr_cloud_known"].astype(bool)).sum()) if "hr_cloud_known" in self.report else 0
        if n_hr:
            lines.append(f"  {n_hr} HR scene{'s' if n_hr > 1 else ''} with cloud cover unknown")
        for _, row in self.unmatched.iterrows():
            lines.append(f"  {row['hr_id']}: {row['reason']} - {row['suggestion']}")
        return "\n".join(lines)


def _explain(hr_row, spatial, in_window, covering, max_days, max_cloud, min_cov):
    """Reason and suggestion for an HR scene without candidates."""
    lat = hr_row.geometry.centroid.y
    known = covering["lr_cloud_cover"].dropna()  # scenes of unknown cloud cover pass the limit: none here
    if len(known):
        cloud = float(known.min())
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
                 period: tuple | None = None, datatake_minutes: float = DATATAKE_MINUTES,
                 progress: bool = False) -> MatchResult:
    """Match HR scenes to LR scenes in space and time.

    Parameters
    ----------
    hr_items, lr_items : ItemCollection, list of items/dicts, or GeoDataFrame
        HR and LR scenes (GeoDataFrames as made by :func:`scene_table`).
    max_days : float
        Largest time difference, in days, between an HR scene and its partner.
    max_cloud_cover : float
        Largest LR cloud cover in percent. LR scenes of unknown cloud cover pass.
    min_coverage : float
        Smallest share (0-1) of the HR footprint the LR scene's valid data must cover.
    strategy : {"closest", "least_cloudy", "best_k", "uniform"}
        How partners are selected among the candidates (after keeping one tile per datatake):

        * ``closest``: the smallest time difference first;
        * ``least_cloudy``: the lowest cloud cover first, then the closest;
        * ``best_k``: the lowest sum of time difference / ``max_days``, cloud cover /
          ``max_cloud_cover`` and twice the uncovered share of the HR footprint;
        * ``uniform``: ``k`` slot centres evenly over ``period`` (both ends included; one
          centre in the middle when ``k == 1``), each slot reaching half-way to the next
          centre. Each slot takes, among its own frames, the one of lowest cost
          ``distance / half_slot + lost / UNIFORM_LOSS_SCALE``, where ``lost`` is the
          percentage of cloud plus nodata in the HR footprint: 10 points of cloud weigh as
          much as lying at the slot's edge, so a clear frame a day from the centre of a
          10-day slot beats a 16 % cloudy one at the centre, while 1 % of cloud does not
          outweigh days. Slots without frames of their own then take the cheapest left.

        An unknown cloud cover counts as ``max_cloud_cover`` in these rankings: other
        things equal a scene of known cloud cover within the limit comes first, but a scene
        of unknown cloud cover is never excluded.
    k : int
        Partners per HR scene (e.g. the frames of a multi-frame model).
    period : (start, end), optional
        For ``strategy="uniform"``: the period to spread over (default: the candidates' span).
    datatake_minutes : float
        Largest time between two tiles of one datatake (same platform and relative orbit,
        no differing ``s2:datatake_id``), which then count as one acquisition; see the module notes.
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

    _check_options(max_days, max_cloud_cover, min_coverage, strategy, k, datatake_minutes)
    hr, lr = scene_table(hr_items), scene_table(lr_items)
    _check_roles(hr, lr)
    criteria = {"max_days": max_days, "max_cloud_cover": max_cloud_cover, "min_coverage": min_coverage,
                "strategy": strategy, "k": int(k), "datatake_minutes": float(datatake_minutes)}
    spatial_window = max(max_days * 10, 60.0)  # look further back/forward to explain "no LR in window"
    everything = candidate_pairs(hr, lr, max_days=spatial_window) if len(hr) and len(lr) else \
        candidate_pairs(hr.iloc[:0], lr.iloc[:0], max_days=1)
    in_window = everything[everything["delta_days"].abs() <= max_days + 1e-9]
    covering = in_window[in_window["coverage"] >= min_coverage - 1e-9]
    # unknown cloud cover is not a reason to reject: it passes, and the report says so
    cands = covering[~covering["lr_cloud_known"] | (covering["lr_cloud_cover"] <= max_cloud_cover)]
    deduped = (_dedupe_datatakes(cands, minutes=datatake_minutes) if len(cands)
               else cands.assign(abs_days=[], score=[]))

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
        hr_known = bool(np.isfinite(row["eo:cloud_cover"]))
        base = {"hr_id": hid, "hr_datetime": row["datetime"], "hr_cloud_cover": row["eo:cloud_cover"],
                "hr_cloud_known": hr_known, "n_candidates": len(all_cands),
                "candidate_ids": sorted(all_cands["lr_id"]), "geometry": row.geometry}
        notes = [] if hr_known else ["HR cloud cover unknown"]
        if group is None:
            reason, tip = _explain(row, by_hr["spatial"].get(hid, empty), by_hr["window"].get(hid, empty),
                                   by_hr["covering"].get(hid, empty), max_days, max_cloud_cover, min_coverage)
            rows.append({**base, "status": "unmatched", "lr_ids": [], "reason": reason, "suggestion": tip,
                         "lr_cloud_known": None, "note": "; ".join(notes) or None,
                         "best_coverage": float(by_hr["window"].get(hid, empty)["coverage"].max())
                         if hid in by_hr["window"] else 0.0,
                         "min_abs_days": np.nan, "max_lr_cloud_cover": np.nan})
            continue
        chosen = _select(group, strategy, k, period, max_days, max_cloud_cover)
        chosen = chosen.assign(rank=np.arange(1, len(chosen) + 1))
        selected.append(chosen)
        unknown = list(chosen.loc[~chosen["lr_cloud_known"].astype(bool), "lr_id"])
        if unknown:
            notes.append(f"LR cloud cover unknown for {', '.join(unknown)}: matched without a cloud check")
        known_clouds = chosen["lr_cloud_cover"].dropna()
        rows.append({**base, "status": "multiple" if len(all_cands) > 1 else "matched",
                     "lr_ids": list(chosen["lr_id"]), "reason": None, "suggestion": None,
                     "lr_cloud_known": not unknown, "note": "; ".join(notes) or None,
                     "best_coverage": float(group["coverage"].max()),
                     "min_abs_days": float(chosen["delta_days"].abs().min()),
                     "max_lr_cloud_cover": float(known_clouds.max()) if len(known_clouds) else np.nan})
    columns = ["hr_id", "hr_datetime", "hr_cloud_cover", "hr_cloud_known", "status", "n_candidates",
               "candidate_ids", "lr_ids", "reason", "suggestion", "lr_cloud_known", "note",
               "best_coverage", "min_abs_days", "max_lr_cloud_cover", "geometry"]
    report = gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry", crs="EPSG:4326")
    pair_cols = ["hr_id", "lr_id", "rank", "delta_days", "coverage", "nodata_fraction", "lr_cloud_cover",
                 "lr_cloud_known", "lr_datetime"]
    if selected:
        pairs = pd.concat(selected, ignore_index=True)
        pairs["nodata_fraction"] = 1 - pairs["coverage"]
        pairs = pairs[pair_cols]
    else:
        pairs = pd.DataFrame(columns=pair_cols)
    cand_cols = ["hr_id", "lr_id", "delta_days", "coverage", "lr_cloud_cover", "lr_cloud_known", "lr_datetime"]
    return MatchResult(pairs=pairs, candidates=cands[cand_cols].reset_index(drop=True), report=report,
                       criteria=criteria)
