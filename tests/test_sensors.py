"""Tests of eo_sr.sensors: the sensor registry, pairing and resolution factors."""
from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eo_sr import sensors
from eo_sr.errors import EoSrError, InvalidInputError, UnknownNameError
from eo_sr.sensors import Band, CloudMask, Provider, Sensor

ALL_IDS = ["demo-hr", "demo-lr", "landsat-c2-l2", "naip", "planetscope", "sentinel-2-l2a"]
RGBN = {"blue", "green", "red", "nir"}


# ----------------------------------------------------------------- registry


def test_list_sensors_is_sorted_and_complete():
    assert sensors.list_sensors() == ALL_IDS


@pytest.mark.parametrize("sensor_id", ALL_IDS)
def test_every_sensor_has_unique_bands_and_rgbn(sensor_id):
    s = sensors.get_sensor(sensor_id)
    names = s.common_names
    assert len(names) == len(set(names))
    # Landsat's NIR band is nir08; the documented alias makes "nir" resolve.
    for name in RGBN:
        assert s.has_band(name), (sensor_id, name)
    assert s.gsd > 0
    assert min(b.gsd for b in s.bands) == pytest.approx(s.gsd)


@pytest.mark.parametrize("sensor_id", ALL_IDS)
def test_every_provider_serves_every_band_and_is_consistent(sensor_id):
    s = sensors.get_sensor(sensor_id)
    assert s.providers, sensor_id
    for name, provider in s.providers.items():
        assert provider.name == name
        assert set(provider.assets) == set(s.common_names)
        if s.cloud_mask is None:
            assert provider.mask_asset is None
        else:
            assert provider.mask_asset
        for common in s.common_names:
            assert s.asset_key(common, name) == provider.assets[common]


def test_sentinel2_asset_keys_differ_between_providers():
    s2 = sensors.get_sensor("sentinel-2-l2a")
    es = {c: s2.asset_key(c, "earth-search") for c in ("coastal", "blue", "green", "red", "rededge1", "nir", "nir08", "swir16", "swir22")}
    pc = {c: s2.asset_key(c, "planetary-computer") for c in es}
    assert es == {
        "coastal": "coastal", "blue": "blue", "green": "green", "red": "red", "rededge1": "rededge1",
        "nir": "nir", "nir08": "nir08", "swir16": "swir16", "swir22": "swir22",
    }
    assert pc == {
        "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
        "nir": "B08", "nir08": "B8A", "swir16": "B11", "swir22": "B12",
    }
    assert s2.mask_asset("earth-search") == "scl"
    assert s2.mask_asset("planetary-computer") == "SCL"
    assert s2.collection("earth-search") == s2.collection("planetary-computer") == "sentinel-2-l2a"
    assert s2.provider("planetary-computer").requires_signing is True
    assert s2.provider("earth-search").requires_signing is False
    assert s2.provider("earth-search").url == "https://earth-search.aws.element84.com/v1"
    assert s2.provider("planetary-computer").url == "https://planetarycomputer.microsoft.com/api/stac/v1"


def test_sentinel2_radiometry_and_bands():
    s2 = sensors.get_sensor("sentinel-2-l2a")
    assert (s2.dtype, s2.scale, s2.offset, s2.nodata, s2.gsd) == ("uint16", 0.0001, 0.0, 0, 10.0)
    assert [b.common_name for b in s2.bands_at()] == ["blue", "green", "red", "nir"]
    assert [b.name for b in s2.bands_at(20)] == ["B05", "B06", "B07", "B8A", "B11", "B12"]
    red = s2.band("red")
    assert (red.name, red.center_wavelength_um, red.full_width_half_max_um, red.gsd) == ("B04", 0.665, 0.038, 10.0)
    assert s2.band("B8A").common_name == "nir08"
    assert s2.band("b04") is red
    assert "04.00" in s2.harmonization and "-1000" in s2.harmonization
    assert "earthsearch:boa_offset_applied" in s2.harmonization
    assert "s2:processing_baseline" in s2.harmonization


def test_landsat_facts_and_nir_alias():
    ls = sensors.get_sensor("landsat-c2-l2")
    assert (ls.scale, ls.offset, ls.nodata, ls.gsd) == (0.0000275, -0.2, 0, 30.0)
    assert ls.band("nir") is ls.band("nir08")
    assert ls.band("nir").name == "SR_B5"
    assert "nir" not in ls.common_names
    for provider in ("earth-search", "planetary-computer"):
        assert ls.collection(provider) == "landsat-c2-l2"
        assert ls.asset_key("nir", provider) == "nir08"
        assert ls.asset_key("swir22", provider) == "swir22"
        assert ls.mask_asset(provider) == "qa_pixel"
    assert ls.provider("earth-search").requester_pays is True
    assert ls.provider("planetary-computer").requires_signing is True


def test_scl_mask_classes_and_invalid_values():
    mask = sensors.get_sensor("sentinel-2-l2a").cloud_mask
    assert mask.kind == "classification"
    assert mask.classes[3] == "cloud_shadows"
    assert mask.classes[9] == "cloud_high_probability"
    assert mask.classes[11] == "snow"
    assert len(mask.classes) == 12
    assert mask.invalid == frozenset({0, 1, 3, 8, 9, 10})
    assert mask.class_value("water") == 6
    assert mask.is_invalid(9) and not mask.is_invalid(4) and not mask.is_invalid(2)
    assert sensors.get_sensor("demo-lr").cloud_mask == mask
    with pytest.raises(InvalidInputError, match="not a bitmask"):
        mask.invalid_bits
    with pytest.raises(UnknownNameError, match="cloud_shadows"):
        mask.class_value("cloud_shadow")


def test_qa_pixel_bitmask():
    mask = sensors.get_sensor("landsat-c2-l2").cloud_mask
    assert mask.kind == "bitmask"
    assert mask.name == "QA_PIXEL"
    assert [mask.classes[b] for b in range(8)] == [
        "fill", "dilated_cloud", "cirrus", "cloud", "cloud_shadow", "snow", "clear", "water",
    ]
    assert mask.invalid == frozenset({0, 1, 2, 3, 4})
    assert mask.invalid_bits == 0b11111
    assert mask.is_invalid(1 << 3)  # cloud
    assert not mask.is_invalid(21824)  # a typical clear-land value: clear bit + low confidences
    assert mask.is_invalid(1)  # fill


def test_sensors_without_mask_and_multiband_assets():
    naip = sensors.get_sensor("naip")
    assert naip.cloud_mask is None and sensors.get_sensor("demo-hr").cloud_mask is None
    assert not naip.is_reflectance and naip.scale is None and naip.dtype == "uint8"
    for provider in ("planetary-computer", "earth-search"):
        assert naip.collection(provider) == "naip"
        assert [naip.asset_key(c, provider) for c in ("red", "green", "blue", "nir")] == ["image"] * 4
        assert [naip.band_index(c, provider) for c in ("red", "green", "blue", "nir")] == [1, 2, 3, 4]
    assert naip.provider("planetary-computer").requires_signing
    assert sensors.get_sensor("sentinel-2-l2a").band_index("red", "earth-search") is None

    ps = sensors.get_sensor("planetscope")
    planet = ps.provider("planet")
    assert planet.collection == "PSScene"
    assert planet.api_key_env == "PL_API_KEY"
    assert "PL_API_KEY" in planet.access
    assert ps.asset_key("nir", "planet") == "ortho_analytic_4b_sr"
    assert ps.band_index("nir", "planet") == 4
    assert ps.cloud_mask.kind == "bands" and ps.mask_asset("planet") == "ortho_udm2"
    assert "NICFI" in ps.notes and "2025" in ps.notes
    with pytest.raises(InvalidInputError, match="binary band"):
        ps.cloud_mask.is_invalid(1)


def test_demo_sensors():
    lr, hr = sensors.get_sensor("demo-lr"), sensors.get_sensor("demo-hr")
    assert lr.provider("demo").collection == "demo-s2-l2a"
    assert hr.provider("demo").collection == "demo-hr"
    assert [lr.asset_key(c, "demo") for c in ("blue", "green", "red", "nir")] == ["blue", "green", "red", "nir"]
    assert lr.mask_asset("demo") == "scl" and hr.mask_asset("demo") is None
    assert hr.gsd == 2.5 and "3857" in hr.notes
    assert hr.band("nir").center_wavelength_um == 0.831
    assert lr.band("nir").full_width_half_max_um == sensors.get_sensor("s2").band("nir").full_width_half_max_um
    assert "-1000" in lr.harmonization


@pytest.mark.parametrize(
    "alias, expected",
    [
        ("s2", "sentinel-2-l2a"),
        ("sentinel2", "sentinel-2-l2a"),
        ("Sentinel-2", "sentinel-2-l2a"),
        ("SENTINEL_2_L2A", "sentinel-2-l2a"),
        ("landsat", "landsat-c2-l2"),
        ("Landsat-9", "landsat-c2-l2"),
        ("planet", "planetscope"),
        (" naip ", "naip"),
    ],
)
def test_aliases(alias, expected):
    assert sensors.get_sensor(alias).id == expected


def test_get_sensor_passes_sensor_through_and_rejects_other_types():
    s2 = sensors.get_sensor("s2")
    assert sensors.get_sensor(s2) is s2
    with pytest.raises(InvalidInputError, match="int"):
        sensors.get_sensor(10)


def test_unknown_sensor_lists_known_ids():
    with pytest.raises(UnknownNameError) as info:
        sensors.get_sensor("sentinel-3")
    msg = str(info.value)
    for sensor_id in ALL_IDS:
        assert sensor_id in msg
    assert "'sentinel-3'" in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, EoSrError)


def test_unknown_band_and_provider_list_known_names():
    s2 = sensors.get_sensor("sentinel-2-l2a")
    with pytest.raises(UnknownNameError) as info:
        s2.band("pan")
    assert "rededge1" in str(info.value) and "swir22" in str(info.value)
    with pytest.raises(UnknownNameError) as info:
        s2.provider("usgs")
    assert "earth-search" in str(info.value) and "planetary-computer" in str(info.value)
    with pytest.raises(UnknownNameError, match="nir -> nir08"):
        sensors.get_sensor("landsat").band("rededge1")


def test_sensor_table_rows():
    rows = sensors.sensor_table()
    assert [r["id"] for r in rows] == ALL_IDS
    by_id = {r["id"]: r for r in rows}
    assert by_id["sentinel-2-l2a"]["gsd"] == 10.0
    assert by_id["sentinel-2-l2a"]["providers"] == "earth-search, earth-search-c1, planetary-computer"
    assert by_id["demo-lr"]["bands"] == "blue, green, red, nir"
    assert by_id["naip"]["dtype"] == "uint8"
    assert by_id["landsat-c2-l2"]["cloud_mask"] == "QA_PIXEL"
    for row in rows:
        assert {"id", "name", "gsd", "bands", "dtype", "providers"} <= set(row)


# ----------------------------------------------------------- reverse look-up


def test_find_sensor_for_collection():
    found = sensors.find_sensor_for_collection("sentinel-2-l2a", provider="planetary-computer")
    assert found.id == "sentinel-2-l2a"
    assert sensors.find_sensor_for_collection("landsat-c2-l2").id == "landsat-c2-l2"
    assert sensors.find_sensor_for_collection("demo-s2-l2a").id == "demo-lr"
    assert sensors.find_sensor_for_collection("psscene").id == "planetscope"  # case-insensitive fallback


def test_find_sensor_for_unknown_collection_lists_known_ones():
    with pytest.raises(UnknownNameError) as info:
        sensors.find_sensor_for_collection("sentinel-1-grd")
    msg = str(info.value)
    for collection in ("sentinel-2-l2a", "landsat-c2-l2", "naip", "PSScene", "demo-hr", "demo-s2-l2a"):
        assert collection in msg
    with pytest.raises(UnknownNameError, match="earth-search"):
        sensors.find_sensor_for_collection("sentinel-2-l2a", provider="copernicus")
    with pytest.raises(UnknownNameError, match="sentinel-2-l2a"):
        sensors.find_sensor_for_collection("PSScene", provider="planetary-computer")


# -------------------------------------------------------- resolution factor


@pytest.mark.parametrize(
    "lr, hr, k",
    [
        ("demo-lr", "demo-hr", 4),
        (10, 5, 2),
        (10, 2.5, 4),
        (30, 10, 3),
        ("landsat-c2-l2", "sentinel-2-l2a", 3),
        ("sentinel-2-l2a", "naip", 17),
        (10.0, 2.4, 4),  # 4.17: within 5 %
    ],
)
def test_resolution_factor(lr, hr, k):
    assert sensors.resolution_factor(lr, hr) == k


def test_resolution_factor_accepts_sensor_objects():
    assert sensors.resolution_factor(sensors.DEMO_LR, sensors.DEMO_HR) == 4


def test_sentinel2_planetscope_is_not_an_integer_factor_by_default():
    with pytest.raises(InvalidInputError) as info:
        sensors.resolution_factor("sentinel-2-l2a", "planetscope")
    msg = str(info.value)
    assert "3.33" in msg and "not close to an integer" in msg
    assert "3.33 m for k=3" in msg
    # 10 / 3 is 11 % away from 3: accepted only with a looser tolerance.
    assert sensors.resolution_factor("sentinel-2-l2a", "planetscope", tolerance=0.12) == 3


def test_numeric_non_integer_message():
    with pytest.raises(InvalidInputError, match=r"10 m / 3 m = 3\.33"):
        sensors.resolution_factor(10, 3)


def test_swapped_arguments():
    with pytest.raises(InvalidInputError, match="swapped"):
        sensors.resolution_factor("demo-hr", "demo-lr")
    with pytest.raises(InvalidInputError, match="swapped"):
        sensors.resolution_factor(2.5, 10)


@pytest.mark.parametrize("lr, hr", [(10, 10), (10, 10.3), ("s2", "demo-lr")])
def test_ratio_one_is_an_error(lr, hr):
    with pytest.raises(InvalidInputError, match="nothing to super-resolve"):
        sensors.resolution_factor(lr, hr)


def test_ratio_below_two():
    with pytest.raises(InvalidInputError, match="at least twice"):
        sensors.resolution_factor(10, 7)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf"), True, None, [10]])
def test_bad_gsd_values(bad):
    with pytest.raises(InvalidInputError):
        sensors.resolution_factor(bad, 2.5)


@pytest.mark.parametrize("tolerance", [-0.1, 0.5, "5%"])
def test_bad_tolerance(tolerance):
    with pytest.raises(InvalidInputError, match="tolerance"):
        sensors.resolution_factor(10, 5, tolerance=tolerance)


def test_unknown_sensor_in_resolution_factor():
    with pytest.raises(UnknownNameError, match="demo-lr"):
        sensors.resolution_factor("spot-6", 1.5)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(2, 8), gsd=st.floats(0.3, 50.0, allow_nan=False, allow_infinity=False))
def test_exact_integer_ratios(k, gsd):
    assert sensors.resolution_factor(gsd * k, gsd) == k


_FAR_FROM_INTEGER = st.floats(1.2, 8.8).filter(lambda r: abs(r - round(r)) >= 0.2)


@settings(max_examples=200, deadline=None)
@given(ratio=_FAR_FROM_INTEGER, gsd=st.floats(0.3, 50.0))
def test_ratios_far_from_integers_raise(ratio, gsd):
    # 0.2 away from an integer n <= 9 is at least 0.2 / 9 = 2.2 % relative.
    with pytest.raises(InvalidInputError):
        sensors.resolution_factor(gsd * ratio, gsd, tolerance=0.02)


@settings(max_examples=200, deadline=None)
@given(ratio=_FAR_FROM_INTEGER.filter(lambda r: 2 < r < 3.75), gsd=st.floats(0.3, 50.0))
def test_small_ratios_far_from_integers_raise_with_default_tolerance(ratio, gsd):
    # Below 3.75, 0.2 away from the nearest integer is more than 5 % relative.
    with pytest.raises(InvalidInputError, match=f"{gsd * ratio / gsd:.2f}"):
        sensors.resolution_factor(gsd * ratio, gsd)


# ------------------------------------------------------------------ pairs


def test_check_pair_landsat_sentinel2_finds_nir_via_alias():
    pair = sensors.check_pair("landsat-c2-l2", "sentinel-2-l2a")
    assert pair.factor == 3
    assert pair.common_names == ("coastal", "blue", "green", "red", "nir", "nir08", "swir16", "swir22")
    lr_nir, hr_nir = pair.band_pairs["nir"]
    assert (lr_nir.name, hr_nir.name) == ("SR_B5", "B08")
    assert [b.name for b in pair.band_pairs["nir08"]] == ["SR_B5", "B8A"]
    assert pair.warnings == ()  # all centre wavelengths within 30 nm


def test_check_pair_demo():
    pair = sensors.check_pair("demo-lr", "demo-hr")
    assert pair.factor == 4
    assert pair.common_names == ("blue", "green", "red", "nir")
    assert pair.lr.id == "demo-lr" and pair.hr.id == "demo-hr"
    assert pair.warnings == ()


def test_check_pair_warns_on_wavelength_mismatch():
    # demo-lr vs demo-hr centre wavelengths differ by: blue 5.5, green 5.5, red 3.5, nir 11 nm.
    pair = sensors.check_pair("demo-lr", "demo-hr", max_wavelength_difference_um=0.005)
    warned = [name for name in pair.common_names if any(f"band {name!r}" in w for w in pair.warnings)]
    assert warned == ["blue", "green", "nir"]
    assert len(pair.warnings) == 3
    assert any("'nir'" in w and "11 nm" in w for w in pair.warnings)
    assert any("'blue'" in w and "5.5 nm" in w for w in pair.warnings)
    pair = sensors.check_pair("demo-lr", "demo-hr", max_wavelength_difference_um=0.010)
    assert len(pair.warnings) == 1 and "'nir'" in pair.warnings[0]


def test_check_pair_warns_on_uncalibrated_hr():
    pair = sensors.check_pair("sentinel-2-l2a", "naip")
    assert pair.factor == 17
    assert pair.common_names == ("blue", "green", "red", "nir")
    assert any("not calibrated reflectance" in w for w in pair.warnings)
    assert any("wavelengths unknown" in w for w in pair.warnings)


def test_check_pair_errors():
    with pytest.raises(InvalidInputError, match="swapped"):
        sensors.check_pair("sentinel-2-l2a", "landsat-c2-l2")
    with pytest.raises(InvalidInputError, match="resolution_factor"):
        sensors.check_pair(10, 2.5)
    only_swir = Sensor(
        id="test-swir",
        name="SWIR only",
        platform="test",
        gsd=40.0,
        bands=(Band("S1", "swir16", 1.6, 0.1, 40.0),),
        dtype="uint16",
        scale=1e-4,
        offset=0.0,
        nodata=0,
        cloud_mask=None,
        providers={},
    )
    with pytest.raises(InvalidInputError, match="share no band"):
        sensors.check_pair(only_swir, "demo-lr")


# --------------------------------------------------------- model and purity


def test_dataclasses_are_frozen_and_picklable():
    s2 = sensors.get_sensor("s2")
    with pytest.raises(AttributeError):
        s2.gsd = 20  # type: ignore[misc]
    with pytest.raises(TypeError):
        s2.providers["x"] = None  # type: ignore[index]
    clone = pickle.loads(pickle.dumps(s2))
    assert clone == s2 and hash(clone) == hash(s2)
    assert clone.asset_key("red", "planetary-computer") == "B04"
    assert {s2: 1}[clone] == 1


def test_sensor_validation():
    band = Band("X", "red", 0.65, 0.04, 5.0)
    common = dict(name="t", platform="t", gsd=5.0, dtype="uint16", scale=1e-4, offset=0.0, nodata=0, cloud_mask=None)
    with pytest.raises(InvalidInputError, match="not unique"):
        Sensor(id="t", bands=(band, band), providers={}, **common)
    with pytest.raises(InvalidInputError, match="unknown bands"):
        Sensor(id="t", bands=(band,), providers=[Provider("p", "c", {"nir": "B8"})], **common)
    with pytest.raises(InvalidInputError, match="alias"):
        Sensor(id="t", bands=(band,), providers={}, band_aliases={"nir": "nir08"}, **common)
    with pytest.raises(InvalidInputError, match="kind"):
        CloudMask("m", "probability", {0: "a"}, frozenset())
    with pytest.raises(InvalidInputError, match="not among its classes"):
        CloudMask("m", "classification", {0: "a"}, frozenset({1}))
    with pytest.raises(InvalidInputError, match="micrometres"):
        Band("X", "red", 665.0, 38.0, 10.0)


def test_register_sensor_roundtrip():
    custom = Sensor(
        id="test-sat",
        name="Test satellite",
        platform="test",
        gsd=5.0,
        bands=tuple(Band(n, n, w, 0.05, 5.0) for n, w in [("blue", 0.49), ("green", 0.56), ("red", 0.66), ("nir", 0.84)]),
        dtype="uint16",
        scale=1e-4,
        offset=0.0,
        nodata=0,
        cloud_mask=None,
        providers=[Provider("local", "test-collection", {"red": "r"})],
        aliases=("ts",),
    )
    try:
        sensors.register_sensor(custom)
        assert sensors.get_sensor("TS") is custom
        assert sensors.find_sensor_for_collection("test-collection") is custom
        assert sensors.resolution_factor("s2", "ts") == 2
        with pytest.raises(InvalidInputError, match="already registered"):
            sensors.register_sensor(custom)
    finally:
        sensors.unregister_sensor("test-sat")
    assert "test-sat" not in sensors.list_sensors()
    with pytest.raises(UnknownNameError):
        sensors.get_sensor("ts")
    with pytest.raises(InvalidInputError, match="already a name"):
        sensors.register_sensor(
            Sensor(id="test-2", bands=custom.bands, providers={}, aliases=("s2",),
                   name="t", platform="t", gsd=5.0, dtype="uint16", scale=None, offset=None, nodata=None,
                   cloud_mask=None)
        )
    assert "test-2" not in sensors.list_sensors()


def test_import_is_light():
    code = (
        "import sys, eo_sr.sensors; "
        "heavy = [m for m in ('numpy', 'pandas', 'rasterio', 'torch', 'xarray', 'pystac') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
