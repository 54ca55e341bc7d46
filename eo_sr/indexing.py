"""A folder of GeoTIFFs as STAC items: your own imagery, searchable, matchable and servable.

:func:`index_folder` reads the headers of GeoTIFFs (or Cloud-Optimized GeoTIFFs) and writes
one :class:`pystac.Item` per scene, with what the rest of eo-sr reads from a catalogue's
items: a lon/lat footprint of the valid pixels, a datetime, the projection extension
(``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``), the raster extension
(``raster:bands``: data type, nodata, scale and offset where the file sets them), ``eo:bands``
from the sensor, the sensor's GSD and, where a cloud mask comes with the scene, its
``eo:cloud_cover``. Asset keys are those the sensor's provider uses, so that
:func:`eo_sr.loading.load_items` finds the bands.

A scene is either

* **one multi-band file** (``scene.tif`` with every band, as NAIP or PlanetScope deliver
  them): the sensor needs a provider that stores all bands in one asset (a sensor file's
  ``multiband_asset``; :attr:`eo_sr.sensors.Provider.band_index` gives each band's index), or
* **one file per band**, named ``<scene>_<band>.tif``, where ``<band>`` is a band's common
  name (``red``), its product name (``B04``) or its asset key; each becomes the asset of its
  band. A file ``<scene>_<mask>.tif``, where ``<mask>`` is the provider's mask asset key or
  the cloud mask's name (``scl``, ``SCL``), becomes the mask asset and gives the cloud cover.

The items are written by pystac (rio-stac would also do it, but would be one more dependency
for what a page of rasterio does here). :func:`items_collection` makes the STAC collection
that :func:`eo_sr.localapi.serve` needs next to the items; ``eo-sr index`` is the command.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from eo_sr.errors import InvalidInputError, NotFoundError, UnknownNameError
from eo_sr.sensors import Provider, Sensor, get_sensor

__all__ = ["FOOTPRINTS", "datetime_from_name", "index_folder", "items_collection"]

#: How :func:`index_folder` draws an item's geometry: the outline of the valid pixels, or the raster's bounds.
FOOTPRINTS = ("valid", "bounds")
#: Longest side, in pixels, of the decimated validity mask that a valid-data footprint is traced on.
FOOTPRINT_PIXELS = 512
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_GEOTIFF = "image/tiff; application=geotiff"
_NODATA_CLASS_NAMES = {"no_data", "nodata", "fill", "no-data"}

# ISO 8601 dates in file names: 2023-06-01, 2023-06-01T10:30:00, 20230601, 20230601T103000
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:[T_ ](\d{2})[:-]?(\d{2})(?:[:-]?(\d{2}))?)?(?!\d)")
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?(?!\d)")


def _extensions() -> list[str]:
    from pystac.extensions.eo import EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension

    return [EOExtension.get_schema_uri(), ProjectionExtension.get_schema_uri(), RasterExtension.get_schema_uri()]


# --------------------------------------------------------------------------------- datetimes


def datetime_from_name(name: str) -> _dt.datetime | None:
    """The first ISO 8601 date (and time) in a file name, in UTC, or None.

    Parameters
    ----------
    name : str
        A file name or stem, e.g. ``"field_2023-06-01.tif"`` or ``"S2_20230601T103021_B04.tif"``.

    Returns
    -------
    datetime.datetime or None
        Timezone-aware (UTC); midnight where the name gives only a date.
    """
    for pattern in (_ISO_DATE, _COMPACT_DATE):
        for m in pattern.finditer(name):
            parts = [int(p) if p else 0 for p in m.groups()]
            try:
                return _dt.datetime(*parts, tzinfo=_dt.timezone.utc)
            except ValueError:  # 2023-13-45, or digits that are not a date
                continue
    return None


def _datetime_from_tag(value: str) -> _dt.datetime | None:
    """TIFFTAG_DATETIME (``YYYY:MM:DD HH:MM:SS``, the TIFF 6.0 format) or an ISO string, in UTC."""
    value = value.strip()
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return _dt.datetime.strptime(value, fmt).replace(tzinfo=_dt.timezone.utc)
        except ValueError:
            pass
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _parse_datetime(value) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        when = value
    elif isinstance(value, _dt.date):
        when = _dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            when = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"datetime={value!r} is not an ISO 8601 date or time, e.g. '2023-06-01' or "
                                    "'2023-06-01T10:30:00Z'") from None
    else:
        raise InvalidInputError(f"datetime must be an ISO 8601 string or a datetime, got {type(value).__name__}")
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


# ------------------------------------------------------------------------------------ files


class _Raster:
    """What one file's header says (read once)."""

    def __init__(self, path: Path) -> None:
        import rasterio
        from rasterio.errors import RasterioIOError

        self.path = path
        try:
            with rasterio.open(path) as src:
                self.count = src.count
                self.crs = src.crs
                self.transform = src.transform
                self.shape = (src.height, src.width)
                self.bounds = tuple(src.bounds)
                self.dtypes = tuple(src.dtypes)
                self.nodatavals = tuple(src.nodatavals)
                self.scales = tuple(src.scales)
                self.offsets = tuple(src.offsets)
                self.tags = src.tags()
                self.band_tags = [src.tags(i) for i in range(1, src.count + 1)]
                self.layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "")
                self.driver = src.driver
                self.has_gcps = bool(src.gcps[0])
        except RasterioIOError as exc:
            raise InvalidInputError(f"{path} is not a raster that GDAL can read ({exc}); move it out of the folder "
                                    "or narrow pattern=") from None
        if self.crs is None:
            hint = " (it has ground control points: warp it first, e.g. gdalwarp)" if self.has_gcps else ""
            raise InvalidInputError(f"{path} has no CRS (coordinate reference system){hint}: set one, e.g. "
                                    f"`gdal_edit.py -a_srs EPSG:32633 {path.name}`, or write it with rioxarray's "
                                    "write_crs")
        if self.transform.is_identity:
            raise InvalidInputError(f"{path} has a CRS but no geotransform (pixel size and origin): georeference it "
                                    "first (gdal_edit.py -a_ullr, or gdalwarp)")

    @property
    def epsg(self) -> int | None:
        return self.crs.to_epsg()

    @property
    def crs_text(self) -> str:
        epsg = self.epsg
        return f"EPSG:{epsg}" if epsg else self.crs.to_string()

    @property
    def media_type(self) -> str:
        return _COG if self.layout.upper() == "COG" else _GEOTIFF

    def raster_band(self, i: int) -> dict:
        """``raster:bands`` entry of band ``i`` (0-based)."""
        entry: dict[str, Any] = {"data_type": self.dtypes[i]}
        nodata = self.nodatavals[i]
        if nodata is not None:
            entry["nodata"] = "nan" if isinstance(nodata, float) and math.isnan(nodata) else \
                (int(nodata) if float(nodata).is_integer() and self.dtypes[i].startswith(("int", "uint"))
                 else float(nodata))
        scale, offset = self.scales[i], self.offsets[i]
        tags = {k.lower(): v for k, v in self.band_tags[i].items()}
        for key in ("scale_factor", "scale"):
            if scale == 1.0 and key in tags:
                scale = _float_tag(tags[key], self.path, key)
        for key in ("add_offset", "offset"):
            if offset == 0.0 and key in tags:
                offset = _float_tag(tags[key], self.path, key)
        if scale != 1.0 or offset != 0.0:
            entry["scale"], entry["offset"] = float(scale), float(offset)
        res = abs(self.transform.a)
        if self.crs.is_projected:
            entry["spatial_resolution"] = float(res) * float(self.crs.linear_units_factor[1])
        return entry

    def proj(self) -> dict:
        return {"proj:shape": list(self.shape), "proj:transform": [float(v) for v in list(self.transform)[:6]]}


def _float_tag(value: str, path: Path, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"{path}: band tag {key}={value!r} is not a number") from None


def _validity(raster: _Raster, out_shape: tuple[int, int]):
    """Boolean validity of a raster decimated to ``out_shape`` (nearest): a pixel is valid where any band is
    not nodata, or, without a nodata value, where its internal mask says so. An alpha band is not trusted: a
    4-band 8-bit GeoTIFF is tagged RGBA by default, and its 4th band is then near-infrared, not alpha."""
    import numpy as np
    import rasterio
    from rasterio.enums import MaskFlags, Resampling

    with rasterio.open(raster.path) as src:
        nodata = src.nodata
        if nodata is not None:
            data = src.read(out_shape=(src.count, *out_shape), resampling=Resampling.nearest)
            invalid = np.isnan(data) if isinstance(nodata, float) and math.isnan(nodata) else data == nodata
            return ~invalid.all(axis=0)
        if MaskFlags.per_dataset in src.mask_flag_enums[0] and MaskFlags.alpha not in src.mask_flag_enums[0]:
            return src.read_masks(1, out_shape=out_shape, resampling=Resampling.nearest) > 0
    return np.ones(out_shape, bool)


def _footprint(raster: _Raster, how: str):
    """Shapely polygon in the raster's CRS: the valid pixels' outline, or the bounds (None: no valid pixel)."""
    import numpy as np
    import rasterio.features
    from shapely.geometry import box, shape
    from shapely.ops import unary_union

    full = box(*raster.bounds)
    if how == "bounds":
        return full
    h, w = raster.shape
    step = max(1, math.ceil(max(h, w) / FOOTPRINT_PIXELS))
    out_shape = (max(1, math.ceil(h / step)), max(1, math.ceil(w / step)))
    valid = _validity(raster, out_shape)
    if valid.all():
        return full
    if not valid.any():
        return None
    transform = raster.transform @ raster.transform.scale(w / out_shape[1], h / out_shape[0])
    polygons = [shape(geom) for geom, value in rasterio.features.shapes(valid.astype(np.uint8), mask=valid,
                                                                         transform=transform) if value]
    outline = unary_union(polygons).buffer(0)
    pixel = max(abs(transform.a), abs(transform.e))
    return outline.simplify(pixel / 2, preserve_topology=True).intersection(full)


def _to_lonlat(geom, crs):
    """GeoJSON geometry in EPSG:4326 (edges densified, split at the antimeridian)."""
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping

    from shapely.geometry import shape

    x0, y0, x1, y1 = geom.bounds
    dense = shapely.segmentize(geom, max(x1 - x0, y1 - y0) / 16 or 1.0)
    lonlat = shape(transform_geom(crs, "EPSG:4326", mapping(dense), antimeridian_cutting=True))
    # drop the points that lie on straight lines again (1e-7 degrees is about a centimetre)
    return mapping(shapely.set_precision(lonlat.simplify(1e-7), 1e-7))


def _bbox(geojson: dict) -> list[float]:
    from shapely.geometry import shape

    return [round(v, 7) for v in shape(geojson).bounds]


def _flagged_share(path: Path, sensor: Sensor) -> float | None:
    """Percent of a mask file's valid pixels that the sensor's cloud mask flags (None: no valid pixel)."""
    import numpy as np
    import rasterio

    cm = sensor.cloud_mask
    with rasterio.open(path) as src:
        data = src.read()
        file_nodata = src.nodata
    nodata_values = sorted(v for v, name in cm.classes.items() if name.lower() in _NODATA_CLASS_NAMES)
    if cm.kind == "bands":
        flagged = np.zeros(data.shape[1:], bool)
        for band in sorted(cm.invalid):
            if band <= data.shape[0]:
                flagged |= data[band - 1] == 1
        valid = np.ones(data.shape[1:], bool)
    else:
        layer = data[0]
        if cm.kind == "bitmask":
            nodata_bits = sum(1 << b for b in nodata_values)
            valid = (layer.astype(np.uint64) & np.uint64(nodata_bits)) == 0
            bits = sum(1 << b for b in cm.invalid if b not in nodata_values)
            flagged = (layer.astype(np.uint64) & np.uint64(bits)) != 0
        else:
            valid = ~np.isin(layer, nodata_values)
            flagged = np.isin(layer, sorted(set(cm.invalid) - set(nodata_values)))
        if file_nodata is not None:
            valid &= layer != file_nodata
    n = int(valid.sum())
    if n == 0:
        return None
    return round(100.0 * float((flagged & valid).sum()) / n, 4)


# ---------------------------------------------------------------------------------- scenes


def _suffixes(sensor: Sensor) -> list[tuple[str, str]]:
    """(lower-case file-name suffix, band common name or ``"<mask>"``), longest suffix first: every name a band
    file may end in (common name, product band name, alias, asset key) and every name of the mask."""
    names: dict[str, str] = {}
    for band in sensor.bands:
        names.setdefault(band.common_name.lower(), band.common_name)
        names.setdefault(band.name.lower(), band.common_name)
    for alias, target in sensor.band_aliases.items():
        names.setdefault(alias.lower(), target)
    for provider in sensor.providers.values():
        if provider.mask_asset:
            names.setdefault(provider.mask_asset.lower(), "<mask>")
        for common, asset in provider.assets.items():
            if common not in provider.band_index:
                names.setdefault(asset.lower(), common)
    if sensor.cloud_mask is not None:
        names.setdefault(sensor.cloud_mask.name.lower(), "<mask>")
    return sorted(names.items(), key=lambda kv: -len(kv[0]))


def _split_stem(stem: str, suffixes: list[tuple[str, str]]) -> tuple[str, str | None]:
    """``(scene, band)`` for ``<scene>_<band>``, else ``(stem, None)``."""
    low = stem.lower()
    for suffix, band in suffixes:
        if low.endswith("_" + suffix) and len(stem) > len(suffix) + 1:
            return stem[: -len(suffix) - 1], band
    return stem, None


def _group_files(files: Sequence[Path], sensor: Sensor) -> dict[str, dict]:
    """Scene name -> {"file": path} (one multi-band file) or {"bands": {common: path}}, plus "mask"."""
    scenes: dict[str, dict] = {}
    suffixes = _suffixes(sensor)
    for path in files:
        stem = path.stem
        prefix, band = _split_stem(stem, suffixes)
        if band is None:
            scene = scenes.setdefault(stem, {})
            if "file" in scene:
                raise InvalidInputError(f"two files make scene {stem!r}: {scene['file'].name} and {path.name}; "
                                        "give each scene one name")
            scene["file"] = path
        elif band == "<mask>":
            scene = scenes.setdefault(prefix, {})
            if "mask" in scene:
                raise InvalidInputError(f"scene {prefix!r} has two mask files: {scene['mask'].name} and {path.name}")
            scene["mask"] = path
        else:
            scene = scenes.setdefault(prefix, {})
            bands = scene.setdefault("bands", {})
            if band in bands:
                raise InvalidInputError(f"scene {prefix!r} has two files for band {band!r}: {bands[band].name} and "
                                        f"{path.name}")
            bands[band] = path
    for name, scene in scenes.items():
        if "file" in scene and "bands" in scene:
            raise InvalidInputError(
                f"scene {name!r} has both a file of its own ({scene['file'].name}) and band files "
                f"({', '.join(p.name for p in scene['bands'].values())}): keep one layout per scene, or rename")
        if "file" not in scene and "bands" not in scene:
            raise InvalidInputError(f"{scene['mask'].name} is a mask with no image: scene {name!r} has no band file "
                                    f"({name}_<band>.tif) and no multi-band file ({name}.tif)")
    return scenes


def _is_multiband(provider: Provider, sensor: Sensor) -> bool:
    keys = {provider.assets[c] for c in sensor.common_names if c in provider.assets}
    return len(keys) == 1 and all(c in provider.band_index for c in provider.assets)


def _choose_provider(sensor: Sensor, provider: str | None, multiband: bool, scene: str) -> Provider:
    layout = "one multi-band file" if multiband else "one file per band"
    if provider is not None:
        chosen = sensor.provider(provider)
        if _is_multiband(chosen, sensor) != multiband:
            raise InvalidInputError(
                f"scene {scene!r} is {layout}, but provider {chosen.name!r} of sensor {sensor.id} stores "
                + ("its bands in one asset: name no band in the file names" if not multiband else
                   f"one asset per band: name the files {scene}_<band>.tif (band: "
                   f"{', '.join(sensor.common_names)})"))
        return chosen
    fits = [p for p in sensor.providers.values() if _is_multiband(p, sensor) == multiband]
    if not fits:
        if multiband:
            raise InvalidInputError(
                f"scene {scene!r} is one multi-band file, but no provider of sensor {sensor.id} stores all bands in "
                f"one asset: add one to the sensor file (providers: - {{name: local, collection: {sensor.id}, "
                f"multiband_asset: image}}), or split the file into {scene}_<band>.tif files")
        raise InvalidInputError(
            f"scene {scene!r} has one file per band, but every provider of sensor {sensor.id} stores all bands in "
            f"one asset ({', '.join(sensor.providers)}): give the scene one multi-band file {scene}.tif")
    by_common_name = [p for p in fits if all(p.assets[c] == c for c in p.assets)]
    return (by_common_name or fits)[0]


def _band_entry(sensor: Sensor, common: str) -> dict:
    band = sensor.band(common)
    entry: dict[str, Any] = {"name": band.name, "common_name": band.common_name}
    if band.center_wavelength_um is not None:
        entry["center_wavelength"] = band.center_wavelength_um
    if band.full_width_half_max_um is not None:
        entry["full_width_half_max"] = band.full_width_half_max_um
    return entry


def _check_one_crs(scene: str, rasters: Sequence[_Raster]) -> None:
    crs = {r.crs_text for r in rasters}
    if len(crs) > 1:
        listing = ", ".join(f"{r.path.name} ({r.crs_text})" for r in rasters)
        raise InvalidInputError(f"the files of scene {scene!r} are in different CRSs: {listing}; reproject them to "
                                "one CRS (gdalwarp -t_srs) before indexing")


def _scene_item(name: str, scene: dict, *, sensor: Sensor, provider: str | None, collection: str | None,
                when_given: _dt.datetime | None, cloud_cover: float | None, properties: Mapping,
                footprint: str):
    import pystac

    multiband = "file" in scene
    chosen = _choose_provider(sensor, provider, multiband, name)
    assets: dict[str, dict] = {}
    rasters: list[_Raster] = []
    if multiband:
        raster = _Raster(scene["file"])
        key = next(iter({chosen.assets[c] for c in chosen.assets}))
        order = sorted(chosen.band_index, key=chosen.band_index.get)
        if raster.count != len(order):
            raise InvalidInputError(
                f"{raster.path.name} has {raster.count} band(s), but sensor {sensor.id} has {len(order)} in asset "
                f"{key!r} ({', '.join(order)}): check the sensor, or write the bands as {name}_<band>.tif files")
        assets[key] = {
            "href": raster.path.resolve().as_uri(), "type": raster.media_type, "roles": ["data"],
            "title": f"{sensor.name}: {', '.join(order)}",
            "eo:bands": [_band_entry(sensor, c) for c in order],
            "raster:bands": [raster.raster_band(i) for i in range(raster.count)], **raster.proj(),
        }
        rasters.append(raster)
    else:
        missing = [c for c in chosen.assets if c not in scene["bands"]]
        if missing:
            raise InvalidInputError(
                f"scene {name!r} lacks band(s) {', '.join(missing)} of sensor {sensor.id} (files "
                f"{', '.join(f'{name}_{c}.tif' for c in missing)}); index complete scenes, or describe a sensor with "
                "only the bands you have in a sensor file")
        for common in sensor.common_names:
            if common not in scene["bands"]:
                continue
            raster = _Raster(scene["bands"][common])
            if raster.count != 1:
                raise InvalidInputError(f"{raster.path.name} is the file of band {common!r} of scene {name!r} but has "
                                        f"{raster.count} bands; a band file holds one band")
            key = chosen.assets.get(common, common)
            band = sensor.band(common)
            assets[key] = {
                "href": raster.path.resolve().as_uri(), "type": raster.media_type, "roles": ["data"],
                "title": f"{band.common_name} ({band.name})", "gsd": band.gsd,
                "eo:bands": [_band_entry(sensor, common)], "raster:bands": [raster.raster_band(0)], **raster.proj(),
            }
            rasters.append(raster)
    props: dict[str, Any] = {}
    if "mask" in scene:
        mask = _Raster(scene["mask"])
        rasters_all = [*rasters, mask]
        _check_one_crs(name, rasters_all)
        key = chosen.mask_asset or (sensor.cloud_mask.name.lower() if sensor.cloud_mask else "mask")
        assets[key] = {
            "href": mask.path.resolve().as_uri(), "type": mask.media_type, "roles": ["cloud", "data-mask"],
            "title": sensor.cloud_mask.name if sensor.cloud_mask else "mask",
            "raster:bands": [mask.raster_band(i) for i in range(mask.count)], **mask.proj(),
        }
        if sensor.cloud_mask is not None and cloud_cover is None:
            share = _flagged_share(mask.path, sensor)
            if share is not None:
                props["eo:cloud_cover"] = share
    _check_one_crs(name, rasters)

    # When: given, else the file name, else the TIFF tag.
    when = when_given
    files = [r.path for r in rasters]
    if when is None:
        when = datetime_from_name(name)
    if when is None:
        for raster in rasters:
            tag = raster.tags.get("TIFFTAG_DATETIME")
            when = _datetime_from_tag(tag) if tag else None
            if when is not None:
                break
    if when is None:
        raise InvalidInputError(
            f"no date for scene {name!r}: neither its name nor a TIFFTAG_DATETIME tag of {files[0].name} gives one; "
            "pass datetime= (e.g. datetime='2023-06-01T10:30:00Z'; eo-sr index --datetime), put an ISO date in the "
            "file name (e.g. field_2023-06-01.tif), or set the tag (gdal_edit.py -mo "
            "TIFFTAG_DATETIME='2023:06:01 10:30:00')")

    # Where: the valid pixels of every band (their intersection), in lon/lat.
    shapes = [_footprint(r, footprint) for r in rasters]
    if any(s is None for s in shapes):
        empty = next(r.path.name for r, s in zip(rasters, shapes) if s is None)
        raise InvalidInputError(f"{empty} has no valid pixel (all nodata): nothing to index in scene {name!r}")
    outline = shapes[0]
    for other in shapes[1:]:
        outline = outline.intersection(other)
    crs = rasters[0].crs
    geometry = _to_lonlat(outline, crs)
    lefts, bottoms, rights, tops = zip(*(r.bounds for r in rasters))

    props.update({"gsd": sensor.gsd, "proj:bbox": [float(min(lefts)), float(min(bottoms)), float(max(rights)),
                                                   float(max(tops))]})
    if rasters[0].epsg:
        props["proj:code"] = rasters[0].crs_text
    else:
        props["proj:code"] = None
        props["proj:wkt2"] = crs.to_wkt()
    if len({(tuple(r.shape), tuple(r.transform)) for r in rasters}) == 1:
        props.update(rasters[0].proj())
    if cloud_cover is not None:
        props["eo:cloud_cover"] = float(cloud_cover)
    props.update(properties)
    props["datetime"] = when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    d = {
        "type": "Feature", "stac_version": pystac.get_stac_version(), "stac_extensions": _extensions(), "id": name,
        "collection": collection or chosen.collection, "geometry": geometry, "bbox": _bbox(geometry),
        "properties": props, "assets": assets, "links": [],
    }
    return pystac.Item.from_dict(d, preserve_dict=False)


def index_folder(folder: str | os.PathLike, *, sensor: Sensor | str | os.PathLike, collection: str | None = None,
                 pattern: str = "*.tif", datetime: Any = None, provider: str | None = None,
                 cloud_cover: float | None = None, properties: Mapping[str, Any] | None = None,
                 footprint: str = "valid") -> list:
    """STAC items for the GeoTIFFs of a folder: one per multi-band file, or per ``<scene>_<band>.tif`` group.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder with the files.
    sensor : Sensor, str or os.PathLike
        The sensor that took the images: a registered name (``"naip"``), a :class:`Sensor`, or
        the path of a YAML sensor file (read and registered, see :mod:`eo_sr.sensors.files`).
    collection : str, optional
        The items' collection id (default: the chosen provider's collection, which lets
        :func:`eo_sr.sensors.find_sensor_for_collection` and :func:`eo_sr.loading.load_items`
        find the sensor from the items alone; another id needs ``sensor=`` when loading).
    pattern : str, optional
        Glob pattern of the files, relative to ``folder`` (default ``"*.tif"``; ``"**/*.tif"``
        searches subfolders too).
    datetime : str or datetime, optional
        The acquisition time of every item (ISO 8601; a time without zone is UTC). By default
        each scene's time comes from an ISO date in its name (``field_2023-06-01.tif``,
        ``S2_20230601T103021_B04.tif``), else from its files' ``TIFFTAG_DATETIME`` tag (which some
        software sets to the time the file was saved, hence second).
    provider : str, optional
        The provider of ``sensor`` whose asset keys the items use (default: one whose layout
        fits the files: a single multi-band asset for a multi-band file, one asset per band
        otherwise, preferring assets keyed by common name).
    cloud_cover : float, optional
        ``eo:cloud_cover`` (percent) of every item. By default it is computed from a scene's
        mask file (the share of its valid pixels that the sensor's cloud mask marks invalid)
        and left out where there is none. :func:`eo_sr.matching.match_scenes` drops LR scenes
        without one: pass ``cloud_cover=0`` for imagery known to be clear.
    properties : Mapping, optional
        More item properties for every item (``platform``, ``s2:processing_baseline``, ...).
    footprint : {"valid", "bounds"}, optional
        The geometry: the outline of the valid (not nodata) pixels, traced on a validity mask
        decimated to at most 512 pixels a side (default), or the raster's bounds (faster).

    Returns
    -------
    list of pystac.Item
        Sorted by id; write them with :func:`eo_sr.stac.write_items` (the ndjson that
        ``eo-sr match --hr/--lr`` reads).

    Raises
    ------
    NotFoundError
        If ``folder`` does not exist.
    InvalidInputError
        If no file matches ``pattern`` (the message lists what the folder holds), a file is not
        a raster or has no CRS (named), a multi-band file's band count differs from the
        sensor's, a scene lacks band files or mixes CRSs, the sensor has no provider for the
        files' layout, or a scene's datetime cannot be found (pass ``datetime=``).
    UnknownNameError
        If ``sensor`` or ``provider`` is unknown.

    References
    ----------
    .. [1] STAC projection extension v2.0.0, https://github.com/stac-extensions/projection
    .. [2] STAC raster extension v1.1.0, https://github.com/stac-extensions/raster

    Examples
    --------
    >>> from eo_sr import indexing, stac
    >>> items = indexing.index_folder("my_tiles/", sensor="my_camera.yaml")  # doctest: +SKIP
    >>> stac.write_items(items, "hr.ndjson")  # doctest: +SKIP
    """
    folder = Path(folder)
    if not folder.exists():
        raise NotFoundError(f"folder {folder} not found")
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is a file; pass the folder that holds the GeoTIFFs "
                                f"(pattern={folder.name!r} selects files in it)")
    if footprint not in FOOTPRINTS:
        raise InvalidInputError(f"footprint must be one of {', '.join(FOOTPRINTS)}, got {footprint!r}")
    if cloud_cover is not None and (isinstance(cloud_cover, bool) or not 0 <= float(cloud_cover) <= 100):
        raise InvalidInputError(f"cloud_cover is a percentage between 0 and 100, got {cloud_cover!r}")
    sensor = get_sensor(sensor)
    when = None if datetime is None else _parse_datetime(datetime)
    files = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not files:
        present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if not present:
            raise InvalidInputError(f"{folder} is empty: put the GeoTIFFs to index in it")
        shown = ", ".join(present[:8]) + (f" and {len(present) - 8} more" if len(present) > 8 else "")
        raise InvalidInputError(f"no file in {folder} matches pattern {pattern!r}; it holds {shown} (pass another "
                                "pattern, e.g. '*.tiff' or '**/*.tif' for subfolders)")
    scenes = _group_files(files, sensor)
    items = [_scene_item(name, scene, sensor=sensor, provider=provider, collection=collection, when_given=when,
                         cloud_cover=cloud_cover, properties=dict(properties or {}), footprint=footprint)
             for name, scene in sorted(scenes.items())]
    return items


def items_collection(items, *, id: str | None = None, description: str | None = None,
                     sensor: Sensor | str | None = None):
    """A STAC collection around items: what :func:`eo_sr.localapi.serve` loads next to them.

    Parameters
    ----------
    items : sequence of pystac.Item
        Items of one collection (e.g. from :func:`index_folder`).
    id : str, optional
        The collection id (default: the items' collection).
    description : str, optional
        Default: names the sensor and the number of items.
    sensor : Sensor or str, optional
        For the collection's summaries (``gsd``, ``eo:bands``); default: found from the id.

    Returns
    -------
    pystac.Collection
        Spatial extent the union of the items' bboxes, temporal extent their first and last
        datetimes.

    Raises
    ------
    InvalidInputError
        If there are no items, or they belong to several collections and ``id`` is not given.
    """
    import pystac

    from eo_sr.sensors import find_sensor_for_collection

    items = list(items)
    if not items:
        raise InvalidInputError("no items: index a folder first (index_folder)")
    ids = sorted({it.collection_id for it in items if it.collection_id})
    if id is None:
        if len(ids) != 1:
            raise InvalidInputError(f"the items belong to {len(ids)} collections ({', '.join(ids) or 'none'}); "
                                    "pass id=")
        id = ids[0]
    if sensor is None:
        try:
            sensor = find_sensor_for_collection(id)
        except (UnknownNameError, InvalidInputError):  # a collection of the user's own naming: no summaries
            sensor = None
    else:
        sensor = get_sensor(sensor)
    boxes = [it.bbox for it in items]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    times = sorted(it.datetime for it in items)
    summaries = None
    if sensor is not None:
        summaries = pystac.Summaries({"gsd": [sensor.gsd],
                                      "eo:bands": [_band_entry(sensor, c) for c in sensor.common_names]})
    what = f"{sensor.name} ({sensor.id})" if sensor is not None else "imagery"
    collection = pystac.Collection(
        id=id, description=description or f"{len(items)} scene(s) of {what}, indexed by eo-sr from GeoTIFFs",
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[times[0], times[-1]]])),
        license="other", summaries=summaries,
    )
    return collection
