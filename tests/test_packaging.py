"""Packaging that installs what it imports.

Every module's imports (those inside functions too) are mapped to the distributions that
provide them; a module may only use the base dependencies of pyproject.toml and those of
the extra it belongs to. A bare ``pip install eo-sr`` must search and match; the steps
that need an extra say which one to install. ``environment.yml`` is kept in step by
tests/test_environment.py.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eo_sr"

#: Which extra each module (dotted prefix, longest wins) draws on besides the base dependencies.
EXTRA_OF_MODULE = {
    "eo_sr": None,  # base: errors, paths, sensors, grid, bicubic, stac, loading, localapi, demo, matching, cli
    "eo_sr._arrays": "ml", "eo_sr.bicubic": "ml",  # the batched torch paths
    "eo_sr.metrics": "ml", "eo_sr.store": "ml", "eo_sr.radiometry": "ml", "eo_sr.patches": "ml",
    "eo_sr.qc": "ml", "eo_sr.dataset": "ml", "eo_sr.learn": "ml", "eo_sr.evaluate": "ml",
    "eo_sr.landcover": "ml", "eo_sr.pipeline.demo_qc": "ml", "eo_sr.wald": "ml",
    "eo_sr.viz": "notebooks", "eo_sr.apps": "notebooks",
}
#: Extras that build on others (notebooks show patches and QC, so they need ml too).
EXTRA_INCLUDES = {"ml": (), "notebooks": ("ml",)}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0])


def declared() -> dict[str | None, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {None: {_requirement_name(r) for r in project["dependencies"]}}
    for extra, reqs in project["optional-dependencies"].items():
        out[extra] = {_requirement_name(r) for r in reqs if not r.startswith("eo-sr[")}
    return out


def allowed(extra: str | None, deps: dict) -> set[str]:
    names = set(deps[None])
    for e in ([extra, *EXTRA_INCLUDES.get(extra, ())] if extra else []):
        names |= deps[e]
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def extra_of(module: str) -> str | None:
    best = max((p for p in EXTRA_OF_MODULE if module == p or module.startswith(p + ".")), key=len)
    return EXTRA_OF_MODULE[best]


def third_party_imports(path: Path) -> dict[str, int]:
    """Top-level names of the non-stdlib, non-eo_sr modules a file imports, with a line each."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("eo_sr", "__future__"):
                found.setdefault(top, node.lineno)
    return found


def test_every_import_is_declared_by_the_modules_extra():
    deps = declared()
    providers = md.packages_distributions()
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        extra = extra_of(module)
        ok = allowed(extra, deps)
        for top, line in third_party_imports(path).items():
            dists = {_norm(d) for d in providers.get(top, [])}
            if not dists:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {top}, which no installed distribution "
                                "provides")
            elif not dists & ok:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {top} ({', '.join(sorted(dists))}), not "
                                f"declared for {module} (extra {extra or 'none: base dependencies'})")
    assert not problems, "\n".join(problems)


def test_every_declared_dependency_is_imported_somewhere():
    """Declared and never imported (optuna, distributed were) is a false promise and a slower install."""
    deps = declared()
    providers = md.packages_distributions()
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for top in third_party_imports(path):
            imported |= {_norm(d) for d in providers.get(top, [])}
    # Needed at run time without an import statement: the STAC API server, run as a program.
    # dask: odc-stac's lazy loads; pyarrow: pandas' Parquet engine; rioxarray: the `.rio` accessor;
    # the rest are programs the notebooks and apps run (a kernel, Lab, Voila, the book, uvicorn).
    used_otherwise = {"uvicorn", "stac-fastapi-pgstac", "pyarrow", "ipykernel", "jupyter-book", "voila",
                      "jupyterlab", "dask", "rioxarray", "bqplot"}
    unused = sorted((deps[None] | deps["ml"] | deps["notebooks"]) - imported - used_otherwise)
    assert not unused, f"declared but never imported: {unused}"


def test_cli_names_the_extras_as_pyproject_declares_them():
    from eo_sr.cli import EXTRA_OF_IMPORT

    deps = declared()
    providers = md.packages_distributions()
    for top, extra in EXTRA_OF_IMPORT.items():
        dists = {_norm(d) for d in providers.get(top, [])}
        assert dists & deps[extra], f"{top} ({dists}) is not in the {extra} extra"
        assert not dists & deps[None], f"{top} is a base dependency: no extra needed"


BLOCKER = textwrap.dedent('''
    import importlib.abc, sys
    BLOCKED = set(sys.argv.pop(1).split(","))
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
    from eo_sr.cli import main
    sys.exit(main(sys.argv[1:]))
''')


def _without_extras(*args, cwd, cache):
    from eo_sr.cli import EXTRA_OF_IMPORT

    env = {**os.environ, "EO_SR_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-c", BLOCKER, ",".join(EXTRA_OF_IMPORT), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.server
def test_search_and_match_need_no_extra_and_patches_names_its_extra(tmp_path, cache_root):
    """As after a bare `pip install eo-sr`: torch, zarr, scikit-learn, scikit-image and the
    notebook packages cannot be imported."""
    for name, collection in (("hr", "demo-hr"), ("lr", "demo-s2-l2a")):
        proc = _without_extras("search", "--catalog", "demo", "--size", "tiny", "--collections", collection,
                               "--out", "results", "--name", name, cwd=tmp_path, cache=cache_root)
        assert proc.returncode == 0, proc.stderr
    proc = _without_extras("match", "--hr", "results/hr.ndjson", "--lr", "results/lr.ndjson", "--out", "matches",
                           cwd=tmp_path, cache=cache_root)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "matches" / "pairs.parquet").is_file()
    proc = _without_extras("patches", "--matches", "matches", "--out", "store", cwd=tmp_path, cache=cache_root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'eo-sr[ml]'" in proc.stderr
    assert not (tmp_path / "store").exists(), "the step wrote before it found the extra missing"


def test_a_missing_extra_of_the_notebooks_is_named(tmp_path):
    proc = _without_extras("qc-app", "--size", "tiny", cwd=tmp_path, cache=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install 'eo-sr[" in proc.stderr
