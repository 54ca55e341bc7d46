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
        Land-cover class id per truth pixel before the land-cover change.
    classes_after : ndarray of uint8
        The same after the change (some parcels became built-up).
    brightness : ndarray of float32
        Multiplicative texture: per-parcel and per-building factors, tree crowns.
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
    parcels: list = field(default_factory=list)
    changed_parcels: list = field(default_factory=list)
    origin: tuple = (0.0, 0.0)

    @property
    def shape(self) -> tuple[int, int]:
        return self.classes.shape


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

    # Field blocks on a grid rotated by a few degrees, so field edges never follow pixel edges.
    angle = float(rng.uniform(10, 25))
    block = float(np.clip(extent_m / 6, 300, 700))
    half = extent_m * 0.75
    xs = np.arange(-half, half, block)
    ys = np.arange(-half, half, block)
    parcels, roads = [], []
    pid = 0
    for bx in xs:
        roads.append(LineString([(bx, -half), (bx, half)]))
        for by in ys:
            # Strips across the block, 30-150 m wide.
            edges = [0.0]
            while edges[-1] < block - 30:
                edges.append(min(block, edges[-1] + float(rng.uniform(30, 150))))
            edges[-1] = block
            for a, b in zip(edges[:-1], edges[1:]):
                cls = rng.choice(CROP_CLASSES, p=[0.35, 0.25, 0.15, 0.25])
                poly = box(bx + a, by + 4, bx + b, by + block - 4)
                poly = affinity.rotate(poly, angle, origin=(0, 0))
                poly = affinity.translate(poly, *centre)
                parcels.append({"parcel_id": pid, "class_name": str(cls), "geometry": poly})
                pid += 1
    for by in ys:
        roads.append(LineString([(-half, by), (half, by)]))
    roads = [affinity.translate(affinity.rotate(r, angle, origin=(0, 0)), *centre) for r in roads]

    # Trees (an olive-grove/woodland patch), a reservoir and a village overwrite the fields.
    tree_field = smooth_noise(rng, (n, n), n / 8)
    trees = tree_field > np.quantile(tree_field, 0.85)
    lake_c = (x0 + extent_m * rng.uniform(0.2, 0.8), y0 - extent_m * rng.uniform(0.2, 0.8))
    lake = affinity.rotate(
        affinity.scale(shapely.Point(lake_c).buffer(extent_m * 0.06), 1.6, 0.8), float(rng.uniform(0, 180))
    )
    village_c = shapely.Point(x0 + extent_m * rng.uniform(0.3, 0.7), y0 - extent_m * rng.uniform(0.3, 0.7))
    village_r = extent_m * 0.08
    buildings = []
    for _ in range(int(40 * (extent_m / 2000) ** 2) + 20):
        r = village_r * np.sqrt(rng.uniform())
        t = rng.uniform(0, 2 * np.pi)
        w, h = rng.uniform(8, 22, size=2)
        b = box(-w / 2, -h / 2, w / 2, h / 2)
        b = affinity.rotate(b, angle + rng.choice([0, 90]), origin=(0, 0))
        buildings.append(affinity.translate(b, village_c.x + r * np.cos(t), village_c.y + r * np.sin(t)))

    def burn(shapes, value, out, **kw):
        shapes = [(g, value) for g in shapes if not g.is_empty]
        if shapes:
            features.rasterize(shapes, out=out, transform=transform, **kw)

    classes = np.full((n, n), CLASS_IDS["grassland"], dtype=np.uint8)
    ids = np.full((n, n), -1, dtype=np.int32)
    features.rasterize(
        [(p["geometry"], p["parcel_id"]) for p in parcels], out=ids, transform=transform
    )
    class_of_parcel = np.array([CLASS_IDS[p["class_name"]] for p in parcels], dtype=np.uint8)
    has = ids >= 0
    classes[has] = class_of_parcel[ids[has]]
    classes[trees] = CLASS_IDS["trees"]
    burn([village_c.buffer(village_r * 1.2)], CLASS_IDS["grassland"], classes)
    burn([lake], CLASS_IDS["water"], classes)
    burn([r.buffer(3.0) for r in roads], CLASS_IDS["road"], classes)
    burn(buildings, CLASS_IDS["built_up"], classes)

    # Keep as labels the parcels that still mostly show their crop, clipped to the world.
    n_ids = len(parcels) + 1
    flat = np.where(has, ids, len(parcels)).ravel()
    total = np.bincount(flat, minlength=n_ids)
    shown = np.bincount(flat, weights=(classes.ravel() == np.append(class_of_parcel, 0)[flat]), minlength=n_ids)
    kept = []
    for p in parcels:
        geom = p["geometry"].intersection(world)
        pid_ = p["parcel_id"]
        if geom.area >= 400 and total[pid_] and shown[pid_] / total[pid_] > 0.8:
            kept.append({**p, "geometry": geom})

    # Land-cover change: a few fallow/grass parcels are built over (greenhouses, a solar farm).
    candidates = [p for p in kept if p["class_name"] in ("bare_soil", "grassland") and p["geometry"].area > 3000]
    n_change = max(1, len(candidates) // 25)
    order = rng.permutation(len(candidates))[:n_change]
    changed = sorted(candidates[i]["parcel_id"] for i in order)
    classes_after = classes.copy()
    sel = np.isin(ids, changed) & (classes == np.append(class_of_parcel, 0)[np.where(has, ids, len(parcels))])
    classes_after[sel] = CLASS_IDS["built_up"]

    # Texture: per-parcel brightness, tree crowns, roof materials, field-row noise.
    factor = rng.uniform(0.85, 1.15, size=len(parcels) + 1).astype(np.float32)
    brightness = np.where(has, factor[np.where(has, ids, len(parcels))], 1.0).astype(np.float32)
    brightness *= 1 + 0.03 * smooth_noise(rng, (n, n), 2.0)
    crowns = 1 + 0.30 * smooth_noise(rng, (n, n), 1.2)
    brightness = np.where(classes == CLASS_IDS["trees"], brightness * np.clip(crowns, 0.4, 1.6), brightness)
    roof_ids = np.zeros((n, n), dtype=np.int32)
    features.rasterize([(b, i + 1) for i, b in enumerate(buildings)], out=roof_ids, transform=transform)
    roof = rng.uniform(0.6, 1.6, size=len(buildings) + 1).astype(np.float32)
    brightness = np.where(roof_ids > 0, roof[roof_ids], brightness).astype(np.float32)

    return Landscape(
        classes=classes,
        classes_after=classes_after,
        brightness=brightness,
        parcels=kept,
        changed_parcels=changed,
        origin=origin,
    )


def reflectance(land: Landscape, day: float, *, after_change: bool,
                window: tuple[slice, slice] | None = None) -> np.ndarray:
    """Truth surface reflectance ``(4, rows, cols)`` float32 on ``day`` (days since 1 Nov)."""
    cls = land.classes_after if after_change else land.classes
    bright = land.brightness
    if window is not None:
        cls, bright = cls[window], bright[window]
    table = spectra(day).astype(np.float32)
    return table[cls].transpose(2, 0, 1) * bright[None]


def blurred_class_maps(land: Landscape, sigma: float, *, after_change: bool,
                       only: set[int] | None = None) -> dict[int, np.ndarray]:
    """Each class's share of the (textured) signal, blurred by a Gaussian PSF.

    Reflectance is linear in the class spectra, so a sensor's blurred image on any
    day is ``sum(spectrum[c] * map[c])``: blurring once per class replaces blurring
    every band of every acquisition.
    """
    cls = land.classes_after if after_change else land.classes
    out = {}
    for cid in CLASSES:
        if only is not None and cid not in only:
            continue
        layer = np.where(cls == cid, land.brightness, 0.0).astype(np.float32)
        out[cid] = ndimage.gaussian_filter(layer, sigma, mode="nearest", truncate=3.0)
    return out
