"""Sensors from YAML files: load_sensor, register_sensor(path), get_sensor(path), and messages that
name the line and the key of a mistake."""
from __future__ import annotations

import textwrap

import pytest

from eo_sr import sensors
from eo_sr.errors import InvalidInputError, NotFoundError, UnknownNameError
from eo_sr.sensors.files import load_sensor, sensor_from_dict

CAMERA = """\
id: byo-camera
name: A NAIP-like camera
platform: aircraft
gsd: 0.6
dtype: uint8
scale: null
offset: null
nodata: 0
bands:
  - {name: Red, common_name: red, center_wavelength: 0.635, full_width_half_max: 0.07}
  - {name: Green, common_name: green}
  - {name: Blue, common_name: blue}
  - {name: NIR, common_name: nir, gsd: 0.6}
providers:
  - name: local
    collection: byo-camera
    multiband_asset: image
  - name: tiles
    collection: byo-camera-tiles
    assets: {red: r, green: g, blue: b, nir: n}
    mask_asset: cloud
cloud_mask:
  name: CLOUD
  kind: classification
  classes: {0: no_data, 1: clear, 2: cloud, 3: cloud_shadow}
  invalid: [0, cloud, 3]
"""


@pytest.fixture
def camera_file(tmp_path):
    path = tmp_path / "camera.yaml"
    path.write_text(CAMERA)
    yield path
    sensors.unregister_sensor("byo-camera")


def _write(tmp_path, text: str, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_sensor_file_gives_the_sensor_it_describes(camera_file):
    s = load_sensor(camera_file)
    assert s.id == "byo-camera" and s.gsd == 0.6 and s.dtype == "uint8" and s.nodata == 0
    assert s.common_names == ("red", "green", "blue", "nir")
    assert s.band("red").center_wavelength_um == 0.635 and s.band("green").center_wavelength_um is None
    assert s.band("green").gsd == 0.6  # the sensor's GSD when the band gives none
    assert s.scale is None and not s.is_reflectance
    # one multi-band asset: bands 1..4 in band order
    assert s.asset_key("nir", "local") == "image" and s.band_index("nir", "local") == 4
    assert s.band_index("red", "local") == 1
    # one asset per band
    assert s.asset_key("red", "tiles") == "r" and s.band_index("red", "tiles") is None
    assert s.mask_asset("tiles") == "cloud" and s.mask_asset("local") is None
    # class names in `invalid` are read as their values
    assert s.cloud_mask.invalid == frozenset({0, 2, 3}) and s.cloud_mask.kind == "classification"
    assert s.collection("tiles") == "byo-camera-tiles"
    assert "byo-camera" not in sensors.list_sensors()  # loading does not register


def test_register_sensor_and_get_sensor_accept_the_path(camera_file):
    s = sensors.register_sensor(camera_file)
    assert sensors.get_sensor("byo-camera") is s
    assert sensors.find_sensor_for_collection("byo-camera-tiles") is s
    # the same file again (unchanged, or edited) replaces it; get_sensor(path) registers too
    assert sensors.register_sensor(str(camera_file)) is s
    camera_file.write_text(CAMERA.replace("gsd: 0.6\ndtype", "gsd: 0.5\ndtype"))
    edited = sensors.get_sensor(camera_file)
    assert edited.gsd == 0.5 and sensors.get_sensor("byo-camera") is edited
    # a different file with the same id does not silently replace it
    other = camera_file.with_name("other.yaml")
    other.write_text(CAMERA.replace("name: A NAIP-like camera", "name: another camera"))
    with pytest.raises(InvalidInputError, match="already registered.*another id"):
        sensors.register_sensor(other)
    # nor may a file take a built-in sensor's id
    clash = camera_file.with_name("clash.yaml")
    clash.write_text(CAMERA.replace("id: byo-camera", "id: naip"))
    with pytest.raises(InvalidInputError, match="'naip' is already registered"):
        sensors.get_sensor(clash)
    assert sensors.get_sensor("naip").gsd == 0.6 and sensors.get_sensor("naip").name.startswith("USDA")


def test_no_providers_means_one_local_provider_with_a_file_per_band(tmp_path):
    path = _write(tmp_path, """\
        id: tiny
        gsd: 5
        dtype: uint16
        bands: [{common_name: red}, {common_name: nir, name: B8}]
    """)
    s = load_sensor(path)
    assert list(s.providers) == ["local"] and s.collection("local") == "tiny"
    assert s.asset_key("nir", "local") == "nir" and s.band("nir").name == "B8" and s.band("red").name == "red"
    assert s.band_index("nir", "local") is None


def test_assets_by_band_name(tmp_path):
    path = _write(tmp_path, """\
        id: tiny
        gsd: 10
        dtype: uint16
        bands: [{name: B04, common_name: red}]
        providers: [{name: pc, collection: tiny-pc, assets: name}]
    """)
    assert load_sensor(path).asset_key("red", "pc") == "B04"


@pytest.mark.parametrize("text, message", [
    ("id: x\ngsd: 1\ndtype: uint8\nbands:\n  - {common_name: red, centre_wavelength: 0.6}\n",
     r"line 5: bands\[0\]\.centre_wavelength: unknown key .*did you mean 'center_wavelength'"),
    ("id: x\ngsd: ten\ndtype: uint8\nbands: [{common_name: red}]\n",
     r"line 2: gsd: must be a number \(write the number alone, in metres\), got 'ten'"),
    ("id: x\ngsd: 1\ndtype: uint12\nbands: [{common_name: red}]\n", r"line 3: dtype: must be one of"),
    ("id: x\ngsd: 1\ndtype: uint8\n", r"bands: required key is missing"),
    ("id: X-Cam\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\n", r"line 1: id: must be a lower-case name"),
    ("id: x\ngsd: 1\ndtype: uint8\nscale: 0.0001\nbands: [{common_name: red}]\n",
     r"line 4: offset: give both scale and offset"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands:\n  - {common_name: red}\n  - {common_name: red}\n",
     r"line 6: bands\[1\]\.common_name: 'red' is also the common name of bands\[0\]"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\nproviders:\n  - {name: p, collection: c, "
     "assets: {rde: red}}\n", r"line 6: providers\[0\]\.assets\.rde: 'rde' is not a common name.*did you mean 'red'"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\nproviders:\n  - name: p\n    collection: c\n"
     "    assets: common_name\n    multiband_asset: image\n", r"providers\[0\]: give either assets .* not both"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\nproviders:\n  - {name: p}\n",
     r"line 6: providers\[0\]\.collection: required key is missing"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\ncloud_mask:\n  name: M\n  kind: classes\n"
     "  classes: {0: a}\n", r"line 7: cloud_mask\.kind: must be one of classification, bitmask, bands"),
    ("id: x\ngsd: 1\ndtype: uint8\nbands: [{common_name: red}]\ncloud_mask:\n  name: M\n  kind: classification\n"
     "  classes: {0: clear, 1: cloud}\n  invalid: [1, haze]\n",
     r"line 9: cloud_mask\.invalid\[1\]: 'haze' is not one of the classes"),
    ("id: x\ngsd: 1\ngsd: 2\n", r"line 3: key 'gsd' appears twice in one mapping \(first on line 2\)"),
    ("id: x\ngsd: [1\n", r"line \d+, column \d+: not valid YAML"),
    ("- id: x\n", r"a sensor file is a mapping of keys"),
    ("", r"is empty"),
])
def test_mistakes_are_named_with_their_line_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InvalidInputError, match=message) as info:
        load_sensor(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="sensor file .*nope.yaml not found"):
        sensors.get_sensor(tmp_path / "nope.yaml")


def test_sensor_from_dict_without_a_file():
    s = sensor_from_dict({"id": "dict-cam", "gsd": 3, "dtype": "uint16", "scale": 0.0001, "offset": 0,
                          "bands": [{"common_name": "blue"}, {"common_name": "red"}]})
    assert s.scale == 0.0001 and s.offset == 0.0 and s.common_names == ("blue", "red")
    with pytest.raises(InvalidInputError, match=r"sensor: bands\[0\]: required|common_name: required"):
        sensor_from_dict({"id": "d", "gsd": 3, "dtype": "uint16", "bands": [{"name": "B1"}]})


def test_sensor_files_in_eo_sr_sensors_or_kept_in_the_cache_are_found_by_name_and_collection(tmp_path,
                                                                                               monkeypatch):
    """Another process (a later CLI command) finds a user's sensor without being given the file again."""
    folder = tmp_path / "my_sensors"
    folder.mkdir()
    (folder / "cam.yaml").write_text(CAMERA.replace("byo-camera", "env-camera"))
    monkeypatch.setenv("EO_SR_SENSORS", str(folder))
    monkeypatch.setenv("EO_SR_CACHE", str(tmp_path / "cache"))
    try:
        assert sensors.find_sensor_for_collection("env-camera-tiles").id == "env-camera"
        assert sensors.get_sensor("env-camera").gsd == 0.6
        kept_file = tmp_path / "other.yaml"
        kept_file.write_text(CAMERA.replace("byo-camera", "kept-camera"))
        kept = sensors.save_user_sensor(kept_file)
        assert kept == tmp_path / "cache" / "sensors" / "kept-camera.yaml" and kept.read_text() == kept_file.read_text()
        sensors.unregister_sensor("kept-camera")  # as in a new process
        assert sensors.get_sensor("kept-camera").id == "kept-camera"
        with pytest.raises(UnknownNameError, match="eo-sr sensors --register"):
            sensors.find_sensor_for_collection("nobody-has-this")
    finally:
        for sid in ("env-camera", "kept-camera"):
            sensors.unregister_sensor(sid)
