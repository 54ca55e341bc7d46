"""Quality control of a patch store: find and remove bad pairs.

After cloud filtering, bad samples remain: cloud shadows, parts that are
misregistered, land cover that changed between the two dates. Following the
multi-temporal SR study, every HR patch is compared with its bicubic-upsampled LR
partner (MSE, PSNR, SSIM); SSIM against PSNR shows clusters (corrupted; normal; flat
or texture-only), found here with a Gaussian mixture whose size is chosen by BIC. A
cluster is called suspect only when it lies clearly apart from the bulk of the data: a
clean dataset has a low end too, and should lose (almost) nothing.
Three more features explain why a point sits where it does:

* ``min_block_ratio`` / ``max_block_ratio``: HR over bicubic-LR brightness in 16x16
  HR blocks. After histogram matching a scene, a block under a cloud shadow in one
  image is much darker in it, and haze at a cloud's edge brighter. Small dark and bright
  things (the shadow of a tree or a house, which the two passes cast differently; a
  roof) are closed and opened away first: a cloud's shadow is hundreds of metres wide;
  and a floor of 0.01 reflectance keeps dark water from turning its small differences
  into large ratios.
* ``max_block_error``: the largest mean absolute difference over those blocks; a
  changed field or a building site shows as one bad block in a good patch.
* ``shift_anomaly``: residual HR-vs-LR shift by phase correlation, in HR pixels,
  relative to the median shift of the patch's pair; non-rigid misregistration moves
  some patches of a scene and not others.

:func:`run_qc` computes the table (:func:`qc_features` the same for pairs in arrays),
:func:`cluster` names the clusters, :func:`apply_rules` decides keep/drop with a reason,
its thresholds set by the data's own spread (:class:`Relative`, :func:`thresholds`)
unless fixed ones are given, and :func:`keep_ids` gives the
filtered view that training uses (``PatchDataset(store, keep=keep_ids(table))``).
:func:`flag_shadow_neighbours` marks patches next to a cloudy patch of the same
acquisition (shadows fall near clouds); :func:`run_qc` uses it for ``shadow_neighbour``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eo_sr.errors import InvalidInputError

FEATURES = ("ssim", "psnr")
#: Version of the features :func:`run_qc` computes; tables saved by another one are stale.
#: 2: blocks compared after undoing the patch's offset.
#: 3: clusters named by separation, relative rules (tables cache both).
#: 4: block ratios after closing (darkest) and opening (brightest) away small objects.
QC_VERSION = "4"
#: Side (HR pixels) of the grey closing / opening that removes objects' shadows and roofs
#: before the block ratios: ~12 m at 2.5 m, wider than a tree's shadow strip, far smaller
#: than a cloud's shadow.
OBJECT_PX = 5
#: Added to both sides of the block ratios (a share of the data range: 0.01 reflectance):
#: over dark water a few thousandths of reflectance that the two sensors disagree by would
#: otherwise read as haze or shadow; under a cloud's shadow fields still halve.
DARK_FLOOR = 0.01
SHIFT_MIN_PEAK = 0.3  # normalised correlation peak below which a shift is noise (flat patches)
#: Largest offset (HR pixels) undone before blocks are compared; larger ones are deformation.
MAX_BLOCK_SHIFT = 3.0


def batch_phase_shift(reference: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift ``(dy, dx)`` of each ``moving`` image relative to its ``reference``, for a
    batch ``(N, H, W)``, by windowed cross-correlation with a parabolic sub-pixel peak.

    A Hann window removes the patch borders (whose wrap-around would peak at zero
    shift), and the cross-power spectrum is whitened only by the square root of its
    magnitude: full phase correlation boosts the high frequencies, where a bicubic
    LR image holds noise but no signal. Returns dy, dx (pixels) and the normalised
    peak height (high is reliable).
    """
    h, w = reference.shape[-2:]
    window = np.outer(np.hanning(h), np.hanning(w))
    a = (reference - reference.mean(axis=(-2, -1), keepdims=True)) * window
    b = (moving - moving.mean(axis=(-2, -1), keepdims=True)) * window
    fa, fb = np.fft.rfft2(a), np.fft.rfft2(b)
    cross = fb * np.conj(fa)
    cross /= np.sqrt(np.abs(cross)) + 1e-12
    corr = np.fft.irfft2(cross, s=a.shape[-2:])
    corr /= np.maximum(np.abs(cross).sum(axis=(-2, -1))[:, None, None] * 2 / (h * w), 1e-12)
    n, h, w = corr.shape
    flat = corr.reshape(n, -1).argmax(axis=1)
    py, px = np.divmod(flat, w)
    idx = np.arange(n)
    peak = corr[idx, py, px]

    def refine(minus, plus):
        den = minus - 2 * peak + plus
        return np.where(np.abs(den) > 1e-12, 0.5 * (minus - plus) / den, 0.0)

    dy = py + refine(corr[idx, (py - 1) % h, px], corr[idx, (py + 1) % h, px])
    dx = px + refine(corr[idx, py, (px - 1) % w], corr[idx, py, (px + 1) % w])
    dy = (dy + h / 2) % h - h / 2
    dx = (dx + w / 2) % w - w / 2
    return dy, dx, peak


def shift_images(images: np.ndarray, dy, dx) -> np.ndarray:
    """Move each image of a batch ``(N, B, H, W)`` by its own sub-pixel ``(dy, dx)``
    (pixels; positive moves content down and right), bicubic, edges replicated."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = images.shape
    dy = np.broadcast_to(np.asarray(dy, np.float32), (n,))
    dx = np.broadcast_to(np.asarray(dx, np.float32), (n,))
    # normalised sampling positions (align_corners=False): output pixel x reads input x - dx
    ys = (2 * (np.arange(h, dtype=np.float32)[None, :] - dy[:, None]) + 1) / h - 1
    xs = (2 * (np.arange(w, dtype=np.float32)[None, :] - dx[:, None]) + 1) / w - 1
    grid = np.stack(np.broadcast_arrays(xs[:, None, :], ys[:, :, None]), axis=-1)
    with torch.no_grad():
        out = F.grid_sample(torch.from_numpy(np.ascontiguousarray(images, np.float32)), torch.from_numpy(grid),
                            mode="bicubic", padding_mode="border", align_corners=False)
    return out.numpy()


def patch_features(lr: np.ndarray, hr: np.ndarray, lr_valid: np.ndarray, hr_valid: np.ndarray, *,
                   factor: int, data_range: float = 1.0, block: int = 16,
                   object_px: int = OBJECT_PX) -> dict[str, np.ndarray]:
    """QC features of a batch of pairs: LR ``(N, B, s, s)``, HR ``(N, B, S, S)``."""
    from scipy import ndimage

    from eo_sr import metrics

    if hr.shape[-1] != lr.shape[-1] * factor or hr.shape[:2] != lr.shape[:2]:
        raise InvalidInputError(f"LR {lr.shape} and HR {hr.shape} do not fit factor {factor}: the store and "
                                "the QC factor must agree")
    lr_ok = np.repeat(np.repeat(lr_valid, factor, axis=-2), factor, axis=-1)
    mask = hr_valid & lr_ok
    scores = metrics.bicubic_scores(hr, lr, factor=factor, data_range=data_range, mask=mask, reduce="mean",
                                    empty="nan")
    up = metrics.upsample_bicubic(lr, factor)
    m = mask[:, None]
    hr_mean = (hr * m).sum(axis=(1, 2, 3)) / np.maximum(m.sum(axis=(1, 2, 3)) * hr.shape[1], 1)
    up_mean = (up * m).sum(axis=(1, 2, 3)) / np.maximum(m.sum(axis=(1, 2, 3)) * hr.shape[1], 1)
    hr_grey = hr.mean(axis=1)
    dy, dx, peak = batch_phase_shift(up.mean(axis=1), hr_grey)
    # Blocks are compared after undoing the pair's own small offset: a road or a shore that
    # sits a pixel apart in the two images would otherwise make its block look 20-30 %
    # brighter or darker, while a shadow or a cloud does not move with the offset.
    reliable = peak >= SHIFT_MIN_PEAK
    up = shift_images(up, np.where(reliable, np.clip(dy, -MAX_BLOCK_SHIFT, MAX_BLOCK_SHIFT), 0.0),
                      np.where(reliable, np.clip(dx, -MAX_BLOCK_SHIFT, MAX_BLOCK_SHIFT), 0.0))
    n, _, S, _ = hr.shape
    k = S // block

    def blocks(x):  # (N, S, S) -> (N, k*k) block means
        return x.reshape(n, k, block, k, block).mean(axis=(2, 4)).reshape(n, -1)

    w = blocks(mask.astype(np.float32))
    up_grey = up.mean(axis=1)
    floor = DARK_FLOOR * data_range

    def block_ratio(morph):  # HR over LR block brightness after a grey closing or opening
        size = (1, object_px, object_px)
        hr_b = blocks(morph(hr_grey, size=size) * mask) / np.maximum(w, 1e-6)
        up_b = blocks(morph(up_grey, size=size) * mask) / np.maximum(w, 1e-6)
        return np.where(w > 0.5, (hr_b + floor) / (up_b + floor), 1.0)

    dark, bright = block_ratio(ndimage.grey_closing), block_ratio(ndimage.grey_opening)
    err_b = blocks((np.abs(hr - up) * m).mean(axis=1)) / np.maximum(w, 1e-6)
    return {
        "ssim": scores["ssim"], "psnr": scores["psnr"], "mse": scores["mse"],
        "brightness_ratio": hr_mean / np.maximum(up_mean, 1e-6),
        "min_block_ratio": dark.min(axis=1), "max_block_ratio": bright.max(axis=1),
        "max_block_error": np.where(w > 0.5, err_b, 0).max(axis=1) / data_range,
        "shift_dy": dy, "shift_dx": dx, "shift": np.hypot(dy, dx), "shift_peak": peak,
        "valid_fraction": mask.mean(axis=(1, 2)),
    }


def flag_shadow_neighbours(patch_table, *, cloud_column: str = "cloud_fraction", threshold: float = 0.1,
                           group="acquisition_id", row: str = "row", col: str = "col", connectivity: int = 8):
    """Flag patches next to a cloudy patch of the same acquisition as likely shadowed.

    Shadows fall near clouds, at a distance set by the cloud height and the sun. The seed
    searched "for EOPatches containing observations with more than 10% cloud coverage, and
    marked as containing shadows the neighbouring EOPatches' observations from the same time":
    many true positives, some false ones, which a large dataset can afford.

    Parameters
    ----------
    patch_table : pandas.DataFrame
        One row per patch and acquisition, with the acquisition id, the patch's row and column
        on the patch grid, and its cloud fraction.
    cloud_column : str, optional
        Column of cloud fractions in [0, 1] (default ``"cloud_fraction"``); NaN counts as clear.
    threshold : float, optional
        A patch is cloudy when its cloud fraction is above this (default 0.1, the seed's 10%).
    group : str or list of str, optional
        Column(s) identifying one acquisition (default ``"acquisition_id"``); only patches of the
        same acquisition are neighbours.
    row, col : str, optional
        Integer patch-grid coordinates (default ``"row"``, ``"col"``).
    connectivity : {8, 4}, optional
        8 (default) includes diagonal neighbours; 4 only edge neighbours.

    Returns
    -------
    flags : pandas.Series of bool
        Indexed like ``patch_table``, named ``"shadow_suspect"``: True for patches adjacent to a
        cloudy patch of the same acquisition. A cloudy patch is flagged only if it, too, has a
        cloudy neighbour (filter cloudy patches on ``cloud_column`` itself).

    Raises
    ------
    InvalidInputError
        Missing columns, non-integer grid coordinates, or a bad connectivity.
    """
    import pandas as pd

    if connectivity not in (4, 8):
        raise InvalidInputError(f"connectivity must be 4 or 8, not {connectivity!r}")
    groups = [group] if isinstance(group, str) else list(group)
    needed = [*groups, row, col, cloud_column]
    missing = [c for c in needed if c not in patch_table.columns]
    if missing:
        raise InvalidInputError(f"patch_table lacks column(s) {missing}; it has {list(patch_table.columns)} "
                                "(set group=, row=, col=, cloud_column= to the names it uses)")
    keys = patch_table[[*groups, row, col]].reset_index(drop=True)
    for c in (row, col):
        v = pd.to_numeric(keys[c], errors="coerce")
        if v.isna().any() or not np.array_equal(v, np.round(v)):
            raise InvalidInputError(f"column {c!r} must hold integer patch-grid coordinates")
        keys[c] = v.astype(np.int64)
    cloudy = keys[(pd.to_numeric(patch_table[cloud_column], errors="coerce") > threshold).to_numpy()]
    if connectivity == 8:
        offsets = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    else:
        offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    shifted = pd.concat([cloudy.assign(**{row: cloudy[row] + dr, col: cloudy[col] + dc}) for dr, dc in offsets],
                        ignore_index=True).drop_duplicates()
    flags = pd.MultiIndex.from_frame(keys).isin(pd.MultiIndex.from_frame(shifted)) if len(shifted) \
        else np.zeros(len(keys), bool)
    return pd.Series(np.asarray(flags, bool), index=patch_table.index, name="shadow_suspect")



def shift_anomaly(table, *, group: str = "pair_id"):
    """Shift of each patch against the median shift of its pair, in HR pixels.

    Rigid offsets are the pair's own (geolocation, co-registration); a patch moved unlike
    the rest of its scene is locally deformed. Weak correlation peaks (flat patches,
    ``shift_peak`` below :data:`SHIFT_MIN_PEAK`) give no reliable shift: NaN there.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``shift_dy``, ``shift_dx``, ``shift_peak`` (from :func:`patch_features`) and ``group``.
    group : str, optional
        Column naming the pair (scene) a patch belongs to (default ``"pair_id"``).

    Returns
    -------
    numpy.ndarray
        One value per row of ``table``.
    """
    reliable = table["shift_peak"] >= SHIFT_MIN_PEAK
    med = table[reliable].groupby(group)[["shift_dy", "shift_dx"]].median()
    ref = med.reindex(table[group]).fillna(0.0).to_numpy()
    anomaly = np.hypot(table["shift_dy"] - ref[:, 0], table["shift_dx"] - ref[:, 1])
    return np.where(reliable, anomaly, np.nan)


def qc_features(lr: np.ndarray, hr: np.ndarray, *, factor: int, lr_valid: np.ndarray | None = None,
                hr_valid: np.ndarray | None = None, pair_id=None, data_range: float = 1.0, block: int = 16,
                batch: int = 512):
    """The QC table of pairs held in arrays: :func:`patch_features` and ``shift_anomaly``.

    What :func:`run_qc` computes for a store, for arrays (pairs cut from any source), so
    that :func:`cluster` and :func:`apply_rules` run on them the same way.

    Parameters
    ----------
    lr, hr : numpy.ndarray
        LR patches ``(N, B, s, s)`` and HR patches ``(N, B, s * factor, s * factor)``, in
        reflectance (or any unit with range ``data_range``).
    factor : int
        HR pixels per LR pixel.
    lr_valid, hr_valid : numpy.ndarray of bool, optional
        Valid pixels ``(N, s, s)`` and ``(N, S, S)``; default all valid.
    pair_id : array-like, optional
        The pair (scene) of each patch, for ``shift_anomaly``; default one pair for all.
    data_range : float, optional
        Range of the data for PSNR/SSIM (default 1, reflectance).
    block : int, optional
        Side of the blocks (HR pixels) compared for the block ratios (default 16).
    batch : int, optional
        Patches scored at once.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``pair_id`` and the features of :func:`patch_features`,
        plus ``shift_anomaly``.
    """
    import pandas as pd

    lr, hr = np.asarray(lr), np.asarray(hr)
    if lr.ndim != 4 or hr.ndim != 4:
        raise InvalidInputError(f"LR {lr.shape} and HR {hr.shape} must be batches (N, bands, y, x)")
    n = len(hr)
    lr_valid = np.ones((n, *lr.shape[-2:]), bool) if lr_valid is None else np.asarray(lr_valid, bool)
    hr_valid = np.ones((n, *hr.shape[-2:]), bool) if hr_valid is None else np.asarray(hr_valid, bool)
    feats: dict[str, list] = {}
    for s in range(0, n, batch):
        f = patch_features(lr[s:s + batch], hr[s:s + batch], lr_valid[s:s + batch], hr_valid[s:s + batch],
                           factor=factor, data_range=data_range, block=block)
        for k, v in f.items():
            feats.setdefault(k, []).append(v)
    pair_id = np.array(np.broadcast_to(np.asarray("pair" if pair_id is None else pair_id, dtype=object), (n,)))
    table = pd.DataFrame({"pair_id": pair_id})
    for k, v in feats.items():
        table[k] = np.concatenate(v) if v else np.zeros(0)
    table["shift_anomaly"] = shift_anomaly(table) if n else np.zeros(0)
    return table


def run_qc(store: str | Path, *, batch: int = 512, progress: bool = True):
    """QC features for every patch of a store, joined with its manifest.

    Parameters
    ----------
    store : path
        A patch store (see :mod:`eo_sr.patches`).
    batch : int
        Patches read and scored at once.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        The manifest plus ssim, psnr, mse, brightness_ratio, max_block_error, shift
        (HR pixels), shift_anomaly (see :func:`shift_anomaly`), shadow_neighbour (next to a
        cloudy patch of the same HR scene). :func:`qc_features` computes the same
        features for pairs held in arrays.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from eo_sr.store import PatchStore, open_store

    opened = store if isinstance(store, PatchStore) else open_store(store)
    manifest = opened.manifest
    factor = opened.factor
    parts = []
    for split in sorted(manifest["split"].unique()):
        group = opened.arrays(split)
        rows = manifest[manifest["split"] == split].sort_values("index")
        n = int(group["hr"].shape[0])
        feats: dict[str, list] = {}
        for s in tqdm(range(0, n, batch), desc=f"qc: {split}", disable=not progress):
            lr = group["lr"][s:s + batch][:, 0]
            lr_valid = group["lr_valid"][s:s + batch][:, 0]
            f = patch_features(lr, group["hr"][s:s + batch], lr_valid, group["hr_valid"][s:s + batch],
                               factor=factor)
            for k, v in f.items():
                feats.setdefault(k, []).append(v)
        table = rows.reset_index(drop=True)
        for k, v in feats.items():
            table[k] = np.concatenate(v)[table["index"].to_numpy()]
        parts.append(table)
    table = pd.concat(parts, ignore_index=True) if parts else manifest.iloc[:0]
    table["shift_anomaly"] = shift_anomaly(table)
    # Shadows sit next to clouds: mark patches beside a patch dropped for HR cloud (same scene).
    pairs = opened.report
    step = opened.step
    cells = pairs["hr_cloudy_cells"] if "hr_cloudy_cells" in pairs.columns else [[]] * len(pairs)
    cloudy = [{"acquisition_id": hr_id, "row": c[0] // step, "col": c[1] // step, "cloud_fraction": 1.0}
              for hr_id, cs in zip(pairs["hr_id"], cells) if cs is not None for c in cs]
    kept = pd.DataFrame({"acquisition_id": table["hr_id"], "row": table["row"] // step,
                         "col": table["col"] // step, "cloud_fraction": 0.0})
    both = pd.concat([kept, pd.DataFrame(cloudy, columns=kept.columns)], ignore_index=True) if cloudy else kept
    flags = flag_shadow_neighbours(both, cloud_column="cloud_fraction", threshold=0.5, group="acquisition_id")
    table["shadow_neighbour"] = np.asarray(flags)[: len(table)]
    return table


#: Scale of the median absolute deviation that makes it the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


def robust_stats(values) -> tuple[float, float]:
    """Median and robust standard deviation (1.4826 x the median absolute deviation) of
    the finite ``values``; NaN, NaN when there are none.

    Half the values may be anything (corrupted pairs, say) and both stay near those of
    the rest, where a mean and a standard deviation would follow the outliers.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    med = float(np.median(v))
    return med, float(MAD_TO_SIGMA * np.median(np.abs(v - med)))


@dataclass
class Clustering:
    """What :func:`cluster` found: the model, the BIC per size, the cluster names.

    ``bic`` holds the BIC of every size fitted, ``eligible`` the sizes whose every cluster
    holds at least ``min_cluster_size`` patches (only those can be chosen), ``summary`` one
    row per cluster: its size, its centre in robust standard deviations from the median
    of all patches (``z_ssim``, ``z_psnr``), the valley between it and the bulk
    (:func:`density_valley`) and its name.
    """

    model: object
    bic: dict
    names: dict
    features: tuple
    mean: np.ndarray
    scale: np.ndarray
    stats: object = field(default=None)
    eligible: tuple = ()
    summary: object = field(default=None)

    @property
    def n_components(self) -> int:
        """The number of clusters chosen."""
        return int(self.model.n_components)


def density_valley(model, start, end, *, steps: int = 101) -> float:
    """Lowest density of a fitted mixture on the segment from ``start`` to ``end``, relative to
    its density at ``start``.

    Near 1 when ``start`` sits on the slope of the bulk (a tail, a shoulder: the density
    only rises towards ``end``); well below 1 when a valley separates ``start`` from ``end``,
    i.e. ``start`` lies in a mode of its own (the ridgeline view of a mixture's modes,
    Ray & Lindsay 2005, Ann. Statist. 33, 2042).

    Parameters
    ----------
    model : sklearn.mixture.GaussianMixture
        A fitted mixture.
    start, end : array-like
        Two points in the model's feature space.
    steps : int, optional
        Points at which the density is evaluated along the segment.
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    log_density = model.score_samples(start + t * (end - start))
    return float(np.exp(log_density.min() - log_density[0]))


def cluster(table, *, features=FEATURES, max_clusters: int = 6, min_cluster_size: int = 5,
            bic_margin: float = 10.0, separation: float = 2.5, max_valley: float = 0.5, seed: int = 0):
    """Gaussian-mixture clusters in feature space, their number chosen by BIC, named by
    how far they lie from the bulk of the data.

    Mixtures of 1 to ``max_clusters`` components are fitted to the standardised features.
    A small sample must not buy a better BIC with clusters of two or three points (on 12
    pairs a mixture of 6 fits every point and BIC picks the largest size), so the choice
    is guarded as model-based clustering recommends (Fraley & Raftery 2002, JASA 97, 611):
    no more components than ``n // min_cluster_size``; only sizes whose every cluster holds
    at least ``min_cluster_size`` patches; and the smallest of those whose BIC is within
    ``bic_margin`` of the lowest, 10 being the difference Kass & Raftery (1995, JASA 90,
    773) call very strong evidence.

    The lowest cluster is not a defect by position alone: a clean dataset has a low end too,
    and a mixture cuts a long tail into components. A cluster is named ``"suspect"`` only
    when it is clearly apart from the bulk of the data:

    * it is a minority (under half the scored patches);
    * its centre lies more than ``separation`` robust standard deviations
      (:func:`robust_stats`) below the median of all scored patches in *every* feature;
    * a valley separates it from the bulk: along the line from its centre to the
      median of the data the mixture's density falls below ``max_valley`` times its
      density at the centre (:func:`density_valley`). The piece of a long tail has no
      valley before the bulk, however far out it lies. (Distances between components,
      such as Ashman's D, do not tell the two apart: a tail piece of a skewed population
      is as far from its neighbours as a group of broken pairs.)

    The highest of three or more clusters, when it is a minority above the median in every
    feature, is ``"high_score"`` (flat or texture-only patches); the others are ``"normal"``.

    Parameters
    ----------
    table : pandas.DataFrame
        A QC table (:func:`run_qc`, :func:`qc_features`).
    features : sequence of str, optional
        Columns to cluster (default SSIM and PSNR).
    max_clusters : int, optional
        Largest mixture tried (default 6).
    min_cluster_size : int, optional
        Fewest patches a cluster may hold (default 5).
    bic_margin : float, optional
        BIC difference that an extra component must win by (default 10).
    separation : float, optional
        Robust standard deviations below the median for a suspect cluster (default 2.5).
    max_valley : float, optional
        Highest relative density of the valley between a suspect cluster and the bulk
        (default 0.5: the density at least halves).
    seed : int, optional
        Seed of the mixture fits.

    Returns
    -------
    table : pandas.DataFrame
        A copy with columns ``cluster`` and ``cluster_name`` (``"unscored"`` where a
        feature is not finite).
    clustering : Clustering

    Raises
    ------
    InvalidInputError
        Fewer scored patches than ``min_cluster_size``, or a missing feature.
    """
    import pandas as pd
    from sklearn.mixture import GaussianMixture

    missing = [f for f in features if f not in table.columns]
    if missing:
        raise InvalidInputError(f"feature(s) {missing} not in the QC table; run eo_sr.qc.run_qc first")
    if min_cluster_size < 2 or max_clusters < 1:
        raise InvalidInputError(f"min_cluster_size must be at least 2 and max_clusters at least 1, not "
                                f"{min_cluster_size} and {max_clusters}")
    x = table[list(features)].to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1)
    n = int(ok.sum())
    if n < min_cluster_size:
        raise InvalidInputError(f"{n} scored patches are too few to cluster (at least min_cluster_size="
                                f"{min_cluster_size}); QC more patches or lower min_cluster_size")
    mean, scale = x[ok].mean(axis=0), x[ok].std(axis=0) + 1e-12
    z = (x[ok] - mean) / scale
    bic, models, eligible = {}, {}, []
    for k in range(1, min(max_clusters, n // min_cluster_size) + 1):
        gm = GaussianMixture(k, covariance_type="full", random_state=seed, n_init=3).fit(z)
        bic[k], models[k] = float(gm.bic(z)), gm
        if np.bincount(gm.predict(z), minlength=k).min() >= min_cluster_size:
            eligible.append(k)
    lowest = min(bic[k] for k in eligible)
    best = min(k for k in eligible if bic[k] <= lowest + bic_margin)
    model = models[best]
    labels = np.full(len(x), -1)
    labels[ok] = model.predict(z)

    # Where each cluster sits, in robust standard deviations of all the scored patches.
    med, sig = np.array([robust_stats(x[ok, j]) for j in range(x.shape[1])]).T
    sig = np.where(sig > 0, sig, scale)
    centres = model.means_ * scale + mean
    zc = (centres - med) / sig
    weights = np.bincount(labels[ok], minlength=best) / n
    bulk = (med - mean) / scale  # the median of the data, in the model's (standardised) space
    rows = []
    for c in range(best):
        valley = density_valley(model, model.means_[c], bulk) if best > 1 else 1.0
        rows.append({"cluster": c, "patches": int((labels == c).sum()), "weight": float(weights[c]),
                     **{f"z_{f}": float(zc[c, j]) for j, f in enumerate(features)}, "valley": valley})
    names = {c: "normal" for c in range(best)}
    for r in rows:
        below = all(r[f"z_{f}"] < -separation for f in features)
        if r["weight"] < 0.5 and below and r["valley"] < max_valley:
            names[r["cluster"]] = "suspect"
    if best >= 3:
        top = int(np.argmax(zc.sum(axis=1)))
        if names[top] == "normal" and weights[top] < 0.5 and (zc[top] > 0).all():
            names[top] = "high_score"
    summary = pd.DataFrame(rows)
    summary["name"] = summary["cluster"].map(names)
    out = table.copy()
    out["cluster"] = labels
    out["cluster_name"] = [names.get(int(c), "unscored") for c in labels]
    stats = out[ok].groupby("cluster_name")[list(features)].agg(["count", "mean"])
    return out, Clustering(model, bic, names, tuple(features), mean, scale, stats, tuple(eligible), summary)


@dataclass(frozen=True)
class Relative:
    """A threshold set by the data's own distribution: the median plus or minus ``k``
    robust standard deviations (:func:`robust_stats`) of the column it applies to.

    Corrupted pairs are a minority, so the median and the median absolute deviation
    describe the clean ones; a dataset whose sensors differ more (another provider, a VHR
    sensor against Sentinel-2) has a wider spread and a wider band. Two bounds keep the
    band physical:

    ``within``
        values inside it are never flagged, however tight the data: a threshold tighter
        than the radiometric agreement of two sensors after histogram matching only
        drops good pairs. A pair ``(low, high)`` for a two-sided rule (the block ratios),
        one number for a one-sided one.
    ``beyond``
        values outside it are always flagged, however wide the data: a block at three
        quarters of its partner's brightness is a shadow in any dataset. Same form;
        None for no such bound.

    Examples
    --------
    >>> band = Relative(k=8.0, within=(0.9, 1.15), beyond=(0.75, 1.3))  # the default block-ratio band
    >>> band.limit([0.98, 0.985, 0.99, 0.99, 0.995, 1.0], side="low")  # tight data: never tighter than 0.9
    0.9
    >>> round(band.limit([0.96, 0.97, 0.98, 0.99, 1.0], side="low"), 3)  # data twice as spread: a wider band
    0.861
    >>> band.limit([0.5, 0.6, 0.7], side="low")  # however spread: a block at 3/4 brightness is dark
    0.75
    """

    k: float
    within: float | tuple | None = None
    beyond: float | tuple | None = None

    def limit(self, values, *, side: str) -> float:
        """The threshold for ``values``: below it (``side="low"``) or above it (``"high"``)
        a value is flagged."""
        if side not in ("low", "high"):
            raise InvalidInputError(f"side must be 'low' or 'high', not {side!r}")
        med, sig = robust_stats(values)
        i = 0 if side == "low" else 1

        def bound(b):
            return b[i] if isinstance(b, tuple) else b

        within, beyond = bound(self.within), bound(self.beyond)
        if not np.isfinite(med):  # nothing to measure: the widest band allowed
            return float(beyond if beyond is not None else (-np.inf if side == "low" else np.inf))
        t = med - self.k * sig if side == "low" else med + self.k * sig
        if within is not None:
            t = min(t, within) if side == "low" else max(t, within)
        if beyond is not None:
            t = max(t, beyond) if side == "low" else min(t, beyond)
        return float(t)


@dataclass(frozen=True)
class Rules:
    """Keep/drop rules; a patch is dropped by the first rule it breaks.

    Each threshold is a fixed value, a :class:`Relative` one (set by the table's own
    spread, see :func:`thresholds`) or None (rule off); ``Rules(block_ratio=(0.9, 1.15),
    max_shift_anomaly=1.0)`` gives the fixed rules of earlier versions.

    By default the block-ratio band is relative: the median of the table's darkest
    (brightest) block ratios minus (plus) 8 robust standard deviations. It is never
    tighter than HR blocks 10 % darker or 15 % brighter than the bicubic LR (the fixed band
    chosen on the demo world, seed 0, and checked on seeds 1 and 2: within it, two sensors
    differ by their own radiometry) and never looser than 25 % darker or 30 % brighter (a
    shadow or haze in any data). The darkest and brightest of 16 blocks are extremes, with
    long tails even on clean pairs, hence a ``k`` of 8 rather than 3. Real pairs of two
    sensors (a VHR image against Sentinel-2) may spread more than the demo world; they get
    a wider band rather than losing their good pairs at 0.86-0.88.

    The shift anomaly limit is the median plus 5 robust standard deviations of the table's
    own shift anomalies (for shifts that are measurement noise, Rayleigh-distributed, about
    their 99.997th percentile), never under 1 HR pixel against the rest of the scene (the
    physical limit: a deformation) and never over 2. It is over 1 only where shifts are
    measured less precisely (small patches, a factor of 4 against a blurry bicubic image).
    """

    drop_clusters: tuple = ("suspect",)
    min_ssim: float | Relative | None = None
    min_psnr: float | Relative | None = None
    block_ratio: tuple | Relative | None = Relative(k=8.0, within=(0.9, 1.15), beyond=(0.75, 1.3))
    max_block_error: float | Relative | None = None
    max_shift_anomaly: float | Relative | None = Relative(k=5.0, within=1.0, beyond=2.0)
    drop_shadow_neighbours: bool = False


def thresholds(table, rules: Rules = Rules()) -> dict:
    """The numbers ``rules`` come to on ``table``: fixed values as they are, :class:`Relative`
    ones computed from the table's own columns (over its scored patches).

    Returns
    -------
    dict
        ``min_ssim``, ``min_psnr``, ``max_block_error``, ``max_shift_anomaly`` (float or None)
        and ``block_ratio`` (``(low, high)`` or None).
    """
    scored = table[np.isfinite(table["ssim"].to_numpy(float))] if "ssim" in table.columns else table

    def resolve(rule, column, side):
        if not isinstance(rule, Relative):
            return rule
        if column not in scored.columns:
            raise InvalidInputError(f"a relative rule on {column!r} needs that column in the QC table; run "
                                    "eo_sr.qc.run_qc (or qc_features) first, or give a fixed value")
        return rule.limit(scored[column], side=side)

    out = {}
    for name, column, side in (("min_ssim", "ssim", "low"), ("min_psnr", "psnr", "low"),
                               ("max_block_error", "max_block_error", "high"),
                               ("max_shift_anomaly", "shift_anomaly", "high")):
        value = resolve(getattr(rules, name), column, side)
        out[name] = None if value is None else float(value)
    band = rules.block_ratio
    if isinstance(band, Relative):
        band = (resolve(band, "min_block_ratio", "low"), resolve(band, "max_block_ratio", "high"))
    out["block_ratio"] = None if band is None else (float(band[0]), float(band[1]))
    return out


def apply_rules(table, rules: Rules = Rules()):
    """Add ``keep`` (bool) and ``drop_reason`` columns following ``rules``.

    Relative thresholds are computed on ``table`` itself (:func:`thresholds`); the numbers
    used are kept in ``attrs["qc_thresholds"]`` of the result.
    """
    import pandas as pd

    limits = thresholds(table, rules)
    reason = pd.Series([None] * len(table), index=table.index, dtype=object)

    def mark(cond, why):
        nonlocal reason
        cond = pd.Series(np.asarray(cond, bool), index=table.index) & reason.isna()
        reason = reason.mask(cond, why)

    mark(~np.isfinite(table["ssim"]), "unscored")
    if "cluster_name" in table.columns:
        mark(table["cluster_name"].isin(rules.drop_clusters), "cluster")
    if limits["min_ssim"] is not None:
        mark(table["ssim"] < limits["min_ssim"], "ssim")
    if limits["min_psnr"] is not None:
        mark(table["psnr"] < limits["min_psnr"], "psnr")
    if limits["block_ratio"] is not None:
        lo, hi = limits["block_ratio"]
        mark(table["min_block_ratio"] < lo, "dark_block")
        mark(table["max_block_ratio"] > hi, "bright_block")
    if limits["max_block_error"] is not None:
        mark(table["max_block_error"] > limits["max_block_error"], "local_change")
    if limits["max_shift_anomaly"] is not None:
        mark(table["shift_anomaly"] > limits["max_shift_anomaly"], "deformation")
    if rules.drop_shadow_neighbours and "shadow_neighbour" in table.columns:
        mark(table["shadow_neighbour"], "shadow_neighbour")
    out = table.copy()
    out["drop_reason"] = reason
    out["keep"] = reason.isna()
    out.attrs["qc_thresholds"] = limits
    return out


def keep_ids(table) -> list[str]:
    """Patch ids to train on (``keep`` true), for ``PatchDataset(..., keep=...)``."""
    if "keep" not in table.columns:
        raise InvalidInputError("the QC table has no 'keep' column: apply eo_sr.qc.apply_rules first")
    return list(table.loc[table["keep"], "patch_id"])


def score(table, truth) -> dict:
    """Precision and recall of dropped patches against truth.

    Parameters
    ----------
    table : pandas.DataFrame
        With ``patch_id`` and ``keep``.
    truth : pandas.DataFrame
        With ``patch_id`` and ``corrupted`` (bool), e.g. from
        :func:`eo_sr.demo.truth.patch_truth`.
    """
    merged = table[["patch_id", "keep"]].merge(truth[["patch_id", "corrupted"]], on="patch_id", how="inner")
    flagged, bad = ~merged["keep"].to_numpy(), merged["corrupted"].to_numpy(bool)
    tp = int((flagged & bad).sum())
    fp = int((flagged & ~bad).sum())
    fn = int((~flagged & bad).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"patches": len(merged), "corrupted": int(bad.sum()), "flagged": int(flagged.sum()),
            "true_positives": tp, "false_positives": fp, "false_negatives": fn,
            "precision": precision, "recall": recall}


def save(table, path: str | Path) -> Path:
    """Write the QC table as Parquet, atomically, stamped with :data:`QC_VERSION`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    table = table.copy()
    table.attrs["eo_sr_qc_version"] = QC_VERSION
    table.to_parquet(tmp)
    os.replace(tmp, path)
    return path


def load(path: str | Path, *, current_only: bool = False):
    """Read a QC table written by :func:`save`; with ``current_only``, None if this eo-sr
    version's features differ from the ones it holds."""
    import pandas as pd

    table = pd.read_parquet(path)
    if current_only and table.attrs.get("eo_sr_qc_version") != QC_VERSION:
        return None
    return table


# ----------------------------------------------------------------------------- decisions
# Manual keep/drop decisions (the QC explorer records them): a table ``patch_id,
# decision ("keep" or "drop"), time``, Parquet or CSV when the path ends in ``.csv``.

#: The table the QC app and notebook 07 cache in a store, and the decisions file beside it.
QC_TABLE_FILE = "qc_table.parquet"
DECISIONS_FILE = "qc_decisions.parquet"
DECISIONS = ("keep", "drop")


def load_decisions(path) -> dict:
    """Decisions saved by :func:`save_decisions` (``{patch_id: {"decision", "time"}}``);
    empty when the file does not exist."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return {}
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = {"patch_id", "decision", "time"} - set(frame.columns)
    if missing:
        raise InvalidInputError(f"{path} is not a decisions file: it lacks the column(s) {sorted(missing)}")
    return {str(r.patch_id): {"decision": str(r.decision), "time": str(r.time)} for r in frame.itertuples()}


def decisions_frame(decisions: Mapping):
    """Decisions as a table ``patch_id, decision, time``, sorted by patch id."""
    import pandas as pd

    rows = [{"patch_id": pid, "decision": d["decision"], "time": d["time"]} for pid, d in decisions.items()]
    return pd.DataFrame(rows, columns=["patch_id", "decision", "time"]).sort_values("patch_id", ignore_index=True)


def save_decisions(decisions: Mapping, path) -> Path:
    """Write decisions as Parquet (CSV when ``path`` ends in ``.csv``), atomically:
    a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = decisions_frame(decisions)
    tmp = path.with_name(f".{path.name}.part")
    if path.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def apply_decisions(table, decisions):
    """Let manual decisions overrule the rules.

    Parameters
    ----------
    table : pandas.DataFrame
        A QC table with ``patch_id`` (and ``keep``/``drop_reason`` from
        :func:`eo_sr.qc.apply_rules`, if applied).
    decisions : mapping, DataFrame or path
        ``{patch_id: {"decision": ...}}``, a frame with ``patch_id`` and ``decision``,
        or a decisions file.

    Returns
    -------
    pandas.DataFrame
        A copy with ``decision`` (None where nobody decided); ``keep`` is true for
        manual keeps and false for manual drops, whose ``drop_reason`` becomes ``"manual"``.
    """
    import pandas as pd

    if isinstance(decisions, (str, Path)):
        decisions = load_decisions(decisions)
    if isinstance(decisions, pd.DataFrame):
        mapping = dict(zip(decisions["patch_id"], decisions["decision"]))
    else:
        mapping = {k: (v["decision"] if isinstance(v, Mapping) else v) for k, v in decisions.items()}
    bad = sorted({v for v in mapping.values() if v not in DECISIONS})
    if bad:
        raise InvalidInputError(f"decisions must be 'keep' or 'drop', got {bad}")
    out = table.copy()
    out["decision"] = out["patch_id"].map(mapping).astype(object)
    out["decision"] = out["decision"].where(out["decision"].notna(), None)
    keep = out["keep"].to_numpy(bool) if "keep" in out.columns else np.ones(len(out), bool)
    reason = out["drop_reason"] if "drop_reason" in out.columns else pd.Series([None] * len(out), index=out.index)
    manual_keep = (out["decision"] == "keep").to_numpy()
    manual_drop = (out["decision"] == "drop").to_numpy()
    out["keep"] = (keep | manual_keep) & ~manual_drop
    reason = reason.astype(object).mask(manual_keep, None).mask(manual_drop, "manual")
    out["drop_reason"] = reason.where(reason.notna(), None)
    return out


def store_table(store, *, decisions: bool = True, progress: bool = False):
    """The QC table of a patch store by the default recipe, cached in the store.

    Features (:func:`run_qc`), clusters (:func:`cluster`) and the default rules
    (:func:`apply_rules`), saved as :data:`QC_TABLE_FILE` in the store and reused while it is
    newer than the manifest and of this QC version; the store's manual decisions
    (:data:`DECISIONS_FILE`, from the QC explorer) overrule the rules.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
    decisions : bool
        Apply the manual decisions (the QC explorer, which edits them, wants the table without).
    progress : bool

    Returns
    -------
    pandas.DataFrame
        With ``keep`` and ``drop_reason`` (:func:`keep_ids` gives the patches to train on).
    """
    from eo_sr.store import MANIFEST_FILE, PatchStore

    path = Path(store.path if isinstance(store, PatchStore) else store)
    table_path, manifest_path = path / QC_TABLE_FILE, path / MANIFEST_FILE
    table = None
    if table_path.is_file() and table_path.stat().st_mtime >= manifest_path.stat().st_mtime:
        table = load(table_path, current_only=True)  # None when an older eo-sr computed it
    if table is None:
        table, _ = cluster(run_qc(store, progress=progress))
        table = apply_rules(table)
        save(table, table_path)
    if decisions and (path / DECISIONS_FILE).is_file():
        table = apply_decisions(table, path / DECISIONS_FILE)
    return table

