"""The QC app in a real browser: JupyterLab with Voila started the way ``eo-sr qc-app``
starts it (:func:`eo_sr.viz.qc_explorer.launch_qc_app`), the page
``/voila/render/qc_app.ipynb`` opened in headless Chromium (Playwright), a patch
picked, dropped and the decisions saved to disk.

Needs Chromium (``/usr/bin/chromium``) and the ``playwright`` Python package;
``playwright install`` is never needed. The screenshot goes to
``test-artifacts/browser/qc_app.png``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("EO_SR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_MS = 150_000
UPDATE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def qc_app(cache_root, tmp_path_factory):
    """The QC app server on the tiny world, decisions saved to a temporary file."""
    from eo_sr.viz.qc_explorer import PATCH_COLOR, launch_qc_app

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run 'bash .ci/setup dev' (apt-installs it)")
    base = tmp_path_factory.mktemp("qc-app")
    decisions = base / "decisions.parquet"
    server = launch_qc_app("tiny", decisions_path=decisions, root=base / "root", progress=False)
    try:
        yield server, decisions, PATCH_COLOR
    finally:
        server.stop()
        assert server.process.poll() is not None


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# Whether the first element matching a selector sits (within 25 px) in the middle of the map.
CENTRED_JS = """sel => {
    const p = document.querySelector(sel), c = document.querySelector('.leaflet-container');
    if (!p || !c) return false;
    const a = p.getBoundingClientRect(), b = c.getBoundingClientRect();
    return a.width > 2 && a.height > 2 && Math.abs((a.left + a.right) / 2 - (b.left + b.right) / 2) < 25
        && Math.abs((a.top + a.bottom) / 2 - (b.top + b.bottom) / 2) < 25;
}"""


def _patch_id(page) -> str:
    return page.locator(".eo-sr-qc-info code.qc-patch-id").inner_text().strip()


def test_qc_app_renders_selects_drops_and_saves(qc_app, browser):
    server, decisions, patch_color = qc_app
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/voila/render/qc_app.ipynb?token=")
    context = browser.new_context(viewport={"width": 1400, "height": 1150})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url, wait_until="commit", timeout=PAGE_TIMEOUT_MS)
        # Voila runs the notebook, then the widgets render: wait for the shown patch's metadata
        page.wait_for_selector(".eo-sr-qc-info code.qc-patch-id", timeout=PAGE_TIMEOUT_MS)
        patch_path = f'.leaflet-container path.leaflet-interactive[stroke="{patch_color}"]'
        page.wait_for_selector(patch_path, state="attached", timeout=UPDATE_TIMEOUT_MS)
        page.wait_for_selector(".eo-sr-qc-images img", timeout=UPDATE_TIMEOUT_MS)
        page.wait_for_function(CENTRED_JS, arg=patch_path, timeout=UPDATE_TIMEOUT_MS)

        # the app is there: widgets, the bqplot scatter, a leaflet map with our GeoJSON, no errors
        body = page.inner_text("body")
        assert "Error displaying widget" not in body
        assert "eo-sr quality control" in body
        assert page.locator(".jupyter-widgets").count() > 10
        assert page.locator(".eo-sr-qc-scatter svg").count() >= 1
        assert page.locator(".eo-sr-qc-scatter .dot").count() > 20  # one per patch
        assert page.locator(".leaflet-container").count() == 1
        assert page.locator(".leaflet-container path.leaflet-interactive").count() >= 3  # patch, pair, scene
        first = _patch_id(page)
        select = page.locator(".eo-sr-qc-patches select")
        labels = select.locator("option").evaluate_all("os => os.map(o => o.value)")  # the labels, plain spaces
        assert len(labels) > 20 and labels[0].startswith(first + " | ")

        # pick another patch in the list: metadata, images and map follow
        target = labels[4].split(" | ")[0]
        assert target != first
        first_img = page.locator(".eo-sr-qc-images img").first.get_attribute("src")
        select.select_option(value=labels[4])
        page.wait_for_function(
            "id => document.querySelector('.eo-sr-qc-info code.qc-patch-id')?.textContent.trim() === id",
            arg=target, timeout=UPDATE_TIMEOUT_MS)
        assert _patch_id(page) == target
        # the map follows: the patch's outline is drawn in the middle of the map
        page.wait_for_function(CENTRED_JS, arg=patch_path, timeout=UPDATE_TIMEOUT_MS)
        page.wait_for_function(
            "src => document.querySelector('.eo-sr-qc-images img')?.getAttribute('src') !== src",
            arg=first_img, timeout=UPDATE_TIMEOUT_MS)

        # drop it and save: the file on disk says so
        page.locator("button.eo-sr-qc-drop").click()
        page.wait_for_function(
            "() => document.querySelector('.eo-sr-qc-status')?.textContent.includes('1 unsaved')",
            timeout=UPDATE_TIMEOUT_MS)
        assert not decisions.exists()
        page.locator("button.eo-sr-qc-save").click()
        page.wait_for_function(
            "() => document.querySelector('.eo-sr-qc-status')?.textContent.includes('saved 1 decision')",
            timeout=UPDATE_TIMEOUT_MS)
        deadline = time.monotonic() + 10
        while not decisions.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        import pandas as pd

        saved = pd.read_parquet(decisions)
        assert saved[["patch_id", "decision"]].values.tolist() == [[target, "drop"]]
        labels = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        assert next(t for t in labels if t.startswith(target + " | ")).endswith("you: drop")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "qc_app.png"), full_page=True)
        assert not [e for e in errors if "leaflet" in e.lower() or "widget" in e.lower()], errors
    finally:
        context.close()
