"""The real STAC item fixtures under tests/data/real_items are well formed.

The fixtures are Items exactly as Earth Search and Planetary Computer publish them
(PROVENANCE.md says where each came from). expected.json records the documented
DN -> reflectance convention per file; the harmonisation tests build on it. This file
only checks that the three agree with each other.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pystac
import pytest

HERE = Path(__file__).parent / "data" / "real_items"
ITEM_FILES = sorted(p for p in HERE.glob("*.json") if p.name != "expected.json")
EXPECTED = json.loads((HERE / "expected.json").read_text())
PROVENANCE = (HERE / "PROVENANCE.md").read_text()


def test_there_are_fixtures():
    assert len(ITEM_FILES) >= 8


# pystac migrates the storage extension v1.0.0 fields that Earth Search publishes and
# warns that it cannot parse a bucket from the https hrefs; the item itself is fine.
@pytest.mark.filterwarnings("ignore:Could not parse bucket/account from href")
@pytest.mark.parametrize("path", ITEM_FILES, ids=lambda p: p.name)
def test_item_loads_with_pystac(path):
    data = json.loads(path.read_text())
    assert data.get("type") == "Feature"
    item = pystac.Item.from_dict(data)
    assert item.id == data["id"]
    assert item.datetime is not None
    assert item.assets


@pytest.mark.parametrize("path", ITEM_FILES, ids=lambda p: p.name)
def test_item_has_provenance_and_expectation(path):
    assert f"`{path.name}`" in PROVENANCE
    assert path.name in EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expectation_names_a_real_file_and_asset(name):
    entry = EXPECTED[name]
    assert (HERE / name).is_file()
    assert set(entry) >= {"asset", "dn", "reflectance", "rule"}
    data = json.loads((HERE / name).read_text())
    assert entry["asset"] in data["assets"]
    assert isinstance(entry["dn"], (int, float))
    refl = entry["reflectance"]
    assert refl is None or (isinstance(refl, (int, float)) and math.isfinite(refl))
    assert isinstance(entry["rule"], str) and entry["rule"].strip()


def _collection(name: str) -> str:
    """The collection of a fixture, from its file name (one of them is a stactools output without one)."""
    for collection in ("sentinel-2-c1-l2a", "sentinel-2-l2a", "landsat-c2-l2", "naip"):
        if f"_{collection}_" in name:
            return collection
    raise AssertionError(name)


@pytest.mark.filterwarnings("ignore:Could not parse bucket/account from href")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reflectance_follows_each_providers_convention(name):
    """Issue #12 findings 1 and 2: DN -> reflectance as each provider documents it, on its own items."""
    from eo_sr import loading
    from eo_sr.sensors import find_sensor_for_collection

    entry = EXPECTED[name]
    item = pystac.Item.from_dict(json.loads((HERE / name).read_text()))
    sensor = find_sensor_for_collection(_collection(name), provider=name.split("_")[0])
    sensor, provider = loading.sensor_and_provider(item, sensor)
    band = next(b for b in sensor.common_names if sensor.providers[provider].assets.get(b) == entry["asset"])
    scale, offset, source = loading.reflectance_terms(item, sensor, band, provider)
    if entry["reflectance"] is None:
        assert (scale, offset, source) == (1.0, 0.0, "none") and not sensor.is_reflectance
    else:
        assert entry["dn"] * scale + offset == pytest.approx(entry["reflectance"], abs=1e-9), (source, entry["rule"])
