"""What happens in the demo world and when: acquisition dates, tile layout, the
role each HR scene plays for matching, the cloudy spells and the land-cover change.

Every HR scene is given a *role* that a matching step must recognise; the truth
manifest records the role and the expected outcome under :data:`MATCH_CRITERIA`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from eo_sr.errors import InvalidInputError, UnknownNameError

# The criteria under which the roles below have their expected outcome.
MATCH_CRITERIA = {"max_days": 3.0, "max_cloud_cover": 20.0, "min_coverage": 0.9}
#: Multi-frame stores (T up to 8): every revisit within a month, cloudier ones allowed (their
#: clouds are masked per pixel), the best 8 by time, cloud and coverage.
MULTI_FRAME_CRITERIA = {"max_days": 30.0, "max_cloud_cover": 40.0, "min_coverage": 0.9, "strategy": "best_k", "k": 8}

LR_TIME = timedelta(hours=8, minutes=35)  # Sentinel-2 passes Cyprus at about 08:35 UTC
HR_TIME = timedelta(hours=6, minutes=35)  # the HR sensor passes about 2 hours earlier
BASELINE_04_START = datetime(2022, 1, 25, tzinfo=timezone.utc)
# Earth Search removed the BOA offset itself from new scenes from late February 2022 and
# flagged them `earthsearch:boa_offset_applied: true`; the scenes of the month before kept
# it, flagged false (cirrus-geo/cirrus-earth-search#21). The demo catalogue does the same.
PROVIDER_HARMONISED_FROM = datetime(2022, 2, 27, tzinfo=timezone.utc)
REVISIT_DAYS = 5

# Tile layout as fractions of the world's width: two overlapping tiles of one UTM
# zone; the eastern one is cut by the edge of the swath.
TILE_W = (0.0, 0.66)
TILE_X = (0.345, 1.0)
SWATH_EDGE = (0.80, 0.86)  # x of the swath edge at the top and at the bottom of the world
HR_FRACTION = 1 / 3  # HR footprint side as a fraction of the world's side


@dataclass(frozen=True)
class WorldSize:
    extent_m: float
    start: str
    end: str
    gap: tuple[str, str]
    n_normal_hr: int


SIZES = {
    "tiny": WorldSize(1920.0, "2022-01-10", "2022-03-01", ("2022-02-06", "2022-02-17"), 0),
    "default": WorldSize(7680.0, "2021-11-01", "2022-04-30", ("2022-02-21", "2022-03-09"), 8),
}


@dataclass
class LRDate:
    when: datetime
    cloud_fraction: float
    platform: str


@dataclass
class HRScene:
    role: str
    when: datetime
    centre: tuple[float, float]  # world-local metres (x east, y south)
    cloud_fraction: float
    misregistered: bool = False
    expected_lr: list = field(default_factory=list)  # (date index, tile)
    expected_status: str = "matched"
    expected_reason: str | None = None


@dataclass
class Scenario:
    size: str
    seed: int
    extent_m: float
    lr_dates: list
    hr_scenes: list
    change_time: datetime

    @property
    def hr_side_m(self) -> float:
        return self.extent_m * HR_FRACTION


def _day(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def check_size_and_seed(size: str, seed) -> None:
    if size not in SIZES:
        raise UnknownNameError(f"unknown demo world size {size!r}; choose one of {sorted(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise InvalidInputError(f"seed must be an integer between 0 and 2**32 - 1, got {seed!r}")


def make_scenario(size: str, seed: int, rng: np.random.Generator) -> Scenario:
    """Lay out dates, tiles and HR scenes with their roles."""
    check_size_and_seed(size, seed)
    spec = SIZES[size]
    E = spec.extent_m
    h = E * HR_FRACTION
    start, end = _day(spec.start), _day(spec.end)
    gap0, gap1 = _day(spec.gap[0]), _day(spec.gap[1])

    days = []
    d = start
    while d <= end:
        if not gap0 <= d <= gap1:
            days.append(d)
        d += timedelta(days=REVISIT_DAYS)
    n = len(days)

    margin = 0.002 * E
    x_w_only = h / 2 + margin
    x_overlap = E / 2
    x_w_mostly = E * 0.5 - h / 2
    x_edge = E - h / 2
    ys = [h / 2, E / 2, E - h / 2]

    # A cloudy date and a consecutive clear pair; the gap stays untouched.
    consecutive = [i for i in range(1, n - 2) if (days[i + 1] - days[i]).days == REVISIT_DAYS]
    k = int(rng.choice(consecutive))
    cloudy = int(rng.choice([i for i in range(n) if i not in (k, k + 1)]))
    # The land-cover change must not fall right before an LR date used by another role.
    clear = [i for i in range(n) if i not in (cloudy, k, k + 1)]
    rng.shuffle(clear)
    pick = iter(clear * 3)

    scenes: list[HRScene] = []

    def add(role, date_index, x, y, *, offset=timedelta(0), cloud=0.0, lr=(), status="matched", reason=None,
            misregistered=False):
        base = days[date_index] if date_index is not None else None
        when = (base + HR_TIME + offset) if base is not None else offset
        when += timedelta(seconds=int(rng.integers(0, 600)))
        scenes.append(HRScene(role, when, (x, y), cloud, misregistered, list(lr),
                              "multiple" if len(lr) > 1 else status, reason))

    i = next(pick)
    add("single", i, x_w_only, ys[0], lr=[(i, "W")])
    i = next(pick)
    add("overlap_multiple", i, x_overlap, ys[1], lr=[(i, "W"), (i, "X")])
    add("between_dates_multiple", k, x_w_only, ys[2], offset=timedelta(days=3), lr=[(k, "W"), (k + 1, "W")])
    add("too_cloudy", cloudy, x_w_only, ys[1], status="unmatched", reason="too_cloudy")
    gap_mid = gap0 + (gap1 - gap0) / 2
    add("no_lr_in_window", None, x_w_only, ys[0],
        offset=datetime(gap_mid.year, gap_mid.month, gap_mid.day, tzinfo=timezone.utc) + HR_TIME,
        status="unmatched", reason="no_lr_in_window")
    i = next(pick)
    add("outside_swath", i, x_edge, ys[1], status="unmatched", reason="insufficient_overlap")
    i = next(pick)
    add("cloudy_hr", i, x_w_only, ys[2], cloud=0.2, lr=[(i, "W")])
    i = next(pick)
    add("misregistered", i, x_w_only, ys[1], lr=[(i, "W")], misregistered=True)
    change = next(pick)
    add("land_cover_change", change, x_w_only, ys[0], offset=timedelta(days=1), lr=[(change, "W")])
    change_time = days[change] + LR_TIME + timedelta(hours=12)

    positions = [(x_overlap, y) for y in ys] + [(x_w_mostly, y) for y in ys] + [(x_w_only, y) for y in ys]
    for j in range(spec.n_normal_hr):
        i = next(pick)
        x, y = positions[(j * 4) % len(positions)]
        lr = [(i, "W"), (i, "X")] if x == x_overlap else [(i, "W")]
        add("normal", i, x, y, cloud=float(rng.uniform(0, 0.01)), lr=lr)

    used = {ix for s in scenes for ix, _ in s.expected_lr}
    lr_dates = []
    for ix, day in enumerate(days):
        if ix == cloudy:
            frac = 0.75
        elif ix in used:
            frac = float(rng.uniform(0.0, 0.015))
        else:  # winter on Cyprus: mostly clear, some partly cloudy, some overcast days
            frac = float(rng.choice([rng.uniform(0, 0.03), rng.uniform(0.05, 0.4), rng.uniform(0.4, 0.95)],
                                    p=[0.5, 0.3, 0.2]))
        lr_dates.append(LRDate(day + LR_TIME + timedelta(seconds=int(rng.integers(0, 120))), frac,
                               "sentinel-2a" if ix % 2 == 0 else "sentinel-2b"))
    return Scenario(size, int(seed), E, lr_dates, scenes, change_time)


def sun_position(when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Approximate sun (azimuth, elevation) in degrees at a UTC time and place."""
    doy = when.timetuple().tm_yday
    decl = np.radians(-23.44 * np.cos(2 * np.pi / 365 * (doy + 10)))
    solar_hours = when.hour + when.minute / 60 + lon / 15
    hour_angle = np.radians(15 * (solar_hours - 12))
    phi = np.radians(lat)
    sin_el = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    el = np.arcsin(sin_el)
    cos_az = (np.sin(decl) - np.sin(el) * np.sin(phi)) / (np.cos(el) * np.cos(phi))
    az = np.degrees(np.arccos(np.clip(cos_az, -1, 1)))
    if hour_angle > 0:
        az = 360 - az
    return float(az), float(np.degrees(el))
