"""The tutorial notebooks: every one follows the template, stores no outputs or secrets,
and runs top to bottom (papermill, small parameters, offline).

The template (see DESIGN.md): one ``#`` title in the first cell; ``## Overview``;
``## Prerequisites`` with a Concepts | Importance | Notes table and a "Time to learn"
line; the step itself; ``## Exercises`` with hidden solutions; ``## Summary``;
``## What's next``; and a code cell tagged ``parameters``.

An exercise's solution is a code cell right after it, so that it runs with the notebook
(here at small parameters, in the book at the default ones), tagged ``hide-cell``: myst-nb,
which builds the book, folds its code and output behind a toggle. The cells also carry
``"mystnb": {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}`` (the
toggle's label) and ``"jupyter": {"source_hidden": true, "outputs_hidden": true}`` (JupyterLab
collapses them too). What a solution shows may be discussed in a markdown
``<details><summary>Answer</summary>`` block after it. A solution written as a fenced
``python`` block in markdown (never run, so never checked) fails.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

REQUIRED_SECTIONS = ["Overview", "Prerequisites", "Exercises", "Summary", "What's next"]

# Parameter values that make a notebook small and fast; applied to the names that a
# notebook's `parameters` cell defines. `source="demo"` runs notebook 12 on the demo world, as
# where xarray-spatial is not installed (the book runs it on xarray-spatial's real bands, "auto").
SMALL_PARAMETERS = {"size": "tiny", "source": "demo"}

# What each executed notebook must show, beyond the default.
DEFAULT_OUTPUTS = {"png": 1, "leaflet_maps": 0}
EXPECTED_OUTPUTS = {
    "00_welcome": {"png": 3, "leaflet_maps": 1},
    "01_choosing_satellites": {"png": 3},
    "02_searching_stac": {"png": 4, "leaflet_maps": 2},
    "03_matching_scenes": {"png": 4},
    "04_loading_and_harmonising": {"png": 4},
    "05_resampling_and_patches": {"png": 6, "leaflet_maps": 1},
    "06_radiometry": {"png": 8},
    # the QC explorer nests its map and bqplot scatter in a VBox: counted in the widget state
    "07_quality_control": {"png": 8, "widget_models": {"LeafletMapModel": 1, "FigureModel": 1}},
    "08_training_models": {"png": 3},
    # the swipe map: bicubic and SR image overlays, and the AOI outline
    "09_evaluating_models": {"png": 4, "leaflet_maps": 1},
    "12_your_own_imagery": {"png": 2},
}

SECRET_PATTERNS = {
    "api key assignment": re.compile(r"api[_-]?key\s*[=:]\s*['\"][^'\"]{8,}['\"]", re.I),
    "URL signature": re.compile(r"[?&]sig=[A-Za-z0-9%/+=]{16,}"),
    "token": re.compile(r"token\s*[=:]\s*['\"]?[A-Za-z0-9._\-]{20,}", re.I),
    "AWS access key id": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "bearer header": re.compile(r"Bearer\s+[A-Za-z0-9._\-]{20,}"),
}


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _markdown_lines(source: str):
    """Lines of a markdown cell outside fenced code blocks."""
    fence = None
    for line in source.splitlines():
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield line


def _headings(nb, level: int):
    """(cell index, heading text) of every markdown heading of one level."""
    pattern = re.compile(rf"^{'#' * level}\s+(.+?)\s*#*\s*$")
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in _markdown_lines(cell.source):
                m = pattern.match(line)
                if m:
                    out.append((i, m.group(1)))
    return out


def _section_text(nb, title: str) -> str:
    """The markdown and code of a level-2 section, up to the next level-2 heading."""
    text, inside = [], False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if re.match(r"^##\s+", line) and cell.cell_type == "markdown":
                inside = line.lstrip("#").strip() == title
                continue
            if inside:
                text.append(line)
    return "\n".join(text)


def _section_cells(nb, title: str) -> list:
    """The cells of a level-2 section: from the markdown cell with its heading up to the
    cell with the next level-2 heading."""
    cells, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            headings = [line.lstrip("#").strip() for line in _markdown_lines(cell.source)
                        if re.match(r"^##\s+", line)]
            if headings:
                inside = headings[-1] == title
                if inside:
                    cells.append(cell)
                continue
        if inside:
            cells.append(cell)
    return cells


# The cell tags that make myst-nb (Jupyter Book 1) hide a cell behind a toggle: "hide-cell"
# folds code and output (an output would give the answer away), "hide-input" only the code.
SOLUTION_TAGS = {"hide-cell", "hide-input"}
PYTHON_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*\{?(python3?|py|ipython3?|code-cell)\b", re.M)


def _exercise_problems(nb) -> list[str]:
    """Why the Exercises section does not hold its solutions as hidden, runnable code cells."""
    cells = _section_cells(nb, "Exercises")
    problems = []
    for cell in cells:
        if cell.cell_type == "markdown" and PYTHON_FENCE.search(cell.source):
            first = next(line for line in cell.source.splitlines() if line.strip())
            problems.append(f"markdown cell {cell.get('id')} ({first[:40]!r}...) holds a python code block: "
                            "make the solution a code cell tagged 'hide-cell', so that it runs")
        elif cell.cell_type == "code" and not SOLUTION_TAGS & set(cell.metadata.get("tags", [])):
            problems.append(f"solution cell {cell.get('id')} is not hidden: tag it 'hide-cell'")
    if not any(c.cell_type == "code" for c in cells):
        problems.append("the Exercises section has no solution code cell")
    return problems


def _solution_cells(nb) -> list:
    return [c for c in _section_cells(nb, "Exercises") if c.cell_type == "code"]


def _parameters_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]


def _small_parameters(nb) -> dict:
    (cell,) = _parameters_cells(nb)
    names = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    return {k: v for k, v in SMALL_PARAMETERS.items() if k in names}


# ----------------------------------------------------------------- the template


def test_the_notebooks_exist():
    assert "00_welcome" in IDS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_valid_and_clean(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has stored outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    assert "widgets" not in nb.metadata, "stored widget state: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_follows_the_template(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert next(line for line in first.source.splitlines() if line.strip()).startswith("# "), \
        "the first cell must start with the '# ' title"
    titles = _headings(nb, 1)
    assert len(titles) == 1 and titles[0][0] == 0, f"exactly one '#' title, in the first cell; found {titles}"

    sections = [t for _, t in _headings(nb, 2)]
    positions = []
    for name in REQUIRED_SECTIONS:
        assert name in sections, f"missing section '## {name}' (sections: {sections})"
        positions.append(sections.index(name))
    assert positions == sorted(positions), f"sections out of order: {sections}"

    prereq = _section_text(nb, "Prerequisites")
    assert re.search(r"^\|\s*Concepts\s*\|\s*Importance\s*\|\s*Notes\s*\|", prereq, re.M), \
        "Prerequisites needs a 'Concepts | Importance | Notes' table"
    assert re.search(r"^\|\s*[-:]+\s*\|\s*[-:]+\s*\|\s*[-:]+\s*\|", prereq, re.M), "the table needs a separator row"
    assert re.search(r"^- \*\*Time to learn\*\*: \d+ minutes", prereq, re.M), "missing '- **Time to learn**: N minutes'"

    exercises = _section_text(nb, "Exercises")
    hidden_cells = [c for c in nb.cells if {"hide-cell", "hide-input", "solution"} & set(c.metadata.get("tags", []))]
    n_details = len(re.findall(r"<details>\s*<summary>\s*Solution", exercises))
    assert n_details + len(hidden_cells) >= 1, "exercise solutions must be hidden (<details> or a hidden cell)"
    assert exercises.count("<details>") == exercises.count("</details>"), "unbalanced <details> blocks"

    params = _parameters_cells(nb)
    assert len(params) == 1, "exactly one code cell tagged 'parameters'"
    ast.parse(params[0].source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercise_solutions_are_hidden_code_cells(path):
    problems = _exercise_problems(_read(path))
    assert not problems, "\n".join(problems)


def _exercises_notebook(*cells):
    v4 = nbformat.v4
    return v4.new_notebook(cells=[v4.new_markdown_cell("# Title"), *cells,
                                  v4.new_markdown_cell("## Summary\n\n```python\nprint('not an exercise')\n```")])


def test_exercise_check_refuses_solutions_in_markdown():
    v4 = nbformat.v4
    old_style = _exercises_notebook(v4.new_markdown_cell(
        "## Exercises\n\n1. How many?\n\n<details><summary>Solution</summary>\n\n```python\nlen(items)\n```\n\n"
        "</details>"))
    assert any("python code block" in p for p in _exercise_problems(old_style))
    shown = _exercises_notebook(v4.new_markdown_cell("## Exercises\n\n1. How many?"), v4.new_code_cell("len(items)"))
    assert any("not hidden" in p for p in _exercise_problems(shown))
    prose_only = _exercises_notebook(v4.new_markdown_cell("## Exercises\n\n1. Why?\n\n<details>Because.</details>"))
    assert _exercise_problems(prose_only) == ["the Exercises section has no solution code cell"]


def test_exercise_check_accepts_hidden_solution_cells():
    v4 = nbformat.v4
    solution = v4.new_code_cell("len(items)", metadata={"tags": ["hide-cell"]})
    nb = _exercises_notebook(v4.new_markdown_cell("Text of the step.\n\n## Exercises\n\n1. How many?"), solution,
                             v4.new_markdown_cell("<details><summary>Answer</summary>\n\nSix, `len` says.\n\n</details>"))
    assert _exercise_problems(nb) == []
    assert _solution_cells(nb) == [solution]


def _strings(obj):
    """Every string in a JSON document (cell sources, outputs, metadata), unescaped."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_no_secrets(path):
    text = "\n".join(_strings(json.loads(path.read_text(encoding="utf-8"))))
    for name, pattern in SECRET_PATTERNS.items():
        hit = pattern.search(text)
        assert hit is None, f"{path.name} looks like it holds a secret ({name}): {hit.group(0)[:12]}..."


@pytest.mark.parametrize("text", [
    'api_key = "abcdef0123456789"', "https://x.blob.core.windows.net/a.tif?st=1&sig=AbCdEf0123456789AbCdEf%3D",
    "token=eyJhbGciOiJIUzI1NiJ9.abcdefghij", "AKIAABCDEFGHIJKLMNOP",
])
def test_secret_patterns_catch_typical_secrets(text):
    assert any(p.search(text) for p in SECRET_PATTERNS.values())


def test_secret_patterns_ignore_ordinary_text():
    for text in ['api_key = os.environ["PC_SDK_SUBSCRIPTION_KEY"]', "sign_inplace", "tokens expire", "AKIA"]:
        assert not any(p.search(text) for p in SECRET_PATTERNS.values()), text


# ----------------------------------------------------------------- execution


@pytest.fixture(scope="session")
def python3_kernel():
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.fail("no 'python3' Jupyter kernel in this environment: run 'bash .ci/setup dev' (installs ipykernel)")
    return "python3"


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_with_small_parameters(path, tmp_path, cache_root, python3_kernel):
    import papermill

    params = _small_parameters(_read(path))
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(out), parameters=params, kernel_name=python3_kernel, cwd=str(path.parent),
        progress_bar=False, log_output=False, execution_timeout=600,
    )
    nb = _read(out)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    assert nb.metadata.papermill.get("exception") in (None, False)
    # The exercise solutions ran too, and showed something to check an answer against.
    solutions = _solution_cells(nb)
    assert solutions and all(c.execution_count is not None for c in solutions), "an exercise solution did not run"
    silent = [c.id for c in solutions if not c.outputs]
    assert not silent, f"exercise solutions {silent} print or show nothing"
    # The injected parameters ran after the notebook's own ones.
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == (1 if params else 0)

    expected = {**DEFAULT_OUTPUTS, **EXPECTED_OUTPUTS.get(path.stem, {})}
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= expected["png"], f"expected at least {expected['png']} figures, got {len(pngs)}"
    views = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    maps = [v for v in views if state.get(v, {}).get("model_name") == "LeafletMapModel"]
    assert len(maps) >= expected["leaflet_maps"], f"expected {expected['leaflet_maps']} leaflet map(s), got {maps}"
    for model, n in expected.get("widget_models", {}).items():  # widgets anywhere in the saved state
        found = sum(1 for m in state.values() if m.get("model_name") == model)
        assert found >= n, f"expected {n} {model} widget(s) in the saved widget state, got {found}"
    if maps:  # the map carries its GeoJSON layers in the saved widget state
        layer_ids = [lid.removeprefix("IPY_MODEL_") for lid in state[maps[0]]["state"]["layers"]]
        names = [state[lid]["state"].get("name") for lid in layer_ids if lid in state]
        assert "AOI" in names and len(names) >= 3, names
    json.dumps(nb)  # the executed notebook is plain JSON
