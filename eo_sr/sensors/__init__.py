"""A registry of satellite (and aerial) sensors.

Each :class:`Sensor` records what eo-sr needs to know to search, load and pair
imagery from it: its spectral bands (:class:`Band`), how digital numbers map to
reflectance, its quality / cloud mask (:class:`CloudMask`) and, for every STAC
catalogue that serves it (:class:`Provider`), the collection id and the exact
asset key of every band.

The package is light: standard library only, and no I/O except reading a sensor
file you name (PyYAML, imported then), so ``import eo_sr.sensors`` is instant. Its
modules:

:mod:`eo_sr.sensors.model`
    The data model: :class:`Band`, :class:`CloudMask`, :class:`Provider`,
    :class:`Sensor`.
:mod:`eo_sr.sensors.catalogue`
    The built-in sensors (Sentinel-2 L2A, Landsat 8/9 C2 L2, NAIP, PlanetScope,
    the demo world's ``demo-lr`` and ``demo-hr``), with where their numbers
    come from.
:mod:`eo_sr.sensors.registry`
    :func:`get_sensor`, :func:`list_sensors`, :func:`sensor_table`,
    :func:`find_sensor_for_collection`, :func:`register_sensor` and
    :func:`unregister_sensor`; a sensor file's path works wherever a sensor name does.
    :func:`save_user_sensor` keeps a file for later processes, which find it (with
    those in ``$EO_SR_SENSORS``) when a name or collection is not a built-in one.
:mod:`eo_sr.sensors.files`
    Sensors of your own from a small YAML file: :func:`load_sensor`,
    :func:`sensor_from_dict`.
:mod:`eo_sr.sensors.pairing`
    :func:`resolution_factor` and :func:`check_pair` for an LR/HR pair.

Everything public is importable from ``eo_sr.sensors`` itself.

Examples
--------
>>> from eo_sr import sensors
>>> s2 = sensors.get_sensor("s2")
>>> s2.id
'sentinel-2-l2a'
>>> s2.asset_key("red", "earth-search"), s2.asset_key("red", "planetary-computer")
('red', 'B04')
>>> sensors.resolution_factor("demo-lr", "demo-hr")
4
>>> sensors.check_pair("landsat-c2-l2", "sentinel-2-l2a").band_pairs["nir"][0].name
'SR_B5'
"""
from __future__ import annotations

# The built-in sensors, MASK_KINDS and GsdLike are public too (not in __all__, as before the split).
from eo_sr.sensors.catalogue import DEMO_HR, DEMO_LR, LANDSAT_C2_L2, NAIP, PLANETSCOPE, SENTINEL_2_L2A
from eo_sr.sensors.files import load_sensor, sensor_from_dict
from eo_sr.sensors.model import MASK_KINDS, Band, CloudMask, Provider, Sensor
from eo_sr.sensors.pairing import GsdLike, PairCheck, check_pair, resolution_factor
from eo_sr.sensors.registry import (
    find_sensor_for_collection,
    get_sensor,
    list_sensors,
    register_sensor,
    save_user_sensor,
    sensor_table,
    unregister_sensor,
    user_sensor_files,
)

__all__ = [
    "Band",
    "CloudMask",
    "PairCheck",
    "Provider",
    "Sensor",
    "check_pair",
    "find_sensor_for_collection",
    "get_sensor",
    "list_sensors",
    "load_sensor",
    "register_sensor",
    "resolution_factor",
    "save_user_sensor",
    "sensor_from_dict",
    "sensor_table",
    "unregister_sensor",
    "user_sensor_files",
]
