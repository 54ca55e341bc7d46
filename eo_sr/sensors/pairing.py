"""Pairing an LR with an HR sensor: the super-resolution factor between
their GSDs (:func:`resolution_factor`) and the bands they share
(:func:`check_pair`).

Standard library only, no I/O.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Union

from eo_sr.errors import InvalidInputError
from eo_sr.sensors.model import Band, FrozenMap, Sensor, join_names
from eo_sr.sensors.registry import get_sensor

__all__ = ["GsdLike", "PairCheck", "check_pair", "resolution_factor"]

GsdLike = Union[Sensor, str, int, float]


def _gsd_of(value: GsdLike, role: str) -> tuple[float, str]:
    """Return (gsd in metres, label for messages)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{role} must be a Sensor, a sensor name or a GSD in metres, got {value!r}")
    if isinstance(value, numbers.Real):
        gsd = float(value)
        if not (math.isfinite(gsd) and gsd > 0):
            raise InvalidInputError(f"{role} GSD must be a positive, finite number of metres, got {value!r}")
        return gsd, f"{gsd:g} m"
    if isinstance(value, (str, Sensor)):
        sensor = get_sensor(value)
        return float(sensor.gsd), f"{sensor.id} ({sensor.gsd:g} m)"
    raise InvalidInputError(
        f"{role} must be a Sensor, a sensor name or a GSD in metres, got {type(value).__name__}"
    )


def resolution_factor(lr: GsdLike, hr: GsdLike, *, tolerance: float = 0.05) -> int:
    """Integer super-resolution factor between an LR and an HR sensor.

    Parameters
    ----------
    lr, hr : Sensor, str or float
        The low- and high-resolution sensors (objects or registered names), or
        their GSDs in metres.
    tolerance : float, optional
        Largest accepted relative difference between ``lr_gsd / hr_gsd`` and
        the nearest integer ``k`` (``|ratio / k - 1|``), i.e. how much the HR
        data may be rescaled to sit on an exact ``lr_gsd / k`` grid. Default 5 %.

    Returns
    -------
    int
        ``k = round(lr_gsd / hr_gsd)``, at least 2.

    Raises
    ------
    InvalidInputError
        If the ratio is not close to an integer >= 2 (the message gives the
        ratio and what to do), if the arguments look swapped (HR coarser than
        LR), if the GSDs are (about) equal, or if an argument is not a sensor
        or a positive number.
    UnknownNameError
        If a sensor name is unknown.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 0.5:
        raise InvalidInputError(f"tolerance must be a relative tolerance in [0, 0.5), got {tolerance!r}")
    lr_gsd, lr_label = _gsd_of(lr, "lr")
    hr_gsd, hr_label = _gsd_of(hr, "hr")
    ratio = lr_gsd / hr_gsd
    k = max(1, round(ratio))
    close = abs(ratio / k - 1.0) <= tolerance + 1e-12
    text = f"{lr_label} / {hr_label} = {ratio:.2f}"
    if k == 1 and close:
        raise InvalidInputError(
            f"{text}: the two GSDs are (about) equal, so there is nothing to super-resolve; choose an HR "
            "sensor whose GSD is 2, 3 or 4 times finer than the LR one"
        )
    if ratio < 1:
        inv = hr_gsd / lr_gsd
        raise InvalidInputError(
            f"{text} < 1: the HR sensor is coarser than the LR sensor; the arguments look swapped, call "
            f"resolution_factor(lr, hr) with the coarser sensor first (here the ratio would be {inv:.2f})"
        )
    if not close and ratio < 2:
        raise InvalidInputError(
            f"{text} is below 2: the HR sensor must be at least twice as fine as the LR one for "
            "super-resolution; choose sensors whose GSDs differ by an integer factor (2, 3, 4)"
        )
    if not close:
        k_down = math.floor(ratio)
        raise InvalidInputError(
            f"{text} is not close to an integer (tolerance {tolerance:.0%}); choose sensors whose GSDs differ "
            "by an integer factor (2, 3, 4), or resample the HR data to lr_gsd/k first, e.g. "
            f"{lr_gsd / k_down:.3g} m for k={k_down} (coarsening the HR data never invents detail), "
            "or pass a larger `tolerance`"
        )
    return int(k)


@dataclass(frozen=True)
class PairCheck:
    """What :func:`check_pair` found about an LR/HR sensor pair.

    Parameters
    ----------
    lr, hr : Sensor
        The two sensors.
    factor : int
        The super-resolution factor (:func:`resolution_factor`).
    common_names : tuple of str
        Band names both sensors have (aliases resolved), in LR wavelength order.
    band_pairs : Mapping[str, tuple[Band, Band]]
        For each of ``common_names``: (LR band, HR band).
    warnings : tuple of str
        Things to look at before training (spectral mismatches, uncalibrated
        digital numbers, missing cloud masks).
    """

    lr: Sensor
    hr: Sensor
    factor: int
    common_names: tuple[str, ...]
    band_pairs: Mapping[str, tuple[Band, Band]]
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "band_pairs", FrozenMap(self.band_pairs))


def check_pair(
    lr: Union[Sensor, str],
    hr: Union[Sensor, str],
    *,
    tolerance: float = 0.05,
    max_wavelength_difference_um: float = 0.030,
) -> PairCheck:
    """Check that two sensors make a usable LR/HR super-resolution pair.

    Parameters
    ----------
    lr, hr : Sensor or str
        The low- and high-resolution sensors (objects or registered names).
    tolerance : float, optional
        Passed to :func:`resolution_factor`.
    max_wavelength_difference_um : float, optional
        Warn when a shared band's centre wavelengths differ by more than this
        (default 0.030 um = 30 nm).

    Returns
    -------
    PairCheck

    Raises
    ------
    InvalidInputError
        If the GSD ratio is not a usable integer factor (see
        :func:`resolution_factor`), or the sensors share no band.
    UnknownNameError
        If a sensor name is unknown.
    """
    for role, value in (("lr", lr), ("hr", hr)):
        if not isinstance(value, (str, Sensor)):
            raise InvalidInputError(
                f"check_pair needs sensors (objects or names) for {role}, not {type(value).__name__}: "
                "bands are compared; use resolution_factor() for bare GSDs"
            )
    lr_s, hr_s = get_sensor(lr), get_sensor(hr)
    factor = resolution_factor(lr_s, hr_s, tolerance=tolerance)

    candidates = list(lr_s.common_names) + list(lr_s.band_aliases) + list(hr_s.common_names) + list(hr_s.band_aliases)
    seen: dict[str, tuple[Band, Band]] = {}
    for name in candidates:
        if name not in seen and lr_s.has_band(name) and hr_s.has_band(name):
            seen[name] = (lr_s.band(name), hr_s.band(name))
    if not seen:
        raise InvalidInputError(
            f"{lr_s.id} and {hr_s.id} share no band: {lr_s.id} has {join_names(lr_s.common_names)}; "
            f"{hr_s.id} has {join_names(hr_s.common_names)}"
        )
    order = list(seen)
    ordered = sorted(
        order,
        key=lambda n: (
            seen[n][0].center_wavelength_um if seen[n][0].center_wavelength_um is not None else math.inf,
            seen[n][1].center_wavelength_um if seen[n][1].center_wavelength_um is not None else math.inf,
            order.index(n),
        ),
    )

    warnings: list[str] = []
    unknown_wl = []
    for name in ordered:
        lb, hb = seen[name]
        if lb.center_wavelength_um is None or hb.center_wavelength_um is None:
            unknown_wl.append(name)
            continue
        diff = abs(lb.center_wavelength_um - hb.center_wavelength_um)
        if diff > max_wavelength_difference_um + 1e-12:
            warnings.append(
                f"band {name!r}: centre wavelengths differ by {diff * 1000:.3g} nm ({lr_s.id} {lb.name} "
                f"{lb.center_wavelength_um:g} um vs {hr_s.id} {hb.name} {hb.center_wavelength_um:g} um); "
                "expect a radiometric bias, or drop the band"
            )
    if unknown_wl:
        warnings.append(
            f"centre wavelengths unknown for {', '.join(repr(n) for n in unknown_wl)}; spectral match not checked"
        )
    for s in (lr_s, hr_s):
        if not s.is_reflectance:
            warnings.append(
                f"{s.id} digital numbers are not calibrated reflectance; normalise the radiometry (e.g. "
                "histogram matching) before training"
            )
    if lr_s.cloud_mask is None and hr_s.cloud_mask is None:
        warnings.append(f"neither {lr_s.id} nor {hr_s.id} has a cloud mask; screen clouds another way")

    return PairCheck(
        lr=lr_s,
        hr=hr_s,
        factor=factor,
        common_names=tuple(ordered),
        band_pairs={n: seen[n] for n in ordered},
        warnings=tuple(warnings),
    )
