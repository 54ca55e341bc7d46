"""A patch store made from one HR image by Wald's protocol: the LR is the HR degraded.

Where only HR imagery exists (or to score a model on real pixels with a known truth), the LR
partner of every HR pixel can be simulated: blur with the LR sensor's point spread function,
average over ``factor x factor`` blocks, add noise (:func:`eo_sr.radiometry.degrade`; Wald et
al. 1997). :func:`wald_store` does that to one image and writes a regular eo-sr patch store,
the layout :func:`eo_sr.patches.build_patch_store` writes (see :mod:`eo_sr.store`), so
:func:`eo_sr.store.open_store`, :class:`eo_sr.dataset.PatchDataset`, :func:`eo_sr.qc.run_qc`,
:func:`eo_sr.learn.train.train` and :func:`eo_sr.evaluate.evaluate_checkpoint` read it as any
other.

The split is by space. The LR grid is cut into square blocks of ``split_block`` LR pixels
(default one window); whole blocks are drawn into train, val and test, every window lies
inside one block, and each block is degraded on its own (its edges mirrored), so no LR pixel of
one split has seen an HR pixel of another. HR and LR share their radiometry (one is made from
the other), so no histogram matching is done; the store's ``config.json`` says so.

>>> from eo_sr.wald import real_sentinel2, wald_store
>>> image = real_sentinel2()                                   # doctest: +SKIP
>>> manifest = wald_store(image, "wald-store", factor=4, lr_size=8)  # doctest: +SKIP

References
----------
.. [1] L. Wald, T. Ranchin and M. Mangolini, "Fusion of satellite images of different spatial
   resolutions: assessing the quality of resulting images", Photogrammetric Engineering &
   Remote Sensing 63(6):691-699, 1997.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from pathlib import Path

import numpy as np

from eo_sr import store as store_io
from eo_sr.errors import InvalidInputError
from eo_sr.loading import real_sentinel2
from eo_sr.store import SPLITS, STORE_VERSION

__all__ = ["SENTINEL2_SNR", "real_sentinel2", "split_blocks", "wald_store"]

#: Sentinel-2 MSI's SNR at the reference radiance of its 10 m bands (B2, B3, B4, B8): pass
#: ``snr=[SENTINEL2_SNR[b] for b in bands]`` for its noise.
SENTINEL2_SNR = {"blue": 154.0, "green": 168.0, "red": 142.0, "nir": 174.0}
#: Above this, values are digital numbers, not reflectance.
_MAX_REFLECTANCE = 10.0


def _positive_int(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidInputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def split_blocks(n_blocks: int, fractions=(0.7, 0.15, 0.15), *, seed: int = 0) -> list[str]:
    """The split of each of ``n_blocks`` blocks: a seeded shuffle cut by ``fractions``.

    Counts follow the fractions (largest remainders), and every split with a positive
    fraction gets at least one block, taken from the largest split.

    Raises
    ------
    InvalidInputError
        Fractions that are not three non-negative shares summing to 1, or fewer blocks than
        splits to fill.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1) > 1e-6:
        raise InvalidInputError(f"split_fractions must be three non-negative shares summing to 1, got {fractions!r}")
    wanted = int((fr > 0).sum())
    if n_blocks < wanted:
        raise InvalidInputError(f"the image holds {n_blocks} split block(s), too few for {wanted} splits with a "
                                "positive share: use a smaller lr_size or split_block, a larger image, or "
                                "split_fractions with zeros")
    raw = fr * n_blocks
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n_blocks - counts.sum()]:
        counts[i] += 1
    for i in range(3):
        if fr[i] > 0 and counts[i] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[i] = 1
    order = np.random.default_rng(seed).permutation(n_blocks)
    labels = np.repeat(np.array(SPLITS), counts)
    out = [""] * n_blocks
    for block, label in zip(order, labels):
        out[int(block)] = str(label)
    return out


def _check_image(image, bands):
    import xarray as xr

    if not isinstance(image, xr.DataArray):
        raise InvalidInputError(f"image must be an xarray.DataArray (band, y, x) with a CRS (rioxarray), not "
                                f"{type(image).__name__}; eo_sr.wald.real_sentinel2() gives one")
    if set(image.dims) != {"band", "y", "x"}:
        raise InvalidInputError(f"image must have the dimensions (band, y, x), got {image.dims}")
    image = image.transpose("band", "y", "x")
    if "band" not in image.coords or image["band"].dtype.kind not in "UO":
        raise InvalidInputError("the image's band coordinate must name the bands (blue, green, red, nir, ...): "
                                "image.assign_coords(band=[...])")
    names = [str(b) for b in image["band"].values]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"the image's band names repeat: {names}")
    bands = names if bands is None else [bands] if isinstance(bands, str) else list(bands)
    missing = [b for b in bands if b not in names]
    if missing or not bands:
        raise InvalidInputError(f"band(s) {missing or bands} are not in the image, whose bands are {names}")
    image = image.sel(band=bands)
    if image.dtype.kind not in "f":
        raise InvalidInputError(f"the image is {image.dtype}: give reflectance as floats (DN * scale + offset; "
                                "eo_sr.loading harmonises items), NaN where a pixel has no data")
    if image.rio.crs is None:
        raise InvalidInputError("the image has no CRS: image.rio.write_crs('EPSG:...') (the store records where "
                                "each patch is)")
    transform = image.rio.transform()
    if transform.b != 0 or transform.d != 0 or abs(abs(transform.a) - abs(transform.e)) > 1e-9 * abs(transform.a):
        raise InvalidInputError(f"the image's pixels must be square and its grid north-up, got transform {transform}")
    if transform.e > 0:
        raise InvalidInputError("the image's y axis runs south to north: image.isel(y=slice(None, None, -1))")
    return image, bands, transform


def _digest(data: np.ndarray, transform, crs) -> str:
    h = hashlib.sha256(np.ascontiguousarray(data).tobytes())
    h.update(json.dumps([list(transform)[:6], str(crs), data.shape]).encode())
    return h.hexdigest()[:20]


def wald_store(image, out: str | Path, *, factor: int = 4, lr_size: int = 16, stride: int | None = None,
               bands=None, sensor="sentinel-2-l2a", psf_sigma: float | None = None, mtf_nyquist: float | None = None,
               noise=None, snr=None, seed: int = 0, split_block: int | None = None,
               split_fractions=(0.7, 0.15, 0.15), mask=None, max_nodata: float = 0.0, name: str | None = None,
               datetime=None, replace_stale: bool = False):
    """Degrade an HR image to LR (Wald's protocol) and write the pairs as a patch store.

    Parameters
    ----------
    image : xarray.DataArray
        HR reflectance ``(band, y, x)``, bands named (``blue``, ``green``, ...), CRS and
        transform through rioxarray, NaN where a pixel has no data.
    out : path
        The store folder (see :mod:`eo_sr.store`).
    factor : int
        HR pixels per LR pixel along each axis (the LR pixel is ``factor`` times the HR one).
    lr_size : int
        LR window side in pixels (>= 4); the HR window is ``lr_size * factor``.
    stride : int, optional
        LR pixels between window origins inside a block (default ``lr_size``: no overlap).
    bands : sequence of str, optional
        The image's bands to keep, in this order (default all).
    sensor, psf_sigma, mtf_nyquist :
        The LR sensor's blur, as for :func:`eo_sr.radiometry.degrade` (default the PSF of
        Sentinel-2's 10 m bands, from their MTF at Nyquist); ``psf_sigma=0`` is block
        averaging alone.
    noise, snr :
        The LR sensor's noise, as for :func:`eo_sr.radiometry.degrade` (default none);
        :data:`SENTINEL2_SNR` holds Sentinel-2's SNR per band.
    seed : int
        Seeds the noise (each block from ``(seed, block row, block column)``) and the draw of
        blocks into splits.
    split_block : int, optional
        Side of the split blocks in LR pixels (default ``lr_size``); at least ``lr_size``.
    split_fractions : (float, float, float)
        Train/val/test shares of the blocks (see :func:`split_blocks`).
    mask : array of bool, optional
        True where an HR pixel is valid, of the image's spatial shape; NaN pixels are invalid
        too. An LR pixel is valid where all its HR pixels are.
    max_nodata : float
        Largest share of invalid pixels (LR or HR) in a kept window (default 0).
    name : str, optional
        The id of the HR image in the manifest (default the DataArray's name).
    datetime : str or datetime, optional
        Acquisition time (default the image's ``time`` coordinate or ``datetime`` attribute,
        else unknown: NaT).
    replace_stale : bool
        Rebuild a store that was built from another image or configuration instead of refusing.

    Returns
    -------
    pandas.DataFrame
        The manifest (one row per window, :data:`eo_sr.store.MANIFEST_COLUMNS`);
        ``attrs["dropped_nodata"]`` counts the windows dropped for invalid pixels.

    Raises
    ------
    InvalidInputError
        Not a named-band, georeferenced float DataArray; digital numbers instead of
        reflectance; a factor that is not an integer >= 2; a missing band; an image smaller
        than one window or holding too few blocks for the splits; a bad mask; a folder that
        holds another store.
    """
    import pandas as pd

    from eo_sr import radiometry
    from eo_sr.patches import pair_id as make_pair_id, save_norm_stats

    if isinstance(factor, bool) or not isinstance(factor, numbers.Integral):
        raise InvalidInputError(f"factor must be an integer (HR pixels per LR pixel), got {factor!r}: Wald's block "
                                "averaging is exact only for integer factors")
    factor = _positive_int(factor, "factor", 2)
    lr_size = _positive_int(lr_size, "lr_size", 4)
    stride = lr_size if stride is None else _positive_int(stride, "stride", 1)
    block = lr_size if split_block is None else _positive_int(split_block, "split_block", 1)
    if block < lr_size:
        raise InvalidInputError(f"split_block={block} is smaller than a window (lr_size={lr_size}): every window must "
                                "lie inside one block")
    if not 0 <= max_nodata < 1:
        raise InvalidInputError(f"max_nodata is a share in [0, 1), got {max_nodata!r}")
    image, bands, transform = _check_image(image, bands)
    data = image.to_numpy().astype(np.float32)
    B, H, W = data.shape
    valid = np.isfinite(data).all(axis=0)
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (H, W):
            raise InvalidInputError(f"mask must be boolean (True = valid) of the image's spatial shape {(H, W)}, got "
                                    f"{m.dtype} {m.shape}")
        valid &= m
    if valid.any() and np.nanmax(np.abs(np.where(valid, data, 0))) > _MAX_REFLECTANCE:
        raise InvalidInputError(f"the image holds values up to {np.nanmax(np.where(valid, data, 0)):g}: digital "
                                "numbers, not reflectance; scale them first (Sentinel-2: DN / 10000, "
                                "eo_sr.wald.real_sentinel2 does)")
    hr_window = lr_size * factor
    h, w = H // factor, W // factor  # the LR grid (a remainder of HR rows/columns is left out)
    if h < lr_size or w < lr_size:
        raise InvalidInputError(f"the image is {H} x {W} HR pixels, smaller than one window of {hr_window} x "
                                f"{hr_window} (lr_size={lr_size} x factor={factor}): use a smaller lr_size or factor")
    nby, nbx = h // block, w // block
    if nby == 0 or nbx == 0:
        raise InvalidInputError(f"the image's LR grid ({h} x {w}) holds no split block of {block} x {block} pixels: "
                                "use a smaller split_block")
    labels = split_blocks(nby * nbx, split_fractions, seed=seed)
    # the blur and noise arguments are checked (with degrade's messages) before anything is written
    radiometry.degrade(np.full((B, factor, factor), 0.1), factor=factor, sensor=sensor, psf_sigma=psf_sigma,
                       mtf_nyquist=mtf_nyquist, noise=noise, snr=snr, seed=0)
    sigma = _resolved_sigma(sensor, psf_sigma, mtf_nyquist)

    res = abs(transform.a)
    crs = image.rio.crs.to_string()
    hr_id = str(name or image.name or "image")
    lr_id = f"{hr_id}:wald-x{factor}"
    if datetime is None:
        if "time" in image.coords and image["time"].size == 1:  # a scalar coordinate (a time dimension is refused)
            datetime = image["time"].values.reshape(-1)[0]
        else:
            datetime = image.attrs.get("datetime")
    when = pd.Timestamp(datetime) if datetime is not None else pd.NaT
    record = {"store_version": STORE_VERSION, "kind": "wald", "lr_size": lr_size, "stride": stride,
              "factor": factor, "frames": 1, "bands": list(bands), "lr_res": res * factor, "hr_res": res,
              "split_block": block, "split_fractions": [float(f) for f in split_fractions], "seed": seed,
              "max_nodata": float(max_nodata),
              "degrade": {"sensor": None if sensor is None else str(getattr(sensor, "id", sensor)),
                          "psf_sigma_lr_px": sigma, "mtf_nyquist": mtf_nyquist,
                          "noise": None if noise is None else np.asarray(noise, float).tolist(),
                          "snr": None if snr is None else np.asarray(snr, float).tolist(),
                          "per": "split block (edges mirrored)"},
              "histogram_match": False,
              "radiometry": "LR degraded from HR (Wald's protocol): same radiometry, no histogram matching",
              "image": {"id": hr_id, "crs": crs, "shape": [B, H, W], "datetime": None if pd.isna(when)
                        else when.isoformat(), "digest": _digest(np.where(valid, data, np.nan), transform, crs)}}
    out = store_io.prepare_store(out, record, replace_stale=replace_stale)

    pid = make_pair_id(hr_id, [lr_id])
    s, S = lr_size, hr_window
    kept = {"lr": [], "hr": [], "lr_valid": [], "hr_valid": [], "rows": [], "cols": [], "bounds": [], "split": []}
    dropped = 0
    for bi in range(nby):
        for bj in range(nbx):
            r0, c0 = bi * block, bj * block
            hr_block = data[:, r0 * factor:(r0 + block) * factor, c0 * factor:(c0 + block) * factor]
            ok = valid[r0 * factor:(r0 + block) * factor, c0 * factor:(c0 + block) * factor]
            rng_seed = int(np.random.SeedSequence([seed, bi, bj]).generate_state(1)[0])
            lr_block = radiometry.degrade(np.where(ok, hr_block, np.nan), factor=factor, sensor=sensor,
                                          psf_sigma=psf_sigma, mtf_nyquist=mtf_nyquist, noise=noise, snr=snr,
                                          seed=rng_seed)
            lr_ok = np.isfinite(lr_block).all(axis=0)
            for r in range(0, block - s + 1, stride):
                for c in range(0, block - s + 1, stride):
                    lv = lr_ok[r:r + s, c:c + s]
                    hv = ok[r * factor:r * factor + S, c * factor:c * factor + S]
                    if 1 - lv.mean() > max_nodata or 1 - hv.mean() > max_nodata:
                        dropped += 1
                        continue
                    row, col = r0 + r, c0 + c
                    kept["lr"].append(np.nan_to_num(lr_block[None, :, r:r + s, c:c + s]))
                    kept["hr"].append(np.nan_to_num(hr_block[:, r * factor:r * factor + S, c * factor:c * factor + S]))
                    kept["lr_valid"].append(lv[None])
                    kept["hr_valid"].append(hv)
                    kept["rows"].append(row)
                    kept["cols"].append(col)
                    left, top = transform.c + col * res * factor, transform.f - row * res * factor
                    kept["bounds"].append((left, top - s * res * factor, left + s * res * factor, top))
                    kept["split"].append(labels[bi * nbx + bj])
    n = len(kept["rows"])
    arrays = {"lr": np.asarray(kept["lr"], np.float32).reshape(n, 1, B, s, s),
              "hr": np.asarray(kept["hr"], np.float32).reshape(n, B, S, S),
              "lr_valid": np.asarray(kept["lr_valid"], bool).reshape(n, 1, s, s),
              "hr_valid": np.asarray(kept["hr_valid"], bool).reshape(n, S, S),
              "rows": np.asarray(kept["rows"], int), "cols": np.asarray(kept["cols"], int),
              "bounds": np.asarray(kept["bounds"], float).reshape(n, 4)}
    info = {"status": "ok", "inputs": record["image"]["digest"], "candidates": n + dropped,
            "dropped_nodata": dropped, "shift_dy": 0.0, "shift_dx": 0.0, "hr_cloudy_cells": []}
    store_io.save_shard(store_io.shard_path(out, pid), **arrays, info=np.array(json.dumps(info, sort_keys=True)))

    rows, per_split = [], {sp: [] for sp in SPLITS}
    for i in range(n):
        split = kept["split"][i]
        per_split[split].append((pid, i))
        left, bottom, right, top = arrays["bounds"][i]
        rows.append({"patch_id": f"{pid}__{arrays['rows'][i]:04d}_{arrays['cols'][i]:04d}", "pair_id": pid,
                     "hr_id": hr_id, "lr_ids": [lr_id], "split": split, "index": len(per_split[split]) - 1,
                     "row": int(arrays["rows"][i]), "col": int(arrays["cols"][i]), "hr_datetime": when,
                     "lr_datetime": when, "delta_days": 0.0, "lr_delta_days": [0.0], "left": float(left),
                     "bottom": float(bottom), "right": float(right), "top": float(top), "crs": crs,
                     "shift_dy": 0.0, "shift_dx": 0.0})
    manifest = pd.DataFrame(rows, columns=list(store_io.MANIFEST_COLUMNS))
    store_io.write_splits(out, per_split, lr_size=s, factor=factor, bands=bands, frames=1)
    store_io.write_table(out / store_io.MANIFEST_FILE, manifest)
    save_norm_stats(out, manifest, bands=bands)
    report = pd.DataFrame([{"pair_id": pid, "hr_id": hr_id, "lr_ids": [lr_id], "n_patches": n, **info}])
    store_io.write_table(out / store_io.REPORT_FILE, report)
    manifest.attrs["dropped_nodata"] = dropped
    return manifest


def _resolved_sigma(sensor, psf_sigma, mtf_nyquist) -> float:
    """The Gaussian PSF sigma (LR pixels) that :func:`eo_sr.radiometry.degrade` uses."""
    from eo_sr.radiometry import MTF_AT_NYQUIST, psf_sigma_from_mtf
    from eo_sr.sensors import get_sensor

    if psf_sigma is not None:
        return float(psf_sigma)
    if mtf_nyquist is not None:
        return psf_sigma_from_mtf(mtf_nyquist)
    return psf_sigma_from_mtf(MTF_AT_NYQUIST[get_sensor(sensor).id])
