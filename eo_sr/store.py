"""The patch store: its schema, atomic writes, readers, statistics and checksum.

One module owns the store; everything that writes it (:func:`eo_sr.patches.build_patch_store`)
or reads it (datasets, QC, the QC explorer, notebooks, models) goes through here. A store is
a folder::

    store/
      config.json                how it was built (store_version + the patch configuration)
      shards/<pair_id>.npz       one per pair, written atomically: the unit of resuming
      train.zarr, val.zarr, test.zarr   arrays lr (N,T,B,s,s), hr (N,B,S,S), lr_valid, hr_valid
      manifest.parquet           one row per patch: ids, dates, delta-t, bounds, CRS, split, index
      pairs.parquet              the build's report: one row per pair, status ("ok" / "failed: why")
      norm_stats.json            normalisation statistics of the training split (LR and HR)

Every file is written under a temporary name and renamed into place, so a build killed at
any moment leaves either the old file or the new one, never half of one.

>>> from eo_sr.store import open_store
>>> store = open_store("patch-store")            # doctest: +SKIP
>>> sample = store.read_patch(store.manifest.patch_id[0])   # doctest: +SKIP
>>> sample["lr"].shape, sample["crs"], sample["bounds"]      # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eo_sr.errors import InvalidInputError, NotFoundError

__all__ = ["STORE_VERSION", "SPLITS", "ARRAYS", "MANIFEST_COLUMNS", "PatchStore", "open_store",
           "store_checksum", "read_config", "prepare_store", "shard_path", "save_shard", "shard_info",
           "write_splits", "write_table", "write_norm_stats", "remove_store_files"]

#: Written into config.json; a store of another version is rebuilt (cache) or refused (yours).
STORE_VERSION = "5"  # 2: HR matched on the pixels consistent with LR; 3: norm_stats.json, shards keyed on inputs;
# 4: open water fitted in the HR match (it is off the fields' line between the sensors);
# 5: multi-frame: frames ordered by time distance, missing partners padded as invalid frames, lr_delta_days
SPLITS = ("train", "val", "test")
#: The arrays of a split: name -> (dtype, axes).
ARRAYS = {"lr": ("float32", "N, T, B, s, s"), "hr": ("float32", "N, B, S, S"),
          "lr_valid": ("bool", "N, T, s, s"), "hr_valid": ("bool", "N, S, S")}
#: The manifest's columns, one row per patch.
MANIFEST_COLUMNS = ("patch_id", "pair_id", "hr_id", "lr_ids", "split", "index", "row", "col", "hr_datetime",
                    "lr_datetime", "delta_days", "lr_delta_days", "left", "bottom", "right", "top", "crs", "shift_dy",
                    "shift_dx")
CONFIG_FILE, MANIFEST_FILE, REPORT_FILE, NORM_FILE = "config.json", "manifest.parquet", "pairs.parquet", \
    "norm_stats.json"
#: What a store build writes, and what steps that read the store derive from it (the QC
#: table). Removing a stale store removes these and nothing else: a user's own files in the
#: folder, and their keep/drop decisions, stay.
_ENTRIES = ("shards", CONFIG_FILE, MANIFEST_FILE, REPORT_FILE, NORM_FILE, "qc_table.parquet",
            *(f"{s}.zarr" for s in SPLITS))
# ... plus the temporary names of those writes, and the statistics notebook 06 saves.
_TEMPORARY = tuple(f"{name}.part" for name in _ENTRIES) + ("norm_hr.json", "norm_lr.json")
_TEMPORARY_DIRS = tuple(f".{s}.*" for s in SPLITS)  # mkdtemp folders of write_splits
_CHUNK = 16  # patches per Zarr chunk


# ----------------------------------------------------------------------------- writing


def read_config(store: str | Path) -> dict | None:
    """The store's config record; None when it has none.

    Raises
    ------
    InvalidInputError
        The folder's config.json is not one of eo-sr's (someone else's folder is never
        treated as a store).
    """
    cfg_path = Path(store) / CONFIG_FILE
    if not cfg_path.is_file():
        return None
    try:
        record = json.loads(cfg_path.read_text())
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or "store_version" not in record:
        raise InvalidInputError(f"{store} has a config.json that is not an eo-sr patch store's; "
                                "choose another folder for the store")
    return record


def remove_store_files(out: Path) -> None:
    """Remove what a store build wrote into ``out`` (see ``_ENTRIES``), and nothing else."""
    for name in _ENTRIES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for name in _TEMPORARY:
        if (out / name).is_file():
            (out / name).unlink()
    for pattern in _TEMPORARY_DIRS:
        for target in out.glob(pattern):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)


def prepare_store(out: str | Path, record: dict, *, replace_stale: bool = False) -> Path:
    """Make ``out`` ready for a build with config ``record`` (a dict with ``store_version``).

    A store built with the same record is kept (its shards are reused: resume); one built
    otherwise is refused, or with ``replace_stale`` emptied of its own files first.

    Raises
    ------
    InvalidInputError
        ``out`` is a file, holds someone else's config.json, or a store built otherwise.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} is a file, not a folder: give a folder for the patch store")
    found = read_config(out) if out.is_dir() else None
    if found is not None and found != record:
        if not replace_stale:
            raise InvalidInputError(f"{out} holds a store built with another configuration or eo-sr version; "
                                    "choose a new folder or delete it")
        remove_store_files(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    if not (out / CONFIG_FILE).exists():
        _write_text(out / CONFIG_FILE, json.dumps(record, indent=1, sort_keys=True))
    return out


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def shard_path(out: str | Path, pair_id: str) -> Path:
    """Where the shard of a pair lives (``pair_id`` is already a safe file name)."""
    return Path(out) / "shards" / f"{pair_id}.npz"


def save_shard(path: Path, **arrays) -> None:
    """Write a shard atomically (``.part`` + fsync + rename)."""
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def shard_info(path: Path) -> dict | None:
    """The info record of a shard, or None when it is missing or unreadable (then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["info"]))
    except (OSError, ValueError, KeyError):
        return None


def write_table(path: Path, table) -> Path:
    """A DataFrame as Parquet, atomically."""
    tmp = path.with_name(path.name + ".part")
    table.to_parquet(tmp)
    os.replace(tmp, path)
    return path


def write_splits(out: Path, entries_by_split: dict, *, lr_size: int, factor: int, bands, frames: int) -> None:
    """Gather shard patches into one Zarr group per split, each written aside and renamed in.

    ``entries_by_split[split]`` lists ``(pair_id, i)``: patch ``i`` of that pair's shard, in
    the order of the split's ``index``.
    """
    import zarr

    for split in SPLITS:
        target = out / f"{split}.zarr"
        tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=out))
        try:
            group = zarr.open_group(str(tmp / "data.zarr"), mode="w")
            _write_split(group, out, entries_by_split.get(split, []), lr_size=lr_size, factor=factor,
                         bands=list(bands), frames=frames)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / "data.zarr", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_split(group, out: Path, entries, *, lr_size: int, factor: int, bands: list, frames: int) -> None:
    s, f, B, T = lr_size, factor, len(bands), frames
    n, chunk = len(entries), _CHUNK
    shapes = {"lr": (T, B, s, s), "hr": (B, s * f, s * f), "lr_valid": (T, s, s), "hr_valid": (s * f, s * f)}
    arrays = {name: group.create_array(name, shape=(n, *shapes[name]), chunks=(chunk, *shapes[name]),
                                       dtype=ARRAYS[name][0]) for name in ARRAYS}
    group.attrs.update({"bands": bands, "factor": f, "frames": T, "count": n})
    # Entries are in pair order: stream them through one chunk-sized buffer per array.
    buffers = {name: np.zeros((chunk, *arr.shape[1:]), arr.dtype) for name, arr in arrays.items()}
    current, data = None, {}
    for j, (pid, i) in enumerate(entries):
        if pid != current:  # each member of an .npz is decompressed on access: read it once
            with np.load(shard_path(out, pid), allow_pickle=False) as z:
                data, current = {name: z[name] for name in arrays}, pid
        for name in arrays:
            buffers[name][j % chunk] = data[name][i]
        if j % chunk == chunk - 1 or j == n - 1:
            start = j - j % chunk
            for name, arr in arrays.items():
                arr[start:j + 1] = buffers[name][: j + 1 - start]


def write_norm_stats(out: str | Path, stats: dict) -> Path:
    """Save normalisation statistics (``{"lr": {...}, "hr": {...}}``, each a
    ``NormStats.to_dict()``) as the store's ``norm_stats.json``."""
    path = Path(out) / NORM_FILE
    _write_text(path, json.dumps(stats, indent=1, sort_keys=True))
    return path


# ----------------------------------------------------------------------------- reading


@dataclass
class PatchStore:
    """An opened, validated patch store (see :func:`open_store`).

    Attributes
    ----------
    path : pathlib.Path
    record : dict
        ``config.json``: store_version, lr_size, factor, frames, bands, lr_res, ...
    manifest : pandas.DataFrame
        One row per patch (:data:`MANIFEST_COLUMNS`).
    """

    path: Path
    record: dict
    manifest: object
    _groups: dict = field(default_factory=dict, repr=False)
    _by_id: object = field(default=None, repr=False)

    @property
    def bands(self) -> list[str]:
        return list(self.record["bands"])

    @property
    def factor(self) -> int:
        return int(self.record["factor"])

    @property
    def frames(self) -> int:
        return int(self.record["frames"])

    @property
    def lr_size(self) -> int:
        return int(self.record["lr_size"])

    @property
    def lr_res(self) -> float:
        return float(self.record.get("lr_res", 10.0))

    @property
    def step(self) -> int:
        """LR pixels between patch origins (the stride, or the patch size)."""
        return int(self.record.get("stride") or self.record["lr_size"])

    def splits(self) -> list[str]:
        """The splits that hold at least one patch, in train/val/test order."""
        present = set(self.manifest["split"]) if len(self.manifest) else set()
        return [s for s in SPLITS if s in present]

    def rows(self, split: str):
        """The manifest rows of a split, in the order of its arrays."""
        _check_split(split)
        rows = self.manifest[self.manifest["split"] == split]
        return rows.sort_values("index").reset_index(drop=True)

    def arrays(self, split: str):
        """The split's Zarr group (``lr``, ``hr``, ``lr_valid``, ``hr_valid``), opened read-only."""
        import zarr

        _check_split(split)
        if split not in self._groups:
            path = self.path / f"{split}.zarr"
            if not path.exists():
                raise NotFoundError(f"{path} is missing: the store is incomplete; rerun 'eo-sr patches' with "
                                    "the same arguments to finish it")
            self._groups[split] = zarr.open_group(str(path), mode="r")
        return self._groups[split]

    def row(self, patch_id: str):
        """The manifest row of one patch."""
        if self._by_id is None:
            self._by_id = self.manifest.set_index("patch_id", drop=False)
        try:
            return self._by_id.loc[patch_id]
        except KeyError:
            raise NotFoundError(f"no patch {patch_id!r} in the store {self.path}") from None

    def read_patch(self, patch_id: str) -> dict:
        """One patch as a sample: arrays and where it is.

        Returns
        -------
        dict
            ``lr`` ``(T, B, s, s)`` float32, ``hr`` ``(B, S, S)``, ``lr_valid``, ``hr_valid``,
            ``patch_id``, ``crs`` (e.g. ``"EPSG:32636"``), ``bounds`` ``(left, bottom, right,
            top)`` in that CRS, ``dates`` (``{"hr": iso, "lr": [iso, ...]}``) and ``bands``.
        """
        row = self.row(patch_id)
        g = self.arrays(row["split"])
        i = int(row["index"])
        out = {name: np.asarray(g[name][i]) for name in ARRAYS}
        return {**out, **self.place(row)}

    def place(self, row) -> dict:
        """The georeference of a manifest row: ``patch_id``, ``crs``, ``bounds``, ``dates``, ``bands``."""
        import pandas as pd

        hr_time = pd.Timestamp(row["hr_datetime"])
        deltas = row.get("lr_delta_days")
        if deltas is None or not len(deltas):  # stores written by other tools: frame 0's date only
            lr_dates = [pd.Timestamp(row["lr_datetime"]).isoformat()]
        else:
            lr_dates = [(hr_time + pd.Timedelta(days=float(d))).isoformat() for d in deltas]
        return {"patch_id": str(row["patch_id"]), "crs": str(row["crs"]),
                "bounds": (float(row["left"]), float(row["bottom"]), float(row["right"]), float(row["top"])),
                "dates": {"hr": pd.Timestamp(row["hr_datetime"]).isoformat(), "lr": lr_dates},
                "bands": self.bands}

    @property
    def report(self):
        """The build's report: one row per pair with its status (``pairs.parquet``)."""
        import pandas as pd

        path = self.path / REPORT_FILE
        if not path.is_file():
            raise NotFoundError(f"{path} is missing: the store is incomplete; rerun 'eo-sr patches' to finish it")
        return pd.read_parquet(path)

    def failed_pairs(self):
        """The pairs that failed, with ``reason``."""
        report = self.report
        failed = report[report["status"] != "ok"].copy()
        failed["reason"] = failed["status"].str.removeprefix("failed: ")
        return failed[["pair_id", "hr_id", "reason"]].reset_index(drop=True)

    def norm_stats(self) -> dict:
        """The training split's normalisation statistics: ``{"lr": {...}, "hr": {...}}``
        (each a ``NormStats.to_dict()``; ``eo_sr.radiometry.NormStats.from_dict`` rebuilds it)."""
        path = self.path / NORM_FILE
        if not path.is_file():
            raise NotFoundError(f"{path} is missing: this store was built before eo-sr computed normalisation "
                                "statistics, or its training split is empty; rebuild it with 'eo-sr patches'")
        return json.loads(path.read_text())

    def checksum(self) -> str:
        """See :func:`store_checksum`."""
        return store_checksum(self.path)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InvalidInputError(f"unknown split {split!r}; choose one of {list(SPLITS)}")


def open_store(path: str | Path, *, current: bool = True) -> PatchStore:
    """Open a patch store, checking that it is complete and of this eo-sr's version.

    Parameters
    ----------
    path : path
        The store folder.
    current : bool
        Refuse a store that another eo-sr version built (its layout may differ).

    Raises
    ------
    NotFoundError
        There is no store at ``path``, or it is incomplete (a build that stopped before
        the end: the message says to rerun it).
    InvalidInputError
        The folder is someone else's, or the store is of another version.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"no patch store at {path}: build one with 'eo-sr patches --matches DIR --out {path}' "
                            "(or eo_sr.patches.build_patch_store)")
    if not path.is_dir():
        raise InvalidInputError(f"{path} is a file, not a patch store folder")
    record = read_config(path)
    if record is None:
        raise NotFoundError(f"{path} is not a patch store (no {CONFIG_FILE}): build one with 'eo-sr patches'")
    if current and record.get("store_version") != STORE_VERSION:
        raise InvalidInputError(f"{path} was built by another eo-sr version (store version "
                                f"{record.get('store_version')}, this eo-sr reads {STORE_VERSION}): rebuild it with "
                                "'eo-sr patches' into a new folder")
    if not (path / MANIFEST_FILE).is_file():
        raise NotFoundError(f"{path} is incomplete (no {MANIFEST_FILE}: the build stopped before the end); rerun "
                            "'eo-sr patches' with the same arguments to finish it")
    manifest = pd.read_parquet(path / MANIFEST_FILE)
    store = PatchStore(path, record, manifest)
    for split in store.splits():
        count = int(store.arrays(split).attrs.get("count", -1))
        if count != int((manifest["split"] == split).sum()):
            raise NotFoundError(f"{path / (split + '.zarr')} holds {count} patches but the manifest lists "
                                f"{int((manifest['split'] == split).sum())}: the store is incomplete; rerun "
                                "'eo-sr patches' to finish it")
    return store


def store_checksum(out: str | Path) -> str:
    """SHA-256 over every array and the manifest of a store (for identity checks)."""
    import pandas as pd
    import zarr

    out = Path(out)
    h = hashlib.sha256()
    for split in SPLITS:
        group = zarr.open_group(str(out / f"{split}.zarr"), mode="r")
        for name in ARRAYS:
            h.update(np.ascontiguousarray(group[name][:]).tobytes())
    h.update(pd.read_parquet(out / MANIFEST_FILE).to_json().encode())
    return h.hexdigest()
