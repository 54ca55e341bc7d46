"""`.ci/setup` decides which system packages to install: tested on simulated machines.

A fresh machine of the kind CI uses has Debian's PostgreSQL 15 but no PostGIS; setup
must see that (an ``initdb`` on PATH says nothing about PostGIS) and install the PostGIS
package of that PostgreSQL's major version. The decision runs with
``EO_SR_SETUP_PLAN_ONLY=1``, which prints the plan and stops, on fake PostgreSQL
installs made here (scripts that answer ``--version`` and ``--sharedir`` as the real
tools do).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / ".ci" / "setup"


def _tool(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def fake_postgres(prefix: Path, major: int, *, postgis: str | None, pg_config: bool = True,
                  library: bool = True) -> Path:
    """A Debian-like PostgreSQL under ``prefix``: lib/postgresql/N/{bin,lib} and share/postgresql/N.

    ``postgis`` is the version in postgis.control (None: no PostGIS); ``library=False``
    leaves out postgis-3.so, as Debian does when only postgresql-N-postgis-3-scripts stays.
    """
    bindir = prefix / "lib" / "postgresql" / str(major) / "bin"
    libdir = bindir.parent / "lib"
    share = prefix / "share" / "postgresql" / str(major)
    for tool in ("initdb", "pg_ctl"):
        _tool(bindir / tool, "exit 0")
    _tool(bindir / "postgres", f'echo "postgres (PostgreSQL) {major}.4 (Debian {major}.4-1)"')
    if pg_config:
        _tool(bindir / "pg_config", f'case "$1" in --sharedir) echo "{share}";; --pkglibdir) echo "{libdir}";; '
                                    'esac')
    (share / "extension").mkdir(parents=True, exist_ok=True)
    libdir.mkdir(parents=True, exist_ok=True)
    if postgis is not None:
        (share / "extension" / "postgis.control").write_text(
            f"# postgis extension\ncomment = 'PostGIS geometry'\ndefault_version = '{postgis}'\n")
        if library:
            (libdir / f"postgis-{postgis.split('.')[0]}.so").write_bytes(b"\x7fELF")
    return bindir


def plan(tmp_path: Path, *, path_dirs=(), pg_root: Path | None = None, mode: str = "run") -> list[str]:
    # PATH: the fake tools first, then only what the script itself needs (no real PostgreSQL, no chromium).
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    for tool in ("bash", "dirname", "basename", "readlink", "sed", "head", "sha256sum", "cut", "tr", "cat"):
        target = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if target and not (shim / tool).exists():
            (shim / tool).symlink_to(target)
    env = {"PATH": os.pathsep.join([*map(str, path_dirs), str(shim)]), "EO_SR_SETUP_PLAN_ONLY": "1",
           "EO_SR_PG_ROOT": str(pg_root or tmp_path / "no-postgresql"), "HOME": str(tmp_path)}
    proc = subprocess.run([str(shim / "bash"), str(SETUP), mode], capture_output=True, text=True, env=env,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_postgresql_present_postgis_absent_installs_postgis_of_that_version(tmp_path):
    """The fresh-machine case: initdb on PATH (via a symlink, as in /usr/local/bin), no PostGIS."""
    bindir = fake_postgres(tmp_path / "usr", 15, postgis=None)
    local_bin = tmp_path / "usr-local-bin"
    local_bin.mkdir()
    for tool in ("initdb", "pg_ctl", "postgres"):
        (local_bin / tool).symlink_to(bindir / tool)
    assert plan(tmp_path, path_dirs=[local_bin]) == ["postgresql-15-postgis-3"]


def test_postgresql_with_postgis_installs_nothing(tmp_path):
    fake_postgres(tmp_path / "usr", 15, postgis="3.3.2")
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql") == []


def test_no_postgresql_installs_both(tmp_path):
    assert plan(tmp_path) == ["postgresql-15", "postgresql-15-postgis-3"]


def test_postgis_of_another_major_version_does_not_count(tmp_path):
    """PostGIS for PostgreSQL 15 is no use to the PostgreSQL 16 that eo-sr will run."""
    fake_postgres(tmp_path / "usr", 15, postgis="3.3.2")
    fake_postgres(tmp_path / "usr", 16, postgis=None)
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql") == ["postgresql-16-postgis-3"]


def test_postgis_scripts_without_the_library_do_not_count(tmp_path):
    """`apt-get remove postgresql-15-postgis-3` keeps postgis.control (the -scripts package)
    but removes postgis-3.so: CREATE EXTENSION would fail, so setup must install it again."""
    fake_postgres(tmp_path / "usr", 15, postgis="3.3.2", library=False)
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql") == ["postgresql-15-postgis-3"]


def test_postgis_2_is_too_old_for_pgstac(tmp_path):
    fake_postgres(tmp_path / "usr", 15, postgis="2.5.5")
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql") == ["postgresql-15-postgis-3"]


def test_without_pg_config_the_debian_share_folder_is_used(tmp_path):
    fake_postgres(tmp_path / "usr", 15, postgis="3.4.0", pg_config=False)
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql") == []


def test_a_conda_like_postgresql_on_path_is_checked_where_it_lives(tmp_path):
    env = tmp_path / "conda"
    bindir = env / "bin"
    for tool in ("initdb", "pg_ctl"):
        _tool(bindir / tool, "exit 0")
    _tool(bindir / "postgres", 'echo "postgres (PostgreSQL) 16.2"')
    _tool(bindir / "pg_config", f'case "$1" in --sharedir) echo "{env / "share"}";; --pkglibdir) echo "{env / "lib"}";; '
                                'esac')
    (env / "share" / "extension").mkdir(parents=True)
    (env / "lib").mkdir()
    assert plan(tmp_path, path_dirs=[bindir]) == ["postgresql-16-postgis-3"]
    (env / "share" / "extension" / "postgis.control").write_text("default_version = '3.4.2'\n")
    (env / "lib" / "postgis-3.so").write_bytes(b"\x7fELF")
    assert plan(tmp_path, path_dirs=[bindir]) == []


def test_dev_mode_adds_a_browser(tmp_path):
    fake_postgres(tmp_path / "usr", 15, postgis="3.3.2")
    assert plan(tmp_path, pg_root=tmp_path / "usr" / "lib" / "postgresql", mode="dev") == ["chromium"]


@pytest.mark.server
def test_this_machine_needs_nothing_more_after_setup():
    """After `bash .ci/setup dev` (which the test command runs first) the plan is empty."""
    proc = subprocess.run(["bash", str(SETUP), "dev"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "EO_SR_SETUP_PLAN_ONLY": "1"})
    assert proc.returncode == 0 and proc.stdout.split() == [], proc.stdout + proc.stderr
