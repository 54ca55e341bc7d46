"""The eo-sr command line, run as a user would: a subprocess."""
from __future__ import annotations

import json
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
