"""Imports go one way: down the layers of DESIGN.md, checked on every module's imports.

Every ``import`` and ``from ... import`` of every module of eo_sr is read with ``ast``
(those inside functions too, where the heavy ones live), resolved to the top-level eo_sr
module it names, and compared with the layers below. A module may import its own layer
and the layers beneath it, never one above. The README's layout section shows the same
table (checked here too).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eo_sr"
README = PACKAGE.parent / "README.md"

#: The layers, lowest first, and the top-level modules (or subpackages) of each.
LAYERS = {
    "core": ("errors", "paths", "sensors", "grid", "bicubic", "metrics", "_arrays"),
    "data access": ("stac", "indexing", "loading", "store", "localapi", "demo"),
    "processing": ("matching", "radiometry", "patches", "qc", "wald"),
    "learning": ("dataset", "learn", "evaluate", "landcover"),
    "orchestration and faces": ("pipeline", "apps", "cli", "viz"),
}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def top_level(path: Path) -> str | None:
    """The top-level eo_sr module a file belongs to (None for eo_sr/__init__.py)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return None if parts == ("__init__",) else parts[0]


def eo_sr_imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, top-level eo_sr module) for every import of eo_sr in a file, nested ones included.

    ``module`` is the file's dotted name (default: from its place in the package).
    """
    module = module or ".".join(("eo_sr", *path.relative_to(PACKAGE).with_suffix("").parts))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from eo_sr import demo, qc` imports modules, not names
            names = [f"{base}.{a.name}" for a in node.names] if base == "eo_sr" else [base]
        for name in names:
            parts = name.split(".")
            if parts[0] == "eo_sr" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    unplaced = sorted({top_level(p) for p in modules()} - set(RANK) - {None})
    assert not unplaced, f"put these in a layer (tests/test_layers.py LAYERS and the README): {unplaced}"


def test_imports_only_go_down():
    violations = []
    for path in modules():
        here = top_level(path)
        if here is None:  # the package's lazy __getattr__ names every submodule
            continue
        for line, target in eo_sr_imports(path):
            if target in RANK and RANK[target] > RANK[here]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYER_OF[here]}) imports "
                                  f"eo_sr.{target} ({LAYER_OF[target]})")
    assert not violations, "imports that go up a layer:\n" + "\n".join(violations)


def test_the_checker_sees_nested_relative_and_from_package_imports(tmp_path):
    """A test that cannot fail is a defect: each way of writing an upward import is seen."""
    probe = tmp_path / "probe.py"
    probe.write_text("import eo_sr.qc\n"
                     "def f():\n    from eo_sr import viz, errors\n"
                     "def g():\n    from ..pipeline import steps\n"
                     "def h():\n    from .store import open_store\n")
    found = [t for _, t in eo_sr_imports(probe, module="eo_sr.localapi.probe")]
    assert sorted(found) == ["errors", "localapi", "pipeline", "qc", "viz"], found


def test_readme_shows_the_same_layers():
    text = README.read_text()
    section = text.split("### Layers", 1)[1].split("\n## ", 1)[0] if "### Layers" in text else ""
    assert section, "README.md needs a '### Layers' table in its layout section"
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in LAYERS:
            rows[cells[0]] = set(re.findall(r"`([\w]+)`", cells[1]))
    public = {layer: {m for m in names if not m.startswith("_")} for layer, names in LAYERS.items()}
    assert rows == public


@pytest.mark.parametrize("name", sorted(RANK))
def test_each_layer_module_exists_or_is_planned(name):
    planned = {"learn", "evaluate", "landcover"}  # rooms for the second half, named in DESIGN.md
    exists = (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file()
    assert exists or name in planned, f"eo_sr.{name} is in a layer but does not exist"


def test_no_private_name_is_imported_from_another_module():
    """A leading underscore means "this module's own": another module that needs it gets a public name."""
    offenders = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("eo_sr"):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                if private:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} from {node.module} import "
                                     f"{', '.join(private)}")
    assert not offenders, "\n".join(offenders)


def test_the_package_lists_every_module_lazily():
    import eo_sr

    top = {top_level(p) for p in modules()} - {None}
    public = {m for m in top if not m.startswith("_")}
    assert public <= set(eo_sr.__all__), sorted(public - set(eo_sr.__all__))
