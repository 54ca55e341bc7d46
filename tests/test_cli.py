"""The eo-sr command line, run as a user would: a subprocess."""
from __future__ import annotations

import json
import time
from pathlib import Path
import os
import subprocess
import sys

import pandas as pd
import pytest


def run(*args, cache, timeout=300):
    env = {**os.environ, "EO_SR_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "eo_sr.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_version_and_help(tmp_path):
    from eo_sr import __version__

    assert run("--version", cache=tmp_path).stdout.strip() == __version__
    out = run("--help", cache=tmp_path).stdout
    for command in ("quickstart", "demo", "serve", "search", "sensors"):
        assert command in out


def test_sensors_lists_the_registry(tmp_path):
    out = run("sensors", cache=tmp_path).stdout
    assert "sentinel-2-l2a" in out and "demo-hr" in out


def test_bad_input_is_one_line_without_traceback(tmp_path):
    proc = run("demo", "--size", "huge", cache=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("eo-sr: error: unknown demo world size 'huge'")
    assert "tiny" in proc.stderr


def test_demo_writes_a_world(tmp_path):
    proc = run("demo", "--size", "tiny", "--root", str(tmp_path / "w"), cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "9 HR scenes" in proc.stdout
    assert json.loads((tmp_path / "w" / "truth.json").read_text())["size"] == "tiny"


@pytest.mark.server
def test_quickstart_searches_the_local_api(tmp_path):
    out = tmp_path / "out"
    proc = run("quickstart", "--size", "tiny", "--out", str(out), cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "serving at http://127.0.0.1:" in proc.stdout
    hr = pd.read_parquet(out / "hr.parquet")
    lr = pd.read_parquet(out / "lr.parquet")
    truth = json.loads(next((tmp_path / "demo").glob("tiny-seed0/truth.json")).read_text())
    hr_truth = [k for k, v in truth["scenes"].items() if v["kind"] == "hr" and v["cloud_fraction"] <= 0.30]
    assert sorted(hr["id"]) == sorted(hr_truth)
    assert len(lr) == sum(v["kind"] == "lr" for v in truth["scenes"].values())
    assert f"outputs in {out}" in proc.stdout
    manifest = pd.read_parquet(out / "patches" / "manifest.parquet")
    assert len(manifest) > 8 and set(manifest["hr_id"]) <= set(hr["id"])


@pytest.mark.server
def test_search_command_with_filters(tmp_path):
    proc = run("search", "--size", "tiny", "--collections", "demo-s2-l2a", "--max-cloud", "10",
               "--datetime", "2022-01-01/2022-01-31", "--out", str(tmp_path / "r"), cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(tmp_path / "r" / "items.parquet")
    assert len(table) > 0 and (table["eo:cloud_cover"] <= 10).all()
    assert (pd.to_datetime(table["datetime"]) < pd.Timestamp("2022-02-01", tz="UTC")).all()


@pytest.mark.server
def test_quickstart_then_match_with_other_criteria(tmp_path):
    out = tmp_path / "out"
    assert run("quickstart", "--size", "tiny", "--out", str(out), cache=tmp_path).returncode == 0
    report = pd.read_parquet(out / "matches" / "match_report.parquet")
    assert set(report.loc[report.status == "unmatched", "reason"]) == {
        "too_cloudy", "no_lr_in_window", "insufficient_overlap"}
    # the suggestion works: widening the window matches the scene that fell into the LR gap
    proc = run("match", "--hr", str(out / "hr.ndjson"), "--lr", str(out / "lr.ndjson"),
               "--max-days", "7", "--out", str(tmp_path / "m7"), cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    wide = pd.read_parquet(tmp_path / "m7" / "match_report.parquet")
    assert "no_lr_in_window" not in set(wide["reason"].dropna())
    assert (wide["status"] != "unmatched").sum() > (report["status"] != "unmatched").sum()


def test_match_with_a_missing_file_says_how_to_make_it(tmp_path):
    proc = run("match", "--hr", str(tmp_path / "nope.ndjson"), "--lr", str(tmp_path / "x.ndjson"), cache=tmp_path)
    assert proc.returncode == 2 and "eo-sr search" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.server
def test_patches_command_resumes_and_refuses_another_config(tmp_path):
    out = tmp_path / "out"
    assert run("quickstart", "--size", "tiny", "--out", str(out), cache=tmp_path).returncode == 0
    proc = run("patches", "--matches", str(out / "matches"), "--lr-size", "16", "--out", str(tmp_path / "p16"),
               cache=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "patch pairs" in proc.stdout
    again = run("patches", "--matches", str(out / "matches"), "--lr-size", "32", "--out", str(tmp_path / "p16"),
                cache=tmp_path)
    assert again.returncode == 2 and "another configuration" in again.stderr
    missing = run("patches", "--matches", str(tmp_path), "--out", str(tmp_path / "x"), cache=tmp_path)
    assert missing.returncode == 2 and "eo-sr match" in missing.stderr
    # the geometry is read from the sensors; what cannot be is refused before any work, in one line
    finer = run("patches", "--matches", str(out / "matches"), "--lr-res", "5", "--out", str(tmp_path / "p5"),
                cache=tmp_path)
    _one_line_error(finer, "lr_res=5 m is finer than the 10 m")
    two = run("patches", "--matches", str(out / "matches"), "--lr-size", "8", "--factor", "2",
              "--hr-cloud-threshold", "none", "--max-pairs", "1", "--out", str(tmp_path / "f2"), cache=tmp_path)
    assert two.returncode == 0, two.stderr
    config = json.loads((tmp_path / "f2" / "config.json").read_text())
    assert (config["factor"], config["lr_res"], config["hr_cloud_threshold"]) == (2, 10.0, None)
    bad = run("patches", "--matches", str(out / "matches"), "--hr-cloud-threshold", "high", "--out",
              str(tmp_path / "b"), cache=tmp_path)
    _one_line_error(bad, "--hr-cloud-threshold takes a number or 'none'")


# --- the first hour: messages instead of tracebacks, checks before work ------------------


def _one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("eo-sr: error: "), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_eo_sr_alone_says_what_to_run_first(tmp_path):
    proc = run(cache=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "eo-sr quickstart" in proc.stderr


def test_search_checks_its_arguments_before_starting_a_server(tmp_path):
    t = time.perf_counter()
    proc = run("search", "--catalog", "demo", "--size", "tiny", "--collections", "demo-hr", "--max-cloud", "150",
               cache=tmp_path)
    _one_line_error(proc, "between 0 and 100")
    assert not (tmp_path / "stac-server").exists() and not (tmp_path / "demo").exists()
    proc = run("search", "--catalog", "demo", "--collections", "demo-hr", "--bbox", "nan", "35", "33.4", "35.2",
               cache=tmp_path)
    _one_line_error(proc, "NaN")
    proc = run("search", "--catalog", "demo", "--collections", "demo-hr", "--datetime", "2022-03-01/2022-01-01",
               cache=tmp_path)
    _one_line_error(proc, "swap")
    assert time.perf_counter() - t < 30 and not (tmp_path / "demo").exists()


@pytest.mark.parametrize("make", ["file", "unwritable"])
def test_an_output_that_cannot_be_written_is_found_first(tmp_path, make):
    if make == "file":
        out = tmp_path / "taken"
        out.write_text("a file")
        needle = "existing file"
    else:
        out = Path("/proc/1/eo-sr-out")  # cannot be created, even by root
        needle = "cannot write"
    proc = run("search", "--catalog", "demo", "--size", "tiny", "--collections", "demo-hr", "--out", str(out),
               cache=tmp_path)
    _one_line_error(proc, needle, str(out))
    assert not (tmp_path / "demo").exists(), "the world was generated before the output was checked"
    proc = run("match", "--hr", str(tmp_path / "x.ndjson"), "--lr", str(tmp_path / "y.ndjson"), "--out", str(out),
               cache=tmp_path)
    _one_line_error(proc, needle)


def _write(path, text):
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


@pytest.mark.parametrize("content, needle", [
    ('{"type": "FeatureCollection", "features": [{"type": "Point"}]}\n', "not a STAC item"),
    ('{"hello": "world"}\n', "not a STAC item"),
    ('[1, 2, 3]\n', "not a STAC item"),
    ('{"type": "Feature", "id": "x", "properties": {}}\n', "not a valid STAC item"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file"),
    ("not json at all\n", "is not JSON"),
])
def test_match_inputs_that_are_not_stac_items_are_named(tmp_path, content, needle):
    bad = _write(tmp_path / "bad.ndjson", content)
    proc = run("match", "--hr", str(bad), "--lr", str(bad), "--out", str(tmp_path / "m"), cache=tmp_path)
    _one_line_error(proc, needle, str(bad))


def test_match_refuses_the_same_scenes_as_hr_and_lr(tiny_world, tmp_path):
    from eo_sr import demo, stac

    hr = stac.write_items(tiny_world.items(demo.HR_COLLECTION), tmp_path / "hr.ndjson")
    lr = stac.write_items(tiny_world.items(demo.LR_COLLECTION), tmp_path / "lr.ndjson")
    _one_line_error(run("match", "--hr", str(hr), "--lr", str(hr), "--out", str(tmp_path / "m"), cache=tmp_path),
                    "both HR and LR")
    _one_line_error(run("match", "--hr", str(lr), "--lr", str(hr), "--out", str(tmp_path / "m"), cache=tmp_path),
                    "swapped")
    ok = run("match", "--hr", str(hr), "--lr", str(lr), "--out", str(tmp_path / "m"), cache=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"pairs.parquet", "match_report.parquet",
                                                           "hr_scenes.ndjson", "lr_scenes.ndjson"}


def test_patches_lists_failed_pairs_and_fails_when_nothing_is_made(tiny_world, tmp_path):
    from eo_sr import demo, stac

    hr = list(tiny_world.items(demo.HR_COLLECTION))
    for item in hr:  # every HR asset file is missing
        for asset in item.assets.values():
            asset.href = str(tmp_path / "gone" / f"{item.id}.tif")
    hr_path = stac.write_items(hr, tmp_path / "hr.ndjson")
    lr_path = stac.write_items(tiny_world.items(demo.LR_COLLECTION), tmp_path / "lr.ndjson")
    assert run("match", "--hr", str(hr_path), "--lr", str(lr_path), "--out", str(tmp_path / "m"),
               cache=tmp_path).returncode == 0
    proc = run("patches", "--matches", str(tmp_path / "m"), "--out", str(tmp_path / "p"), cache=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "pair(s) failed" in proc.stderr and "gone" in proc.stderr and "--retry-failed" in proc.stderr
    assert "no patch was produced" in proc.stderr
    again = run("patches", "--matches", str(tmp_path / "m"), "--out", str(tmp_path / "p"), cache=tmp_path)
    assert again.returncode == 1 and "pair(s) failed" in again.stderr
    neg = run("patches", "--matches", str(tmp_path / "m"), "--out", str(tmp_path / "p"), "--max-pairs", "-1",
              cache=tmp_path)
    _one_line_error(neg, "--max-pairs")
