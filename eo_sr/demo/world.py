"""Build the demo world: render every acquisition, write COGs, STAC items and the
truth manifest into one folder, atomically."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from eo_sr.demo import acquisition as acq
from eo_sr.demo import landscape as ls
from eo_sr.demo import scenario as sc
from eo_sr.errors import InvalidInputError
from eo_sr.sensors import DEMO_HR, DEMO_LR

GENERATOR_VERSION = "8"
WORLD_CENTRE_LONLAT = (33.40, 35.17)  # Mesaoria plain, Cyprus
UTM_EPSG = 32636
HR_EPSG = 3857
HR_PIXEL_3857 = 3.0  # metres of the Web Mercator grid: 2.45 m on the ground at 35 N
HR_GAIN = np.array([0.93, 0.97, 1.05, 0.90], dtype=np.float32)
HR_BIAS = np.array([0.012, 0.008, 0.004, 0.010], dtype=np.float32)
HR_PSF_SIGMA_TRUTH_PX = 0.45
LR_COLLECTION = "demo-s2-l2a"
HR_COLLECTION = "demo-hr"
TILE_NAMES = {"W": "36SWD", "X": "36SXD"}
BANDS = ("blue", "green", "red", "nir")
# Band names, wavelengths and widths come from the sensor registry (eo_sr.sensors).
LR_BAND_INFO = {b.common_name: (b.name, b.center_wavelength_um, b.full_width_half_max_um) for b in DEMO_LR.bands}
HR_BAND_INFO = {b.common_name: (b.name, b.center_wavelength_um, b.full_width_half_max_um) for b in DEMO_HR.bands}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]


def _write_cog(path: Path, data: np.ndarray, *, crs: int, transform, nodata=0) -> None:
    import rasterio

    if data.ndim == 2:
        data = data[None]
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(
        tmp, "w", driver="COG", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=f"EPSG:{crs}", transform=transform, nodata=nodata,
        compress="deflate", level=1, predictor=2, blocksize=256, overview_resampling="average",
    ) as dst:
        dst.write(data)
    os.replace(tmp, path)


class _Geo:
    """Coordinate conversions between world-local metres, UTM, Web Mercator and lon/lat."""

    def __init__(self, extent_m: float):
        from pyproj import Transformer

        to_utm = Transformer.from_crs(4326, UTM_EPSG, always_xy=True)
        cx, cy = to_utm.transform(*WORLD_CENTRE_LONLAT)
        self.x0 = float(np.floor((cx - extent_m / 2) / 10.0) * 10.0)
        self.y0 = float(np.ceil((cy + extent_m / 2) / 10.0) * 10.0)
        self.extent_m = extent_m
        self.utm_to_ll = Transformer.from_crs(UTM_EPSG, 4326, always_xy=True)
        self.utm_to_hr = Transformer.from_crs(UTM_EPSG, HR_EPSG, always_xy=True)
        self.hr_to_utm = Transformer.from_crs(HR_EPSG, UTM_EPSG, always_xy=True)

    def utm(self, wx, wy):
        return self.x0 + np.asarray(wx), self.y0 - np.asarray(wy)

    def lonlat_polygon(self, poly_utm):
        from shapely.ops import transform

        return transform(lambda x, y: self.utm_to_ll.transform(x, y), poly_utm.segmentize(50.0))


def _rect(geo: _Geo, x0, x1, y0, y1):
    from shapely.geometry import box

    ux0, uy0 = geo.utm(x0, y0)
    ux1, uy1 = geo.utm(x1, y1)
    return box(float(ux0), float(uy1), float(ux1), float(uy0))


def _valid_lr_polygon(geo: _Geo, tile: str):
    """Tile rectangle (UTM) cut by the swath edge for the eastern tile."""
    from shapely.geometry import Polygon

    E = geo.extent_m
    lo, hi = sc.TILE_W if tile == "W" else sc.TILE_X
    rect = _rect(geo, round(lo * E / 10) * 10, round(hi * E / 10) * 10, 0, E)
    if tile == "W":
        return rect
    top, bottom = sc.SWATH_EDGE
    edge_x = lambda wy: (top + (bottom - top) * wy / E) * E  # noqa: E731
    corners = [(-E, -E), (edge_x(-E), -E), (edge_x(2 * E), 2 * E), (-E, 2 * E)]
    swath = Polygon([tuple(float(v) for v in geo.utm(x, y)) for x, y in corners])
    return rect.intersection(swath)


def _swath_valid(geo: _Geo, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    top, bottom = sc.SWATH_EDGE
    edge = (top + (bottom - top) * (wy / geo.extent_m)) * geo.extent_m
    return wx < edge


def _asset(href: Path, band: str, info, *, gsd, shape, transform, offset=0.0):
    name, wl, fwhm = info[band]
    return {
        "href": href.as_uri(), "type": COG_TYPE, "title": f"{band.capitalize()} ({name})",
        "roles": ["data", "reflectance"], "gsd": gsd,
        "eo:bands": [{"name": name, "common_name": band, "center_wavelength": wl, "full_width_half_max": fwhm}],
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "spatial_resolution": gsd,
                          "scale": 0.0001, "offset": offset}],
        "proj:shape": list(shape), "proj:transform": list(transform)[:6],
    }


def _item(item_id, collection, when, geom_ll, epsg, props, assets):
    from shapely.geometry import mapping

    return {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": EXTENSIONS, "id": item_id,
        "collection": collection, "geometry": mapping(geom_ll), "bbox": list(geom_ll.bounds),
        "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "proj:code": f"EPSG:{epsg}",
                       **props},
        "assets": assets, "links": [],
    }


#: LR dates whose sun elevations lie within this many degrees of each other share the
#: shadows of trees and buildings (cast with the group's mean sun): at 10 m the shadows
#: of 30 and 40 degrees differ by a fraction of a pixel, and blurring the truth once
#: per group instead of once per date keeps the world fast to make.
LR_SHADOW_BAND_DEG = 10.0


def lr_shadow_suns(scen: sc.Scenario) -> list[tuple[float, float]]:
    """The sun (azimuth, elevation) each LR date casts the objects' shadows with."""
    suns = [sc.sun_position(d.when, *WORLD_CENTRE_LONLAT) for d in scen.lr_dates]
    group, start, g = {}, None, -1
    for i in sorted(range(len(suns)), key=lambda i: suns[i][1]):  # greedy, from the lowest sun up
        if start is None or suns[i][1] - start > LR_SHADOW_BAND_DEG:
            start, g = suns[i][1], g + 1
        group[i] = g
    mean = {k: tuple(round(float(np.mean([suns[i][j] for i in group if group[i] == k])), 3) for j in (0, 1))
            for k in set(group.values())}
    return [mean[group[i]] for i in range(len(suns))]


def _day_of_season(when) -> float:
    return (when - ls.SEASON_START).total_seconds() / 86400.0


#: What a generated world holds: replacing a world removes these and refuses anything else.
WORLD_ENTRIES = frozenset({"items.ndjson", "collections", "lr", "hr", "labels.parquet", "truth", "truth.json",
                           "checksums.json"})


def check_replaceable(root: Path) -> None:
    """Refuse to put a world where it would delete files eo-sr did not write.

    ``root`` may be missing, an empty folder, or a world generated earlier that holds
    nothing but its own files.

    Raises
    ------
    InvalidInputError
        ``root`` is a file, or a folder with other files in it.
    """
    if not root.exists():
        return
    if not root.is_dir():
        raise InvalidInputError(f"{root} is a file; give a folder for the demo world")
    entries = {p.name for p in root.iterdir()}
    if not entries:
        return
    is_world = False
    try:
        is_world = "generator_version" in json.loads((root / "truth.json").read_text())
    except (OSError, ValueError):
        pass
    if not is_world:
        raise InvalidInputError(f"{root} is not empty and holds no demo world (no eo-sr truth.json): eo-sr will "
                                "not write over it; choose a new or empty folder for --root")
    foreign = sorted(entries - WORLD_ENTRIES)
    if foreign:
        raise InvalidInputError(f"{root} holds a demo world and also files eo-sr did not write "
                                f"({', '.join(foreign[:5])}); move them out before regenerating, "
                                "or choose another folder")


def build_world(root: Path, size: str, seed: int, *, progress: bool = True) -> dict:
    """Generate the world into ``root`` (see :func:`check_replaceable`); returns timings."""
    from rasterio.transform import from_origin
    from tqdm.auto import tqdm

    timings = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    scen = sc.make_scenario(size, seed, rng)
    E = scen.extent_m
    geo = _Geo(E)
    land = ls.make_landscape(np.random.default_rng([seed, 1]), E, (geo.x0, geo.y0))
    timings["landscape_s"] = time.perf_counter() - t0

    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for sub in ("lr", "hr", "truth/hr_masks", "truth/lr_masks", "collections"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        items, truth_scenes = [], {}

        # --- LR: one datatake per date, cut into two overlapping tiles -------------
        t1 = time.perf_counter()
        n_lr = int(round(E / 10))
        lr_transform_world = from_origin(geo.x0, geo.y0, 10.0, 10.0)
        rows, cols = np.mgrid[0:n_lr, 0:n_lr].astype(np.float32)
        wx_c, wy_c = (cols + 0.5) * 10.0, (rows + 0.5) * 10.0
        swath_ok = _swath_valid(geo, wx_c, wy_c)
        tile_cols = {t: (int(round(lo * E / 10)), int(round(hi * E / 10)))
                     for t, (lo, hi) in (("W", sc.TILE_W), ("X", sc.TILE_X))}
        lr_ids = {}
        sigma = acq.LR_PSF_SIGMA_PX * 10.0 / ls.TRUTH_GSD
        changed = set(np.unique(land.classes[land.classes != land.classes_after]).tolist())
        # the built-up class gains pixels and bare soil loses the soil seen between plants
        changed |= {ls.CLASS_IDS["built_up"], ls.CLASS_IDS["bare_soil"]} if changed else set()
        suns = lr_shadow_suns(scen)
        maps_sun = None
        for di, lrd in enumerate(tqdm(scen.lr_dates, desc="demo world: LR dates", disable=not progress)):
            drng = np.random.default_rng([seed, 2, di])
            after = lrd.when > scen.change_time
            if suns[di] != maps_sun:  # the shadows of trees and buildings change with the sun
                maps_sun, maps, before, after_maps = suns[di], None, None, None  # free the old maps first
                shade = land.shade(*maps_sun)
                before = ls.blurred_class_maps(land, sigma, after_change=False, shade=shade)
                after_maps = {**before, **ls.blurred_class_maps(land, sigma, after_change=True, only=changed,
                                                                 shade=shade)}
                del shade
            maps = after_maps if after else before
            table = ls.spectra(_day_of_season(lrd.when)).astype(np.float32)
            shift = drng.uniform(-0.3, 0.3, size=2) * 10.0  # metres, |shift| <= 0.3 LR px per axis
            coords = np.stack([(wy_c + shift[1]) / ls.TRUTH_GSD - 0.5, (wx_c + shift[0]) / ls.TRUTH_GSD - 0.5])
            lr = np.zeros((4, n_lr, n_lr), np.float32)
            for cid, layer in maps.items():
                lr += table[cid][:, None, None] * ndimage.map_coordinates(layer, coords, order=1, mode="nearest")
            az, el = sc.sun_position(lrd.when, *WORLD_CENTRE_LONLAT)
            clouds = acq.CloudField(drng, E, lrd.cloud_fraction, sun_azimuth=az, sun_elevation=el,
                                    cloud_height=float(drng.uniform(800, 1500)))
            thick, shadow = clouds.sample(wx_c, wy_c)
            seen = acq.add_noise(drng, acq.apply_atmosphere(lr, thick, shadow), acq.LR_SNR)
            baseline4 = lrd.when >= sc.BASELINE_04_START
            harmonised = lrd.when >= sc.PROVIDER_HARMONISED_FROM  # the catalogue removed the offset
            offset_in_pixels = baseline4 and not harmonised
            for tile, (c0, c1) in tile_cols.items():
                valid = np.zeros((n_lr, n_lr), bool)
                valid[:, c0:c1] = True
                if tile == "X":
                    valid &= swath_ok
                sl = (slice(None), slice(c0, c1))
                dn = acq.to_dn(seen[(slice(None), *sl)], valid[sl],
                               offset=acq.BOA_OFFSET_DN if offset_in_pixels else 0)
                scl = acq.scene_classification(seen[(slice(None), *sl)], thick[sl], shadow[sl], valid[sl])
                item_id = f"DEMO_S{lrd.platform[-2:].upper()}_{TILE_NAMES[tile]}_{lrd.when:%Y%m%d}_L2A"
                lr_ids[(di, tile)] = item_id
                folder = tmp / "lr" / item_id
                folder.mkdir()
                transform = lr_transform_world @ lr_transform_world.translation(c0, 0)
                final = root / "lr" / item_id
                assets = {}
                for b, band in enumerate(BANDS):
                    _write_cog(folder / f"{band}.tif", dn[b], crs=UTM_EPSG, transform=transform)
                    # like Earth Search: -0.1 from baseline 04.00 on, even where the offset was removed
                    # (Element84/earth-search#9): the item's flag, not this, tells
                    assets[band] = _asset(final / f"{band}.tif", band, LR_BAND_INFO, gsd=10.0, shape=dn.shape[1:],
                                          transform=transform, offset=-0.1 if baseline4 else 0.0)
                _write_cog(folder / "scl.tif", scl, crs=UTM_EPSG, transform=transform)
                _write_cog(tmp / "truth" / "lr_masks" / f"{item_id}.tif",
                           acq.truth_mask(thick[sl], shadow[sl], valid[sl]), crs=UTM_EPSG, transform=transform,
                           nodata=None)
                assets["scl"] = {
                    "href": (final / "scl.tif").as_uri(), "type": COG_TYPE, "title": "Scene classification map (SCL)",
                    "roles": ["data", "cloud", "snow-ice"], "gsd": 10.0,
                    "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 10.0}],
                    "proj:shape": list(scl.shape), "proj:transform": list(transform)[:6],
                }
                n_valid = max(int((scl > 0).sum()), 1)
                pct = lambda *codes: round(100.0 * float(np.isin(scl, codes).sum()) / n_valid, 4)  # noqa: E731
                geom = geo.lonlat_polygon(_valid_lr_polygon(geo, tile))
                props = {
                    "platform": lrd.platform, "constellation": "sentinel-2", "instruments": ["msi"], "gsd": 10.0,
                    "eo:cloud_cover": pct(*acq.SCL_CLOUDY),
                    "s2:nodata_pixel_percentage": round(100.0 * float((scl == 0).mean()), 4),
                    "s2:cloud_shadow_percentage": pct(acq.SCL_SHADOW),
                    "s2:medium_proba_clouds_percentage": pct(acq.SCL_CLOUD_MED),
                    "s2:high_proba_clouds_percentage": pct(acq.SCL_CLOUD_HIGH),
                    "s2:vegetation_percentage": pct(acq.SCL_VEG), "s2:not_vegetated_percentage": pct(acq.SCL_BARE),
                    "s2:water_percentage": pct(acq.SCL_WATER),
                    "s2:processing_baseline": "04.00" if baseline4 else "03.01",
                    "earthsearch:boa_offset_applied": bool(harmonised),
                    "s2:product_type": "S2MSI2A", "grid:code": f"MGRS-{TILE_NAMES[tile]}",
                    "mgrs:utm_zone": 36, "mgrs:latitude_band": "S", "mgrs:grid_square": TILE_NAMES[tile][3:],
                    "view:sun_azimuth": round(az, 3), "view:sun_elevation": round(el, 3),
                    "proj:bbox": list(_rect(geo, c0 * 10, c1 * 10, 0, E).bounds),
                }
                items.append(_item(item_id, LR_COLLECTION, lrd.when, geom, UTM_EPSG, props, assets))
                truth_scenes[item_id] = {
                    "kind": "lr", "tile": tile, "date_index": di, "shift_m": [float(shift[0]), float(shift[1])],
                    "boa_offset": bool(offset_in_pixels), "after_land_cover_change": bool(after),
                    "cloud_fraction_target": lrd.cloud_fraction, "object_shadow_sun": list(maps_sun),
                }
        del before, after_maps
        timings["lr_s"] = time.perf_counter() - t1

        # --- HR: each scene on its own Web Mercator grid ---------------------------
        t2 = time.perf_counter()
        h = scen.hr_side_m
        for si, scene in enumerate(tqdm(scen.hr_scenes, desc="demo world: HR scenes", disable=not progress)):
            srng = np.random.default_rng([seed, 3, si])
            item_id = f"DEMO_HR_{scene.when:%Y%m%dT%H%M%S}_{si:03d}"
            cx, cy = scene.centre
            foot_utm = _rect(geo, cx - h / 2, cx + h / 2, cy - h / 2, cy + h / 2)
            from shapely.ops import transform as shp_transform

            foot_hr = shp_transform(lambda x, y: geo.utm_to_hr.transform(x, y), foot_utm.segmentize(20.0))
            minx, miny, maxx, maxy = foot_hr.bounds
            px = HR_PIXEL_3857
            left, top = np.floor(minx / px) * px, np.ceil(maxy / px) * px
            width, height = int(np.ceil((maxx - left) / px)), int(np.ceil((top - miny) / px))
            transform = from_origin(left, top, px, px)
            # Exact Web Mercator -> UTM on a coarse lattice, bilinear in between (the map is smooth).
            step = 32
            lr_rows = np.arange(0, height + step, step, dtype=np.float64)
            lr_cols = np.arange(0, width + step, step, dtype=np.float64)
            gc, gr = np.meshgrid(lr_cols, lr_rows)
            ux, uy = geo.hr_to_utm.transform(left + gc * px, top - gr * px)
            r, c = np.mgrid[0:height, 0:width].astype(np.float32)
            rr, cc = (r + 0.5) / step, (c + 0.5) / step
            wx = ndimage.map_coordinates(ux - geo.x0, [rr, cc], order=1, mode="nearest").astype(np.float32)
            wy = ndimage.map_coordinates(geo.y0 - uy, [rr, cc], order=1, mode="nearest").astype(np.float32)
            valid = (wx >= cx - h / 2) & (wx < cx + h / 2) & (wy >= cy - h / 2) & (wy < cy + h / 2)
            # Geolocation error: a rigid shift for every scene, plus a warp for one of them.
            shift = srng.normal(0, 1.5, size=2)
            sx, sy = wx + shift[0], wy + shift[1]
            misreg = np.zeros((height, width), bool)
            if scene.misregistered:
                disp = acq.displacement_field(srng, (height, width), amplitude_px=6.0, scale_px=300.0)
                sx, sy = sx + disp[1] * px, sy + disp[0] * px
                # beyond the ~1 px that rigid geolocation and LR co-registration errors give every pair
                misreg = np.hypot(disp[0], disp[1]) > 1.5
            day = _day_of_season(scene.when)
            after = scene.when > scen.change_time
            pad = 20  # truth pixels: room for the shadows that trees and buildings outside cast inside
            r0 = max(int(np.floor(sy.min() / ls.TRUTH_GSD)) - pad, 0)
            c0 = max(int(np.floor(sx.min() / ls.TRUTH_GSD)) - pad, 0)
            r1 = min(int(np.ceil(sy.max() / ls.TRUTH_GSD)) + pad, land.shape[0])
            c1 = min(int(np.ceil(sx.max() / ls.TRUTH_GSD)) + pad, land.shape[1])
            az, el = sc.sun_position(scene.when, *WORLD_CENTRE_LONLAT)
            window = (slice(r0, r1), slice(c0, c1))
            refl = ls.reflectance(land, day, after_change=after, window=window,
                                  shade=land.shade(az, el, window=window))
            coords = np.stack([sy / ls.TRUTH_GSD - 0.5 - r0, sx / ls.TRUTH_GSD - 0.5 - c0])
            img = np.stack([
                ndimage.map_coordinates(ndimage.gaussian_filter(refl[b], HR_PSF_SIGMA_TRUTH_PX), coords,
                                        order=1, mode="nearest")
                for b in range(4)
            ])
            # A scene cast as cloudy must also show shadows: redraw until some fall on it.
            for _ in range(25):
                clouds = acq.CloudField(srng, E, scene.cloud_fraction, sun_azimuth=az, sun_elevation=el,
                                        cloud_height=float(srng.uniform(800, 1500)), step=10.0,
                                        region=(cx - h / 2, cx + h / 2, cy - h / 2, cy + h / 2))
                thick, shadow = clouds.sample(wx, wy)
                if scene.cloud_fraction < 0.05 or ((shadow > acq.SHADOW_MIN) & (thick < acq.CLOUD_MED)).mean() > 0.03:
                    break
            seen = acq.add_noise(srng, acq.apply_atmosphere(img, thick, shadow), acq.HR_SNR)
            scene_gain = HR_GAIN * srng.uniform(0.96, 1.04)
            dn = acq.to_dn(seen, valid, gain=scene_gain, bias=HR_BIAS)
            folder = tmp / "hr" / item_id
            folder.mkdir()
            final = root / "hr" / item_id
            assets = {}
            for b, band in enumerate(BANDS):
                _write_cog(folder / f"{band}.tif", dn[b], crs=HR_EPSG, transform=transform)
                assets[band] = _asset(final / f"{band}.tif", band, HR_BAND_INFO, gsd=2.5, shape=dn.shape[1:],
                                      transform=transform)
            cloud_px = (thick > acq.CLOUD_MED) & valid
            shadow_px = (shadow > acq.SHADOW_MIN) & ~cloud_px & valid
            mask = acq.truth_mask(thick, shadow, valid) | ((misreg & valid) * 4).astype(np.uint8)
            _write_cog(tmp / "truth" / "hr_masks" / f"{item_id}.tif", mask, crs=HR_EPSG, transform=transform,
                       nodata=None)
            n_valid = max(int(valid.sum()), 1)
            props = {
                "platform": "demo-hr-1", "constellation": "demo-hr", "instruments": ["hrmsi"], "gsd": 2.5,
                "eo:cloud_cover": round(100.0 * float(cloud_px.sum()) / n_valid, 4),
                "view:sun_azimuth": round(az, 3), "view:sun_elevation": round(el, 3),
                "view:off_nadir": round(float(srng.uniform(0, 20)), 2),
                "proj:bbox": [left, top - height * px, left + width * px, top],
            }
            items.append(_item(item_id, HR_COLLECTION, scene.when, geo.lonlat_polygon(foot_utm), HR_EPSG, props,
                               assets))
            truth_scenes[item_id] = {
                "kind": "hr", "role": scene.role, "shift_m": [float(shift[0]), float(shift[1])],
                "misregistered": scene.misregistered, "after_land_cover_change": bool(after),
                "object_shadow_sun": [az, el],
                "cloud_fraction": float(cloud_px.sum()) / n_valid,
                "shadow_fraction": float(shadow_px.sum()) / n_valid,
                "gain": [float(g) for g in scene_gain], "bias": [float(b) for b in HR_BIAS],
                "footprint_utm": list(foot_utm.bounds),
                "expected_match": {
                    "status": scene.expected_status, "reason": scene.expected_reason,
                    "lr_ids": [lr_ids[k] for k in scene.expected_lr],
                },
            }
        timings["hr_s"] = time.perf_counter() - t2

        # --- truth rasters, labels, collections, manifest -------------------------
        t3 = time.perf_counter()
        truth_transform = from_origin(geo.x0, geo.y0, ls.TRUTH_GSD, ls.TRUTH_GSD)
        _write_cog(tmp / "truth" / "landcover_before.tif", land.classes, crs=UTM_EPSG, transform=truth_transform)
        _write_cog(tmp / "truth" / "landcover_after.tif", land.classes_after, crs=UTM_EPSG, transform=truth_transform)
        _write_labels(tmp / "labels.parquet", land, scen)
        world_ll = geo.lonlat_polygon(_rect(geo, 0, E, 0, E))
        with open(tmp / "items.ndjson", "w") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
        for coll in _collections(items, world_ll):
            (tmp / "collections" / f"{coll['id']}.json").write_text(json.dumps(coll, indent=1))
        manifest = {
            "generator_version": GENERATOR_VERSION, "size": size, "seed": int(seed),
            "crs": f"EPSG:{UTM_EPSG}", "extent_m": E, "origin_utm": [geo.x0, geo.y0],
            "aoi_lonlat": list(world_ll.bounds), "aoi_geometry": json.loads(json.dumps(world_ll.__geo_interface__)),
            "match_criteria": sc.MATCH_CRITERIA,
            "land_cover_change": {"time": scen.change_time.isoformat(), "parcel_ids": land.changed_parcels,
                                  "to_class": "built_up"},
            "classes": ls.CLASSES, "scenes": truth_scenes,
            "realism": {
                "lr_psf_sigma_px": acq.LR_PSF_SIGMA_PX, "lr_snr": acq.LR_SNR.tolist(), "hr_snr": acq.HR_SNR.tolist(),
                "lr_coregistration_max_px": 0.3, "hr_geolocation_sigma_m": 1.5, "hr_pixel_3857_m": HR_PIXEL_3857,
                "boa_offset_dn": acq.BOA_OFFSET_DN, "baseline_04_start": sc.BASELINE_04_START.isoformat(),
                "provider_harmonised_from": sc.PROVIDER_HARMONISED_FROM.isoformat(),
            },
        }
        (tmp / "truth.json").write_text(json.dumps(manifest, indent=1))
        timings["write_truth_s"] = time.perf_counter() - t3
        (tmp / "checksums.json").write_text(json.dumps(_checksums(tmp), indent=1))
        check_replaceable(root)  # again: files may have appeared while the world was made
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    timings["total_s"] = time.perf_counter() - t0
    return timings


def _write_labels(path: Path, land: ls.Landscape, scen: sc.Scenario) -> None:
    import geopandas as gpd

    year = scen.lr_dates[-1].when.year
    rows = [{
        "parcel_id": int(p["parcel_id"]), "ground_truth": ls.CLASS_IDS[p["class_name"]],
        "class_name": p["class_name"], "year": year,
        "changed_to": "built_up" if p["parcel_id"] in land.changed_parcels else None,
        "geometry": p["geometry"],
    } for p in land.parcels]
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=f"EPSG:{UTM_EPSG}")
    tmp = path.with_name(path.name + ".part")
    gdf.to_parquet(tmp)
    os.replace(tmp, path)


def _collections(items: list[dict], world_ll) -> list[dict]:
    out = []
    for cid, title, gsd, info, platform in (
        (LR_COLLECTION, "Demo Sentinel-2-like L2A (10 m)", 10.0, LR_BAND_INFO, ["sentinel-2a", "sentinel-2b"]),
        (HR_COLLECTION, "Demo Deimos-2-like HR (2.5 m nominal, EPSG:3857)", 2.5, HR_BAND_INFO, ["demo-hr-1"]),
    ):
        times = sorted(it["properties"]["datetime"] for it in items if it["collection"] == cid)
        out.append({
            "type": "Collection", "stac_version": "1.1.0", "id": cid, "title": title,
            "description": f"{title}: simulated scenes of the eo-sr offline demo world (Mesaoria plain, Cyprus).",
            "license": "CC0-1.0", "stac_extensions": EXTENSIONS[:3],
            "extent": {"spatial": {"bbox": [list(world_ll.bounds)]}, "temporal": {"interval": [[times[0], times[-1]]]}},
            "summaries": {"gsd": [gsd], "platform": platform,
                          "eo:bands": [{"name": v[0], "common_name": k, "center_wavelength": v[1]}
                                       for k, v in info.items()]},
            "links": [],
        })
    return out


def _checksums(folder: Path) -> dict:
    """SHA-256 of every raster and of the manifest (hrefs differ between folders)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".tif", ".parquet") or p.name == "truth.json":
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
