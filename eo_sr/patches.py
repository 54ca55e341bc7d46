"""Aligned LR/HR patches and the patch store.

For each matched pair: both sensors are loaded onto exact grids (the HR grid is the LR
grid refined by the factor), the HR scene is cloud-masked (blue threshold) and
histogram-matched towards its bicubic-upsampled LR partner, and the pair is cut into
tiles (e.g. 32x32 LR with 128x128 HR at factor 4), with the LR time series of the
pair's T partners for multi-frame models. Tiles over nodata or cloud limits are
dropped and counted.

The patches go into a patch store, whose layout, writes and readers
:mod:`eo_sr.store` owns. A build killed part-way and run again skips the pairs already
done and produces the same store as an uninterrupted build. Splits are by spatial
blocks, not at random, so neighbouring patches do not leak between train and test. The
build ends by computing the training split's normalisation statistics.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eo_sr.errors import EoSrError, InvalidInputError
from eo_sr.grid import GridSpec, aligned_grids, pair_shift
from eo_sr import store as store_io
from eo_sr.paths import safe_filename
from eo_sr.store import SPLITS, STORE_VERSION


@dataclass(frozen=True)
class PatchConfig:
    """How pairs become patches.

    Attributes
    ----------
    lr_size : int
        LR patch side in pixels (HR side is ``lr_size * factor``).
    stride : int or None
        LR pixels between patch origins (default ``lr_size``: no overlap).
    factor : int or None
        Resolution factor; None (default): the ratio of the LR and HR sensors' GSDs
        (:func:`eo_sr.sensors.resolution_factor`), see :func:`resolve_config`.
    frames : int
        LR frames per patch (1 for single-image SR, T for multi-frame): an HR scene's first
        ``frames`` partners in the matching strategy's order, then ordered by time distance
        (frame 0, the closest, is the reference of the histogram match and must be clear over a
        kept patch; the others are masked where cloudy or without data). An HR scene with fewer
        partners gets missing frames: no valid pixel, so models skip them.
    bands : tuple of str
    max_nodata : float
        Largest share of nodata pixels in a kept patch (LR frame 0 or HR).
    max_cloud : float
        Largest share of cloudy pixels in a kept patch (LR frame 0 or HR).
    hr_resampling : str
        How the HR scene is resampled onto its exact grid.
    hr_cloud_threshold : float or None
        Blue reflectance above which an HR pixel counts as cloud (no mask asset); None
        for no cloud test (an HR sensor flown cloud-free, such as NAIP). Refused for an
        HR sensor whose digital numbers are not reflectance.
    histogram_match : bool
        Match HR towards the bicubic-upsampled LR (frame 0), per band, clouds masked.
    match_consistent_only : bool
        Fit that match only on the pixels where HR and LR brightness follow one linear
        relation (:func:`eo_sr.radiometry.consistent_pixels`), so that an unmasked HR cloud
        shadow does not pull the rest of the scene too bright; the whole scene is matched.
    split_block_m : float
        Side of the square spatial blocks assigned to one split.
    split_fractions : (float, float, float)
        Train/val/test shares of blocks.
    seed : int
        For the block-to-split draw.
    """

    lr_size: int = 32
    stride: int | None = None
    factor: int | None = None
    frames: int = 1
    bands: tuple = ("blue", "green", "red", "nir")
    max_nodata: float = 0.0
    max_cloud: float = 0.05
    hr_resampling: str = "bilinear"
    hr_cloud_threshold: float | None = 0.25
    histogram_match: bool = True
    match_consistent_only: bool = True
    split_block_m: float = 1280.0
    split_fractions: tuple = (0.7, 0.15, 0.15)
    seed: int = 0

    def __post_init__(self):
        if self.lr_size < 4 or (self.stride is not None and self.stride < 1):
            raise InvalidInputError(f"lr_size must be >= 4 and stride >= 1, got {self.lr_size}, {self.stride}")
        if self.factor is not None and not (isinstance(self.factor, int) and not isinstance(self.factor, bool)
                                            and self.factor >= 2):
            raise InvalidInputError(f"factor must be an integer >= 2 (or None: from the sensors), got {self.factor!r}")
        if self.hr_cloud_threshold is not None and "blue" not in self.bands:
            raise InvalidInputError(f"hr_cloud_threshold is a blue reflectance, but bands {list(self.bands)} have no "
                                    "blue; add blue or pass hr_cloud_threshold=None")
        if self.frames < 1:
            raise InvalidInputError(f"frames must be >= 1, got {self.frames}")
        if not (len(self.split_fractions) == 3 and abs(sum(self.split_fractions) - 1) < 1e-6):
            raise InvalidInputError(f"split_fractions must be three shares summing to 1, got {self.split_fractions}")

    @property
    def step(self) -> int:
        return self.stride or self.lr_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"] = list(self.bands)
        d["split_fractions"] = list(self.split_fractions)
        return d


@dataclass
class PairPatches:
    """The patches cut from one pair (in memory, before they are written)."""

    lr: np.ndarray  # (N, T, B, s, s) float32
    hr: np.ndarray  # (N, B, S, S) float32
    lr_valid: np.ndarray  # (N, T, s, s) bool
    hr_valid: np.ndarray  # (N, S, S) bool
    rows: np.ndarray
    cols: np.ndarray
    bounds: np.ndarray  # (N, 4) left, bottom, right, top
    info: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds per stage (not stored: not deterministic)


def pair_id(hr_id: str, lr_ids) -> str:
    """A short stable id for an HR scene and its LR partners, safe as a file name.

    The HR id is made safe with :func:`eo_sr.paths.safe_filename` (an id like
    ``../../x`` must not write outside the store); the digest of the raw ids keeps
    two pairs apart even when their safe names coincide.
    """
    digest = hashlib.sha1("|".join([hr_id, *lr_ids]).encode()).hexdigest()[:10]
    return f"{safe_filename(hr_id)}__{digest}"


def _item_fingerprint(item) -> dict:
    """What of an item decides its patches: geometry, properties, assets (hrefs without their
    query, which holds expiring signatures), not its links."""
    d = item.to_dict(transform_hrefs=False) if hasattr(item, "to_dict") else dict(item)
    assets = {k: {**a, "href": str(a.get("href", "")).split("?", 1)[0]} for k, a in d.get("assets", {}).items()}
    return {"id": d.get("id"), "collection": d.get("collection"), "geometry": d.get("geometry"),
            "properties": d.get("properties"), "assets": assets}


def inputs_digest(hr_item, lr_items, record: dict) -> str:
    """A digest of everything a pair's shard is made from: the items' content and the store's
    configuration. A rerun reuses a shard only when this is unchanged, so fixing an item
    (or its files' metadata) rebuilds its pair."""
    blob = json.dumps([_item_fingerprint(hr_item), [_item_fingerprint(i) for i in lr_items], record],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _band_gsd(item, bands) -> tuple[float, object]:
    """The coarsest GSD of ``bands`` of an item's sensor, and the sensor."""
    from eo_sr import loading

    sensor, _ = loading.sensor_and_provider(item)
    return max(float(sensor.band(b).gsd or sensor.gsd) for b in bands), sensor


def resolve_config(hr_items, lr_item, config: PatchConfig, *, lr_res: float | None = None) -> tuple[PatchConfig, float]:
    """Read what a store's geometry and thresholds mean from the sensors.

    Parameters
    ----------
    hr_items : sequence of pystac.Item
        The HR scenes (all of them: they must agree on the factor).
    lr_item : pystac.Item
        An LR scene.
    config : PatchConfig
    lr_res : float, optional
        LR pixel size in metres; default the LR sensor's GSD for ``config.bands``.

    Returns
    -------
    (PatchConfig, float)
        ``config`` with its factor set (from :func:`eo_sr.sensors.resolution_factor` of
        ``lr_res`` and each HR scene's ``gsd``, else its sensor's), and ``lr_res``.

    Raises
    ------
    InvalidInputError
        ``lr_res`` finer than the LR sensor (the LR would be upsampled, not observed);
        HR scenes whose GSDs give different factors, or a ratio far from an integer
        (pass ``factor=``); a cloud threshold in reflectance for an HR sensor whose
        digital numbers are not reflectance.
    """
    from dataclasses import replace

    from eo_sr.sensors import resolution_factor

    bands = list(config.bands)
    native, lr_sensor = _band_gsd(lr_item, bands)
    if lr_res is None:
        lr_res = native
    elif not (isinstance(lr_res, (int, float)) and lr_res > 0):
        raise InvalidInputError(f"lr_res must be a positive number of metres, got {lr_res!r}")
    elif lr_res < native * (1 - 1e-6):
        raise InvalidInputError(
            f"lr_res={lr_res:g} m is finer than the {native:g} m of {lr_sensor.id}'s bands {bands}: the LR scenes "
            f"would be upsampled, not observed; leave lr_res unset ({native:g} m) or choose bands at {lr_res:g} m")
    factors: dict[int, list[str]] = {}
    for hr in hr_items:
        hr_native, hr_sensor = _band_gsd(hr, bands)
        gsd = float(hr.properties.get("gsd") or hr_native)
        if config.hr_cloud_threshold is not None and hr_sensor.cloud_mask is None and not hr_sensor.is_reflectance:
            raise InvalidInputError(
                f"hr_cloud_threshold={config.hr_cloud_threshold:g} is a blue reflectance, but the digital numbers of "
                f"{hr_sensor.id} (scene {hr.id}) are not reflectance: pass hr_cloud_threshold=None for no cloud "
                "test (NAIP is flown cloud-free), or register the sensor with its scale and offset")
        if config.factor is None:
            try:
                factors.setdefault(resolution_factor(lr_res, gsd), []).append(hr.id)
            except InvalidInputError as exc:
                raise InvalidInputError(f"HR scene {hr.id} ({hr_sensor.id}): {exc}; or pass factor= to resample "
                                        f"the HR scenes onto {lr_res:g} m / factor") from None
    if config.factor is None:
        if len(factors) > 1:
            listed = "; ".join(f"factor {k}: {len(v)} scene(s), e.g. {v[0]}" for k, v in sorted(factors.items()))
            raise InvalidInputError(f"the HR scenes' GSDs give different factors ({listed}); pass factor= to resample "
                                    "them all onto one grid, or build one store per factor")
        if not factors:
            raise InvalidInputError("no HR scene to read the factor from; pass factor=")
        config = replace(config, factor=next(iter(factors)))
    return config, float(lr_res)


def pair_grids(hr_item, lr_item, *, factor: int, lr_res: float) -> tuple[GridSpec, GridSpec]:
    """Exact LR and HR grids over the HR footprint, in the LR scene's CRS."""
    from pyproj import Transformer
    from shapely.geometry import shape
    from shapely.ops import transform

    crs = lr_item.properties.get("proj:code") or f"EPSG:{lr_item.properties.get('proj:epsg')}"
    if crs in (None, "EPSG:None"):
        raise InvalidInputError(f"LR item {lr_item.id} has no proj:code/proj:epsg; cannot choose the grid CRS")
    to_crs = Transformer.from_crs(4326, crs, always_xy=True).transform
    footprint = transform(to_crs, shape(hr_item.geometry))
    anchor = tuple(lr_item.assets[next(iter(lr_item.assets))].extra_fields.get("proj:transform", [0, 0, 0, 0, 0, 0])
                   [i] for i in (2, 5))
    return aligned_grids(footprint.bounds, crs=crs, lr_res=lr_res, factor=factor, anchor=anchor)


def cut_pair(hr_item, lr_items, config: PatchConfig, *, lr_res: float | None = None) -> PairPatches:
    """Load one HR scene and its LR partners onto exact grids and cut them into patches.

    Parameters
    ----------
    hr_item : pystac.Item
    lr_items : list of pystac.Item
        Best first; the first is the LR frame the HR scene is matched against.
    config : PatchConfig
    lr_res : float, optional
        As for :func:`resolve_config` (which reads the factor too when it is None).

    Returns
    -------
    PairPatches
        Kept patches and, in ``info``, counts of dropped patches by reason and the
        pair's residual co-registration shift (LR pixels).
    """
    import time

    from eo_sr import loading, radiometry

    clock = time.perf_counter
    lr_items = list(lr_items)[: config.frames]
    if not lr_items:
        raise InvalidInputError(f"{hr_item.id} has no LR partner: match it first (eo_sr.matching.match_scenes)")
    if config.factor is None or lr_res is None:
        config, lr_res = resolve_config([hr_item], lr_items[0], config, lr_res=lr_res)
    lr_grid, hr_grid = pair_grids(hr_item, lr_items[0], factor=config.factor, lr_res=lr_res)
    bands = list(config.bands)
    t0 = clock()
    lr = loading.read_items(lr_items, bands=bands, grid=lr_grid)
    t1 = clock()
    hr = loading.read_items([hr_item], bands=bands, grid=hr_grid, resampling=config.hr_resampling)
    t2 = clock()
    lr_data = lr.values.astype(np.float32)  # (T, B, h, w)
    hr_data = hr.values[0].astype(np.float32)  # (B, H, W)
    lr_valid = ~np.isnan(lr_data).any(axis=1)
    lr_clear = lr_valid & ~lr["cloud_mask"].values.astype(bool) if "cloud_mask" in lr.coords else lr_valid
    if len(lr_items) < config.frames:  # fewer partners than frames: the rest are missing, marked invalid
        pad = config.frames - len(lr_items)
        lr_data = np.concatenate([lr_data, np.full((pad, *lr_data.shape[1:]), np.nan, np.float32)])
        lr_valid, lr_clear = (np.concatenate([a, np.zeros((pad, *a.shape[1:]), bool)]) for a in (lr_valid, lr_clear))
    hr_valid = ~np.isnan(hr_data).any(axis=0)
    if config.hr_cloud_threshold is None:
        hr_cloud = np.zeros_like(hr_valid)
    else:
        hr_cloud = radiometry.blue_threshold_cloud_mask(np.nan_to_num(hr_data), blue_index=bands.index("blue"),
                                                        threshold=config.hr_cloud_threshold) & hr_valid
    if not hr_valid.any():
        raise EoSrError(f"HR scene {hr_item.id} has no valid pixel over its footprint")
    dy = dx = err = float("nan")
    if config.histogram_match:
        f = config.factor
        hr_ok = hr_valid & ~hr_cloud
        fits = [lr_clear[0]]
        lr_ok = np.repeat(np.repeat(fits[0], f, axis=0), f, axis=1) & hr_ok
        if config.match_consistent_only and lr_ok.mean() > 0.05:
            same = radiometry.consistent_pixels(np.nan_to_num(hr_data), np.nan_to_num(lr_data[0]), factor=f,
                                                hr_mask=hr_ok, lr_mask=fits[0])
            if "nir" in bands and "green" in bands:  # lakes are off the fields' line: fit them too
                same |= radiometry.open_water(np.nan_to_num(lr_data[0]), green=bands.index("green"),
                                              nir=bands.index("nir")) & fits[0]
            if same.sum() >= 0.25 * fits[0].sum():  # else no one relation holds for most pixels: fit them all
                fits.insert(0, same)
        if lr_ok.mean() > 0.05:
            for i, fit_lr in enumerate(fits):
                try:
                    hr_data = radiometry.match_to_bicubic(np.nan_to_num(hr_data), np.nan_to_num(lr_data[0]),
                                                          factor=f, hr_mask=hr_ok, lr_mask=fit_lr).astype(np.float32)
                    break
                except InvalidInputError:
                    # consistent pixels too scattered to leave any whole bicubic support: fit all clear ones
                    if i == len(fits) - 1:
                        raise
    t3 = clock()
    red = bands.index("red") if "red" in bands else 0
    both = lr_clear[0] & hr_valid.reshape(lr_grid.height, config.factor, lr_grid.width, config.factor).all(axis=(1, 3))
    if both.mean() > 0.5:
        dy, dx, err = pair_shift(np.where(both, np.nan_to_num(lr_data[0, red]), 0),
                                 np.where(np.repeat(np.repeat(both, config.factor, 0), config.factor, 1),
                                          np.nan_to_num(hr_data[red]), 0), config.factor)
    t4 = clock()
    out = _tile(lr_data, hr_data, lr_valid, lr_clear, hr_valid, hr_cloud, lr_grid, config,
                info={"shift_dy": dy, "shift_dx": dx, "shift_error": err})
    out.timings = {"read_lr": t1 - t0, "read_reproject_hr": t2 - t1, "radiometry": t3 - t2,
                   "coregistration": t4 - t3, "crop": clock() - t4}
    return out


def _tile(lr_data, hr_data, lr_valid, lr_clear, hr_valid, hr_cloud, lr_grid, config, *, info):
    s, f, step = config.lr_size, config.factor, config.step
    S = s * f
    h, w = lr_grid.shape
    rows = np.arange(0, h - s + 1, step)
    cols = np.arange(0, w - s + 1, step)
    keep, drops = [], {"lr_nodata": 0, "hr_nodata": 0, "lr_cloud": 0, "hr_cloud": 0}
    cloudy = []  # patch cells dropped for cloud: their neighbours may hold the shadows
    for r in rows:
        for c in cols:
            # frame 0 (the closest in time) is the reference and must be whole; other frames are
            # masked where they have no data or clouds, not dropped (cloudy revisits still help)
            lv = lr_valid[0, r:r + s, c:c + s]
            hv = hr_valid[r * f:r * f + S, c * f:c * f + S]
            if 1 - lv.mean() > config.max_nodata:
                drops["lr_nodata"] += 1
            elif 1 - hv.mean() > config.max_nodata:
                drops["hr_nodata"] += 1
            elif 1 - lr_clear[0, r:r + s, c:c + s].mean() > config.max_cloud + config.max_nodata:
                drops["lr_cloud"] += 1
            elif hr_cloud[r * f:r * f + S, c * f:c * f + S].mean() > config.max_cloud:
                drops["hr_cloud"] += 1
                cloudy.append([int(r), int(c)])
            else:
                keep.append((r, c))
    n, T, B = len(keep), lr_data.shape[0], lr_data.shape[1]
    out = PairPatches(
        lr=np.zeros((n, T, B, s, s), np.float32), hr=np.zeros((n, B, S, S), np.float32),
        lr_valid=np.zeros((n, T, s, s), bool), hr_valid=np.zeros((n, S, S), bool),
        rows=np.array([r for r, _ in keep], int), cols=np.array([c for _, c in keep], int),
        bounds=np.zeros((n, 4)), info={**info, **{f"dropped_{k}": v for k, v in drops.items()},
                                       "candidates": len(rows) * len(cols), "hr_cloudy_cells": cloudy},
    )
    for i, (r, c) in enumerate(keep):
        out.lr[i] = np.nan_to_num(lr_data[:, :, r:r + s, c:c + s])
        out.hr[i] = np.nan_to_num(hr_data[:, r * f:r * f + S, c * f:c * f + S])
        out.lr_valid[i] = lr_clear[:, r:r + s, c:c + s]
        out.hr_valid[i] = hr_valid[r * f:r * f + S, c * f:c * f + S] & ~hr_cloud[r * f:r * f + S, c * f:c * f + S]
        out.bounds[i] = lr_grid.window(r, c, s, s).bounds
    return out


def split_of_block(bx: int, by: int, config: PatchConfig) -> str:
    """Deterministic split of a spatial block (a hash of its indices and the seed)."""
    h = int(hashlib.sha1(f"{config.seed}:{bx}:{by}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    train, val, _ = config.split_fractions
    return "train" if h < train else "val" if h < train + val else "test"


def _config_record(config: PatchConfig, lr_res: float) -> dict:
    return {"store_version": STORE_VERSION, **config.to_dict(), "lr_res": lr_res}


def is_current(store: str | Path, config: PatchConfig = PatchConfig(), *, lr_res: float | None = None) -> bool:
    """Whether ``store`` holds a store this eo-sr version built with ``config``.

    A factor or ``lr_res`` left to the sensors (None) matches the one the store was built at.
    """
    try:
        record = store_io.read_config(store)
    except InvalidInputError:
        return False
    if record is None:  # no store there yet
        return False
    wanted = _config_record(config, lr_res)
    for key in ("factor", "lr_res"):
        if wanted[key] is None:
            wanted[key] = record.get(key)
    return record == wanted


def build_patch_store(pairs, items_by_id: dict, out: str | Path, *, config: PatchConfig = PatchConfig(),
                      lr_res: float | None = None, progress: bool = True, max_pairs: int | None = None,
                      replace_stale: bool = False, retry_failed: bool = False):
    """Cut every matched pair into patches and write the patch store (resumable).

    Parameters
    ----------
    pairs : pandas.DataFrame
        Selected pairs, e.g. ``MatchResult.pairs``: columns ``hr_id``, ``lr_id``,
        ``rank`` (the LR partners of an HR scene in rank order).
    items_by_id : dict
        ``{item id: pystac.Item}`` for every HR and LR id in ``pairs``.
    out : path
        The store folder. Existing shards are reused (resume); a different config
        in an existing store is refused.
    config : PatchConfig
        Its factor, when None, is read from the sensors (:func:`resolve_config`).
    lr_res : float, optional
        LR pixel size in metres; default the LR sensor's GSD for the bands.
    max_pairs : int, optional
        Stop after this many pairs (for quick runs); at least 1.
    replace_stale : bool
        Rebuild a store that another configuration or eo-sr version built, instead of
        refusing it: for cache folders (the quickstart's, the notebooks'). Only the
        files a store build writes are removed; anything else in the folder stays.
    retry_failed : bool
        Try again the pairs that failed in an earlier run (e.g. an asset file that was
        missing then). A pair whose items changed is always rebuilt.

    Returns
    -------
    pandas.DataFrame
        The manifest (one row per patch); ``manifest.attrs["timings"]`` holds the
        seconds spent per stage in this run (read, reproject, radiometry, crop, write),
        ``manifest.attrs["failed"]`` a list of ``{"pair_id", "hr_id", "reason"}`` for the
        pairs that gave no patch because they failed (they are in ``pairs.parquet`` too).

    Raises
    ------
    InvalidInputError
        The store was built with another configuration, the folder holds something
        that is not a store, ``max_pairs`` is not a positive integer, or an id is missing.
    """
    import time

    import pandas as pd
    from tqdm.auto import tqdm

    if max_pairs is not None and (isinstance(max_pairs, bool) or int(max_pairs) != max_pairs or max_pairs < 1):
        raise InvalidInputError(f"max_pairs must be a positive integer (or None for all pairs), got {max_pairs!r}")
    groups = []
    for hr_id, g in pairs.sort_values(["hr_id", "rank"]).groupby("hr_id", sort=True):
        chosen = g.iloc[: config.frames]
        if "delta_days" in chosen.columns:  # the strategy chose them; the model sees them by time distance
            chosen = chosen.iloc[np.argsort(np.abs(chosen["delta_days"].to_numpy(float)), kind="stable")]
        groups.append((hr_id, list(chosen["lr_id"])))
    if max_pairs is not None:
        groups = groups[:max_pairs]
    missing = sorted({i for hr_id, lr_ids in groups for i in [hr_id, *lr_ids] if i not in items_by_id})
    if missing:
        raise InvalidInputError(f"items {missing[:5]}{' ...' if len(missing) > 5 else ''} are not in items_by_id; "
                                "pass every HR and LR item searched")
    if groups:
        config, lr_res = resolve_config([items_by_id[h] for h, _ in groups], items_by_id[groups[0][1][0]], config,
                                        lr_res=lr_res)
    elif config.factor is None or lr_res is None:
        raise InvalidInputError("no pairs to build a store from; match scenes first (eo_sr.matching.match_scenes)")
    record = _config_record(config, lr_res)
    out = store_io.prepare_store(out, record, replace_stale=replace_stale)
    records = []
    timings: dict[str, float] = {}
    for hr_id, lr_ids in tqdm(groups, desc="patches: pairs", disable=not progress):
        pid = pair_id(hr_id, lr_ids[: config.frames])
        shard = store_io.shard_path(out, pid)
        digest = inputs_digest(items_by_id[hr_id], [items_by_id[i] for i in lr_ids[: config.frames]], record)
        info = store_io.shard_info(shard)
        if info is None or info.get("inputs") != digest or (retry_failed and info.get("status") != "ok"):
            try:
                patches = cut_pair(items_by_id[hr_id], [items_by_id[i] for i in lr_ids], config, lr_res=lr_res)
                status = "ok"
            except EoSrError as exc:  # InvalidInputError, DataReadError (a missing or corrupt file) ...
                patches, status = None, f"failed: {exc}"
            arrays = _shard_arrays(patches, status, inputs=digest)
            t = time.perf_counter()
            store_io.save_shard(shard, **arrays)
            for k, v in ({**patches.timings, "write": time.perf_counter() - t} if patches else {}).items():
                timings[k] = timings.get(k, 0.0) + v
        with np.load(shard, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            records.append({"pair_id": pid, "hr_id": hr_id, "lr_ids": lr_ids[: config.frames],
                            "n_patches": int(z["rows"].shape[0]), **info})
    pair_table = pd.DataFrame(records)
    t = time.perf_counter()
    manifest = _consolidate(out, pair_table, items_by_id, config)
    timings["consolidate"] = time.perf_counter() - t
    manifest.attrs["timings"] = timings
    manifest.attrs["failed"] = [{"pair_id": r["pair_id"], "hr_id": r["hr_id"],
                                 "reason": r["status"].removeprefix("failed: ")}
                                for r in records if r["status"] != "ok"]
    t = time.perf_counter()
    _save_norm_stats(out, manifest, config)
    timings["norm_stats"] = time.perf_counter() - t
    store_io.write_table(out / store_io.REPORT_FILE, pair_table)
    return manifest


def _save_norm_stats(out: Path, manifest, config: PatchConfig) -> None:
    save_norm_stats(out, manifest, bands=config.bands)


def save_norm_stats(out: str | Path, manifest, *, bands) -> None:
    """The training split's per-band statistics (1st/99th percentiles over valid pixels),
    for LR and HR: what a model normalises with, at training and at inference. Written as the
    store's ``norm_stats.json`` (removed when the training split is empty). Every store build
    (:func:`build_patch_store`, :func:`eo_sr.wald.wald_store`) ends with it."""
    from eo_sr.radiometry import compute_norm_stats

    out = Path(out)
    n = int((manifest["split"] == "train").sum()) if len(manifest) else 0
    target = out / store_io.NORM_FILE
    if n == 0:
        target.unlink(missing_ok=True)
        return
    train = store_io.open_store(out).arrays("train")
    stats = {}
    for name, data, valid in (("lr", train["lr"][:, 0], train["lr_valid"][:, 0]),
                              ("hr", train["hr"][:], train["hr_valid"][:])):
        computed = compute_norm_stats(list(data), mask=list(valid), method="percentile", percentiles=(1, 99))
        stats[name] = {**computed.to_dict(), "bands": list(bands)}
    store_io.write_norm_stats(out, stats)


def _shard_arrays(patches: PairPatches | None, status: str, *, inputs: str) -> dict:
    if patches is None:
        info = {"status": status, "inputs": inputs}
        return {"lr": np.zeros((0,)), "hr": np.zeros((0,)), "lr_valid": np.zeros((0,), bool),
                "hr_valid": np.zeros((0,), bool), "rows": np.zeros(0, int), "cols": np.zeros(0, int),
                "bounds": np.zeros((0, 4)), "info": np.array(json.dumps(info))}
    info = {"status": status, "inputs": inputs, **{k: (None if isinstance(v, float) and np.isnan(v) else v)
                                                   for k, v in patches.info.items()}}
    return {"lr": patches.lr, "hr": patches.hr, "lr_valid": patches.lr_valid, "hr_valid": patches.hr_valid,
            "rows": patches.rows, "cols": patches.cols, "bounds": patches.bounds,
            "info": np.array(json.dumps(info, sort_keys=True))}


def _consolidate(out: Path, pair_table, items_by_id, config: PatchConfig):
    """Gather the shards into one Zarr group per split and the manifest, atomically."""
    import pandas as pd

    rows, per_split = [], {s: [] for s in SPLITS}
    for rec in pair_table.itertuples():
        if rec.n_patches == 0:
            continue
        with np.load(store_io.shard_path(out, rec.pair_id), allow_pickle=False) as z:
            bounds, prow, pcol = z["bounds"], z["rows"], z["cols"]
        hr = items_by_id[rec.hr_id]
        lr0 = items_by_id[rec.lr_ids[0]]
        crs = lr0.properties.get("proj:code") or f"EPSG:{lr0.properties.get('proj:epsg')}"
        for i in range(len(prow)):
            cx, cy = (bounds[i, 0] + bounds[i, 2]) / 2, (bounds[i, 1] + bounds[i, 3]) / 2
            split = split_of_block(int(cx // config.split_block_m), int(cy // config.split_block_m), config)
            per_split[split].append((rec.pair_id, i))
            rows.append({
                "patch_id": f"{rec.pair_id}__{prow[i]:04d}_{pcol[i]:04d}", "pair_id": rec.pair_id,
                "hr_id": rec.hr_id, "lr_ids": list(rec.lr_ids), "split": split,
                "index": len(per_split[split]) - 1, "row": int(prow[i]), "col": int(pcol[i]),
                "hr_datetime": pd.Timestamp(hr.datetime), "lr_datetime": pd.Timestamp(lr0.datetime),
                "delta_days": (lr0.datetime - hr.datetime).total_seconds() / 86400.0,
                "lr_delta_days": [(items_by_id[i].datetime - hr.datetime).total_seconds() / 86400.0
                                  for i in rec.lr_ids],
                "left": bounds[i, 0], "bottom": bounds[i, 1], "right": bounds[i, 2], "top": bounds[i, 3],
                "crs": crs, "shift_dy": rec.shift_dy, "shift_dx": rec.shift_dx,
            })
    manifest = pd.DataFrame(rows, columns=list(store_io.MANIFEST_COLUMNS))
    store_io.write_splits(out, per_split, lr_size=config.lr_size, factor=config.factor, bands=config.bands,
                          frames=config.frames)
    store_io.write_table(out / store_io.MANIFEST_FILE, manifest)
    return manifest

