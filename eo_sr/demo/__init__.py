"""The offline demo world: two simulated sensors over one area, as COGs with STAC
items, served by a real STAC API on 127.0.0.1.

No machine in a workshop is sure to reach a public STAC API, so the whole tutorial
runs against this world; pointing the catalog at Earth Search or Planetary Computer
runs the same code on real data.

>>> from eo_sr import demo
>>> world = demo.generate("tiny", seed=0)          # doctest: +SKIP
>>> with demo.serve_world(world) as server:         # doctest: +SKIP
...     print(server.url)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from eo_sr.paths import cache_dir
from eo_sr.demo.scenario import MATCH_CRITERIA, MULTI_FRAME_CRITERIA, SIZES, check_size_and_seed
from eo_sr.errors import InvalidInputError, NotFoundError

__all__ = ["DemoWorld", "generate", "open_world", "serve_world", "SIZES", "MATCH_CRITERIA", "MULTI_FRAME_CRITERIA",
           "LR_COLLECTION", "HR_COLLECTION"]

LR_COLLECTION = "demo-s2-l2a"
HR_COLLECTION = "demo-hr"


@dataclass(frozen=True)
class DemoWorld:
    """A generated demo world on disk.

    Attributes
    ----------
    root : pathlib.Path
        The folder holding ``items.ndjson``, ``collections/``, ``lr/``, ``hr/``,
        ``labels.parquet``, ``truth/`` and ``truth.json``.
    """

    root: Path

    @cached_property
    def truth(self) -> dict:
        """The truth manifest: scenario, per-scene corruption, expected matches."""
        return json.loads((self.root / "truth.json").read_text())

    @property
    def size(self) -> str:
        return self.truth["size"]

    @property
    def seed(self) -> int:
        return self.truth["seed"]

    @property
    def items_path(self) -> Path:
        return self.root / "items.ndjson"

    @property
    def labels_path(self) -> Path:
        """GeoParquet of crop parcels (parcel_id, ground_truth, class_name, year)."""
        return self.root / "labels.parquet"

    def landcover_path(self, *, after_change: bool = False) -> Path:
        """The exact land-cover map (uint8 COG, 2.5 m, UTM) before or after the change."""
        return self.root / "truth" / f"landcover_{'after' if after_change else 'before'}.tif"

    def hr_truth_mask_path(self, item_id: str) -> Path:
        """Per-pixel truth of an HR scene: bit 1 cloud, 2 cloud shadow, 4 misregistered (the
        non-rigid warp moves the pixel by more than 1.5 HR pixels), 8 thin cloud or haze."""
        return self.root / "truth" / "hr_masks" / f"{item_id}.tif"

    def lr_truth_mask_path(self, item_id: str) -> Path:
        """Per-pixel truth of an LR scene: bit 1 cloud, 2 cloud shadow, 8 thin cloud or haze
        (the SCL misses haze and faint shadows, as real masks do)."""
        return self.root / "truth" / "lr_masks" / f"{item_id}.tif"

    @property
    def aoi(self):
        """The world's extent as a shapely polygon in longitude/latitude."""
        from shapely.geometry import shape

        return shape(self.truth["aoi_geometry"])

    @property
    def bbox(self) -> list[float]:
        """``[west, south, east, north]`` in degrees."""
        return list(self.truth["aoi_lonlat"])

    def collections(self) -> list[dict]:
        """The two STAC collections as dicts."""
        return [json.loads(p.read_text()) for p in sorted((self.root / "collections").glob("*.json"))]

    def item_dicts(self, collection: str | None = None) -> list[dict]:
        items = [json.loads(line) for line in self.items_path.read_text().splitlines() if line.strip()]
        return [it for it in items if collection is None or it["collection"] == collection]

    def items(self, collection: str | None = None):
        """All items (or one collection's) as a ``pystac.ItemCollection``."""
        import pystac

        return pystac.ItemCollection([pystac.Item.from_dict(d) for d in self.item_dicts(collection)])

    def expected_matches(self):
        """One row per HR scene: role, expected status, reason and LR ids (a DataFrame)."""
        import pandas as pd

        rows = [{"hr_id": k, "role": v["role"], **v["expected_match"]}
                for k, v in self.truth["scenes"].items() if v["kind"] == "hr"]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        n_lr = len(self.item_dicts(LR_COLLECTION))
        n_hr = len(self.item_dicts(HR_COLLECTION))
        mb = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()) / 2**20
        w, s, e, n = self.bbox
        return (f"demo world '{self.size}' (seed {self.seed}) at {self.root}\n"
                f"  {n_lr} LR scenes ({LR_COLLECTION}), {n_hr} HR scenes ({HR_COLLECTION}), {mb:.0f} MB\n"
                f"  AOI lon {w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}")


def open_world(root: str | Path) -> DemoWorld:
    """Open a world generated earlier; raise if the folder does not hold one."""
    root = Path(root)
    if not (root / "truth.json").is_file():
        raise NotFoundError(f"{root} holds no demo world (no truth.json); create one with eo_sr.demo.generate()")
    return DemoWorld(root.resolve())


def generate(size: str = "default", *, seed: int = 0, root: str | Path | None = None,
             overwrite: bool = False, progress: bool = True) -> DemoWorld:
    """Generate the demo world, or reuse it if it already exists.

    Deterministic: the same size and seed give byte-identical rasters.
    Written to a temporary folder and renamed at the end, so an interrupted run
    never leaves a half-written world.

    Parameters
    ----------
    size : {"tiny", "default"}
        ``"tiny"`` (about 2 km across, seconds) for tests; ``"default"`` (7.7 km
        across, enough for more than 500 LR/HR patch pairs) for the tutorial.
    seed : int
        Random seed, 0 <= seed < 2**32.
    root : path, optional
        Where to write; default ``<cache>/demo/<size>-seed<seed>``.
    overwrite : bool
        Regenerate even if a world is already there. A folder that holds anything but a
        world eo-sr generated is never written over: that raises instead.
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    DemoWorld

    Raises
    ------
    UnknownNameError
        ``size`` is not one of :data:`SIZES`.
    InvalidInputError
        ``seed`` is not a non-negative integer, or ``root`` holds files that are not a
        demo world (eo-sr deletes nothing it did not write).
    """
    from eo_sr.demo.world import GENERATOR_VERSION, build_world, check_replaceable

    check_size_and_seed(size, seed)
    root = Path(root) if root is not None else cache_dir("demo") / f"{size}-seed{seed}"
    root = root.resolve()
    manifest = root / "truth.json"
    if manifest.is_file() and not overwrite:
        try:
            truth = json.loads(manifest.read_text())
        except (OSError, ValueError):
            truth = {}
        if truth.get("generator_version") == GENERATOR_VERSION and truth.get("size") == size \
                and truth.get("seed") == seed:
            return DemoWorld(root)
    check_replaceable(root)  # before a minute of work, not after it
    root.parent.mkdir(parents=True, exist_ok=True)
    build_world(root, size, int(seed), progress=progress)
    return DemoWorld(root)


def serve_world(world: DemoWorld, *, port: int | None = None):
    """Start the local STAC API on 127.0.0.1 with the world's collections and items.

    Returns a running :class:`eo_sr.localapi.server.LocalStacServer` (a context manager).
    """
    from eo_sr.localapi.server import serve

    return serve(world.collections(), world.items_path, port=port)
