"""Servers never outlive the command that started them: SIGTERM, kill -9, stale leftovers.

Each test runs ``eo-sr serve`` (PostgreSQL + uvicorn) as a real subprocess, ends it the
way a user, ``timeout`` or a Jupyter kernel restart would, and then looks for the
processes, the port and the cluster folder it left.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eo_sr.localapi import processes, server as server_mod

EO_SR = [sys.executable, "-m", "eo_sr.cli"]


def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _clusters_of(pid: int) -> list[Path]:
    """The cluster folders whose owner file names ``pid``."""
    found = []
    for folder in [*Path("/tmp").glob("eo-sr-pgstac-*"), *server_mod.cache_dir("stac-server").glob("*/pgstac-*")]:
        try:
            if (folder / processes.OWNER_FILE).read_text().split(":")[0] == str(pid):
                found.append(folder)
        except OSError:
            pass
    return found


def _run_until(args, cache: Path, marker: str, timeout: float):
    """Start ``eo-sr ARGS`` and read its output until a line holds ``marker``."""
    env = {**os.environ, "EO_SR_CACHE": str(cache)}
    proc = subprocess.Popen([*EO_SR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    text, deadline = "", time.monotonic() + timeout
    while marker not in text and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            pytest.fail(f"eo-sr {args[0]} exited: {proc.stderr.read()}")
        text += line
    return proc, text


def _start_serve(cache: Path):
    proc, text = _run_until(["serve", "--size", "tiny"], cache, "processes:", 120)
    port = int(re.search(r"127\.0\.0\.1:(\d+)", text).group(1))
    api, pg = map(int, re.search(r"API pid (\d+), PostgreSQL pid (\d+)", text).groups())
    return proc, port, api, pg


@pytest.fixture
def cache(cache_root, monkeypatch):
    # The serve subprocesses and this process must agree on where stale servers are looked for.
    monkeypatch.setenv("EO_SR_CACHE", str(cache_root))
    return cache_root


@pytest.mark.server
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_serve_leaves_nothing_running_when_killed(cache, how):
    proc, port, api, pg = _start_serve(cache)
    assert processes.pid_alive(api) and processes.pid_alive(pg)
    assert _clusters_of(proc.pid)
    proc.send_signal(getattr(signal, how))
    code = proc.wait(timeout=60)
    assert code == (0 if how == "SIGTERM" else -signal.SIGKILL)
    assert _gone(api), "uvicorn outlived eo-sr serve"
    assert _gone(pg), "PostgreSQL outlived eo-sr serve"
    deadline = time.monotonic() + 20
    while (_clusters_of(proc.pid) or not _port_free(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _clusters_of(proc.pid), "the cluster folder was left behind"
    assert _port_free(port), f"port {port} is still taken"


@pytest.mark.server
def test_stale_cluster_is_stopped_and_removed_on_next_start(cache):
    """Both eo-sr and its watchdog killed at once (the OOM killer, kill -9 of everything):
    the next server start finds the orphaned PostgreSQL and removes its cluster and logs."""
    proc, port, api, pg = _start_serve(cache)
    dogs = [int(p) for p in subprocess.run(["pgrep", "-f", "eo_sr.localapi.processes"], capture_output=True,
                                           text=True).stdout.split()]
    ours = [d for d in dogs if _parent_of(d) == proc.pid]
    assert ours, "eo-sr serve runs no watchdog"
    for d in ours:  # the watchdog first, so that nothing is left to clean up after eo-sr
        os.kill(d, signal.SIGKILL)
    proc.kill()
    proc.wait(timeout=30)
    os.kill(api, signal.SIGKILL)
    assert processes.pid_alive(pg), "PostgreSQL should be orphaned for this test"
    leftovers = _clusters_of(proc.pid)
    assert leftovers
    log_dir = server_mod.cache_dir("stac-server") / str(port)
    assert log_dir.exists()
    removed = server_mod.clean_stale_servers()
    assert set(leftovers) <= set(removed)
    assert _gone(pg), "the orphaned PostgreSQL was not stopped"
    assert not any(p.exists() for p in leftovers)
    assert not log_dir.exists()


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_a_live_owner_keeps_its_folder(tmp_path):
    processes.write_owner(tmp_path)
    assert processes.owner_alive(tmp_path)
    (tmp_path / processes.OWNER_FILE).write_text("999999999:1\n")
    assert not processes.owner_alive(tmp_path)
    # a pid that is alive but belongs to another process (a reused pid) is not the owner
    (tmp_path / processes.OWNER_FILE).write_text(f"{os.getpid()}:0\n")
    assert not processes.owner_alive(tmp_path)


def test_watchdog_stops_what_it_guards_when_its_parent_dies(tmp_path):
    """A parent (here a small Python process) starts a sleeper and a watchdog, then dies by kill -9."""
    folder = tmp_path / "cluster"
    code = f"""
import subprocess, sys, time, pathlib
from eo_sr.localapi.processes import Watchdog
folder = pathlib.Path({str(folder)!r}); folder.mkdir()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
dog = Watchdog(); dog.guard_pid(child.pid); dog.guard_path(folder)
print(child.pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert processes.pid_alive(child) and folder.exists()
    parent.kill()
    parent.wait()
    assert _gone(child, 15), "the guarded process outlived its parent"
    deadline = time.monotonic() + 10
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()


def test_a_released_watchdog_touches_nothing(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        dog = processes.Watchdog()
        dog.guard_pid(sleeper.pid)
        dog.guard_path(tmp_path)
        dog.release()
        assert _gone(dog.pid, 5)
        time.sleep(0.3)
        assert processes.pid_alive(sleeper.pid) and tmp_path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


@pytest.mark.server
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_qc_app_leaves_no_jupyterlab_running(cache, how):
    proc, text = _run_until(["qc-app", "--size", "tiny"], cache, "QC app:", 300)
    port = int(re.search(r"127\.0\.0\.1:(\d+)/voila", text).group(1))
    lab = [c for c in _children(proc.pid) if b"jupyterlab" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert lab, "no JupyterLab child found"
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=60)
    assert all(_gone(pid, 30) for pid in lab), "JupyterLab outlived eo-sr qc-app"
    deadline = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _port_free(port)
