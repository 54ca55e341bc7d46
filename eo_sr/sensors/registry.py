"""The registry of sensors: look-ups by id, alias or STAC collection.

It starts with the built-in sensors of :mod:`eo_sr.sensors.catalogue`;
:func:`register_sensor` adds your own.

Standard library only, no I/O.
"""
from __future__ import annotations

from typing import Any, Union

from eo_sr.errors import InvalidInputError, UnknownNameError
from eo_sr.sensors.catalogue import BUILTIN_SENSORS
from eo_sr.sensors.model import Sensor, join_names, unknown_name_error

__all__ = [
    "find_sensor_for_collection",
    "get_sensor",
    "list_sensors",
    "register_sensor",
    "sensor_table",
    "unregister_sensor",
]

_REGISTRY: dict[str, Sensor] = {}
_ALIASES: dict[str, str] = {}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def register_sensor(sensor: Sensor, *, replace: bool = False) -> Sensor:
    """Add a sensor to the registry (e.g. a commercial sensor of your own).

    Parameters
    ----------
    sensor : Sensor
        The sensor; its ``id`` and ``aliases`` become names for
        :func:`get_sensor`.
    replace : bool, optional
        Replace a registered sensor with the same id (default: refuse).

    Returns
    -------
    Sensor
        ``sensor``, for chaining.

    Raises
    ------
    InvalidInputError
        If ``sensor`` is not a :class:`Sensor`, or its id or an alias is taken.
    """
    if not isinstance(sensor, Sensor):
        raise InvalidInputError(f"register_sensor expects a Sensor, got {type(sensor).__name__}")
    if sensor.id in _REGISTRY and not replace:
        raise InvalidInputError(
            f"a sensor with id {sensor.id!r} is already registered; pass replace=True to replace it"
        )
    names = {_normalise(a) for a in sensor.aliases} - {sensor.id}
    if _ALIASES.get(sensor.id, sensor.id) != sensor.id:
        raise InvalidInputError(f"id {sensor.id!r} is already an alias of {_ALIASES[sensor.id]!r}")
    for alias in sorted(names):
        owner = _REGISTRY.get(alias) or _REGISTRY.get(_ALIASES.get(alias, ""))
        if owner is not None and owner.id != sensor.id:
            raise InvalidInputError(f"alias {alias!r} of {sensor.id!r} is already a name of {owner.id!r}")
    if sensor.id in _REGISTRY:  # replacing: drop the old aliases
        for alias in [a for a, target in _ALIASES.items() if target == sensor.id]:
            del _ALIASES[alias]
    _REGISTRY[sensor.id] = sensor
    for alias in names:
        _ALIASES[alias] = sensor.id
    return sensor


def unregister_sensor(sensor_id: str) -> None:
    """Remove a sensor and its aliases from the registry (e.g. after a test).

    Parameters
    ----------
    sensor_id : str
        The sensor's id, exactly as registered; an unknown id is ignored.
    """
    _REGISTRY.pop(sensor_id, None)
    for alias in [a for a, target in _ALIASES.items() if target == sensor_id]:
        del _ALIASES[alias]


for _sensor in BUILTIN_SENSORS:
    register_sensor(_sensor)
del _sensor


# ----------------------------------------------------------------- look-ups


def get_sensor(name: Union[str, Sensor]) -> Sensor:
    """Return a registered sensor by id or alias.

    Parameters
    ----------
    name : str or Sensor
        Id (``"sentinel-2-l2a"``) or alias (``"s2"``, ``"sentinel-2"``),
        case-insensitive, ``_`` and spaces read as ``-``. A :class:`Sensor` is
        returned unchanged.

    Returns
    -------
    Sensor

    Raises
    ------
    UnknownNameError
        If no sensor has that name; the message lists the known ids.
    InvalidInputError
        If ``name`` is neither a string nor a Sensor.
    """
    if isinstance(name, Sensor):
        return name
    if not isinstance(name, str):
        raise InvalidInputError(f"expected a sensor id (str) or a Sensor, got {type(name).__name__} {name!r}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    try:
        return _REGISTRY[key]
    except KeyError:
        alias_text = ", ".join(sorted(_ALIASES))
        raise unknown_name_error(
            "sensor", name, list(_REGISTRY), extra=f"Aliases: {alias_text}." if alias_text else ""
        ) from None


def list_sensors() -> list[str]:
    """Ids of the registered sensors, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY)


def sensor_table() -> list[dict[str, Any]]:
    """One row per registered sensor, ready for ``pandas.DataFrame(sensor_table())``.

    Returns
    -------
    list of dict
        Keys: ``id``, ``name``, ``platform``, ``gsd`` (metres), ``bands``
        (comma-separated common names), ``n_bands``, ``dtype``, ``scale``,
        ``offset``, ``nodata``, ``cloud_mask`` (mask name or None) and
        ``providers`` (comma-separated provider names).
    """
    rows = []
    for sensor_id in list_sensors():
        s = _REGISTRY[sensor_id]
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "platform": s.platform,
                "gsd": s.gsd,
                "bands": ", ".join(s.common_names),
                "n_bands": len(s.bands),
                "dtype": s.dtype,
                "scale": s.scale,
                "offset": s.offset,
                "nodata": s.nodata,
                "cloud_mask": s.cloud_mask.name if s.cloud_mask else None,
                "providers": ", ".join(s.providers),
            }
        )
    return rows


def find_sensor_for_collection(collection: str, *, provider: str | None = None) -> Sensor:
    """Find the sensor whose products a STAC collection holds.

    Parameters
    ----------
    collection : str
        Collection id, e.g. ``"sentinel-2-l2a"`` (exact match preferred,
        case-insensitive otherwise).
    provider : str, optional
        Restrict the search to one provider or catalogue, e.g.
        ``"planetary-computer"`` (``"earth-search"`` includes ``"earth-search-c1"``).

    Returns
    -------
    Sensor

    Raises
    ------
    UnknownNameError
        If no registered sensor has that collection (at that provider); the
        message lists the known collections.
    InvalidInputError
        If ``collection`` is not a string, or several sensors share the
        collection and ``provider`` does not tell them apart.
    """
    if not isinstance(collection, str):
        raise InvalidInputError(f"collection must be a string, got {type(collection).__name__}")
    pkey = _normalise(provider) if provider is not None else None
    if pkey is not None:
        all_providers = sorted({n for s in _REGISTRY.values() for p in s.providers.values()
                                for n in (p.name, p.catalogue)})
        if pkey not in all_providers:
            raise unknown_name_error("provider", provider, all_providers)
    pairs = [
        (s, p)
        for s in _REGISTRY.values()
        for p in s.providers.values()
        if pkey is None or pkey in (p.name, p.catalogue)
    ]
    for exact in (True, False):
        hits = [
            (s, p)
            for s, p in pairs
            if (p.collection == collection if exact else p.collection.lower() == collection.strip().lower())
        ]
        if hits:
            sensors = {s.id: s for s, _ in hits}
            if len(sensors) > 1:
                where = ", ".join(f"{s.id} at {p.name}" for s, p in hits)
                raise InvalidInputError(
                    f"collection {collection!r} belongs to several sensors ({where}); pass provider= to choose"
                )
            return next(iter(sensors.values()))
    known = sorted({f"{p.collection} ({p.name})" for _, p in pairs})
    where = f" at provider {pkey!r}" if pkey else ""
    raise UnknownNameError(f"unknown collection {collection!r}{where}; known collections: {join_names(known)}")

