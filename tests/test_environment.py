"""environment.yml (Binder, conda) and pyproject.toml (pip) list the same dependencies."""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch": "torch"}
# in environment.yml only: the interpreter, the installer and the database server
CONDA_ONLY = {"python", "pip", "postgresql", "postgis"}


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", spec)
    name = m.group(1).lower().replace("_", "-")
    extras = m.group(2) or ""
    version = m.group(3).replace(" ", "")
    return CONDA_TO_PYPI.get(name, name), extras + version


def pyproject_dependencies() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra, deps in project["optional-dependencies"].items():
        specs += [d for d in deps if not d.startswith("eo-sr")]
    return dict(_split(s) for s in specs)


def environment_dependencies() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            specs += [d for d in dep["pip"] if not d.startswith("-e")]
        else:
            specs.append(dep)
    pairs = dict(_split(s.replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=<>]", s) else s) for s in specs)
    return {k: v for k, v in pairs.items() if k not in CONDA_ONLY}


def test_same_dependencies_and_bounds():
    pip, conda = pyproject_dependencies(), environment_dependencies()
    assert set(pip) - set(conda) == set(), "in pyproject.toml but not environment.yml"
    assert set(conda) - set(pip) == set(), "in environment.yml but not pyproject.toml"
    differ = {k: (pip[k], conda[k]) for k in pip if pip[k] != conda[k]}
    assert differ == {}, "version bounds differ (pyproject, environment.yml)"


def test_environment_installs_the_package_and_the_database():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    names = {d.split("=")[0] for d in env["dependencies"] if isinstance(d, str)}
    assert {"postgresql", "postgis", "python"} <= names
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


def test_the_checker_notices_drift(tmp_path, monkeypatch):
    """The comparison is not vacuous: a dependency missing on one side is reported."""
    text = (ROOT / "environment.yml").read_text().replace("  - scipy>=1.10\n", "")
    (tmp_path / "environment.yml").write_text(text)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert "scipy" in set(pyproject_dependencies()) - set(environment_dependencies())
