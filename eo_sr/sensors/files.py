"""Sensors of your own, from a small YAML file: :func:`load_sensor`, :func:`sensor_from_dict`.

A sensor file describes one :class:`~eo_sr.sensors.model.Sensor` with the same fields the
built-in ones have (see :mod:`eo_sr.sensors.catalogue`)::

    id: my-camera                 # required: lower case, the name get_sensor() accepts
    name: My 4-band aerial camera # optional (default: the id)
    platform: aircraft            # optional
    gsd: 0.6                      # required: metres, of the finest (main) bands
    dtype: uint8                  # required: uint8, uint16, int16, uint32, int32, float32, float64
    scale: null                   # reflectance = DN * scale + offset; both, or neither (null)
    offset: null
    nodata: null                  # the DN that marks missing data, or null
    bands:                        # required, in band order
      - {name: Red, common_name: red, center_wavelength: 0.64, full_width_half_max: 0.07, gsd: 0.6}
      - {name: Green, common_name: green}     # wavelengths in micrometres, optional; gsd: the sensor's
      - {name: Blue, common_name: blue}
      - {name: NIR, common_name: nir}
    providers:                    # optional (default: one provider "local", one file per band)
      - name: local
        collection: my-camera     # the STAC collection id of its items
        multiband_asset: image    # all bands in one file (band 1, 2, ... in band order) ...
        # assets: {red: red, ...} # ... or one asset per band: common name -> asset key; or
        #                           `assets: common_name` / `assets: name` (keys = those band fields)
        mask_asset: null          # asset key of the cloud / quality mask, if any
    cloud_mask:                   # optional
      name: SCL
      kind: classification        # classification, bitmask or bands
      classes: {0: no_data, 3: cloud_shadows, 4: vegetation, 8: cloud_medium_probability}
      invalid: [0, 3, 8]          # values (or class names) that make a pixel unusable

Also accepted: ``notes``, ``harmonization``, ``aliases``, ``band_aliases``,
``stac_platforms`` (sensor), and ``url``, ``requires_signing``, ``requester_pays``,
``api_key_env``, ``notes`` (provider). Every mistake is reported with the file, the line and
the key it is at (:class:`~eo_sr.errors.InvalidInputError`).

Reads files and needs PyYAML (a base dependency), imported only when a file is read.
"""
from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Any, Mapping

from eo_sr.errors import InvalidInputError, NotFoundError
from eo_sr.sensors.model import MASK_KINDS, Band, CloudMask, Provider, Sensor

__all__ = ["DTYPES", "YAML_SUFFIXES", "is_sensor_file", "load_sensor", "sensor_from_dict"]

#: The data types a sensor's digital numbers may have.
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
#: File name endings read as sensor files.
YAML_SUFFIXES = (".yaml", ".yml")

_SENSOR_KEYS = {"id", "name", "platform", "gsd", "dtype", "scale", "offset", "nodata", "bands", "providers",
                "cloud_mask", "notes", "harmonization", "aliases", "band_aliases", "stac_platforms"}
_BAND_KEYS = {"name", "common_name", "center_wavelength", "full_width_half_max", "gsd"}
_PROVIDER_KEYS = {"name", "collection", "assets", "multiband_asset", "mask_asset", "url", "requires_signing",
                  "requester_pays", "api_key_env", "notes"}
_MASK_KEYS = {"name", "kind", "classes", "invalid", "notes"}
#: The default provider of a file that names none: one file (asset) per band, keyed by common name.
DEFAULT_PROVIDER = "local"


def is_sensor_file(value: Any) -> bool:
    """Whether ``value`` names a sensor file: a path (str or os.PathLike) ending in .yaml or .yml."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return isinstance(value, str) and value.strip().lower().endswith(YAML_SUFFIXES)


# ----------------------------------------------------------------------- YAML with line numbers


class _Node:
    """Where a value sits: the file and the line of each key (mapping) or item (list)."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int) -> None:
        self.line = line
        self.lines: dict = {}


class _LineDict(dict):
    __slots__ = ("where",)


class _LineList(list):
    __slots__ = ("where",)


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        loader.flatten_mapping(node)
        out = _LineDict()
        out.where = _Node(node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                raise InvalidInputError(f"line {line}: a key must be a plain name, not {key!r}") from None
            if key in out:
                raise InvalidInputError(f"line {line}: key {key!r} appears twice in one mapping "
                                        f"(first on line {out.where.lines[key]})")
            out[key] = loader.construct_object(value_node, deep=True)
            out.where.lines[key] = line
        return out

    def sequence(loader, node):
        out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
        out.where = _Node(node.start_mark.line + 1)
        out.where.lines = {i: child.start_mark.line + 1 for i, child in enumerate(node.value)}
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, sequence)
    return Loader


class _Context:
    """Builds messages that name the file, the line and the key path."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def line_of(self, parent, key=None) -> int | None:
        where = getattr(parent, "where", None)
        if where is None:
            return None
        return where.lines.get(key, where.line) if key is not None else where.line

    def error(self, path: str, message: str, parent=None, key=None) -> InvalidInputError:
        line = self.line_of(parent, key) if parent is not None else None
        place = self.source or "sensor"
        if line is not None:
            place += f", line {line}"
        return InvalidInputError(f"{place}: {path}: {message}" if path else f"{place}: {message}")


def _unknown_keys(ctx: _Context, mapping: Mapping, allowed: set, path: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(allowed))}"
            raise ctx.error(f"{path}.{key}" if path else str(key), f"unknown key {key!r}{hint}", mapping, key)


def _mapping(ctx: _Context, value, path: str, parent=None, key=None) -> Mapping:
    if not isinstance(value, Mapping):
        raise ctx.error(path, f"must be a mapping of keys to values, got {type(value).__name__} {value!r}",
                        parent, key)
    return value


def _required(ctx: _Context, mapping: Mapping, key: str, path: str):
    if key not in mapping or mapping[key] is None:
        raise ctx.error(f"{path}.{key}" if path else key, "required key is missing", mapping)
    return mapping[key]


def _text(ctx: _Context, mapping: Mapping, key: str, path: str, *, default=None, required=False):
    if required:
        _required(ctx, mapping, key, path)
    value = mapping.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.error(_join(path, key), f"must be text, got {type(value).__name__} {value!r}", mapping, key)
    return str(value)


def _number(ctx: _Context, mapping: Mapping, key: str, path: str, *, default=None, required=False,
            positive=False, unit=""):
    if required:
        _required(ctx, mapping, key, path)
    value = mapping.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        hint = f" (write the number alone, in {unit})" if unit and isinstance(value, str) else ""
        raise ctx.error(_join(path, key), f"must be a number{hint}, got {value!r}", mapping, key)
    if positive and value <= 0:
        raise ctx.error(_join(path, key), f"must be positive, got {value!r}", mapping, key)
    return float(value)


def _flag(ctx: _Context, mapping: Mapping, key: str, path: str) -> bool:
    value = mapping.get(key, False)
    if not isinstance(value, bool):
        raise ctx.error(_join(path, key), f"must be true or false, got {value!r}", mapping, key)
    return value


def _names(ctx: _Context, mapping: Mapping, key: str, path: str) -> tuple[str, ...]:
    value = mapping.get(key) or ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ctx.error(_join(path, key), f"must be a list of names, got {value!r}", mapping, key)
    return tuple(value)


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# ----------------------------------------------------------------------------- sections


def _band(ctx: _Context, raw, path: str, sensor_gsd: float, parent, index: int) -> Band:
    raw = _mapping(ctx, raw, path, parent, index)
    _unknown_keys(ctx, raw, _BAND_KEYS, path)
    common = _text(ctx, raw, "common_name", path, required=True)
    name = _text(ctx, raw, "name", path, default=common)
    wavelengths = {}
    for key in ("center_wavelength", "full_width_half_max"):
        value = _number(ctx, raw, key, path, positive=True, unit="micrometres")
        if value is not None and value >= 20:
            raise ctx.error(_join(path, key), f"{value:g} looks like nanometres: write micrometres, as STAC's eo "
                            f"extension does ({value / 1000:g})", raw, key)
        wavelengths[key] = value
    gsd = _number(ctx, raw, "gsd", path, positive=True, unit="metres")
    try:
        return Band(name, common, wavelengths["center_wavelength"], wavelengths["full_width_half_max"],
                    sensor_gsd if gsd is None else gsd)
    except InvalidInputError as exc:
        raise ctx.error(path, str(exc), raw) from None


def _cloud_mask(ctx: _Context, raw, path: str, parent) -> CloudMask:
    raw = _mapping(ctx, raw, path, parent, "cloud_mask")
    _unknown_keys(ctx, raw, _MASK_KEYS, path)
    name = _text(ctx, raw, "name", path, required=True)
    kind = _text(ctx, raw, "kind", path, required=True)
    if kind not in MASK_KINDS:
        raise ctx.error(f"{path}.kind", f"must be one of {', '.join(MASK_KINDS)}, got {kind!r}", raw, "kind")
    classes_raw = _mapping(ctx, _required(ctx, raw, "classes", path), f"{path}.classes", raw, "classes")
    classes = {}
    for value, label in classes_raw.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(f"{path}.classes", f"class values must be integers, got {value!r}", classes_raw, value)
        if not isinstance(label, str) or not label:
            raise ctx.error(f"{path}.classes[{value}]", f"must be a class name, got {label!r}", classes_raw, value)
        classes[value] = label
    invalid_raw = raw.get("invalid") or []
    if not isinstance(invalid_raw, (list, tuple)):
        raise ctx.error(f"{path}.invalid", f"must be a list of class values or names, got {invalid_raw!r}", raw,
                        "invalid")
    by_name = {label: value for value, label in classes.items()}
    invalid = set()
    for i, item in enumerate(invalid_raw):
        if isinstance(item, str):
            if item not in by_name:
                raise ctx.error(f"{path}.invalid[{i}]", f"{item!r} is not one of the classes "
                                f"({', '.join(by_name)})", invalid_raw, i)
            item = by_name[item]
        if isinstance(item, bool) or not isinstance(item, int) or item not in classes:
            raise ctx.error(f"{path}.invalid[{i}]", f"{item!r} is not one of the class values {sorted(classes)}",
                            invalid_raw, i)
        invalid.add(item)
    try:
        return CloudMask(name=name, kind=kind, classes=classes, invalid=frozenset(invalid),
                         notes=_text(ctx, raw, "notes", path, default=""))
    except InvalidInputError as exc:
        raise ctx.error(path, str(exc), raw) from None


def _provider(ctx: _Context, raw, path: str, bands: tuple[Band, ...], parent, index: int) -> Provider:
    raw = _mapping(ctx, raw, path, parent, index)
    _unknown_keys(ctx, raw, _PROVIDER_KEYS, path)
    name = _text(ctx, raw, "name", path, required=True).strip().lower()
    collection = _text(ctx, raw, "collection", path, required=True)
    multi = _text(ctx, raw, "multiband_asset", path)
    assets_raw = raw.get("assets")
    if multi is not None and assets_raw is not None:
        raise ctx.error(path, "give either assets (one asset per band) or multiband_asset (all bands in one "
                        "asset), not both", raw, "assets")
    band_index: dict[str, int] = {}
    if multi is not None:
        assets = {b.common_name: multi for b in bands}
        band_index = {b.common_name: i for i, b in enumerate(bands, start=1)}
    elif assets_raw is None or assets_raw in ("common_name", "name"):
        field = assets_raw or "common_name"
        assets = {b.common_name: getattr(b, field) for b in bands}
    else:
        assets_raw = _mapping(ctx, assets_raw, f"{path}.assets", raw, "assets")
        known = {b.common_name for b in bands}
        assets = {}
        for band, key in assets_raw.items():
            if band not in known:
                close = difflib.get_close_matches(str(band), sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ctx.error(f"{path}.assets.{band}", f"{band!r} is not a common name of the bands "
                                f"({', '.join(b.common_name for b in bands)}){hint}", assets_raw, band)
            if not isinstance(key, str) or not key:
                raise ctx.error(f"{path}.assets.{band}", f"must be an asset key, got {key!r}", assets_raw, band)
            assets[band] = key
    try:
        return Provider(name=name, collection=collection, assets=assets,
                        mask_asset=_text(ctx, raw, "mask_asset", path), band_index=band_index,
                        requires_signing=_flag(ctx, raw, "requires_signing", path),
                        requester_pays=_flag(ctx, raw, "requester_pays", path),
                        url=_text(ctx, raw, "url", path), api_key_env=_text(ctx, raw, "api_key_env", path),
                        notes=_text(ctx, raw, "notes", path, default=""))
    except InvalidInputError as exc:
        raise ctx.error(path, str(exc), raw) from None


# ------------------------------------------------------------------------------- public


def sensor_from_dict(spec: Mapping, *, source: str | None = None) -> Sensor:
    """Build a :class:`~eo_sr.sensors.model.Sensor` from a mapping laid out like a sensor file.

    Parameters
    ----------
    spec : Mapping
        The keys of a sensor file (see :mod:`eo_sr.sensors.files`).
    source : str, optional
        Where the mapping comes from, for messages (a file name).

    Returns
    -------
    Sensor
        Not registered: pass it to :func:`eo_sr.sensors.register_sensor` for
        :func:`eo_sr.sensors.get_sensor` to find it by id.

    Raises
    ------
    InvalidInputError
        A key is missing, unknown or has a value of the wrong kind; the message names the key
        (and, for a file, the line).
    """
    ctx = _Context(source)
    spec = _mapping(ctx, spec, "")
    _unknown_keys(ctx, spec, _SENSOR_KEYS, "")
    sensor_id = _text(ctx, spec, "id", "", required=True)
    if sensor_id != sensor_id.strip().lower() or not sensor_id.strip():
        raise ctx.error("id", f"must be a lower-case name, e.g. {sensor_id.strip().lower()!r}, got {sensor_id!r}",
                        spec, "id")
    gsd = _number(ctx, spec, "gsd", "", required=True, positive=True, unit="metres")
    dtype = _text(ctx, spec, "dtype", "", required=True)
    if dtype not in DTYPES:
        raise ctx.error("dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}", spec, "dtype")
    scale = _number(ctx, spec, "scale", "")
    offset = _number(ctx, spec, "offset", "")
    if (scale is None) != (offset is None):
        missing = "offset" if offset is None else "scale"
        raise ctx.error(missing, "give both scale and offset (reflectance = DN * scale + offset), or neither "
                        "(digital numbers that are not reflectance)", spec, "scale" if scale is not None else "offset")
    nodata = spec.get("nodata")
    if nodata is not None:
        if isinstance(nodata, bool) or not isinstance(nodata, (int, float)):
            raise ctx.error("nodata", f"must be a number (the value of missing pixels) or null, got {nodata!r}",
                            spec, "nodata")
        if dtype.startswith(("uint", "int")) and float(nodata) != int(nodata):
            raise ctx.error("nodata", f"must be an integer for dtype {dtype}, got {nodata!r}", spec, "nodata")
        nodata = int(nodata) if dtype.startswith(("uint", "int")) else nodata

    bands_raw = _required(ctx, spec, "bands", "")
    if not isinstance(bands_raw, (list, tuple)) or not bands_raw:
        raise ctx.error("bands", "must be a non-empty list of bands, e.g. - {name: B04, common_name: red}",
                        spec, "bands")
    bands = tuple(_band(ctx, raw, f"bands[{i}]", gsd, bands_raw, i) for i, raw in enumerate(bands_raw))
    seen: dict[str, int] = {}
    for i, band in enumerate(bands):
        if band.common_name in seen:
            raise ctx.error(f"bands[{i}].common_name", f"{band.common_name!r} is also the common name of "
                            f"bands[{seen[band.common_name]}]: common names must be unique", bands_raw, i)
        seen[band.common_name] = i

    providers_raw = spec.get("providers")
    if providers_raw is None:
        providers = (Provider(name=DEFAULT_PROVIDER, collection=sensor_id,
                              assets={b.common_name: b.common_name for b in bands}),)
    else:
        if not isinstance(providers_raw, (list, tuple)) or not providers_raw:
            raise ctx.error("providers", "must be a list of providers, e.g. - {name: local, collection: my-camera, "
                            "multiband_asset: image}", spec, "providers")
        providers = tuple(_provider(ctx, raw, f"providers[{i}]", bands, providers_raw, i)
                          for i, raw in enumerate(providers_raw))
        names = [p.name for p in providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ctx.error("providers", f"provider names {dupes} appear more than once", spec, "providers")
    cloud_mask = None if spec.get("cloud_mask") is None else _cloud_mask(ctx, spec["cloud_mask"], "cloud_mask", spec)

    band_aliases = spec.get("band_aliases") or {}
    _mapping(ctx, band_aliases, "band_aliases", spec, "band_aliases")
    try:
        return Sensor(
            id=sensor_id, name=_text(ctx, spec, "name", "", default=sensor_id),
            platform=_text(ctx, spec, "platform", "", default=""), gsd=gsd, bands=bands, dtype=dtype,
            scale=scale, offset=offset, nodata=nodata, cloud_mask=cloud_mask, providers=providers,
            notes=_text(ctx, spec, "notes", "", default=""),
            harmonization=_text(ctx, spec, "harmonization", "", default=""),
            band_aliases={str(k): str(v) for k, v in band_aliases.items()},
            aliases=_names(ctx, spec, "aliases", ""), stac_platforms=_names(ctx, spec, "stac_platforms", ""),
        )
    except InvalidInputError as exc:
        raise ctx.error("", str(exc), spec) from None


def load_sensor(path: str | os.PathLike) -> Sensor:
    """Read a sensor from a YAML file.

    Parameters
    ----------
    path : str or os.PathLike
        A sensor file (see :mod:`eo_sr.sensors.files` for its keys).

    Returns
    -------
    Sensor
        Not registered: :func:`eo_sr.sensors.register_sensor` accepts the path too, and
        registers what it reads.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    InvalidInputError
        If it is not YAML, or a key is missing, unknown or wrong; the message names the file,
        the line and the key.

    References
    ----------
    .. [1] STAC eo extension v1.1.0 (band common names, wavelengths in micrometres),
       https://github.com/stac-extensions/eo

    Examples
    --------
    >>> from eo_sr.sensors import load_sensor
    >>> sensor = load_sensor("my_camera.yaml")  # doctest: +SKIP
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"sensor file {path} not found" if not path.exists() else
                            f"{path} is a folder, not a sensor file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a text file: a sensor file is YAML") from None
    try:
        spec = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}, {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{path}{where}: not valid YAML ({problem})") from None
    if spec is None:
        raise InvalidInputError(f"{path} is empty: a sensor file needs at least id, gsd, dtype and bands")
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"{path}: a sensor file is a mapping of keys (id, gsd, dtype, bands, ...), "
                                f"not a {type(spec).__name__}")
    return sensor_from_dict(spec, source=str(path))
