"""The README's commands, run as written: a newcomer copies them, so they must connect."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
EO_SR = Path(sys.executable).parent / "eo-sr"


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def use_it_commands() -> list[str]:
    """The shell commands of the README's "Use it" section, one per command (continuations joined)."""
    section = (ROOT / "README.md").read_text().split("## Use it", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]
    return commands


def test_the_readme_pipeline_is_found():
    commands = use_it_commands()
    steps = [shlex.split(c)[1] for c in commands]
    assert steps[:5] == ["demo", "search", "search", "match", "patches"], commands
    assert all(c.startswith(".venv/bin/eo-sr ") for c in commands)


def _as_written(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/eo-sr"
    return [str(EO_SR), *argv[1:]]


@pytest.mark.server
def test_readme_commands_run_as_written(tmp_path, cache_root):
    """Every offline command of "Use it", in order, in a fresh folder, as a user types them."""
    env = {**os.environ, "EO_SR_CACHE": str(cache_root)}
    work = tmp_path / "work"
    work.mkdir()
    ran = []
    for command in use_it_commands():
        argv = _as_written(command)
        if "earth-search" in command or "planetary-computer" in command:
            continue  # needs the internet; the same code path is tested against the local API
        if argv[1] == "serve":
            proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            line, deadline = "", time.monotonic() + 120
            while "STAC API serving" not in line and time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line or proc.poll() is None, proc.stderr.read()
            assert "STAC API serving" in line
            proc.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
            ran.append("serve")
            continue
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        ran.append(argv[1])
    assert ran[:5] == ["demo", "search", "search", "match", "patches"]
    hr = pd.read_parquet(work / "results" / "hr.parquet")
    lr = pd.read_parquet(work / "results" / "lr.parquet")
    assert len(hr) > 0 and len(lr) > len(hr)
    pairs = pd.read_parquet(work / "matches" / "pairs.parquet")
    assert set(pairs["hr_id"]) <= set(hr["id"]) and set(pairs["lr_id"]) <= set(lr["id"])
    manifest = pd.read_parquet(work / "patch-store" / "manifest.parquet")
    assert len(manifest) > 8 and set(manifest["hr_id"]) <= set(pairs["hr_id"])


@pytest.mark.server
def test_readme_python_example_runs(cache_root, tmp_path):
    """The README's Python block, run as written but on the tiny world (the default is the book's)."""
    code = readme_blocks("python")[0].replace('demo.generate("default"', 'demo.generate("tiny"')
    code += "\nassert len(hr) > 0, hr\nprint('hr items', len(hr))\n"
    env = {**os.environ, "EO_SR_CACHE": str(cache_root)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "hr items" in proc.stdout
