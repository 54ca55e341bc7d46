"""What the demo world knows about each patch: is it really corrupted, and how?

Used to score quality control (precision and recall of dropped patches). A patch
pair counts as corrupted when, over the patch, more than ``threshold`` of the pixels
of either image are under cloud, haze or cloud shadow (from the truth masks, which
also record what the SCL and the blue threshold miss), more than
``misregistered_threshold`` of the HR patch lies in the warped part of a scene, or the
land cover changed between the HR and the LR dates on more than ``threshold`` of it.
"""
from __future__ import annotations


from eo_sr.demo import DemoWorld


def _read_on_grid(path, grid, *, resampling="nearest"):
    import rioxarray

    from eo_sr.grid import reproject_to_grid

    with rioxarray.open_rasterio(path) as src:
        return reproject_to_grid(src.isel(band=0).load(), grid, resampling=resampling, nodata=0).values


def patch_truth(world: DemoWorld, manifest, *, factor: int = 4, lr_res: float = 10.0,
                threshold: float = 0.02, misregistered_threshold: float = 0.05):
    """One row per patch: ``patch_id``, fractions per cause, ``corrupted`` and ``reason``.

    Parameters
    ----------
    world : DemoWorld
    manifest : pandas.DataFrame
        A patch store's manifest (``patch_id``, ``hr_id``, ``lr_ids``, ``left`` ...).
    """
    from datetime import datetime

    import pandas as pd

    from eo_sr.grid import aligned_grids

    scenes = world.truth["scenes"]
    change_time = datetime.fromisoformat(world.truth["land_cover_change"]["time"])
    items = {d["id"]: d for d in world.item_dicts()}
    rows = []
    for (hr_id, lr0), group in manifest.groupby([manifest["hr_id"], manifest["lr_ids"].map(lambda v: v[0])]):
        left, bottom = group["left"].min(), group["bottom"].min()
        right, top = group["right"].max(), group["top"].max()
        lr_grid, hr_grid = aligned_grids((left, bottom, right, top), crs=group["crs"].iloc[0], lr_res=lr_res,
                                         factor=factor)
        hr_mask = _read_on_grid(world.hr_truth_mask_path(hr_id), hr_grid)
        lr_mask = _read_on_grid(world.lr_truth_mask_path(lr0), lr_grid)
        hr_after = datetime.fromisoformat(items[hr_id]["properties"]["datetime"].replace("Z", "+00:00")) > change_time
        changed = None
        if hr_after != scenes[lr0]["after_land_cover_change"]:
            before = _read_on_grid(world.landcover_path(), hr_grid)
            after = _read_on_grid(world.landcover_path(after_change=True), hr_grid)
            changed = before != after
        for p in group.itertuples():
            r = int(round((hr_grid.top - p.top) / hr_grid.res))
            c = int(round((p.left - hr_grid.left) / hr_grid.res))
            size = int(round((p.right - p.left) / hr_grid.res))
            m = hr_mask[r:r + size, c:c + size]
            lr_r, lr_c, lr_s = r // factor, c // factor, size // factor
            s = lr_mask[lr_r:lr_r + lr_s, lr_c:lr_c + lr_s]
            fr = {
                "hr_cloud": float((m & 9).astype(bool).mean()), "hr_shadow": float((m & 2).astype(bool).mean()),
                "misregistered": float((m & 4).astype(bool).mean()),
                "lr_cloud": float((s & 9).astype(bool).mean()), "lr_shadow": float((s & 2).astype(bool).mean()),
                "land_cover_change": float(changed[r:r + size, c:c + size].mean()) if changed is not None else 0.0,
            }
            causes = [k for k, v in fr.items()
                      if v > (misregistered_threshold if k == "misregistered" else threshold)]
            rows.append({"patch_id": p.patch_id, **fr, "corrupted": bool(causes),
                         "reason": ",".join(causes) if causes else None})
    return pd.DataFrame(rows)
