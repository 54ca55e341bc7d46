"""Real-browser tests: the notebooks with widgets or maps, run in JupyterLab in headless
Chromium driven by Playwright.

One JupyterLab server for the session serves a temporary copy of the notebooks whose
``parameters`` cell says ``size = "tiny"``; its kernels use the test cache (``EO_SR_CACHE``).
For each notebook that shows widgets or maps the test opens it, runs all cells from the
Run menu, waits until every cell has run, and checks what a student would see:

* every cell ran, with no error output (read from the notebook saved from the browser);
* widgets rendered (``.jupyter-widgets``) and no "Error displaying widget";
* every Leaflet map drew our own layers (GeoJSON as SVG paths), not just basemap tiles
  (tiles fail offline and are never counted);
* moving a control changes what is shown: a slider (keyboard arrows on its handle) or a
  dropdown of every widget app changes the text or image next to it, and zooming a map
  redraws its layers.

Screenshots go to ``test-artifacts/browser/<notebook>.png`` (the first map or widget app
after Run All) and ``<notebook>-moved.png`` (after the controls were moved); a failure
leaves ``<notebook>-failed.png`` and ``-failed.txt``.

Needs Chromium (``/usr/bin/chromium``, installed by ``bash .ci/setup dev``) and the
``playwright`` Python package; ``playwright install`` is never needed.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from eo_sr.localapi.processes import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("EO_SR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Code that puts a widget or a map on the page.
WIDGET_PATTERN = re.compile(r"\bipywidgets\b|\bleafmap\b|\bipyleaflet\b|\w*_map\(|\w*Explorer\(|\w*Chooser\(|"
                            r"\binteract(ive)?\(")
MAP_PATTERN = re.compile(r"\bleafmap\b|\bipyleaflet\.(Map|GeoJSON)\b|\w+_map\(")
SMALL_SIZE = 'size = "tiny"'

LAB_LOAD_TIMEOUT_MS = 60_000
RUN_ALL_TIMEOUT_S = 300
UPDATE_TIMEOUT_S = 30

# JupyterLab settings for clean, deterministic runs: no news or update pop-ups, no
# extension manager (it asks PyPI), no autosave (the test saves), and every cell rendered
# (no virtual scrolling, so maps and widgets below the fold exist in the DOM and have a size).
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}


def _code(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def _interactive_notebooks() -> list[Path]:
    return [p for p in sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")) if WIDGET_PATTERN.search(_code(p))]


NOTEBOOKS = _interactive_notebooks()


def small_copy(path: Path, dest: Path) -> Path:
    """Copy a notebook to ``dest`` with ``size = "tiny"`` in its parameters cell."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" in c["metadata"].get("tags", [])]
    source = "".join(cell["source"])
    if re.search(r"^size\s*=", source, re.M):
        source = re.sub(r"^size\s*=.*$", SMALL_SIZE, source, flags=re.M)
    cell["source"] = source.splitlines(keepends=True)
    out = dest / path.name
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def test_small_copy_sets_the_size(tmp_path):
    path = small_copy(NOTEBOOK_DIR / "00_welcome.ipynb", tmp_path)
    nb = json.loads(path.read_text())
    (cell,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert re.search(r'^size = "tiny"$', "".join(cell["source"]), re.M)
    assert "seed = 0" in "".join(cell["source"])


def test_interactive_notebooks_are_found():
    names = [p.stem for p in NOTEBOOKS]
    for stem in ("00_welcome", "01_choosing_satellites", "02_searching_stac", "03_matching_scenes"):
        assert stem in names, names


# ----------------------------------------------------------------- fixtures


def _api(lab, method: str, path: str):
    req = urllib.request.Request(f"{lab['url']}{path}", method=method,
                                 headers={"Authorization": f"token {lab['token']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="session")
def lab(tmp_path_factory, cache_root, tiny_world):
    """A JupyterLab server over a copy of the interactive notebooks, size "tiny"."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run 'bash .ci/setup dev' (apt-installs it)")
    base = tmp_path_factory.mktemp("lab")
    nb_dir, settings, user, workspaces = (base / n for n in ("notebooks", "settings", "user-settings", "workspaces"))
    for d in (nb_dir, settings, user, workspaces):
        d.mkdir()
    for path in NOTEBOOKS:
        small_copy(path, nb_dir)
    (settings / "overrides.json").write_text(json.dumps(OVERRIDES, indent=1))
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "EO_SR_CACHE": str(cache_root), "JUPYTER_CONFIG_DIR": str(base / "config")}
    env.pop("MPLBACKEND", None)  # figures inline, as students see them
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--allow-root", "--no-browser",
           f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={nb_dir}", f"--LabApp.app_settings_dir={settings}",
           f"--LabApp.user_settings_dir={user}", f"--LabApp.workspaces_dir={workspaces}",
           "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True"]
    log = open(base / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=nb_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    info = {"url": f"http://127.0.0.1:{port}", "token": token, "dir": nb_dir, "log": base / "lab.log"}
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited ({proc.returncode}):\n{info['log'].read_text()[-3000:]}")
            try:
                _api(info, "GET", "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 60 s:\n{info['log'].read_text()[-3000:]}")
                time.sleep(0.3)
        yield info
    finally:
        try:  # shut the kernels down cleanly: their atexit handlers stop local STAC servers
            for kernel in _api(info, "GET", "/api/kernels") or []:
                _api(info, "DELETE", f"/api/kernels/{kernel['id']}")
        except OSError:
            pass
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")  # closed before other browser test files start their own
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    context.close()


# ----------------------------------------------------------------- page helpers


# The state of the notebook's code cells, read from the notebook *model* (window.jupyterapp,
# exposed with --LabApp.expose_app_in_browser), not from the DOM: JupyterLab 4 renders
# cells lazily, and prompts read from the page can be stale or missing while the model
# knows every cell's execution count.
CELLS_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.content || !panel.content.model) { return null; }
    const cells = panel.content.model.cells, out = [];
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type === 'code') { out.push({count: c.executionCount, state: c.executionState || 'idle'}); }
    }
    const kernel = panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    const ready = !!(panel.context && panel.context.isReady && panel.sessionContext &&
                     panel.sessionContext.isReady && kernel && kernel.connectionStatus === 'connected');
    return {cells: out, kernel: kernel ? kernel.status : 'none', ready: ready,
            pending: panel.sessionContext ? panel.sessionContext.pendingInput : false};
}"""

# What a widget app shows apart from its controls: the text of its HTML/Output parts and
# its images (a digest of each src). Controls and their readouts are left out,
# so moving a control only counts as a change when the app's answer changes.
CONTROLS = (".widget-slider, .widget-hslider, .widget-dropdown, .widget-toggle-buttons, .widget-button, "
            ".widget-select, .widget-select-multiple, .widget-text, .widget-checkbox, .widget-radio, "
            ".widget-readout")
STATE_JS = """(el) => {
    const clone = el.cloneNode(true);
    clone.querySelectorAll('%s').forEach(c => c.remove());
    const digest = (s) => {  // FNV-1a over the whole src (data URLs of PNGs)
        let h = 0x811c9dc5;
        for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
        return s.length + ':' + (h >>> 0).toString(16);
    };
    const imgs = Array.from(clone.querySelectorAll('img')).map(i => digest(i.getAttribute('src') || ''));
    return {text: clone.textContent.replace(/\\s+/g, ' ').trim(), imgs: imgs};
}""" % CONTROLS



def _open(page, lab, name: str) -> None:
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}&reset", timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LAB_LOAD_TIMEOUT_MS)
    # The kernel is up when the toolbar's execution indicator says idle, and the notebook
    # can run cells when its document and session are ready and the kernel is connected.
    page.wait_for_selector(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_function(f"() => {{ const s = ({CELLS_JS})(); return s && s.ready && s.kernel === 'idle'; }}",
                           timeout=LAB_LOAD_TIMEOUT_MS)


def _run_all(page) -> float:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    t0 = time.monotonic()

    def click_run_all():
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")

    click_run_all()
    clicks, last_click = 1, time.monotonic()
    # Done when the first cell has a number, none is queued or running ("[*]"), and the
    # kernel has been idle for two polls in a row (a small notebook may finish in less
    # time than one poll takes, so seeing "[*]" is not required).
    deadline = t0 + RUN_ALL_TIMEOUT_S
    idle_polls = 0
    while True:
        state = page.evaluate(CELLS_JS)
        cells = state["cells"] if state else []
        started = bool(cells) and cells[0]["count"] is not None
        busy = any(c["state"] == "running" for c in cells)
        idle = state is not None and state["kernel"] == "idle" and not busy
        idle_polls = idle_polls + 1 if started and idle else 0
        if idle_polls >= 2:
            return time.monotonic() - t0
        # On a loaded machine a click can land while Lab is still settling and run nothing
        # (seen: every cell unnumbered, kernel idle, minutes later). Nothing started and
        # nothing running 20 s after a click: click again, at most twice more.
        nothing = state is not None and not started and not busy and state["kernel"] == "idle"
        if nothing and time.monotonic() - last_click > 20 and clicks < 3:
            print(f"Run All started nothing in 20 s (click {clicks}); clicking again")
            click_run_all()
            clicks, last_click = clicks + 1, time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"cells still running after {RUN_ALL_TIMEOUT_S} s: {state}")
        time.sleep(0.5)


def _save(page) -> None:
    """File > Save Notebook, and wait until the tab is no longer marked dirty."""
    page.click("li.lm-MenuBar-item:has-text('File')")
    page.click("li.lm-Menu-item[data-command='docmanager:save']")
    page.wait_for_selector(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)", timeout=30_000)


def _errors(page, lab, name: str) -> list[str]:
    """Error outputs, from the saved notebook (Lab renders errors and warnings alike, as stderr)."""
    _save(page)
    for attempt in range(20):  # the server writes in place: wait until the file is whole
        try:
            nb = json.loads((lab["dir"] / name).read_text(encoding="utf-8"))
            break
        except json.JSONDecodeError:
            if attempt == 19:
                raise
            time.sleep(0.25)
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _wait_changed(page, element, before, what: str):
    deadline = time.monotonic() + UPDATE_TIMEOUT_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        now = element.evaluate(STATE_JS)
        if now != before:
            _wait_idle(page)
            after = element.evaluate(STATE_JS)
            # a change to an error message is a failure, not an update
            for word in ("failed", "Traceback", "Error", "Connection refused"):
                assert word not in after["text"], f"{what}: the update shows an error: {after['text'][:400]!r}"
            return after
    raise AssertionError(f"{what}: nothing shown changed in {UPDATE_TIMEOUT_S} s (still {before['text'][:300]!r})")


def _wait_idle(page, timeout_s: float = UPDATE_TIMEOUT_S) -> None:
    """Wait until the kernel has been idle for two polls in a row."""
    deadline, idle = time.monotonic() + timeout_s, 0
    while idle < 2 and time.monotonic() < deadline:
        status = page.evaluate("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                               "?.getAttribute('data-status')")
        idle = idle + 1 if status == "idle" else 0
        page.wait_for_timeout(300)


def _move_slider(page, app) -> str | None:
    """Press an arrow key on the first slider handle of ``app``; return what was moved."""
    handles = app.query_selector_all(".widget-slider .noUi-handle, .widget-hslider .noUi-handle")
    if not handles:
        return None
    handle = handles[0]
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    key = "ArrowLeft" if now is not None and top is not None and float(now) >= float(top) else "ArrowRight"
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press(key)
    return f"slider {key}"


def _move_dropdown(app) -> str | None:
    """Select another option in the first dropdown of ``app`` that has several options."""
    for select in app.query_selector_all(".widget-dropdown select"):
        options = select.evaluate("s => Array.from(s.options).map(o => o.value)")
        current = select.evaluate("s => s.value")
        others = [o for o in options if o != current]
        if others:
            select.scroll_into_view_if_needed()
            select.select_option(others[-1])
            return f"dropdown -> option {others[-1]}"
    return None


def _apps(page):
    """The widget apps: cell outputs with widgets that hold a slider or a dropdown."""
    apps = []
    for out in page.query_selector_all(".jp-OutputArea-output"):
        if not out.query_selector(".jupyter-widgets"):
            continue
        if out.query_selector(".widget-slider .noUi-handle, .widget-hslider .noUi-handle, .widget-dropdown select"):
            apps.append(out)
    return apps


def _map_layers(page) -> list[dict]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.leaflet-container')).map(m => ({
        paths: m.querySelectorAll('.leaflet-overlay-pane path').length,
        drawn: Array.from(m.querySelectorAll('.leaflet-overlay-pane path'))
                    .filter(p => (p.getAttribute('d') || '').length > 8).length,
        images: m.querySelectorAll('.leaflet-overlay-pane img.leaflet-image-layer').length,
        width: m.clientWidth, height: m.clientHeight}))""")


# ----------------------------------------------------------------- the test


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_widgets_and_maps_render_and_react(path, lab, page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = path.name
    try:
        _check_notebook(path, lab, page)
    except BaseException as exc:
        page.screenshot(path=str(ARTIFACTS / f"{path.stem}-failed.png"))
        (ARTIFACTS / f"{path.stem}-failed.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    finally:
        # Shut the kernel down (notebook 02 runs a local STAC API in it).
        for session in _api(lab, "GET", "/api/sessions"):
            if session.get("path", "").endswith(name):
                _api(lab, "DELETE", f"/api/sessions/{session['id']}")


def _check_notebook(path, lab, page):
    name = path.name
    expects_map = bool(MAP_PATTERN.search(_code(path)))
    _open(page, lab, name)
    seconds = _run_all(page)
    print(f"\n{path.stem}: Run All took {seconds:.1f} s")

    cells = page.evaluate(CELLS_JS)["cells"]
    assert all(isinstance(c["count"], int) for c in cells), f"cells that did not run: {cells}"
    errors = _errors(page, lab, name)
    assert not errors, errors
    page.wait_for_timeout(1000)  # let the widget views finish rendering

    n_widgets = page.locator(".jupyter-widgets").count()
    assert n_widgets > 0, "no widget rendered"
    broken = page.get_by_text("Error displaying widget")
    assert broken.count() == 0, f"{broken.count()} 'Error displaying widget' on the page"

    maps = page.query_selector_all(".leaflet-container")
    apps = _apps(page)
    first = maps[0] if maps else (apps[0] if apps else page.query_selector(".jupyter-widgets"))
    first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{path.stem}.png"))

    if expects_map:
        assert maps, "the notebook builds a map but no .leaflet-container is on the page"
    for i, m in enumerate(maps):
        m.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
    layers = _map_layers(page)
    for i, layer in enumerate(layers):
        assert layer["width"] > 100 and layer["height"] > 100, f"map {i} has no size: {layer}"
        assert layer["drawn"] > 0 or layer["images"] > 0, f"map {i} shows none of our layers: {layer}"
    print(f"{path.stem}: {n_widgets} widget elements, maps {layers}, {len(apps)} widget app(s)")

    moved = []
    # Zooming a map redraws our layers (the SVG path geometry changes).
    for i, m in enumerate(maps):
        m.scroll_into_view_if_needed()
        before = m.evaluate("m => Array.from(m.querySelectorAll('.leaflet-overlay-pane path'))"
                            ".map(p => p.getAttribute('d')).join('|')")
        m.query_selector(".leaflet-control-zoom-in").click()
        page.wait_for_function("([m, b]) => Array.from(m.querySelectorAll('.leaflet-overlay-pane path'))"
                               ".map(p => p.getAttribute('d')).join('|') !== b", arg=[m, before], timeout=10_000,
                               polling=100)
        moved.append(f"map {i}: zoom in")
    # Every widget app: move a slider (else a dropdown); what it shows must change.
    for i, app in enumerate(apps):
        before = app.evaluate(STATE_JS)
        how = _move_slider(page, app) or _move_dropdown(app)
        assert how, f"widget app {i} has no control this test can move"
        _wait_changed(page, app, before, f"{path.stem} widget app {i} ({how})")
        moved.append(f"app {i}: {how}")
    assert moved, "nothing to move on the page"
    print(f"{path.stem}: moved {moved}")
    if page.js_errors:  # not failures by themselves (JupyterLab logs some), but worth seeing
        print(f"{path.stem}: {len(page.js_errors)} JavaScript error(s) on the page: {page.js_errors[:3]}")

    assert page.get_by_text("Error displaying widget").count() == 0
    errors = _errors(page, lab, name)  # and still no error output after the changes
    assert not errors, errors
    target = apps[0] if apps else maps[0]
    target.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{path.stem}-moved.png"))
