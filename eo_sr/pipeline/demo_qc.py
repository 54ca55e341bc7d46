"""The demo QC recipe: the demo world's patch store and its QC table, built once and cached.

Notebook 07 and the QC app (``eo-sr qc-app``) show the same data; this is where it is made.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eo_sr.errors import InvalidInputError

__all__ = ["DemoQC", "default_lr_size", "demo_store_dir", "prepare_demo_qc"]


def default_lr_size(size: str) -> int:
    """LR patch side used for a demo world size: 16 on "tiny" (2 km hold few 32-pixel patches), else 32."""
    return 16 if size == "tiny" else 32


def demo_store_dir(size: str, seed: int = 0, frames: int = 1) -> Path:
    """Where notebook 07 and the QC app keep the demo patch store (multi-frame stores beside it)."""
    from eo_sr.paths import cache_dir

    return cache_dir("notebooks", "07", size, f"seed{seed}" + (f"-T{frames}" if frames > 1 else ""))


@dataclass
class DemoQC:
    """The demo world, its patch store and QC table (see :func:`prepare_demo_qc`)."""

    world: object
    store: Path
    manifest: object
    table: object


def prepare_demo_qc(size: str = "default", *, seed: int = 0, lr_size: int | None = None, frames: int = 1,
                    progress: bool = False) -> DemoQC:
    """Build (or reuse) the demo patch store and its QC table.

    Matches the demo world's scenes with :data:`eo_sr.demo.MATCH_CRITERIA` (for ``frames`` > 1:
    :data:`eo_sr.demo.MULTI_FRAME_CRITERIA`, with ``k = frames``), cuts the
    pairs into a store under :func:`demo_store_dir`, and runs QC (features,
    clusters, default rules), saved as ``qc_table.parquet`` in the store and reused
    while it is newer than the manifest.

    Raises
    ------
    InvalidInputError
        The store in the cache was built with another ``lr_size``.
    """
    from eo_sr import demo, matching, patches, qc
    from eo_sr.store import open_store, read_config

    world = demo.generate(size, seed=seed, progress=progress)
    store = demo_store_dir(size, seed, frames)
    manifest_path = store / "manifest.parquet"
    config = patches.PatchConfig(lr_size=lr_size or default_lr_size(size), frames=frames)
    criteria = demo.MATCH_CRITERIA if frames == 1 else {**demo.MULTI_FRAME_CRITERIA, "k": frames}
    built = read_config(store)
    if built is not None and built.get("lr_size") != config.lr_size:
        raise InvalidInputError(f"{store} holds patches of {built.get('lr_size')} LR pixels, not {config.lr_size}: "
                                "pass that lr_size, or delete the folder to build it again")
    if manifest_path.is_file() and patches.is_current(store, config):
        manifest = open_store(store).manifest
    else:
        result = matching.match_scenes(world.items(demo.HR_COLLECTION), world.items(demo.LR_COLLECTION),
                                       **criteria)
        manifest = patches.build_patch_store(result.pairs, {it.id: it for it in world.items()}, store,
                                             config=config, progress=progress, replace_stale=True)
    table = qc.store_table(store, decisions=False, progress=progress)
    return DemoQC(world, store, manifest, table)
