"""Write the Sentinel-2 L2A item fixtures of Earth Search and Planetary Computer.

The two public catalogs describe the same Sentinel-2 L2A product differently, and
eo-sr must understand both. These fixtures reproduce one scene (Sentinel-2B, tile
36SXD, 15 March 2022, processing baseline 04.00) as each catalog serves it, with
their real property names, asset keys, href layouts and extension versions:

* Earth Search v1: lower-case asset keys by common name (``red``, ``nir``,
  ``scl`` ...) plus ``-jp2`` twins, COGs on ``sentinel-cogs.s3.us-west-2``,
  ``raster:bands`` with ``scale`` 0.0001 and ``offset`` -0.1 (the BOA offset
  already folded in, flagged by ``earthsearch:boa_offset_applied``), MGRS and
  grid extensions, ``proj:epsg`` (projection extension v1.1.0);
* Planetary Computer: asset keys by band name (``B02``, ``B04``, ``B08``, ``SCL``
  ...), unsigned hrefs on ``sentinel2l2a01.blob.core.windows.net`` (signed with a
  SAS token by the client), ``s2:mgrs_tile``, ``sat:*``, ``proj:epsg``
  (projection v1.0.0) and ``proj:bbox`` on each asset, no ``raster:bands``.

Values are written here, not downloaded (no machine running the tests reaches the
public APIs); they follow the published items of both catalogs. Run
``python tests/data/make_stac_fixtures.py`` to rewrite the files; the output is
deterministic.
"""
from __future__ import annotations

import json
from pathlib import Path

from pyproj import Transformer

OUT = Path(__file__).resolve().parent / "stac_items"

EPSG = 32636
TILE = "36SXD"
X0, Y0, SIZE = 600000.0, 4000020.0, 109800.0  # upper-left corner and width of an MGRS tile, metres
SENSED = "2022-03-15T08:16:09.024000Z"  # datatake start (Planetary Computer's datetime)
TILE_TIME = "2022-03-15T08:29:41.366000Z"  # sensing time at the tile (Earth Search's datetime)
PRODUCT = "S2B_MSIL2A_20220315T081609_N0400_R121_T36SXD_20220316T075020"
GRANULE = "L2A_T36SXD_A026289_20220315T082244"

# name, common name, description, centre um, FWHM um, gsd m
BANDS = [
    ("B01", "coastal", "Coastal aerosol (band 1)", 0.443, 0.027, 60),
    ("B02", "blue", "Blue (band 2)", 0.49, 0.098, 10),
    ("B03", "green", "Green (band 3)", 0.56, 0.045, 10),
    ("B04", "red", "Red (band 4)", 0.665, 0.038, 10),
    ("B05", "rededge", "Red edge 1 (band 5)", 0.704, 0.019, 20),
    ("B06", "rededge", "Red edge 2 (band 6)", 0.74, 0.018, 20),
    ("B07", "rededge", "Red edge 3 (band 7)", 0.783, 0.028, 20),
    ("B08", "nir", "NIR 1 (band 8)", 0.842, 0.145, 10),
    ("B8A", "nir08", "NIR 2 (band 8A)", 0.865, 0.033, 20),
    ("B09", "nir09", "NIR 3 (band 9)", 0.945, 0.026, 60),
    ("B11", "swir16", "SWIR 1 (band 11)", 1.61, 0.143, 20),
    ("B12", "swir22", "SWIR 2 (band 12)", 2.19, 0.242, 20),
]
# Earth Search names the three red-edge assets rededge1..3 (their eo common name is "rededge").
ES_KEYS = {"B05": "rededge1", "B06": "rededge2", "B07": "rededge3"}

SCENE_STATS = {  # Sen2Cor scene statistics, percentages
    "s2:degraded_msi_data_percentage": 0.0,
    "s2:nodata_pixel_percentage": 0.0,
    "s2:saturated_defective_pixel_percentage": 0.0,
    "s2:dark_features_percentage": 0.41,
    "s2:cloud_shadow_percentage": 0.88,
    "s2:vegetation_percentage": 9.61,
    "s2:not_vegetated_percentage": 31.05,
    "s2:water_percentage": 50.12,
    "s2:unclassified_percentage": 0.57,
    "s2:medium_proba_clouds_percentage": 3.06,
    "s2:high_proba_clouds_percentage": 2.85,
    "s2:thin_cirrus_percentage": 1.45,
    "s2:snow_ice_percentage": 0.0,
}
CLOUD_COVER = 7.36  # medium + high probability clouds + thin cirrus


def footprint() -> tuple[dict, list[float]]:
    """The tile's outline in longitude/latitude (GeoJSON polygon) and its bbox."""
    to_ll = Transformer.from_crs(EPSG, 4326, always_xy=True)
    corners = [(X0, Y0 - SIZE), (X0 + SIZE, Y0 - SIZE), (X0 + SIZE, Y0), (X0, Y0), (X0, Y0 - SIZE)]
    ring = [[round(v, 6) for v in to_ll.transform(x, y)] for x, y in corners]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {"type": "Polygon", "coordinates": [ring]}, [min(lons), min(lats), max(lons), max(lats)]


def grid(gsd: int) -> dict:
    n = int(SIZE // gsd)
    return {"proj:shape": [n, n], "proj:transform": [gsd, 0, X0, 0, -gsd, Y0]}


def eo_band(name: str, common: str, desc: str, wl: float, fwhm: float, *, es: bool) -> dict:
    # Earth Search names the eo:bands entry by its asset key; Planetary Computer by band name.
    return {"name": ES_KEYS.get(name, common) if es else name, "common_name": common, "description": desc,
            "center_wavelength": wl, "full_width_half_max": fwhm}


COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def earth_search_item() -> dict:
    item_id = f"S2B_{TILE}_20220315_0_L2A"
    root = "https://earth-search.aws.element84.com/v1"
    cogs = f"https://sentinel-cogs.s3.us-west-2.amazonaws.com/sentinel-s2-l2a-cogs/36/S/XD/2022/3/{item_id}"
    jp2 = "s3://sentinel-s2-l2a/tiles/36/S/XD/2022/3/15/0"
    geometry, bbox = footprint()
    assets: dict[str, dict] = {
        "aot": {"href": f"{cogs}/AOT.tif", "type": COG, "title": "Aerosol optical thickness (AOT)",
                "gsd": 20, **grid(20), "roles": ["data", "reflectance"],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                  "spatial_resolution": 20, "scale": 0.001, "offset": 0}]},
    }
    for name, common, desc, wl, fwhm, gsd in BANDS:
        key = ES_KEYS.get(name, common)
        band = eo_band(name, common, desc, wl, fwhm, es=True)
        raster = {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15, "spatial_resolution": gsd,
                  "scale": 0.0001, "offset": -0.1}
        assets[key] = {"href": f"{cogs}/{name}.tif", "type": COG, "title": f"{desc} - {gsd}m",
                       "eo:bands": [band], "gsd": gsd, **grid(gsd), "raster:bands": [raster],
                       "roles": ["data", "reflectance"]}
    assets["scl"] = {"href": f"{cogs}/SCL.tif", "type": COG, "title": "Scene classification map (SCL)",
                     **grid(20), "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
                     "roles": ["data", "reflectance"]}
    assets["wvp"] = {"href": f"{cogs}/WVP.tif", "type": COG, "title": "Water vapour (WVP)", **grid(20),
                     "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                       "spatial_resolution": 20, "unit": "cm", "scale": 0.001, "offset": 0}],
                     "roles": ["data", "reflectance"]}
    assets["visual"] = {"href": f"{cogs}/TCI.tif", "type": COG, "title": "True color image",
                        "eo:bands": [eo_band(*b[:5], es=True) for b in BANDS if b[0] in ("B04", "B03", "B02")][::-1],
                        **grid(10), "roles": ["visual"]}
    assets["thumbnail"] = {"href": f"{cogs}/thumbnail.jpg", "type": "image/jpeg", "title": "Thumbnail image",
                           "roles": ["thumbnail"]}
    assets["granule_metadata"] = {"href": f"{cogs}/granule_metadata.xml", "type": "application/xml",
                                  "roles": ["metadata"]}
    assets["tileinfo_metadata"] = {"href": f"{cogs}/tileinfo_metadata.json", "type": "application/json",
                                   "roles": ["metadata"]}
    for name, common, desc, wl, fwhm, gsd in BANDS:  # the original JPEG 2000 files (requester pays)
        key = ES_KEYS.get(name, common)
        assets[f"{key}-jp2"] = {"href": f"{jp2}/R{max(gsd, 10)}m/{name}.jp2", "type": "image/jp2",
                                "title": f"{desc} - {gsd}m", "eo:bands": [eo_band(name, common, desc, wl, fwhm, es=True)],
                                "gsd": gsd, **grid(gsd), "roles": ["data", "reflectance"]}
    assets["scl-jp2"] = {"href": f"{jp2}/R20m/SCL.jp2", "type": "image/jp2",
                         "title": "Scene classification map (SCL)", **grid(20), "roles": ["data", "reflectance"]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
            "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        ],
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": {
            "created": "2022-11-06T03:21:52.401Z",
            "platform": "sentinel-2b",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": CLOUD_COVER,
            "proj:epsg": EPSG,
            "mgrs:utm_zone": 36,
            "mgrs:latitude_band": "S",
            "mgrs:grid_square": "XD",
            "grid:code": f"MGRS-{TILE}",
            "view:sun_azimuth": 146.81,
            "view:sun_elevation": 49.17,
            **SCENE_STATS,
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": "04.00",
            "s2:product_uri": f"{PRODUCT}.SAFE",
            "s2:generation_time": "2022-03-16T07:50:20.000000Z",
            "s2:datatake_id": "GS2B_20220315T081609_026289_N04.00",
            "s2:datatake_type": "INS-NOBS",
            "s2:datastrip_id": "S2B_OPER_MSI_L2A_DS_2BPS_20220316T075020_S20220315T082244_N04.00",
            "s2:granule_id": "S2B_OPER_MSI_L2A_TL_2BPS_20220316T075020_A026289_T36SXD_N04.00",
            "s2:reflectance_conversion_factor": 1.01268,
            "datetime": TILE_TIME,
            "s2:sequence": "0",
            "earthsearch:s3_path": f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/36/S/XD/2022/3/{item_id}",
            "earthsearch:payload_id": "roda-sentinel2/workflow-sentinel2-to-stac/2c1f1c3ae3c7d1f9a8f8b3e9e7a8e6d1",
            "earthsearch:boa_offset_applied": True,
            "processing:software": {"sentinel2-to-stac": "0.1.0"},
            "updated": "2022-11-06T03:21:52.401Z",
        },
        "links": [
            {"rel": "self", "type": "application/geo+json",
             "href": f"{root}/collections/sentinel-2-l2a/items/{item_id}"},
            {"rel": "canonical", "type": "application/json",
             "href": f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/36/S/XD/2022/3/{item_id}/{item_id}.json"},
            {"rel": "license", "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"},
            {"rel": "derived_from", "type": "application/geo+json",
             "href": f"{root}/collections/sentinel-2-l1c/items/S2B_{TILE}_20220315_0_L1C"},
            {"rel": "parent", "type": "application/json", "href": f"{root}/collections/sentinel-2-l2a"},
            {"rel": "collection", "type": "application/json", "href": f"{root}/collections/sentinel-2-l2a"},
            {"rel": "root", "type": "application/json", "href": root},
            {"rel": "thumbnail", "href": f"{root}/collections/sentinel-2-l2a/items/{item_id}/thumbnail"},
        ],
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }


def planetary_computer_item() -> dict:
    item_id = "S2B_MSIL2A_20220315T081609_R121_T36SXD_20220316T075020"
    root = "https://planetarycomputer.microsoft.com/api/stac/v1"
    data = "https://planetarycomputer.microsoft.com/api/data/v1"
    safe = f"https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/36/S/XD/2022/03/15/{PRODUCT}.SAFE"
    img = f"{safe}/GRANULE/{GRANULE}/IMG_DATA"
    stem = "T36SXD_20220315T081609"
    geometry, bbox = footprint()
    proj_bbox = [X0, Y0 - SIZE, X0 + SIZE, Y0]

    def raster(key: str, gsd: int, title: str, band: dict | None = None) -> dict:
        asset = {"href": f"{img}/R{gsd}m/{stem}_{key}_{gsd}m.tif", "proj:bbox": proj_bbox, **grid(gsd),
                 "gsd": gsd, "type": COG, "roles": ["data"], "title": title}
        if band is not None:
            asset["eo:bands"] = [band]
        return asset

    assets = {"AOT": raster("AOT", 10, "Aerosol optical thickness (AOT)")}
    for name, common, desc, wl, fwhm, gsd in BANDS:
        number = name[1:].lstrip("0")
        title = f"Band {number} - {desc.split(' (')[0]} - {gsd}m"
        band = eo_band(name, common, f"Band {number} - {desc.split(' (')[0]}", wl, fwhm, es=False)
        assets[name] = raster(name, gsd, title, band)
    assets["SCL"] = raster("SCL", 20, "Scene classification map (SCL)")
    assets["WVP"] = raster("WVP", 10, "Water vapour (WVP)")
    assets["visual"] = dict(raster("TCI", 10, "True color image"), roles=["visual"])
    assets["visual"]["eo:bands"] = [eo_band(*b[:5], es=False) for b in BANDS if b[0] in ("B04", "B03", "B02")][::-1]
    assets["preview"] = {"href": f"{safe}/GRANULE/{GRANULE}/QI_DATA/{stem}_PVI.tif", "proj:bbox": proj_bbox,
                         "proj:shape": [343, 343], "proj:transform": [320, 0, X0, 0, -320, Y0], "gsd": 320,
                         "type": COG, "roles": ["thumbnail"], "title": "Thumbnail"}
    assets["safe-manifest"] = {"href": f"{safe}/manifest.safe", "type": "application/xml", "roles": ["metadata"],
                               "title": "SAFE manifest"}
    assets["granule-metadata"] = {"href": f"{safe}/GRANULE/{GRANULE}/MTD_TL.xml", "type": "application/xml",
                                  "roles": ["metadata"], "title": "Granule metadata"}
    assets["inspire-metadata"] = {"href": f"{safe}/INSPIRE.xml", "type": "application/xml", "roles": ["metadata"],
                                  "title": "INSPIRE metadata"}
    assets["product-metadata"] = {"href": f"{safe}/MTD_MSIL2A.xml", "type": "application/xml", "roles": ["metadata"],
                                  "title": "Product metadata"}
    assets["datastrip-metadata"] = {
        "href": f"{safe}/DATASTRIP/DS_ESRI_20220316T075020_S20220315T082244/MTD_DS.xml",
        "type": "application/xml", "roles": ["metadata"], "title": "Datastrip metadata"}
    query = f"collection=sentinel-2-l2a&item={item_id}&assets=visual&asset_bidx=visual%7C1%2C2%2C3&nodata=0"
    assets["tilejson"] = {"href": f"{data}/item/tilejson.json?{query}", "type": "application/json",
                          "roles": ["tiles"], "title": "TileJSON with default rendering"}
    assets["rendered_preview"] = {"href": f"{data}/item/preview.png?{query}&format=png", "type": "image/png",
                                  "rel": "preview", "roles": ["overview"], "title": "Rendered preview"}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "properties": {
            "datetime": SENSED,
            "platform": "Sentinel-2B",
            "proj:epsg": EPSG,
            "instruments": ["msi"],
            "s2:mgrs_tile": TILE,
            "constellation": "Sentinel 2",
            "s2:granule_id": "S2B_OPER_MSI_L2A_TL_ESRI_20220316T075020_A026289_T36SXD_N04.00",
            "eo:cloud_cover": CLOUD_COVER,
            "s2:datatake_id": "GS2B_20220315T081609_026289_N04.00",
            "s2:product_uri": f"{PRODUCT}.SAFE",
            "s2:datastrip_id": "S2B_OPER_MSI_L2A_DS_ESRI_20220316T075020_S20220315T082244_N04.00",
            "s2:product_type": "S2MSI2A",
            "sat:orbit_state": "descending",
            "s2:datatake_type": "INS-NOBS",
            "s2:generation_time": "2022-03-16T07:50:20.000000Z",
            "sat:relative_orbit": 121,
            "s2:mean_solar_zenith": 40.83,
            "s2:mean_solar_azimuth": 146.81,
            "s2:processing_baseline": "04.00",
            "s2:reflectance_conversion_factor": 1.01268,
            **SCENE_STATS,
        },
        "geometry": geometry,
        "links": [
            {"rel": "collection", "type": "application/json", "href": f"{root}/collections/sentinel-2-l2a"},
            {"rel": "parent", "type": "application/json", "href": f"{root}/collections/sentinel-2-l2a"},
            {"rel": "root", "type": "application/json", "href": f"{root}/"},
            {"rel": "self", "type": "application/geo+json",
             "href": f"{root}/collections/sentinel-2-l2a/items/{item_id}"},
            {"rel": "license", "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice"},
            {"rel": "preview", "type": "text/html", "title": "Map of item",
             "href": f"{data}/item/map?collection=sentinel-2-l2a&item={item_id}"},
        ],
        "assets": assets,
        "bbox": bbox,
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
        ],
        "collection": "sentinel-2-l2a",
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, item in (("earth-search-sentinel-2-l2a", earth_search_item()),
                       ("planetary-computer-sentinel-2-l2a", planetary_computer_item())):
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(item, indent=1) + "\n")
        print(f"wrote {path} ({len(item['assets'])} assets)")


if __name__ == "__main__":
    main()
