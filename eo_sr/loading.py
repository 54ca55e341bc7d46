"""Load STAC items into xarray, harmonised to surface reflectance, with masks.

Two loaders: odc-stac (default; pixel-exact onto a given grid) and stackstac
(supported; it needs ``epsg=`` and ``bounds=`` passed explicitly because pystac >= 1.12
drops ``proj:epsg`` and stackstac reads nothing else, ``xy_coords="center"`` so
rioxarray infers the right transform, and an integer ``fill_value``). Both give the
same pixels on the same grid (tested), multi-band assets (NAIP, PlanetScope) included:
a band is read by its index in the asset (:meth:`eo_sr.sensors.Sensor.band_index`).

Harmonisation turns digital numbers into reflectance exactly once,
``reflectance = DN * scale + offset`` per item and band, with the terms read in this
order (:func:`reflectance_terms`):

1. Earth Search's ``earthsearch:boa_offset_applied`` on Sentinel-2 L2A: ``true`` means
   Element 84 already removed the BOA offset of processing baseline 04.00 (the pixels
   are harmonised, reflectance = DN / 10000); ``false`` means the pixels are as ESA
   made them (offset present from baseline 04.00 on). The flag wins over the items'
   ``raster:bands`` offset, which Earth Search writes as -0.1 whether or not it applied
   the offset (Element84/earth-search#9).
2. ``raster:bands`` ``scale`` / ``offset`` of the asset (Earth Search's
   ``sentinel-2-c1-l2a``, Landsat Collection 2 on Planetary Computer).
3. Sentinel-2 L2A: ``s2:processing_baseline`` >= 04.00 (Planetary Computer) subtracts
   the offset; with no baseline either, the acquisition date decides, with a warning.
4. The sensor's own scale and offset (Landsat C2 L2: DN * 2.75e-5 - 0.2).

Flags are sometimes wrong (Element84/earth-search#66, #71; cirrus-geo/cirrus-earth-search
#33), so :func:`read_items` checks the pixels against them (:func:`offset_contradictions`)
and warns, naming the scene, when they disagree; ``boa_offset=`` overrides the metadata.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import numpy as np

from eo_sr.errors import DataReadError, InvalidInputError
from eo_sr.grid import GridSpec, grid_of
from eo_sr.sensors import Sensor, find_sensor_for_collection, get_sensor

LOADERS = ("odc", "stackstac")
BASELINE_04_START = datetime(2022, 1, 25, tzinfo=timezone.utc)
S2_BOA_OFFSET = 1000
#: Earth Search's flag (v1) and its name in the v0 API: true = the offset was already removed.
EARTH_SEARCH_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")


def _as_items(items) -> list:
    import pystac

    out = []
    for it in items:
        out.append(it if isinstance(it, pystac.Item) else pystac.Item.from_dict(it))
    if not out:
        raise InvalidInputError("no items to load; search first (eo_sr.stac.search) and check the result is not empty")
    return out


def sensor_and_provider(item, sensor: Sensor | str | None = None) -> tuple[Sensor, str]:
    """The sensor of an item and the provider whose asset keys it uses.

    The provider serving the item's collection, else the one whose asset keys the item
    has most of (items indexed from a user's own files name no provider); whether the
    item has the assets of the bands asked for is checked when they are loaded.
    """
    if sensor is None:
        if not item.collection_id:
            raise InvalidInputError(f"item {item.id} names no collection; pass sensor= explicitly")
        sensor = find_sensor_for_collection(item.collection_id)
    sensor = get_sensor(sensor)
    # Earth Search and Planetary Computer both name their collection sentinel-2-l2a: the asset keys decide
    shared = {name: (len(set(p.assets.values()) & set(item.assets)), p.collection == item.collection_id)
              for name, p in sensor.providers.items()}
    best = max(shared, key=lambda name: (shared[name][1] and shared[name][0] > 0, shared[name][0]), default=None)
    if best is not None and shared[best][0]:
        return sensor, best
    raise InvalidInputError(
        f"item {item.id} has assets {sorted(item.assets)}, which match no provider of sensor {sensor.id} "
        f"({', '.join(f'{n}: {sorted(p.assets.values())}' for n, p in sensor.providers.items())})")


def has_boa_offset(sensor: Sensor) -> bool:
    """Whether a sensor's products are Sentinel-2 L2A, whose DNs may carry the BOA offset."""
    return sensor.id in ("sentinel-2-l2a", "demo-lr") or any(p.startswith("sentinel-2") for p in sensor.stac_platforms)


def _baseline(props: Mapping) -> float | None:
    value = props.get("s2:processing_baseline") or props.get("sentinel:processing_baseline") \
        or props.get("processing:version")
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def boa_offset_in_data(item) -> bool:
    """Whether a Sentinel-2 L2A item's digital numbers still carry the +1000 BOA offset.

    Parameters
    ----------
    item : pystac.Item

    Returns
    -------
    bool
        False when Earth Search says it removed the offset
        (``earthsearch:boa_offset_applied: true``); else whether the processing
        baseline is 04.00 or later; else (with a warning) whether the scene was acquired
        on or after 25 January 2022.

    References
    ----------
    ESA, "Sentinel-2 L2A: provision of negative radiometric values (BOA_ADD_OFFSET)",
    processing baseline 04.00; Element84/earth-search#9 (the flag is the truth, the
    ``raster:bands`` offset is not), cirrus-geo/cirrus-earth-search#21.
    """
    return _boa_decision(item)[0]


def _boa_decision(item) -> tuple[bool, str]:
    """(whether the offset is in the DNs, the property that says so)."""
    props = item.properties
    applied = next((k for k in EARTH_SEARCH_FLAGS if props.get(k) is True), None)
    if applied:
        return False, applied
    baseline = _baseline(props)
    if baseline is not None:
        return baseline >= 4.0, "s2:processing_baseline"
    when = item.datetime or datetime.fromisoformat(props["start_datetime"].replace("Z", "+00:00"))
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    warnings.warn(f"item {item.id} says nothing of its processing baseline; assuming the BOA offset from the "
                  f"date ({when:%Y-%m-%d})", stacklevel=4)
    return when >= BASELINE_04_START, "acquisition date"


def _listed_bands(asset) -> list:
    """The bands an asset describes: ``eo:bands`` (STAC 1.0) or ``bands`` (STAC 1.1)."""
    listed = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    return [b for b in listed if isinstance(b, Mapping)]


def band_index(item, sensor: Sensor, band: str, provider: str) -> int | None:
    """Where a band lies in its asset: 1-based for a multi-band asset, None for a single-band one.

    The item's own description of a multi-band asset (``eo:bands`` / ``bands`` by common
    name) wins over the sensor's table, because band sets change between years and
    states (3-band NAIP before 2007 and in some states).

    Raises
    ------
    InvalidInputError
        The asset lists its bands and ``band`` is not among them.
    """
    default = sensor.band_index(band, provider)
    if default is None:
        return None
    key = sensor.asset_key(band, provider)
    listed = _listed_bands(item.assets[key])
    if len(listed) < 2:
        return default
    wanted = sensor.band(band)
    for i, entry in enumerate(listed, start=1):
        if (entry.get("common_name") or entry.get("eo:common_name")) == wanted.common_name \
                or entry.get("name") == wanted.name:
            return i
    names = [e.get("common_name") or e.get("eo:common_name") or e.get("name") for e in listed]
    raise InvalidInputError(f"item {item.id}: asset {key!r} holds bands {names}, not {band!r}; "
                            f"choose bands among them (bands=[...])")


def _raster_band(item, key: str, index: int | None) -> Mapping:
    bands = item.assets[key].extra_fields.get("raster:bands") or []
    i = (index or 1) - 1
    return bands[i] if i < len(bands) and isinstance(bands[i], Mapping) else {}


def reflectance_terms(item, sensor: Sensor, band: str, provider: str, *,
                      boa_offset: bool | None = None) -> tuple[float, float, str]:
    """How one band of one item becomes reflectance: ``DN * scale + offset``.

    Parameters
    ----------
    item : pystac.Item
    sensor : Sensor
    band : str
        Common band name.
    provider : str
        The provider whose asset keys the item uses (:func:`sensor_and_provider`).
    boa_offset : bool, optional
        Sentinel-2 only: say whether the DNs carry the BOA offset, overriding the
        metadata (for a scene whose flag is wrong).

    Returns
    -------
    (float, float, str)
        Scale, offset and where they come from (``"earthsearch:boa_offset_applied"``,
        ``"raster:bands"``, ``"s2:processing_baseline"``, ``"acquisition date"``,
        ``"boa_offset="``, ``"sensor"``, or ``"none"`` for digital numbers that are not
        reflectance, such as NAIP's).
    """
    key = sensor.asset_key(band, provider)
    terms = _raster_band(item, key, band_index(item, sensor, band, provider))
    listed = "scale" in terms or "offset" in terms
    if has_boa_offset(sensor):
        flagged = any(k in item.properties for k in EARTH_SEARCH_FLAGS)
        if boa_offset is not None or flagged or not listed:
            scale = float(terms.get("scale", sensor.scale))
            inside, source = (bool(boa_offset), "boa_offset=") if boa_offset is not None else _boa_decision(item)
            return scale, (-S2_BOA_OFFSET * scale if inside else 0.0), source
    if listed:
        return float(terms.get("scale", 1.0)), float(terms.get("offset", 0.0)), "raster:bands"
    if sensor.scale is None:
        return 1.0, 0.0, "none"
    return float(sensor.scale), float(sensor.offset), "sensor"


def load_items(items, *, bands: Sequence[str] = ("blue", "green", "red", "nir"), grid: GridSpec | None = None,
               sensor: Sensor | str | None = None, resampling: str = "nearest", loader: str = "odc",
               chunks: dict | None = None, harmonize: bool = True, with_mask: bool = True,
               boa_offset: bool | Mapping[str, bool] | None = None):
    """Load items as one ``(time, band, y, x)`` DataArray, lazily (dask).

    Parameters
    ----------
    items : ItemCollection or list of Item/dict
        Scenes of one sensor.
    bands : sequence of str
        Common band names (``blue``, ``red``, ``nir``...); asset keys (and band indices
        inside multi-band assets) are looked up in the sensor registry for the item's
        provider.
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
    boa_offset : bool or mapping of item id to bool, optional
        Sentinel-2 L2A: whether the DNs carry the BOA offset, for all items or by id,
        overriding their metadata (see :func:`reflectance_terms`).

    Returns
    -------
    xarray.DataArray
        Dims ``(time, band, y, x)``, band coordinate by common name, CRS and transform
        written (``.rio``), per-time coordinates ``id``, ``harmonized_by`` and
        ``eo:cloud_cover`` (NaN where an item does not say), per-(time, band)
        ``reflectance_scale`` and ``reflectance_offset``; attrs ``sensor``,
        ``provider``, ``harmonized`` and ``units`` (``"reflectance"``, or ``"DN"`` for
        a sensor whose digital numbers are not calibrated).

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
        missing = sorted({k for k in keys if k not in it.assets})
        if missing:
            raise InvalidInputError(f"item {it.id} lacks asset(s) {missing} for bands {list(bands)}; "
                                    f"it has {sorted(it.assets)}")
    indices = [band_index(items[0], sensor, b, provider) for b in bands]
    for it in items[1:]:
        other = [band_index(it, sensor, b, provider) for b in bands]
        if other != indices:
            raise InvalidInputError(f"items {items[0].id} and {it.id} hold bands {list(bands)} at different "
                                    f"places of their assets ({indices} and {other}); load them separately")
    if grid is None:
        grid = native_grid(items[0], keys[0])
    chunks = chunks or {"x": 1024, "y": 1024}
    layers = list(zip(keys, indices))
    raw = _load_odc(items, layers, grid, resampling, chunks) if loader == "odc" else \
        _load_stackstac(items, layers, grid, resampling, chunks, sensor)
    raw = raw.assign_coords(band=list(bands))
    if not isinstance(boa_offset, Mapping):
        boa_offset = {it.id: boa_offset for it in items}
    terms = [[reflectance_terms(it, sensor, b, provider, boa_offset=boa_offset.get(it.id)) for b in bands]
             for it in items]
    raw = raw.assign_coords(
        id=("time", [it.id for it in items]),
        harmonized_by=("time", [row[0][2] for row in terms]),
        reflectance_scale=(("time", "band"), np.array([[t[0] for t in row] for row in terms], np.float32)),
        reflectance_offset=(("time", "band"), np.array([[t[1] for t in row] for row in terms], np.float32)),
        **{"eo:cloud_cover": ("time", [cloud_cover(it.properties.get("eo:cloud_cover")) for it in items])},
    )
    nodata = sensor.nodata
    if harmonize:
        out = raw.astype(np.float32) * raw["reflectance_scale"] + raw["reflectance_offset"]
        if nodata is not None:
            out = out.where(raw != nodata)
        out.attrs = {"harmonized": 1, "units": "reflectance" if sensor.is_reflectance else "DN"}
    else:
        out = raw
        out.attrs = {"harmonized": 0, "nodata": nodata, "units": "DN"}
    out.attrs.update(sensor=sensor.id, provider=provider)
    if with_mask and sensor.cloud_mask is not None and sensor.mask_asset(provider):
        out = out.assign_coords(cloud_mask=mask_from_asset(items, sensor, provider, grid, loader, chunks))
    out = out.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return out.transpose("time", "band", "y", "x")


def cloud_cover(value) -> float:
    """``eo:cloud_cover`` as a percentage; NaN (unknown) when missing, null, not a number or
    outside 0-100 (USGS writes -1 when it did not compute one)."""
    try:
        cloud = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return cloud if 0 <= cloud <= 100 else float("nan")


def read_items(items, *, check_offsets: bool = True, **options):
    """:func:`load_items` and read the pixels now (``.compute()``), with read errors named.

    Parameters
    ----------
    items : ItemCollection or list of Item/dict
    check_offsets : bool
        Warn (:class:`OffsetWarning`) about each Sentinel-2 scene whose pixels
        contradict its BOA-offset metadata (:func:`offset_contradictions`).
    **options
        As for :func:`load_items`.

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
        data = load_items(items, **options).compute()
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
    if check_offsets:
        for message in offset_contradictions(data):
            warnings.warn(message, OffsetWarning, stacklevel=2)
    return data


class OffsetWarning(UserWarning):
    """A Sentinel-2 scene's pixels contradict what its metadata say of the BOA offset."""


#: Least number of clear pixels for the pixel check to say anything, and most it looks at per scene.
_MIN_CHECKED = 400
_MAX_CHECKED = 1_000_000


def offset_contradictions(data, *, negative_share: float = 0.01, dark_floor: float = 0.1) -> list[str]:
    """Sentinel-2 scenes whose pixels contradict the BOA offset their metadata imply.

    The BOA offset of processing baseline 04.00 adds 1000 to every DN, so a scene that
    still carries it has (almost) no DN below 1000, and a scene without it has dark
    pixels (water, shadow, dense vegetation in blue and red) well below reflectance 0.1.
    Two contradictions are reported: the offset was subtracted, yet more than
    ``negative_share`` of the clear pixels became negative reflectance (below -0.005,
    a 50 DN margin for noise): the offset had already been removed; or it was not
    subtracted, yet the 1st percentile of each clear pixel's darkest band is above
    ``dark_floor``: the offset is probably still there (or the scene is snow or desert).

    Parameters
    ----------
    data : xarray.DataArray
        As :func:`load_items` returns it (harmonised, in memory).
    negative_share, dark_floor : float

    Returns
    -------
    list of str
        One message per contradicting scene (empty for other sensors, or when too few
        clear pixels are left to judge).

    References
    ----------
    Element84/earth-search#66 and #71, cirrus-geo/cirrus-earth-search#33: scenes whose
    ``earthsearch:boa_offset_applied`` says the opposite of their pixels.
    """
    if not data.attrs.get("harmonized") or not has_boa_offset(get_sensor(data.attrs["sensor"])):
        return []
    # a regular sample of about a million pixels per scene says as much as all of them, in bounded memory
    step = max(1, int(np.ceil(np.sqrt(data.sizes["y"] * data.sizes["x"] / _MAX_CHECKED))))
    values = np.asarray(data.values[..., ::step, ::step], dtype=np.float32)
    clouds = np.asarray(data["cloud_mask"].values[..., ::step, ::step]) if "cloud_mask" in data.coords else None
    messages = []
    for t in range(values.shape[0]):
        clear = np.isfinite(values[t]).all(axis=0)
        if clouds is not None:
            clear &= ~clouds[t]
        if clear.sum() < _MIN_CHECKED:
            continue
        pixels = values[t][:, clear]
        item_id, source = str(data["id"].values[t]), str(data["harmonized_by"].values[t])
        if (data["reflectance_offset"].values[t] < 0).any():
            share = float((pixels < -0.005).any(axis=0).mean())
            if share > negative_share:
                messages.append(
                    f"{item_id}: its metadata ({source}) say the BOA offset is in the pixels, yet {share:.1%} of "
                    "its clear pixels fall below DN 1000 (negative reflectance once it is subtracted), which only "
                    "pixels without the offset can: the metadata are probably wrong (as in Element84/earth-search"
                    f"#66 and #71). Check the scene and load it with boa_offset={{{item_id!r}: False}}.")
        else:
            dark = float(np.percentile(pixels.min(axis=0), 1))
            if dark > dark_floor:
                messages.append(
                    f"{item_id}: its metadata ({source}) say the pixels carry no BOA offset, yet its darkest clear "
                    f"pixels are brighter than reflectance {dark_floor:g} (1st percentile {dark:.3f}), as when the "
                    "+1000 offset is still in them (cirrus-geo/cirrus-earth-search#33) or over snow or desert. "
                    f"Check the scene and load it with boa_offset={{{item_id!r}: True}} if the offset is there.")
    return messages


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


def _layer_name(key: str, index: int | None) -> str:
    """odc-stac's name of a band: the asset key, or ``key.N`` for band N of a multi-band asset."""
    return key if index is None else f"{key}.{index}"


def _load_odc(items, layers, grid, resampling, chunks):
    import odc.stac
    from rasterio.errors import NotGeoreferencedWarning

    # odc-stac warps through an in-memory destination without a geotransform; rasterio
    # warns about that destination, not about our data (whose georeferencing is checked).
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.warp")

    names = [_layer_name(k, i) for k, i in layers]
    items = _with_band_counts(items, layers)
    # groupby="id": one layer per item, in the caller's order (overlapping tiles stay apart)
    ds = odc.stac.load(items, bands=list(dict.fromkeys(names)), geobox=grid.geobox(), resampling=resampling,
                       chunks=chunks, groupby="id", fail_on_error=True)
    da = ds[names].to_array("band")
    x, y = grid.coords()
    return da.assign_coords(x=x, y=y).drop_vars("spatial_ref", errors="ignore")


def _with_band_counts(items, layers) -> list:
    """Items whose multi-band assets list at least as many ``raster:bands`` as are read.

    odc-stac learns how many bands an asset has from ``raster:bands`` alone; NAIP and
    users' own items often describe the bands in ``eo:bands`` only. Copies, never the
    caller's items, are completed.
    """
    need: dict[str, int] = {}
    for key, index in layers:
        if index is not None:
            need[key] = max(need.get(key, 0), index)
    out = []
    for it in items:
        short = {k: n for k, n in need.items() if len(it.assets[k].extra_fields.get("raster:bands") or []) < n}
        if short:
            it = it.clone()
            for key, n in short.items():
                listed = list(it.assets[key].extra_fields.get("raster:bands") or [])
                it.assets[key].extra_fields["raster:bands"] = listed + [{} for _ in range(n - len(listed))]
        out.append(it)
    return out


def _vrt_band(href: str, index: int) -> str:
    """A GDAL ``vrt://`` connection string for one band of a multi-band file (GDAL >= 3.7)."""
    if href.startswith("file://"):
        href = href[len("file://"):]
    elif href.startswith(("http://", "https://")):
        href = "/vsicurl/" + href
    elif href.startswith("s3://"):
        href = "/vsis3/" + href[len("s3://"):]
    return f"vrt://{href}?bands={index}"


def _load_stackstac(items, layers, grid, resampling, chunks, sensor):
    import stackstac
    from rasterio.enums import Resampling

    # stackstac reads band 1 of each asset only: give it one single-band asset per layer,
    # a vrt:// view of band N for the bands of a multi-band asset.
    names = [_layer_name(k, i) for k, i in layers]
    dicts = []
    for it in items:
        d = it.to_dict()
        assets = {}
        for (key, index), name in zip(layers, names):
            asset = dict(d["assets"][key])
            if index is not None:
                asset["href"] = _vrt_band(it.assets[key].get_absolute_href() or asset["href"], index)
            assets[name] = asset
        d["assets"] = assets
        dicts.append(d)
    epsg = int(grid.crs.split(":")[1])
    dtype = np.dtype(sensor.dtype)
    da = stackstac.stack(
        dicts, assets=names, epsg=epsg, resolution=grid.res, bounds=grid.bounds,
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
    raw = (_load_odc(items, [(key, None)], grid, "nearest", chunks) if loader == "odc"
           else _load_stackstac(items, [(key, None)], grid, "nearest", chunks, sensor)).isel(band=0, drop=True)
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


# ----------------------------------------------------------------------------- real Sentinel-2 in a wheel
#: The Sentinel-2 bands xarray-spatial ships (``xrspatial/datasets/sentinel-2/<band>_band.nc``):
#: band -> its pixel size in metres. The 10 m bands share one 200 x 300 grid (EPSG:32719); the
#: 20 m SWIR bands are 200 x 300 pixels too, so they cover a larger area and never mix with them.
XRSPATIAL_SENTINEL2_BANDS = {"blue": 10.0, "green": 10.0, "red": 10.0, "nir": 10.0, "swir1": 20.0, "swir2": 20.0}
#: Sentinel-2's quantification value: reflectance = DN / 10000.
S2_QUANTIFICATION = 10000.0


def xrspatial_sentinel2_folder(bands=("blue", "green", "red", "nir")):
    """xarray-spatial's ``datasets/sentinel-2`` folder, found without importing the package
    (it pulls numba and datashader); None when it is not installed or lacks one of ``bands``."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("xrspatial")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "datasets" / "sentinel-2"
    return folder if all((folder / f"{b}_band.nc").is_file() for b in bands) else None


def real_sentinel2(bands=("blue", "green", "red", "nir")):
    """The real Sentinel-2 bands that ship with xarray-spatial, as reflectance.

    The files (netCDF3, read with xarray's scipy engine) hold integer-valued digital numbers
    with ``scales = 1`` and ``offsets = 0`` in their attributes and no processing baseline or
    date. They are read as ``reflectance = (DN * scales + offsets) / 10000`` (Sentinel-2's
    quantification value) with **no** BOA offset: 6 % of the green and 1 % of the red DNs are
    below 1000, which the -1000 offset of baseline 04.00 would turn into negative reflectance,
    and the medians without it (blue 0.127, green 0.113, red 0.132, nir 0.153, swir1 0.22,
    EPSG:32719 near 47.8 S 67.7 W: Patagonian steppe) are those of dry, sparsely vegetated
    land. Blue above green hints at top-of-atmosphere (L1C) rather than surface reflectance;
    the files do not say.

    Parameters
    ----------
    bands : sequence of str
        Of :data:`XRSPATIAL_SENTINEL2_BANDS`, all at one resolution (the 10 m ``blue``,
        ``green``, ``red``, ``nir``, or the 20 m ``swir1``, ``swir2``).

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)``, 200 x 300 pixels, band coordinate by name, CRS (EPSG:32719)
        and transform through rioxarray, ``attrs`` saying where it comes from and its units.

    Raises
    ------
    NotFoundError
        xarray-spatial (in eo-sr's dev extra) is not installed, or lacks a band file.
    InvalidInputError
        An unknown band, or bands at different resolutions.
    """
    import re

    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    from eo_sr.errors import NotFoundError

    bands = [bands] if isinstance(bands, str) else list(bands)
    unknown = [b for b in bands if b not in XRSPATIAL_SENTINEL2_BANDS]
    if not bands or unknown:
        raise InvalidInputError(f"unknown band(s) {unknown}: xarray-spatial ships {list(XRSPATIAL_SENTINEL2_BANDS)}")
    if len({XRSPATIAL_SENTINEL2_BANDS[b] for b in bands}) > 1:
        raise InvalidInputError(f"bands {bands} mix 10 m and 20 m pixels (different grids): ask for the 10 m bands "
                                "blue, green, red, nir or the 20 m bands swir1, swir2")
    folder = xrspatial_sentinel2_folder(bands)
    if folder is None:
        raise NotFoundError("xarray-spatial's Sentinel-2 bands are not installed: pip install 'xarray-spatial>=0.5' "
                            "(it is in eo-sr's dev extra: pip install -e '.[dev]')")
    layers, epsg, first = [], None, None
    for band in bands:
        with xr.open_dataset(folder / f"{band}_band.nc", engine="scipy") as ds:
            (var,) = ds.data_vars.values()
            var = var.load()
        scale, offset = float(var.attrs.get("scales", 1.0)), float(var.attrs.get("offsets", 0.0))
        found = re.search(r"epsg:(\d+)", str(var.attrs.get("crs", "")), re.IGNORECASE)
        if found is None or (epsg is not None and found.group(1) != epsg):
            raise InvalidInputError(f"{folder / f'{band}_band.nc'} has no EPSG code, or another one than the other "
                                    f"bands (crs attribute {var.attrs.get('crs')!r})")
        epsg = found.group(1)
        if first is None:
            first = var
        elif not (np.array_equal(var.x, first.x) and np.array_equal(var.y, first.y)):
            raise InvalidInputError(f"band {band} is not on the grid of band {bands[0]}")
        layers.append((var.to_numpy().astype(np.float64) * scale + offset) / S2_QUANTIFICATION)
    data = np.stack(layers).astype(np.float32)
    image = xr.DataArray(data, dims=("band", "y", "x"),
                         coords={"band": bands, "y": first.y.to_numpy(), "x": first.x.to_numpy()},
                         name="xrspatial-sentinel-2",
                         attrs={"source": f"xarray-spatial {folder}", "platform": "Sentinel-2",
                                "units": "reflectance", "reflectance": "DN / 10000 (no BOA offset)",
                                "gsd": XRSPATIAL_SENTINEL2_BANDS[bands[0]]})
    return image.rio.write_crs(f"EPSG:{epsg}").rio.write_transform(image.rio.transform(recalc=True))
