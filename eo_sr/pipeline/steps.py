"""The pipeline's steps as functions that read and write files.

Each step takes the previous step's output folder, so the command line, the
quickstart and (later) a YAML-configured build chain the same functions::

    search_to_files(catalog, "results", "hr", collections="demo-hr", ...)   # results/hr.ndjson
    search_to_files(catalog, "results", "lr", collections="demo-s2-l2a", ...)
    match_to_files("results/hr.ndjson", "results/lr.ndjson", "matches")    # matches/pairs.parquet + items
    patches_from_matches("matches", "patch-store")

Outputs are checked before the work starts (a folder that cannot be written is found
before a long search, not after it) and written atomically.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from eo_sr.errors import InvalidInputError, NotFoundError

__all__ = ["check_output_dir", "search_to_files", "match_to_files", "patches_from_matches"]

#: What :func:`patches_from_matches` reads of what :func:`match_to_files` writes.
PATCH_INPUTS = ("pairs.parquet", "hr_scenes.ndjson", "lr_scenes.ndjson")


def check_output_dir(path: str | Path, *, what: str = "output folder") -> Path:
    """Create ``path`` if needed and make sure files can be written into it.

    Raises
    ------
    InvalidInputError
        ``path`` is a file, or the folder cannot be created or written (read-only,
        no permission, disk full); the message names it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"the {what} {path} is an existing file, not a folder: give a folder (it is "
                                "created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".eo-sr-write-test-"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"cannot write the {what} {path}: {exc.strerror or exc}; choose a folder you "
                                "can write to") from None
    return path


def _check_name(name: str) -> str:
    if not name or name != os.path.basename(name) or name.startswith("."):
        raise InvalidInputError(f"the output name {name!r} must be a plain file stem such as 'hr' (no folders)")
    return name


def search_to_files(catalog, out: str | Path, name: str, **search_args) -> tuple[int, Path]:
    """Search ``catalog`` and write ``out/<name>.ndjson`` (items) and ``out/<name>.parquet`` (table).

    ``search_args`` are those of :func:`eo_sr.stac.search`. Returns the number of items
    and the ndjson path.
    """
    from eo_sr import stac

    out = check_output_dir(out)
    name = _check_name(name)
    items = stac.search(catalog, **search_args)
    table = out / f"{name}.parquet"
    tmp = table.with_name(table.name + ".part")
    stac.to_geodataframe(items).to_parquet(tmp)
    os.replace(tmp, table)
    return len(items), stac.write_items(items, out / f"{name}.ndjson")


def match_to_files(hr_items, lr_items, out: str | Path, **criteria):
    """Match HR with LR scenes and write what the patch step needs into ``out``.

    Parameters
    ----------
    hr_items, lr_items : path or items
        The ndjson files from :func:`search_to_files` (or item collections).
    out : path
        Gets ``pairs.parquet`` (the selected pairs), ``match_report.parquet`` (one row
        per HR scene with its status and reason) and the items of both sides
        (``hr_scenes.ndjson``, ``lr_scenes.ndjson``), so that ``out`` alone is the input
        of :func:`patches_from_matches`.
    criteria
        Those of :func:`eo_sr.matching.match_scenes`.

    Returns
    -------
    eo_sr.matching.MatchResult
    """
    from eo_sr import matching, stac

    out = check_output_dir(out)
    hr = stac.read_items(hr_items) if isinstance(hr_items, (str, Path)) else hr_items
    lr = stac.read_items(lr_items) if isinstance(lr_items, (str, Path)) else lr_items
    result = matching.match_scenes(hr, lr, **criteria)
    result.save(out / "match_report.parquet")
    tmp = out / "pairs.parquet.part"
    result.pairs.to_parquet(tmp)
    os.replace(tmp, out / "pairs.parquet")
    stac.write_items(hr, out / "hr_scenes.ndjson")
    stac.write_items(lr, out / "lr_scenes.ndjson")
    return result


def patches_from_matches(match_dir: str | Path, out: str | Path, *, config=None, lr_res: float | None = None,
                         max_pairs: int | None = None, progress: bool = True, replace_stale: bool = False,
                         retry_failed: bool = False):
    """Cut the pairs that :func:`match_to_files` wrote into a patch store at ``out``.

    Returns the manifest of :func:`eo_sr.patches.build_patch_store` (its ``attrs["failed"]``
    lists the pairs that failed, with reasons).
    """
    import pandas as pd

    from eo_sr import patches, stac

    match_dir = Path(match_dir)
    missing = [n for n in PATCH_INPUTS if not (match_dir / n).is_file()]
    if missing:
        raise NotFoundError(f"{match_dir} lacks {', '.join(missing)}: run 'eo-sr match --hr HR.ndjson --lr "
                                f"LR.ndjson --out {match_dir}' first (it writes them)")
    check_output_dir(out, what="patch store folder")
    items = {it.id: it for name in ("hr_scenes", "lr_scenes") for it in stac.read_items(match_dir / f"{name}.ndjson")}
    pairs = pd.read_parquet(match_dir / "pairs.parquet")
    return patches.build_patch_store(pairs, items, out, config=config or patches.PatchConfig(), lr_res=lr_res,
                                     progress=progress, max_pairs=max_pairs, replace_stale=replace_stale,
                                     retry_failed=retry_failed)
