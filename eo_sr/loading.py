"""Load STAC items into xarray, harmonised to surface reflectance, with masks.

Two loaders: odc-stac (default; pixel-exact onto a given grid, reads multi-band
assets) and stackstac (supported; it needs ``epsg=`` and ``bounds=`` passed
explicitly because pystac >= 1.12 drops ``proj:epsg`` and stackstac reads nothing
else, ``xy_coords="center"`` so rioxarray infers the right transform, and an integer
``fill_value``). Both give the same pixels on the same grid (tested).

Harmonisation turns digital numbers into reflectance exactly once:

* Sentinel-2 L2A from processing baseline 04.00 (25 January 2022) carries a BOA
  offset of +1000 DN. The offset is subtracted when the item says so: Earth Search's
  ``earthsearch:boa_offset_applied`` (True: the offset is in the data), else
  ``s2:processing_baseline >= "04.00"`` (Planetary Computer), else the acquisition
  date, with a warning.
* Otherwise the sensor's scale and offset (Landsat C2 L2: DN * 2.75e-5 - 0.2).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np

from eo_sr.errors import DataReadError, InvalidInputError
from eo_sr.grid import GridSpec, grid_of
from eo_sr.sensors import Sensor, find_sensor_for_collection, get_sensor

LOADERS = ("odc", "stackstac")
BASELINE_04_START = datetime(2022, 1, 25, tzinfo=timezone.utc)
S2_BOA_OFFSET = 1000


def _as_items(items) -> list:
    import pystac

    out = []
    for it in items:
        out.append(it if isinstance(it, pystac.Item) else pystac.Item.from_dict(it))
    if not out:
        raise InvalidInputError("no items to load; search first (eo_sr.stac.search) and check the result is not empty")
    return out


def sensor_and_provider(item, sensor: Sensor | str | None = None) -> tuple[Sensor, str]:
    """The sensor of an item and the provider whose asset keys it uses."""
    if sensor is None:
        if not item.collection_id:
            raise InvalidInputError(f"item {item.id} names no collection; pass sensor= explicitly")
        sensor = find_sensor_for_collection(item.collection_id)
    sensor = get_sensor(sensor)
    for name, provider in sensor.providers.items():
        if set(provider.assets.values()) <= set(item.assets):
            return sensor, name
    raise InvalidInputError(
        f"item {item.id} has assets {sorted(item.assets)}, which match no provider of sensor {sensor.id} "
        f"({', '.join(f'{n}: {sorted(p.assets.values())}' for n, p in sensor.providers.items())})")


def boa_offset_in_data(item) -> bool:
    """Whether a Sentinel-2 L2A item's digital numbers carry the +1000 BOA offset."""
    props = item.properties
    if "earthsearch:boa_offset_applied" in props:
        return bool(props["earthsearch:boa_offset_applied"])
    baseline = props.get("s2:processing_baseline") or props.get("processing:version")
    if baseline:
        try:
            return float(baseline) >= 4.0
        except ValueError:
            pass
    when = item.datetime or datetime.fromisoformat(props["start_datetime"].replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    warnings.warn(f"item {item.id} says nothing of its processing baseline; assuming the BOA offset from the "
                  f"date ({when:%Y-%m-%d})", stacklevel=3)
    return when >= BASELINE_04_START


def dn_offset(item, sensor: Sensor) -> float:
    """Digital-number offset to subtract before scaling (the Sentinel-2 BOA offset)."""
    if sensor.id in ("sentinel-2-l2a", "demo-lr") and boa_offset_in_data(item):
        return float(S2_BOA_OFFSET)
    return 0.0


def load_items(items, *, bands: Sequence[str] = ("blue", "green", "red", "nir"), grid: GridSpec | None = None,
               sensor: Sensor | str | None = None, resampling: str = "nearest", loader: str = "odc",
               chunks: dict | None = None, harmonize: bool = True, with_mask: bool = True):
    """Load items as one ``(time, band, y, x)`` DataArray, lazily (dask).

    Parameters
    ----------
    items : ItemCollection or list of Item/dict
        Scenes of one sensor.
    bands : sequence of str
        Common band names (``blue``, ``red``, ``nir``...); asset keys are looked up in
        the sensor registry for the item's provider.
    grid : GridSpec, optional
        Target grid (see :mod:`eo_sr.grid`); default the first item's native grid of
        its first band.
    sensor : Sensor or str, optional
        Default: found from the items' collection.
    resampling : str
        For the data bands (masks always use nearest).
    loader : {"odc", "stackstac"}
    chunks : dict, optional
        Dask chunks, default 1024 x 1024 pixels.
    harmonize : bool
        Return float32 reflectance (NaN where no data); else the raw digital numbers.
    with_mask : bool
        Add a boolean coordinate ``cloud_mask`` ``(time, y, x)``: True where the
        sensor's mask asset flags the pixel invalid (cloud, shadow, ...). Sensors
        without a mask get none (use :func:`eo_sr.radiometry.blue_threshold_cloud_mask`).

    Returns
    -------
    xarray.DataArray
        Dims ``(time, band, y, x)``, band coordinate by common name, CRS and transform
        written (``.rio``), per-time coordinates ``id``, ``dn_offset`` and
        ``eo:cloud_cover``; attrs ``sensor``, ``scale``, ``harmonized``.

    Raises
    ------
    InvalidInputError
        No items, an unknown loader, a band the sensor lacks, an asset missing from an item.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if loader not in LOADERS:
        raise InvalidInputError(f"unknown loader {loader!r}; choose one of {list(LOADERS)}")
    items = _as_items(items)
    sensor, provider = sensor_and_provider(items[0], sensor)
    keys = [sensor.asset_key(b, provider) for b in bands]  # raises UnknownNameError listing the bands
    for it in items:
        missing = [k for k in keys if k not in it.assets]
        if missing:
            raise InvalidInputError(f"item {it.id} lacks asset(s) {missing} for bands {list(bands)}; "
                                    f"it has {sorted(it.assets)}")
    if grid is None:
        grid = native_grid(items[0], keys[0])
    chunks = chunks or {"x": 1024, "y": 1024}
    raw = _load_odc(items, keys, grid, resampling, chunks) if loader == "odc" else \
        _load_stackstac(items, keys, grid, resampling, chunks, sensor)
    raw = raw.assign_coords(band=list(bands))
    nodata = sensor.nodata
    offsets = np.array([dn_offset(it, sensor) for it in items], dtype=np.float32)
    raw = raw.assign_coords(
        id=("time", [it.id for it in items]),
        dn_offset=("time", offsets),
        **{"eo:cloud_cover": ("time", [float(it.properties.get("eo:cloud_cover", np.nan)) for it in items])},
    )
    if harmonize:
        scale = np.float32(sensor.scale if sensor.scale else 1.0)
        add = np.float32(sensor.offset or 0.0)
        off = raw["dn_offset"].astype(np.float32)
        out = (raw.astype(np.float32) - off) * scale + add
        if nodata is not None:
            out = out.where(raw != nodata)
        out.attrs = {"harmonized": 1, "units": "reflectance" if sensor.is_reflectance else "scaled DN"}
    else:
        out = raw
        out.attrs = {"harmonized": 0, "nodata": nodata}
    out.attrs.update(sensor=sensor.id, provider=provider, scale=float(sensor.scale or 1.0))
    if with_mask and sensor.cloud_mask is not None and sensor.mask_asset(provider):
        out = out.assign_coords(cloud_mask=mask_from_asset(items, sensor, provider, grid, loader, chunks))
    out = out.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return out.transpose("time", "band", "y", "x")


def read_items(items, **options):
    """:func:`load_items` and read the pixels now (``.compute()``), with read errors named.

    Returns
    -------
    xarray.DataArray
        In memory, as :func:`load_items` describes it.

    Raises
    ------
    DataReadError
        A file is missing, truncated or not a raster; the message names it and the items.
    """
    items = _as_items(items)
    try:
        return load_items(items, **options).compute()
    except OSError as exc:  # rasterio's read errors are OSErrors
        ids = [it.id for it in items]
        # rasterio says "Read failed. See previous exception": the file and the cause are in the chain.
        parts, e = [], exc
        while e is not None and len(parts) < 4:
            if str(e) and str(e) not in parts:
                parts.append(str(e))
            e = e.__cause__ or e.__context__
        raise DataReadError(f"cannot read the pixels of {ids if len(ids) > 1 else ids[0]}: {': '.join(parts)}; "
                            "check that the asset files exist and are complete (re-download a truncated one)") \
            from None


def native_grid(item, asset_key: str) -> GridSpec:
    """The grid of one asset, from its ``proj:`` metadata (no I/O)."""
    asset = item.assets[asset_key]
    t = asset.extra_fields.get("proj:transform") or item.properties.get("proj:transform")
    shape = asset.extra_fields.get("proj:shape") or item.properties.get("proj:shape")
    code = item.properties.get("proj:code") or (f"EPSG:{item.properties['proj:epsg']}"
                                                 if item.properties.get("proj:epsg") else None)
    if not (t and shape and code):
        raise InvalidInputError(f"item {item.id} has no proj:transform/proj:shape/proj:code for {asset_key!r}; "
                                "pass grid= (see eo_sr.grid.aligned_grids)")
    return GridSpec(code, float(t[2]), float(t[5]), float(t[0]), int(shape[0]), int(shape[1]))


def _load_odc(items, keys, grid, resampling, chunks):
    import odc.stac
    from rasterio.errors import NotGeoreferencedWarning

    # odc-stac warps through an in-memory destination without a geotransform; rasterio
    # warns about that destination, not about our data (whose georeferencing is checked).
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

    # groupby="id": one layer per item, in the caller's order (overlapping tiles stay apart)
    ds = odc.stac.load(items, bands=keys, geobox=grid.geobox(), resampling=resampling, chunks=chunks,
                       groupby="id", fail_on_error=True)
    da = ds[keys].to_array("band")
    x, y = grid.coords()
    return da.assign_coords(x=x, y=y).drop_vars("spatial_ref", errors="ignore")


def _load_stackstac(items, keys, grid, resampling, chunks, sensor):
    import stackstac
    from rasterio.enums import Resampling

    epsg = int(grid.crs.split(":")[1])
    dtype = np.dtype(sensor.dtype)
    da = stackstac.stack(
        [it.to_dict() for it in items], assets=keys, epsg=epsg, resolution=grid.res, bounds=grid.bounds,
        snap_bounds=False, xy_coords="center", dtype=dtype, fill_value=dtype.type(sensor.nodata or 0),
        rescale=False, resampling=getattr(Resampling, resampling), chunksize=chunks.get("x", 1024),
        sortby_date=False,
    )
    da = da.drop_vars([c for c in da.coords if c not in ("time", "band", "y", "x")])
    x, y = grid.coords()
    return da.assign_coords(x=x, y=y).transpose("time", "band", "y", "x")


def mask_from_asset(items, sensor: Sensor, provider: str, grid: GridSpec, loader: str, chunks):
    """Boolean ``(time, y, x)``: True where the sensor's mask flags the pixel invalid."""
    key = sensor.mask_asset(provider)
    raw = (_load_odc(items, [key], grid, "nearest", chunks) if loader == "odc"
           else _load_stackstac(items, [key], grid, "nearest", chunks, sensor)).isel(band=0, drop=True)
    cm = sensor.cloud_mask
    if cm.kind == "bitmask":
        bits = np.uint32(cm.invalid_bits)
        flagged = (raw.astype(np.uint32) & bits) != 0
    else:
        flagged = raw.isin(sorted(cm.invalid))
    return flagged.drop_vars([c for c in flagged.coords if c not in ("time", "y", "x")])


def pixels_equal(a, b) -> bool:
    """True when two loaded arrays hold the same pixels on the same grid (NaN == NaN)."""
    ga, gb = grid_of(a), grid_of(b)
    if ga != gb or a.shape != b.shape:
        return False
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
