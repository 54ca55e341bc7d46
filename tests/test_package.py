"""The package itself: fast to import, heavy dependencies loaded only when used."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "rasterio", "leafmap", "ipyleaflet", "dask.distributed", "geopandas", "xarray", "pystac_client",
         "matplotlib", "scipy")


def test_import_is_light_and_fast():
    code = ("import sys, time; t = time.perf_counter(); import eo_sr, eo_sr.sensors, eo_sr.errors, eo_sr.paths; "
            "print(time.perf_counter() - t); print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    seconds, modules = float(out[0]), set(out[1].split())
    assert seconds < 1.0
    loaded = [m for m in HEAVY if m in modules]
    assert loaded == [], f"import eo_sr pulled in {loaded}"


def test_submodules_load_on_attribute_access():
    import eo_sr

    assert eo_sr.sensors.get_sensor("demo-lr").gsd == 10.0
    assert eo_sr.__version__


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    from eo_sr.paths import cache_dir

    monkeypatch.setenv("EO_SR_CACHE", str(tmp_path / "c"))
    assert cache_dir("demo") == (tmp_path / "c" / "demo").resolve()
    assert (tmp_path / "c" / "demo").is_dir()
