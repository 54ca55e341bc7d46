"""The built-in sensors: Sentinel-2 L2A, Landsat 8/9 Collection 2 Level-2, NAIP,
PlanetScope SuperDove and the two sensors of the offline demo world.

Each sensor is one entry of a table (:data:`_SPECS`): its bands as rows of
``(name, common name, centre um, FWHM um, gsd m)`` and its providers as rows of
``(provider, collection, asset keys, mask asset, other Provider fields)``;
:func:`_build_sensor` turns an entry into a :class:`~eo_sr.sensors.model.Sensor`.
What every catalogue has in common (URL, URL signing, API key) is written once,
in :data:`_CATALOGUES`. :mod:`eo_sr.sensors.registry` registers
:data:`BUILTIN_SENSORS` on import.

Standard library only, no I/O.
"""
from __future__ import annotations

from typing import Any, Mapping

from eo_sr.sensors.model import Band, CloudMask, Provider, Sensor

__all__ = [
    "BUILTIN_SENSORS",
    "DEMO_HR",
    "DEMO_LR",
    "LANDSAT_C2_L2",
    "NAIP",
    "PLANETSCOPE",
    "SENTINEL_2_L2A",
]

_S2_BOA_NOTE = (
    "From processing baseline 04.00 (products from 2022-01-25 on) Sentinel-2 L2A digital numbers carry a "
    "BOA add-offset of -1000: reflectance = (DN - 1000) / 10000, while older products use DN / 10000. "
    "Catalogues say this differently. Earth Search v1 `sentinel-2-l2a`: `earthsearch:boa_offset_applied: "
    "true` means Element 84 already removed the offset (reflectance = DN / 10000); its `raster:bands` offset "
    "of -0.1 is written whether or not it did (Element84/earth-search#9), and the flag itself is wrong on "
    "some scenes (#66, #71), so check it against dark pixels. Earth Search `sentinel-2-c1-l2a` gives the "
    "terms in `raster:bands` (scale 0.0001, offset -0.1). Planetary Computer exposes "
    "`s2:processing_baseline` (the offset is in the data when it is >= '04.00'). Decide per item and never "
    "subtract the offset twice: a double offset drives dark surfaces (water) negative."
)

_SCL = CloudMask(
    name="SCL",
    kind="classification",
    classes={
        0: "no_data",
        1: "saturated_or_defective",
        2: "dark_area_pixels",
        3: "cloud_shadows",
        4: "vegetation",
        5: "not_vegetated",
        6: "water",
        7: "unclassified",
        8: "cloud_medium_probability",
        9: "cloud_high_probability",
        10: "thin_cirrus",
        11: "snow",
    },
    invalid=frozenset({0, 1, 3, 8, 9, 10}),
    notes=(
        "Sen2Cor scene classification at 20 m; upsample it with nearest-neighbour to the 10 m grid. "
        "Class 2 (dark area pixels: topographic or dark-feature shadow) is kept valid."
    ),
)

_QA_PIXEL = CloudMask(
    name="QA_PIXEL",
    kind="bitmask",
    classes={
        0: "fill",
        1: "dilated_cloud",
        2: "cirrus",
        3: "cloud",
        4: "cloud_shadow",
        5: "snow",
        6: "clear",
        7: "water",
        8: "cloud_confidence",
        10: "cloud_shadow_confidence",
        12: "snow_ice_confidence",
        14: "cirrus_confidence",
    },
    invalid=frozenset({0, 1, 2, 3, 4}),
    notes=(
        "Landsat Collection 2 QA_PIXEL (CFMask) bit field. Bits 8-9, 10-11, 12-13 and 14-15 are two-bit "
        "confidence fields (0 none, 1 low, 2 medium, 3 high), keyed here by their lower bit. The cirrus "
        "bit (2) is set for OLI (Landsat 8/9) only."
    ),
)

_UDM2 = CloudMask(
    name="udm2",
    kind="bands",
    classes={
        1: "clear",
        2: "snow",
        3: "shadow",
        4: "light_haze",
        5: "heavy_haze",
        6: "cloud",
        7: "confidence",
        8: "unusable",
    },
    invalid=frozenset({3, 5, 6}),
    notes=(
        "Planet usable data mask 2: bands 1-6 are binary (1 = class present); band 7 is the classification "
        "confidence (0-100 %) and band 8 the legacy UDM bit field (non-zero = unusable). The simplest test "
        "is band 1 (clear) == 1; light haze (band 4) is left valid here."
    ),
)

# ------------------------------------------------------------ catalogues

#: What one catalogue's providers share; a provider row adds (or overrides) the rest. A row
#: whose provider name is not a catalogue names its catalogue (``catalogue=...``).
_CATALOGUES: dict[str, dict[str, Any]] = {
    "earth-search": dict(url="https://earth-search.aws.element84.com/v1", requires_signing=False),
    "planetary-computer": dict(url="https://planetarycomputer.microsoft.com/api/stac/v1", requires_signing=True),
    "planet": dict(url="https://api.planet.com/data/v1", requires_signing=False, api_key_env="PL_API_KEY"),
    "demo": dict(
        url=None,
        requires_signing=False,
        notes="Served by the local STAC API of the offline demo world (see eo_sr.demo).",
    ),
}

# The "asset keys" column of a provider row: the Band field that is each band's asset key ...
_BY_COMMON_NAME = "common_name"  # "red" (Earth Search)
_BY_BAND_NAME = "name"  # "B04" (Planetary Computer's Sentinel-2)


class _OneAsset:
    """... or one multi-band asset holding every band, as band 1, 2, ... in band order."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _provider(
    bands: tuple[Band, ...],
    name: str,
    collection: str,
    asset_keys: str | _OneAsset,
    mask_asset: str | None,
    extra: Mapping[str, Any],
) -> Provider:
    """Build the Provider of one provider row."""
    if isinstance(asset_keys, _OneAsset):
        assets = {b.common_name: asset_keys.key for b in bands}
        band_index = {b.common_name: i for i, b in enumerate(bands, start=1)}
    else:
        assets = {b.common_name: getattr(b, asset_keys) for b in bands}
        band_index = {}
    extra = dict(extra)
    catalogue = extra.pop("catalogue", name)
    fields = {**_CATALOGUES[catalogue], **extra, "catalogue": catalogue}
    return Provider(
        name=name, collection=collection, assets=assets, mask_asset=mask_asset, band_index=band_index, **fields
    )


def _build_sensor(spec: Mapping[str, Any]) -> Sensor:
    """Build the Sensor of one entry of :data:`_SPECS`."""
    spec = dict(spec)
    bands = tuple(Band(*row) for row in spec.pop("bands"))
    providers = tuple(_provider(bands, *row) for row in spec.pop("providers"))
    return Sensor(bands=bands, providers=providers, **spec)


# ------------------------------------------------------------------ sensors

#: Digital numbers that are surface reflectance * 10000 in uint16, 0 = no data.
_UINT16_REFLECTANCE = dict(dtype="uint16", scale=0.0001, offset=0.0, nodata=0)

_S2_BANDS = (
    # name, common name, centre um, FWHM um, gsd m (values as in the STAC eo extension of both catalogues)
    ("B01", "coastal", 0.443, 0.027, 60.0),
    ("B02", "blue", 0.490, 0.098, 10.0),
    ("B03", "green", 0.560, 0.045, 10.0),
    ("B04", "red", 0.665, 0.038, 10.0),
    ("B05", "rededge1", 0.704, 0.019, 20.0),
    ("B06", "rededge2", 0.740, 0.018, 20.0),
    ("B07", "rededge3", 0.783, 0.028, 20.0),
    ("B08", "nir", 0.842, 0.145, 10.0),
    ("B8A", "nir08", 0.865, 0.033, 20.0),
    ("B09", "nir09", 0.945, 0.026, 60.0),
    ("B11", "swir16", 1.610, 0.143, 20.0),
    ("B12", "swir22", 2.190, 0.242, 20.0),
)

_SPECS: tuple[dict[str, Any], ...] = (
    dict(
        id="sentinel-2-l2a",
        name="Sentinel-2 MSI Level-2A",
        platform="sentinel-2a/b/c",
        gsd=10.0,
        bands=_S2_BANDS,
        **_UINT16_REFLECTANCE,
        cloud_mask=_SCL,
        providers=(
            # provider, collection, asset keys, mask asset, other Provider fields
            ("earth-search", "sentinel-2-l2a", _BY_COMMON_NAME, "scl", dict(
                notes=(
                    "Cloud-optimised GeoTIFFs in the public s3://sentinel-cogs bucket (us-west-2). "
                    "`earthsearch:boa_offset_applied: true` means Element 84 already removed the BOA offset; "
                    "the `raster:bands` offset of -0.1 is written either way (Element84/earth-search#9)."
                ),
            )),
            ("earth-search-c1", "sentinel-2-c1-l2a", _BY_COMMON_NAME, "scl", dict(
                catalogue="earth-search",
                notes=(
                    "Sentinel-2 Collection 1 (ESA's reprocessing of the whole archive, baseline 05.xx) on "
                    "Earth Search: not harmonised, the BOA offset is in every product and each band asset "
                    "says so in `raster:bands` (scale 0.0001, offset -0.1)."
                ),
            )),
            ("planetary-computer", "sentinel-2-l2a", _BY_BAND_NAME, "SCL", {}),
        ),
        notes=(
            "Bands come at 10 m (blue, green, red, nir), 20 m (red edge, nir08, swir) and 60 m (coastal, "
            "nir09); `Sensor.bands_at()` lists the 10 m ones. Items are 110 km MGRS tiles in UTM."
        ),
        harmonization=_S2_BOA_NOTE,
        aliases=("s2", "sentinel2", "sentinel-2", "s2-l2a", "sentinel2-l2a"),
        stac_platforms=("sentinel-2a", "sentinel-2b", "sentinel-2c"),
    ),
    dict(
        id="landsat-c2-l2",
        name="Landsat 8/9 OLI Collection 2 Level-2 surface reflectance",
        platform="landsat-8/9",
        gsd=30.0,
        bands=(
            # values as in the STAC eo extension of the landsat-c2-l2 collections (stactools-landsat)
            ("SR_B1", "coastal", 0.44, 0.02, 30.0),
            ("SR_B2", "blue", 0.48, 0.06, 30.0),
            ("SR_B3", "green", 0.56, 0.06, 30.0),
            ("SR_B4", "red", 0.65, 0.04, 30.0),
            ("SR_B5", "nir08", 0.87, 0.03, 30.0),
            ("SR_B6", "swir16", 1.61, 0.09, 30.0),
            ("SR_B7", "swir22", 2.20, 0.19, 30.0),
        ),
        dtype="uint16",
        scale=0.0000275,
        offset=-0.2,
        nodata=0,
        cloud_mask=_QA_PIXEL,
        providers=(
            ("earth-search", "landsat-c2-l2", _BY_COMMON_NAME, "qa_pixel", dict(
                requester_pays=True,
                notes="Assets point into the USGS requester-pays bucket s3://usgs-landsat (us-west-2).",
            )),
            ("planetary-computer", "landsat-c2-l2", _BY_COMMON_NAME, "qa_pixel", {}),
        ),
        notes=(
            "The landsat-c2-l2 collections also hold Landsat 4-7 TM/ETM+ scenes with other band sets; keep "
            "items whose platform is landsat-8 or landsat-9. The OLI near-infrared band is `nir08` "
            "(`band('nir')` resolves to it)."
        ),
        harmonization=(
            "Collection 2 Level-2 surface reflectance = DN * 0.0000275 - 0.2 (valid DN 7273-43636). No "
            "bandpass adjustment to Sentinel-2 is applied (NASA's HLS products do that)."
        ),
        band_aliases={"nir": "nir08"},
        aliases=("landsat", "landsat-c2", "landsat-8", "landsat-9", "landsat8", "landsat9"),
        stac_platforms=("landsat-8", "landsat-9"),
    ),
    dict(
        id="naip",
        name="USDA National Agriculture Imagery Program (NAIP)",
        platform="aircraft",
        gsd=0.6,
        bands=(
            ("Red", "red", None, None, 0.6),
            ("Green", "green", None, None, 0.6),
            ("Blue", "blue", None, None, 0.6),
            ("NIR", "nir", None, None, 0.6),
        ),
        dtype="uint8",
        scale=None,
        offset=None,
        nodata=None,
        cloud_mask=None,
        providers=(
            ("planetary-computer", "naip", _OneAsset("image"), None, {}),
            ("earth-search", "naip", _OneAsset("image"), None, dict(
                requester_pays=True,
                notes="Assets point into the requester-pays bucket s3://naip-analytic (us-west-2).",
            )),
        ),
        notes=(
            "Aerial orthophotos of the conterminous US, one 4-band asset (red, green, blue, nir). The GSD is "
            "0.6 m nominal but varies by state and year (1 m in older years, 0.3 m in some recent states): read "
            "the item's `gsd`. Cameras change between years and states, so band wavelengths are not recorded. "
            "Acquired cloud-free, hence no cloud mask. Older years may have 3 bands (no nir)."
        ),
        harmonization=(
            "NAIP digital numbers are 8-bit, radiometrically adjusted for appearance, not calibrated "
            "reflectance: normalise them (e.g. histogram matching to the LR sensor) before pairing."
        ),
    ),
    dict(
        id="planetscope",
        name="PlanetScope SuperDove PSScene 4-band ortho analytic surface reflectance",
        platform="planetscope superdove",
        gsd=3.0,
        bands=(
            ("B1", "blue", 0.490, 0.050, 3.0),
            ("B2", "green", 0.565, 0.036, 3.0),
            ("B3", "red", 0.665, 0.031, 3.0),
            ("B4", "nir", 0.865, 0.040, 3.0),
        ),
        **_UINT16_REFLECTANCE,
        cloud_mask=_UDM2,
        providers=(
            ("planet", "PSScene", _OneAsset("ortho_analytic_4b_sr"), "ortho_udm2", dict(
                notes="Planet Data API item type PSScene; assets must be activated before download.",
            )),
        ),
        notes=(
            "Ortho scenes are resampled to 3 m pixels; the ground sampling is about 3.7-4.1 m depending on "
            "altitude. PSScene also holds Dove Classic (PS2) and Dove-R (PS2.SD) scenes with other spectral "
            "responses: keep instrument PSB.SD for SuperDove. The NICFI tropical basemaps (4.77 m quads in "
            "EPSG:3857) that many tutorials use are no longer available: public access under NICFI ended in 2025."
        ),
        harmonization=(
            "Surface reflectance * 10000. Planet's Orders API offers a `harmonize` tool (target sensor "
            "Sentinel-2) that is not applied by default."
        ),
        aliases=("planet", "psscene", "superdove", "ps"),
    ),
    dict(
        id="demo-lr",
        name="Demo world LR sensor (Sentinel-2 L2A-like)",
        platform="demo",
        gsd=10.0,
        bands=tuple(row for row in _S2_BANDS if row[4] == 10.0),  # Sentinel-2's four 10 m bands
        **_UINT16_REFLECTANCE,
        cloud_mask=_SCL,
        providers=(("demo", "demo-s2-l2a", _BY_COMMON_NAME, "scl", {}),),
        notes="Synthetic Sentinel-2-like scenes of the offline demo world: the four 10 m bands and SCL.",
        harmonization=_S2_BOA_NOTE + " The demo world flags it like Earth Search.",
    ),
    dict(
        id="demo-hr",
        name="Demo world HR sensor (Deimos-2-like)",
        platform="demo",
        gsd=2.5,
        bands=(
            ("blue", "blue", 0.4955, 0.059, 2.5),
            ("green", "green", 0.5655, 0.067, 2.5),
            ("red", "red", 0.6685, 0.057, 2.5),
            ("nir", "nir", 0.831, 0.122, 2.5),
        ),
        **_UINT16_REFLECTANCE,
        cloud_mask=None,
        providers=(("demo", "demo-hr", _BY_COMMON_NAME, None, {}),),
        notes=(
            "Nominal GSD 2.5 m, but delivered in EPSG:3857 (Web Mercator), where a pixel's size in metres on "
            "the ground is not exactly 2.5 m (it shrinks by cos(latitude)): reproject before measuring. No "
            "cloud mask: clouds are found by a blue-band threshold."
        ),
    ),
)

#: The built-in sensors, in the order they are registered.
BUILTIN_SENSORS: tuple[Sensor, ...] = tuple(_build_sensor(spec) for spec in _SPECS)

_BY_ID = {s.id: s for s in BUILTIN_SENSORS}
SENTINEL_2_L2A = _BY_ID["sentinel-2-l2a"]
LANDSAT_C2_L2 = _BY_ID["landsat-c2-l2"]
NAIP = _BY_ID["naip"]
PLANETSCOPE = _BY_ID["planetscope"]
DEMO_LR = _BY_ID["demo-lr"]
DEMO_HR = _BY_ID["demo-hr"]
