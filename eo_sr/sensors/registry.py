"""The registry of sensors: look-ups by id, alias or STAC collection.

It starts with the built-in sensors of :mod:`eo_sr.sensors.catalogue`;
:func:`register_sensor` adds your own, as a :class:`Sensor` or a YAML sensor file
(:mod:`eo_sr.sensors.files`), and :func:`get_sensor` accepts the path of such a file too.

Standard library only; files are read only when a sensor file is named.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from eo_sr.errors import InvalidInputError, UnknownNameError
from eo_sr.sensors.catalogue import BUILTIN_SENSORS
from eo_sr.sensors.files import is_sensor_file, load_sensor
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
#: Sensor id -> the resolved path of the file it was registered from (user sensors only).
_SOURCES: dict[str, Path] = {}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def register_sensor(sensor: Union[Sensor, str, os.PathLike], *, replace: bool = False) -> Sensor:
    """Add a sensor to the registry (e.g. a commercial sensor or a camera of your own).

    Parameters
    ----------
    sensor : Sensor, str or os.PathLike
        The sensor, or the path of a YAML sensor file (see :mod:`eo_sr.sensors.files`);
        its ``id`` and ``aliases`` become names for :func:`get_sensor`.
    replace : bool, optional
        Replace a registered sensor with the same id (default: refuse). Registering the
        same file again, unchanged or edited, replaces what it registered before.

    Returns
    -------
    Sensor
        The registered sensor, for chaining.

    Raises
    ------
    InvalidInputError
        If ``sensor`` is neither a :class:`Sensor` nor a path, a sensor file is invalid (the
        message names the line and the key), or its id or an alias is taken.
    NotFoundError
        If a sensor file does not exist.

    Examples
    --------
    >>> from eo_sr import sensors
    >>> camera = sensors.register_sensor("my_camera.yaml")  # doctest: +SKIP
    >>> sensors.get_sensor(camera.id) is camera  # doctest: +SKIP
    True
    """
    source = None
    if isinstance(sensor, (str, os.PathLike)):
        source = Path(sensor).resolve()
        sensor = load_sensor(sensor)
        if _REGISTRY.get(sensor.id) == sensor:  # unchanged: nothing to do
            _SOURCES.setdefault(sensor.id, source)
            return _REGISTRY[sensor.id]
        if _SOURCES.get(sensor.id) == source:
            replace = True
    if not isinstance(sensor, Sensor):
        raise InvalidInputError(f"register_sensor expects a Sensor or the path of a YAML sensor file, got "
                                f"{type(sensor).__name__}")
    if sensor.id in _REGISTRY and not replace:
        where = f" ({_SOURCES[sensor.id]})" if sensor.id in _SOURCES else ""
        raise InvalidInputError(
            f"a sensor with id {sensor.id!r} is already registered{where}; pass replace=True to replace it"
            + (", or give the sensor in the file another id" if source is not None else "")
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
    if source is not None:
        _SOURCES[sensor.id] = source
    else:
        _SOURCES.pop(sensor.id, None)
    return sensor


def unregister_sensor(sensor_id: str) -> None:
    """Remove a sensor and its aliases from the registry (e.g. after a test).

    Parameters
    ----------
    sensor_id : str
        The sensor's id, exactly as registered; an unknown id is ignored.
    """
    _REGISTRY.pop(sensor_id, None)
    _SOURCES.pop(sensor_id, None)
    for alias in [a for a, target in _ALIASES.items() if target == sensor_id]:
        del _ALIASES[alias]


for _sensor in BUILTIN_SENSORS:
    register_sensor(_sensor)
del _sensor

#: Where sensor files are found by every process: the folders or files listed in this variable
#: (separated by os.pathsep), and ``<cache>/sensors/``, where ``eo-sr sensors --register`` keeps them.
SENSORS_ENV = "EO_SR_SENSORS"


def user_sensor_files() -> list[Path]:
    """The sensor files every eo-sr process knows: ``$EO_SR_SENSORS`` and ``<cache>/sensors/*.yaml``."""
    from eo_sr.paths import cache_dir

    places = [Path(p).expanduser() for p in os.environ.get(SENSORS_ENV, "").split(os.pathsep) if p.strip()]
    places.append(cache_dir("sensors", create=False))
    files = []
    for place in places:
        if place.is_dir():
            files += sorted(f for f in place.iterdir() if is_sensor_file(f))
        elif is_sensor_file(place):
            files.append(place)
    return files


def _load_user_sensors() -> bool:
    """Register the user sensor files whose sensor is not registered from them; True if any was."""
    registered = set(_SOURCES.values())
    new = [f for f in user_sensor_files() if f.resolve() not in registered]
    for path in new:
        register_sensor(path)
    return bool(new)


def save_user_sensor(path: Union[str, os.PathLike]) -> Path:
    """Check a sensor file, register it and keep a copy in ``<cache>/sensors/`` for later processes.

    Returns
    -------
    pathlib.Path
        The kept copy (delete it to forget the sensor).
    """
    from eo_sr.paths import cache_dir

    sensor = register_sensor(path)
    target = cache_dir("sensors") / f"{sensor.id}.yaml"
    tmp = target.with_suffix(".yaml.part")
    tmp.write_bytes(Path(path).read_bytes())
    os.replace(tmp, target)
    _SOURCES[sensor.id] = target.resolve()
    return target


# ----------------------------------------------------------------- look-ups


def get_sensor(name: Union[str, Sensor, os.PathLike]) -> Sensor:
    """Return a registered sensor by id or alias, or the sensor of a YAML sensor file.

    Parameters
    ----------
    name : str, os.PathLike or Sensor
        Id (``"sentinel-2-l2a"``) or alias (``"s2"``, ``"sentinel-2"``),
        case-insensitive, ``_`` and spaces read as ``-``. A :class:`Sensor` is
        returned unchanged. A path ending in ``.yaml`` or ``.yml`` is read as a sensor
        file (:mod:`eo_sr.sensors.files`) and registered (:func:`register_sensor`), so
        that later look-ups by its id, or by its collection, find it.

    Returns
    -------
    Sensor

    Raises
    ------
    UnknownNameError
        If no sensor has that name; the message lists the known ids.
    InvalidInputError
        If ``name`` is neither a string nor a Sensor, or names an invalid sensor file (or
        one whose id another sensor has).
    NotFoundError
        If a sensor file does not exist.
    """
    if isinstance(name, Sensor):
        return name
    if is_sensor_file(name):
        return register_sensor(name)
    if not isinstance(name, str):
        raise InvalidInputError(f"expected a sensor id (str) or a Sensor, got {type(name).__name__} {name!r}")
    key = _normalise(name)
    if _ALIASES.get(key, key) not in _REGISTRY:
        _load_user_sensors()
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
    wanted = collection.strip().lower()
    if not any(p.collection.lower() == wanted for s in _REGISTRY.values() for p in s.providers.values()):
        _load_user_sensors()
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
    raise UnknownNameError(f"unknown collection {collection!r}{where}; known collections: {join_names(known)}. "
                           "A sensor of your own? Describe it in a YAML file and register it: "
                           "'eo-sr sensors --register FILE' (kept for later commands) or register_sensor(FILE)")

