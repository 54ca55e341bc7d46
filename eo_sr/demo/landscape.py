"""The demo world's "truth": a landscape of crop parcels, trees, grass, water,
buildings and roads, with per-class spectra that follow the seasons.

The landscape sits on the Mesaoria plain of Cyprus (one of the two areas of the
multi-temporal SR study the tutorial follows), in UTM zone 36N. Winter is the green
season there: cereals are sown in November, green up in January to March and dry
out in April, which is the period the demo world covers.

Everything is rendered on the *truth grid*: 2.5 m pixels in UTM whose edges
coincide with the 10 m grid of the low-resolution sensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from scipy import ndimage

from eo_sr.demo import texture

TRUTH_GSD = 2.5

# (id, name, DFC2020-like group). Ids are the values of the land-cover rasters.
CLASSES = {
    1: "water",
    2: "trees",
    3: "grassland",
    4: "wheat",
    5: "barley",
    6: "bare_soil",
    7: "built_up",
    8: "road",
}
CLASS_IDS = {name: cid for cid, name in CLASSES.items()}
CROP_CLASSES = ("wheat", "barley", "grassland", "bare_soil")

# Reflectance (blue, green, red, nir) of each class when green and when dry.
_GREEN = {
    "water": (0.060, 0.052, 0.030, 0.015),
    "trees": (0.030, 0.058, 0.038, 0.300),
    "grassland": (0.040, 0.080, 0.050, 0.330),
    "wheat": (0.030, 0.070, 0.035, 0.440),
    "barley": (0.032, 0.075, 0.040, 0.420),
    "bare_soil": (0.095, 0.140, 0.195, 0.255),
    "built_up": (0.150, 0.170, 0.190, 0.230),
    "road": (0.085, 0.095, 0.105, 0.125),
}
_DRY = {
    "water": (0.060, 0.052, 0.030, 0.015),
    "trees": (0.034, 0.060, 0.045, 0.270),
    "grassland": (0.075, 0.115, 0.140, 0.250),
    "wheat": (0.090, 0.130, 0.170, 0.280),
    "barley": (0.092, 0.135, 0.175, 0.275),
    "bare_soil": (0.095, 0.140, 0.195, 0.255),
    "built_up": (0.150, 0.170, 0.190, 0.230),
    "road": (0.085, 0.095, 0.105, 0.125),
}
# Green fraction over the season: (day of green-up midpoint, day of dry-down midpoint,
# width in days), days counted from 1 November. Sown fields start as bare soil.
_PHENOLOGY = {
    "grassland": (60.0, 165.0, 12.0),
    "wheat": (85.0, 170.0, 10.0),
    "barley": (70.0, 155.0, 10.0),
    "trees": (-50.0, 400.0, 30.0),
}
SEASON_START = datetime(2021, 11, 1, tzinfo=timezone.utc)


def green_fraction(class_name: str, day: float) -> float:
    """Fraction of the green spectrum a class shows ``day`` days after 1 November."""
    if class_name not in _PHENOLOGY:
        return 0.0
    up, down, width = _PHENOLOGY[class_name]
    rise = 1.0 / (1.0 + np.exp(-(day - up) / width))
    fall = 1.0 / (1.0 + np.exp((day - down) / width))
    return float(rise * fall)


def spectra(day: float) -> np.ndarray:
    """Reflectance of every class on a day: array ``(n_classes + 1, 4)``, row 0 zero."""
    out = np.zeros((len(CLASSES) + 1, 4), dtype=np.float64)
    for cid, name in CLASSES.items():
        f = green_fraction(name, day)
        out[cid] = f * np.asarray(_GREEN[name]) + (1 - f) * np.asarray(_DRY[name])
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian random field with unit variance and correlation length ``scale`` pixels.

    Large scales are drawn on a coarse grid and interpolated, which keeps the cost
    independent of the scale.
    """
    step = max(1, int(scale // 4))
    coarse_shape = (shape[0] // step + 3, shape[1] // step + 3)
    field_ = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), scale / step, mode="wrap")
    if step > 1:
        field_ = ndimage.zoom(field_, step, order=1)
    field_ = field_[: shape[0], : shape[1]]
    field_ = field_ - field_.mean()
    return (field_ / (field_.std() + 1e-12)).astype(np.float32)


@dataclass
class Landscape:
    """The rendered truth on the truth grid.

    Attributes
    ----------
    classes : ndarray of uint8, shape (n, n)
        Land-cover class id per truth pixel before the land-cover change: what is
        drawn there (a tree crown is ``trees``, a farm track ``bare_soil``, a field
        margin ``grassland``).
    classes_after : ndarray of uint8
        The same after the change (some parcels became built-up).
    brightness : ndarray of float32
        Multiplicative texture: per-parcel factors, fractal variation inside fields,
        tramlines, tree crowns, roof materials.
    height : ndarray of float32
        Height of trees and buildings above the ground (metres); they cast shadows.
    cover : ndarray of float32
        Share of a pixel of a field or grassland that the plants cover; the rest shows
        bare soil (counted only where the class is one of VEGETATED: after the
        land-cover change a built-over field shows no soil). Patchy cover is what makes fields rough
        in the red band, where soil and green plants differ most.
    parcels : list of dict
        Vector labels: parcel id, class name, shapely polygon in UTM metres.
    changed_parcels : list of int
        Ids of the parcels that changed class.
    origin : (float, float)
        UTM x of the left edge and y of the top edge of the grid.
    """

    classes: np.ndarray
    classes_after: np.ndarray
    brightness: np.ndarray
    height: np.ndarray = None
    cover: np.ndarray = None
    parcels: list = field(default_factory=list)
    changed_parcels: list = field(default_factory=list)
    origin: tuple = (0.0, 0.0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.classes.shape

    def shade(self, sun_azimuth: float, sun_elevation: float, *, window=None) -> np.ndarray:
        """Factor (<= 1) by which the shadows of trees and buildings darken each pixel."""
        height = self.height if window is None else self.height[window]
        shadow = texture.cast_shadows(height, sun_azimuth=sun_azimuth, sun_elevation=sun_elevation,
                                      pixel_m=TRUTH_GSD)
        return 1.0 - np.float32(1.0 - texture.SHADOW_DIFFUSE) * shadow


# Within-field variation (fraction of the field's brightness) and tramline contrast.
FIELD_BETA = 2.2
FIELD_TEXTURE = (0.10, 0.20)
# Clumps of plants, stones, furrows: variation at the scale of a pixel or two, everywhere.
FINE_TEXTURE, FINE_BETA = 0.10, 1.0
# Tramlines: in a crop the wheels leave soil showing (this share of the line's
# pixels at most); on bare soil the compacted track is darker by this much.
TRAMLINE_SOIL = (0.3, 0.6)
TRAMLINE_CONTRAST = (0.05, 0.15)
TRAMLINE_SPACING_M = (12.0, 24.0)
#: Plant cover of fields and grassland: the field's mean (uniform in the range) and its
#: variation, a fractal field as the brightness.
COVER_MEAN = (0.75, 0.95)
COVER_SD = (0.2, 0.4)
COVER_BETA = 1.0
VEGETATED = ("wheat", "barley", "grassland")
#: Crown radius and tree height ranges (metres) of the wood, of single trees and of hedgerows.
TREES = {"wood": ((1.5, 3.5), (5.0, 10.0)), "single": ((2.0, 4.5), (4.0, 9.0)), "hedge": ((1.5, 2.5), (3.0, 6.0))}
CLASS_TEXTURE = {"water": 0.02, "grassland": 0.12, "road": 0.05, "built_up": 0.04, "trees": 0.10}


def _crowns(shape, centres, radius, height, *, chunk: int = 50_000):
    """Tree crowns: a dome of ``height`` metres and ``radius`` metres around each centre
    (row, col in pixels, fractional). Returns the height and the dome profile (0 at
    the crown's edge, 1 at its top), each the highest crown at a pixel.

    Crowns are stamped in chunks, which keeps the memory at a few arrays of the grid.
    """
    out_h = np.zeros(shape, np.float32)
    out_d = np.zeros(shape, np.float32)
    reach = int(np.ceil(radius.max() / TRUTH_GSD)) + 1
    dr, dc = (v.ravel() for v in np.mgrid[-reach:reach + 1, -reach:reach + 1])
    for i in range(0, len(centres), chunk):
        cen, rad, top = centres[i:i + chunk], radius[i:i + chunk], height[i:i + chunk]
        r = np.floor(cen[:, :1]).astype(np.int64) + dr[None]
        c = np.floor(cen[:, 1:]).astype(np.int64) + dc[None]
        rel = np.hypot(r + 0.5 - cen[:, :1], c + 0.5 - cen[:, 1:]) * TRUTH_GSD / rad[:, None]
        inside = (rel < 1.0) & (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
        dome = np.sqrt(1.0 - rel[inside] ** 2).astype(np.float32)
        flat = (r * shape[1] + c)[inside]
        np.maximum.at(out_h.ravel(), flat, (np.broadcast_to(top[:, None], rel.shape)[inside] * (0.5 + 0.5 * dome)))
        np.maximum.at(out_d.ravel(), flat, dome)
    return out_h, out_d


def make_landscape(rng: np.random.Generator, extent_m: float, origin: tuple[float, float]) -> Landscape:
    """Draw a landscape of ``extent_m`` x ``extent_m`` metres with its top-left at ``origin``."""
    import shapely
    from rasterio import features
    from rasterio.transform import from_origin
    from shapely import affinity
    from shapely.geometry import LineString, box

    n = int(round(extent_m / TRUTH_GSD))
    x0, y0 = origin
    transform = from_origin(x0, y0, TRUTH_GSD, TRUTH_GSD)
    centre = (x0 + extent_m / 2, y0 - extent_m / 2)
    world = box(x0, y0 - extent_m, x0 + extent_m, y0)
    place = lambda g: affinity.translate(affinity.rotate(g, angle, origin=(0, 0)), *centre)  # noqa: E731

    # Field blocks on a grid rotated by a few degrees, so field edges never follow pixel edges.
    angle = float(rng.uniform(10, 25))
    block = float(np.clip(extent_m / 6, 300, 700))
    half = extent_m * 0.75
    xs = np.arange(-half, half, block)
    ys = np.arange(-half, half, block)
    parcels, roads, tracks, hedges = [], [], [], []
    pid = 0
    for bx in xs:
        roads.append(LineString([(bx, -half), (bx, half)]))
        for by in ys:
            # Strips across the block, 30-150 m wide; some of their edges are farm tracks or hedgerows.
            edges = [0.0]
            while edges[-1] < block - 30:
                edges.append(min(block, edges[-1] + float(rng.uniform(30, 150))))
            edges[-1] = block
            for e in edges[1:-1]:
                kind = rng.choice(["margin", "track", "hedge"], p=[0.5, 0.3, 0.2])
                line = LineString([(bx + e, by + 4), (bx + e, by + block - 4)])
                if kind == "track":
                    tracks.append(place(line))
                elif kind == "hedge":
                    hedges.append(place(line))
            for a, b in zip(edges[:-1], edges[1:]):
                cls = rng.choice(CROP_CLASSES, p=[0.35, 0.25, 0.15, 0.25])
                poly = place(box(bx + a, by + 4, bx + b, by + block - 4))
                parcels.append({"parcel_id": pid, "class_name": str(cls), "geometry": poly})
                pid += 1
    for by in ys:
        roads.append(LineString([(-half, by), (half, by)]))
    roads = [place(r) for r in roads]

    # Woodland, a reservoir, farm ponds and a village overwrite the fields.
    wood_field = smooth_noise(rng, (n, n), n / 8)
    woods = wood_field > np.quantile(wood_field, 0.85)
    del wood_field
    lake_c = (x0 + extent_m * rng.uniform(0.2, 0.8), y0 - extent_m * rng.uniform(0.2, 0.8))
    lake = affinity.rotate(
        affinity.scale(shapely.Point(lake_c).buffer(extent_m * 0.06), 1.6, 0.8), float(rng.uniform(0, 180))
    )
    ponds = [affinity.scale(shapely.Point(x0 + extent_m * rng.uniform(0.05, 0.95),
                                          y0 - extent_m * rng.uniform(0.05, 0.95)).buffer(rng.uniform(8, 25)),
                            rng.uniform(0.6, 1.4), 1.0)
             for _ in range(int(rng.integers(2, 5) * (extent_m / 2000) ** 2) + 1)]
    village_c = shapely.Point(x0 + extent_m * rng.uniform(0.3, 0.7), y0 - extent_m * rng.uniform(0.3, 0.7))
    village_r = extent_m * 0.08
    buildings, building_heights = [], []

    def add_building(x, y, w, h, height):
        b = affinity.rotate(box(-w / 2, -h / 2, w / 2, h / 2), angle + rng.choice([0, 90]), origin=(0, 0))
        buildings.append(affinity.translate(b, x, y))
        building_heights.append(height)

    for _ in range(int(40 * (extent_m / 2000) ** 2) + 20):  # houses of one or two storeys
        r = village_r * np.sqrt(rng.uniform())
        t = rng.uniform(0, 2 * np.pi)
        w, h = rng.uniform(7, 22, size=2)
        add_building(village_c.x + r * np.cos(t), village_c.y + r * np.sin(t), w, h, rng.choice([3.5, 6.5]))
    for _ in range(int(6 * (extent_m / 2000) ** 2) + 2):  # farmsteads: a barn beside a road, sheds
        road = roads[int(rng.integers(len(roads)))]
        p = road.interpolate(rng.uniform(0, road.length))
        side = rng.choice([-1, 1]) * rng.uniform(15, 30)
        bx, by = p.x + side * np.cos(np.radians(angle)), p.y + side * np.sin(np.radians(angle))
        add_building(bx, by, rng.uniform(15, 40), rng.uniform(10, 20), rng.uniform(5, 8))
        for _ in range(int(rng.integers(1, 4))):
            add_building(bx + rng.uniform(-30, 30), by + rng.uniform(-30, 30), rng.uniform(5, 12),
                         rng.uniform(5, 10), rng.uniform(2.5, 4))

    water = shapely.union_all([lake, *ponds])
    keep = [i for i, b in enumerate(buildings) if not b.intersects(water)]
    buildings = [buildings[i] for i in keep]
    building_heights = [building_heights[i] for i in keep]

    def burn(shapes, value, out, **kw):
        shapes = [(g, value) for g in shapes if not g.is_empty]
        if shapes:
            features.rasterize(shapes, out=out, transform=transform, **kw)

    classes = np.full((n, n), CLASS_IDS["grassland"], dtype=np.uint8)
    ids = np.full((n, n), -1, dtype=np.int32)
    features.rasterize([(p["geometry"], p["parcel_id"]) for p in parcels], out=ids, transform=transform)
    n_p = len(parcels)
    ids[ids < 0] = n_p  # "no parcel" indexes the last entry of every per-parcel table
    has = ids < n_p
    class_of_parcel = np.array([CLASS_IDS[p["class_name"]] for p in parcels] + [0], dtype=np.uint8)
    classes[has] = class_of_parcel[ids[has]]
    # A grass margin along one side of each boundary between two fields.
    margin = has & ((ids != np.roll(ids, -1, axis=0)) | (ids != np.roll(ids, -1, axis=1)))
    classes[margin] = CLASS_IDS["grassland"]
    del margin
    burn([t.buffer(1.75) for t in tracks], CLASS_IDS["bare_soil"], classes)
    burn([village_c.buffer(village_r * 1.2)], CLASS_IDS["grassland"], classes)
    burn([lake, *ponds], CLASS_IDS["water"], classes)
    burn([r.buffer(3.0) for r in roads], CLASS_IDS["road"], classes)
    roof_ids = np.zeros((n, n), dtype=np.uint16)
    features.rasterize([(b, i + 1) for i, b in enumerate(buildings)], out=roof_ids, transform=transform)

    # Trees: a dense wood, hedgerows along field edges and single trees in the open,
    # never on water, roads or roofs.
    def to_px(xy):
        return np.stack([(y0 - xy[:, 1]) / TRUTH_GSD, (xy[:, 0] - x0) / TRUTH_GSD], axis=1)

    wood_px = np.argwhere(woods).astype(np.float32)
    del woods
    wood_px = wood_px[rng.random(len(wood_px)) < 0.2]  # ~ a crown every 30 m2
    wood_px += rng.random(wood_px.shape, dtype=np.float32)
    open_px = rng.uniform(0, n, size=(int(n * n / 900), 2))  # ~ one tree per 0.6 ha
    hedge_xy = [shapely.get_coordinates(shapely.line_interpolate_point(h, np.arange(0, h.length, 3.0)))
                for h in hedges]
    hedge_px = to_px(np.concatenate(hedge_xy)) if hedge_xy else np.zeros((0, 2))
    hedge_px = hedge_px[rng.random(len(hedge_px)) < 0.8]  # gaps in the hedge
    centres = np.concatenate([wood_px, open_px, hedge_px])
    kind = np.repeat([0, 1, 2], [len(wood_px), len(open_px), len(hedge_px)])  # the order of TREES
    (r_lo, r_hi), (h_lo, h_hi) = (np.array([TREES[k][i] for k in TREES]).T[:, kind] for i in (0, 1))
    radius = rng.uniform(r_lo, r_hi).astype(np.float32)
    tree_h = rng.uniform(h_lo, h_hi).astype(np.float32)
    height, dome = _crowns((n, n), centres, radius, tree_h)
    del centres, kind, radius, tree_h
    crown = (height > 0) & ~np.isin(classes, (CLASS_IDS["water"], CLASS_IDS["road"])) & (roof_ids == 0)
    height[~crown] = 0.0
    classes[crown] = CLASS_IDS["trees"]
    burn(buildings, CLASS_IDS["built_up"], classes)
    b_height = np.asarray([0.0, *building_heights], np.float32)
    height = np.where(roof_ids > 0, b_height[roof_ids], height).astype(np.float32)

    # Keep as labels the parcels that still mostly show their crop, clipped to the world.
    shows_crop = has & (classes == class_of_parcel[ids])
    total = np.bincount(ids.ravel(), minlength=n_p + 1)
    shown = np.bincount(ids.ravel(), weights=shows_crop.ravel(), minlength=n_p + 1)
    kept = []
    for p in parcels:
        geom = p["geometry"].intersection(world)
        pid_ = p["parcel_id"]
        if geom.area >= 400 and total[pid_] and shown[pid_] / total[pid_] > 0.7:
            kept.append({**p, "geometry": geom})

    # Land-cover change: a few fallow/grass parcels are built over (greenhouses, a solar farm).
    candidates = [p for p in kept if p["class_name"] in ("bare_soil", "grassland") and p["geometry"].area > 3000]
    n_change = max(1, len(candidates) // 25)
    order = rng.permutation(len(candidates))[:n_change]
    changed = sorted(candidates[i]["parcel_id"] for i in order)
    classes_after = classes.copy()
    classes_after[np.isin(ids, changed) & shows_crop] = CLASS_IDS["built_up"]

    # Texture: per-parcel brightness, fractal variation inside fields, tramlines along
    # each field's own direction, crowns, roofs.
    factor = np.append(rng.uniform(0.85, 1.15, size=n_p), 1.0).astype(np.float32)
    rough = np.full(len(CLASSES) + 1, 0.08, np.float32)
    for name, v in CLASS_TEXTURE.items():
        rough[CLASS_IDS[name]] = v
    amplitude = np.where(shows_crop, np.append(rng.uniform(*FIELD_TEXTURE, size=n_p), 0.0).astype(np.float32)[ids],
                         rough[classes])
    brightness = texture.fractal_field(rng, (n, n), beta=FIELD_BETA)
    brightness *= amplitude
    brightness += 1
    brightness += np.float32(FINE_TEXTURE) * texture.fractal_field(rng, (n, n), beta=FINE_BETA)
    brightness *= factor[ids]
    del amplitude
    row_angle = np.radians(angle + rng.choice([0.0, 90.0], size=n_p + 1) + rng.normal(0, 2, size=n_p + 1))
    spacing = rng.uniform(*TRAMLINE_SPACING_M, size=n_p + 1)
    is_parcel = np.arange(n_p + 1) < n_p
    contrast = np.where(is_parcel, rng.uniform(*TRAMLINE_CONTRAST, size=n_p + 1), 0.0).astype(np.float32)
    soil_share = np.where(is_parcel, rng.uniform(*TRAMLINE_SOIL, size=n_p + 1), 0.0).astype(np.float32)
    xx = (np.arange(n, dtype=np.float32) * np.float32(TRUTH_GSD))[None, :]
    along = xx * np.cos(row_angle).astype(np.float32)[ids]
    along -= xx.T * np.sin(row_angle).astype(np.float32)[ids]
    gap = spacing.astype(np.float32)[ids]
    along = np.abs(np.mod(along, gap, out=along) - gap / 2)  # distance to the nearest tramline
    del gap
    tram = texture.line_profile(along, width_m=2.0)
    del along
    sown = shows_crop & (classes != CLASS_IDS["grassland"])
    brightness = np.where(sown & (classes == CLASS_IDS["bare_soil"]), brightness * (1 - contrast[ids] * tram),
                          brightness)
    veg = np.isin(classes, [CLASS_IDS[c] for c in VEGETATED])
    grass = np.array([COVER_MEAN[1], COVER_SD[0] + COVER_SD[1]], np.float32) / 2  # margins, verges, meadows
    mean = np.append(rng.uniform(*COVER_MEAN, size=n_p), grass[0]).astype(np.float32)
    sd = np.append(rng.uniform(*COVER_SD, size=n_p), grass[1]).astype(np.float32)
    cover = texture.fractal_field(rng, (n, n), beta=COVER_BETA)
    cover *= np.where(shows_crop, sd[ids], grass[1])
    cover += np.where(shows_crop, mean[ids], grass[0])
    cover = np.where(sown, cover * (1 - soil_share[ids] * tram), cover)
    cover = np.where(veg, np.clip(cover, 0.0, 1.0), np.float32(1.0))
    del veg, shows_crop, ids, sown, tram
    brightness = np.where(crown, brightness * (0.75 + 0.45 * dome), brightness)  # self-shaded crowns
    del dome, crown
    roof = rng.uniform(0.6, 1.6, size=len(buildings) + 1).astype(np.float32)
    brightness = np.where(roof_ids > 0, roof[roof_ids], brightness).astype(np.float32)

    return Landscape(
        classes=classes,
        classes_after=classes_after,
        brightness=np.clip(brightness, 0.2, 2.0).astype(np.float32),
        height=height,
        cover=cover,
        parcels=kept,
        changed_parcels=changed,
        origin=origin,
    )


def reflectance(land: Landscape, day: float, *, after_change: bool,
                window: tuple[slice, slice] | None = None, shade: np.ndarray | None = None) -> np.ndarray:
    """Truth surface reflectance ``(4, rows, cols)`` float32 on ``day`` (days since 1 Nov).

    ``shade`` (from :meth:`Landscape.shade`, over the same window) darkens what lies in
    the shadows of trees and buildings.
    """
    cls = land.classes_after if after_change else land.classes
    bright, cover = land.brightness, land.cover
    if window is not None:
        cls, bright, cover = cls[window], bright[window], cover[window]
    if shade is not None:
        bright = bright * shade
    table = spectra(day).astype(np.float32)
    cover = np.where(np.isin(cls, [CLASS_IDS[c] for c in VEGETATED]), cover, np.float32(1.0))
    plants = table[cls].transpose(2, 0, 1) * cover[None]
    soil = table[CLASS_IDS["bare_soil"]][:, None, None] * (1 - cover)[None]
    return (plants + soil) * bright[None]


def blurred_class_maps(land: Landscape, sigma: float, *, after_change: bool,
                       only: set[int] | None = None, shade: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Each class's share of the (textured, shaded) signal, blurred by a Gaussian PSF.

    Reflectance is linear in the class spectra, so a sensor's blurred image on any
    day is ``sum(spectrum[c] * map[c])``: blurring once per class (and sun) replaces
    blurring every band of every acquisition. The soil that shows between plants
    counts to ``bare_soil``.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    cls = land.classes_after if after_change else land.classes
    bright = land.brightness if shade is None else land.brightness * shade
    wanted = [cid for cid in CLASSES if only is None or cid in only]
    vegetated = {CLASS_IDS[c] for c in VEGETATED}
    plants = bright * land.cover
    soil = np.where(np.isin(cls, list(vegetated)), bright - plants, np.float32(0.0))

    def blur(cid):
        layer = np.where(cls == cid, plants if cid in vegetated else bright, np.float32(0.0))
        if cid == CLASS_IDS["bare_soil"]:
            layer += soil
        return ndimage.gaussian_filter(layer, sigma, mode="nearest", truncate=3.0)

    # ndimage releases the GIL: two threads blur classes side by side (more would cost
    # memory, a grid-sized layer each, for little on Binder's and CI's two cores)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return dict(zip(wanted, pool.map(blur, wanted)))
