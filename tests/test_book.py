"""The Jupyter Book builds strictly (``-W -n``: every warning, every broken reference is
an error), executes every notebook with its default parameters, and every chapter of the
table of contents becomes an HTML page; notebook pages embed their executed figures.

The build runs against the session's test cache (``EO_SR_CACHE``): the default demo
world is generated there once (about a minute), so the whole build takes a few minutes.
The build time is printed (``pytest -s`` or the ``-rA`` summary shows it).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
BUILD_TIMEOUT_S = 1800

# The first test that needs the built book pays for the build (about 5 minutes from an
# empty cache on 2 cores): give it more than the suite's default pytest-timeout.
pytestmark = [pytest.mark.notebook, pytest.mark.timeout(BUILD_TIMEOUT_S + 120)]


def toc_files(toc: dict) -> list[str]:
    """Every document of a jb-book table of contents, the root first."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def test_toc_files_reads_parts_chapters_and_sections():
    toc = {"root": "intro", "parts": [{"caption": "A", "chapters": [{"file": "a", "sections": [{"file": "a1"}]}]},
                                      {"caption": "B", "chapters": [{"file": "b"}]}]}
    assert toc_files(toc) == ["intro", "a", "a1", "b"]


def test_every_toc_file_exists():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    for name in toc_files(toc):
        candidates = [BOOK / f"{name}{ext}" for ext in ("", ".md", ".ipynb", ".rst")]
        assert any(p.is_file() for p in candidates), f"_toc.yml lists {name}, which is not in book/"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory, cache_root):
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "EO_SR_CACHE": str(cache_root)}
    env.pop("MPLBACKEND", None)  # a non-inline backend (e.g. agg) would drop every figure from the book
    cmd = [str(JUPYTER_BOOK), "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(BOOK)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (out / "build.log").write_text(log)
    executed = re.findall(r"(\S+\.ipynb): Executed notebook in ([\d.]+) seconds", log)
    print(f"\nbook build: {seconds:.1f} s ({seconds / 60:.1f} min), exit {proc.returncode}")
    for path, secs in executed:
        print(f"  executed {Path(path).name} in {float(secs):.1f} s")
    return {"returncode": proc.returncode, "log": log, "html": out / "_build" / "html", "seconds": seconds}


def test_book_builds_strictly(built_book):
    # Sphinx reports each warning as "WARNING:" (or "ERROR:"); -W turns them into a failure.
    problems = [line for line in built_book["log"].splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)
                and "Kernel is running over TCP" not in line]
    assert built_book["returncode"] == 0, "book build failed:\n" + "\n".join(problems[-40:] or
                                                                          built_book["log"].splitlines()[-60:])
    assert not problems, "\n".join(problems)
    assert (built_book["html"] / "index.html").is_file()


def test_every_chapter_has_a_page(built_book):
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    missing = [name for name in toc_files(toc) if not (built_book["html"] / f"{name}.html").is_file()]
    assert not missing, f"no HTML page for {missing}"


def _notebook_chapters() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    return [name for name in toc_files(toc) if (BOOK / f"{name}.ipynb").is_file()]


def test_the_tutorial_notebooks_are_chapters():
    chapters = _notebook_chapters()
    assert "notebooks/00_welcome" in chapters, chapters


@pytest.mark.parametrize("name", _notebook_chapters())
def test_notebook_pages_embed_their_executed_figures(built_book, name):
    html_path = built_book["html"] / f"{name}.html"
    html = html_path.read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    figures = [s for s in sources if "_images/" in s]
    assert figures, f"{name}: no executed PNG figure on the page"
    for src in figures:
        png = (html_path.parent / src).resolve()
        assert png.is_file(), f"{name}: {src} is not in the build"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name}: {src} is not a PNG"
        assert png.stat().st_size > 1000, f"{name}: {src} is (nearly) empty"
    # Executed with no error output (allow_errors is false, but check what readers see).
    assert "output traceback" not in html and "Traceback (most recent call last)" not in html


# How myst-nb renders a cell tagged "hide-cell" (or "hide-input"): its code (and output) folded
# into a <details> element whose summary is the cell's prompt ("Show solution" in the notebooks).
SOLUTION_TOGGLE = re.compile(r'<div class="cell tag_hide-(?:cell|input)\b[^"]*">\s*'
                             r'<details class="[^"]*\bhide above-input\b[^"]*">\s*<summary[^>]*>')


@pytest.mark.parametrize("name", _notebook_chapters())
def test_exercise_solutions_are_folded_behind_a_toggle(built_book, name):
    nb = json.loads((BOOK / f"{name}.ipynb").read_text(encoding="utf-8"))
    solutions = [c for c in nb["cells"] if c["cell_type"] == "code"
                 and {"hide-cell", "hide-input"} & set(c["metadata"].get("tags", []))]
    html = (built_book["html"] / f"{name}.html").read_text(encoding="utf-8")
    toggles = SOLUTION_TOGGLE.findall(html)
    assert solutions, f"{name}: no hidden exercise solution cell"
    assert len(toggles) == len(solutions), f"{name}: {len(solutions)} hidden cells, but {len(toggles)} toggles"


def test_glossary_defines_the_terms_that_pages_use(built_book):
    glossary = (built_book["html"] / "glossary.html").read_text(encoding="utf-8")
    for term in ("GSD", "CRS", "COG", "STAC", "L2A", "SCL", "PSF", "histogram matching", "SSIM", "PSNR"):
        anchor = "term-" + re.sub(r"[^a-zA-Z0-9._]+", "-", term).strip("-")  # Sphinx's ids
        assert f'id="{anchor}"' in glossary, f"the glossary does not define {term!r} (no #{anchor})"
    intro = (built_book["html"] / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'href="glossary\.html#term-', intro), "the intro links no glossary term"
