"""The QC app in a real browser: JupyterLab with Voila started the way ``eo-sr qc-app``
starts it (:func:`eo_sr.apps.qc_app.launch_qc_app`), the page
``/voila/render/qc_app.ipynb`` opened in headless Chromium (Playwright): a point clicked
on the SSIM-PSNR scatter shows its pair, a lasso drawn with the mouse lists the points
inside it, and a patch is picked, dropped and the decision saved to disk.

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
    from eo_sr.apps.qc_app import launch_qc_app
    from eo_sr.viz.qc_explorer import PATCH_COLOR

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


def _open(page, server, patch_color) -> str:
    """Open the app and wait until a patch is shown on the map; the patch outline's selector."""
    page.goto(server.url, wait_until="commit", timeout=PAGE_TIMEOUT_MS)
    # Voila runs the notebook, then the widgets render: wait for the shown patch's metadata
    page.wait_for_selector(".eo-sr-qc-info code.qc-patch-id", timeout=PAGE_TIMEOUT_MS)
    patch_path = f'.leaflet-container path.leaflet-interactive[stroke="{patch_color}"]'
    page.wait_for_selector(patch_path, state="attached", timeout=UPDATE_TIMEOUT_MS)
    page.wait_for_selector(".eo-sr-qc-images img", timeout=UPDATE_TIMEOUT_MS)
    page.wait_for_function(CENTRED_JS, arg=patch_path, timeout=UPDATE_TIMEOUT_MS)
    return patch_path


# Screen positions of the scatter's points and of its axes' ticks (value, pixel). bqplot draws
# each point as a path.dot; the ring around the shown patch is a bigger one.
SCATTER_JS = """() => {
    const fig = document.querySelector('.eo-sr-qc-scatter');
    const dots = [...fig.querySelectorAll('path.dot')].map(d => {
        const r = d.getBoundingClientRect();
        return {x: r.left + r.width / 2, y: r.top + r.height / 2, size: r.width};
    });
    const axes = [...fig.querySelectorAll('g.axis')].map(a => [...a.querySelectorAll('g.tick')].map(t => {
        const r = t.querySelector('line').getBoundingClientRect();
        return {value: parseFloat(t.textContent), x: r.left, y: r.top, vertical: r.width < 1};
    }));
    return {dots, axes};
}"""


def _scatter(page):
    """Points (x, y) on screen, the shown patch's ring, and data -> screen functions."""
    s = page.evaluate(SCATTER_JS)
    ring = [d for d in s["dots"] if d["size"] > 14]
    points = [(d["x"], d["y"]) for d in s["dots"] if d["size"] <= 14]
    (xt,) = [a for a in s["axes"] if a and a[0]["vertical"]]
    (yt,) = [a for a in s["axes"] if a and not a[0]["vertical"]]

    def linear(ticks, coord):
        (v0, p0), (v1, p1) = (ticks[0]["value"], ticks[0][coord]), (ticks[-1]["value"], ticks[-1][coord])
        return lambda v: p0 + (v - v0) * (p1 - p0) / (v1 - v0)

    return points, ring, linear(xt, "x"), linear(yt, "y")


def _shown_scores(page) -> tuple[float, float]:
    import re

    text = page.locator(".eo-sr-qc-info").inner_text()
    m = re.search(r"SSIM, PSNR\s+([0-9.]+), ([0-9.]+) dB", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def test_qc_app_click_and_lasso_on_the_scatter_select_the_points_under_the_mouse(qc_app, browser):
    import numpy as np

    server, _, patch_color = qc_app
    context = browser.new_context(viewport={"width": 1400, "height": 1150})
    page = context.new_page()
    try:
        _open(page, server, patch_color)
        points, ring, to_x, to_y = _scatter(page)
        assert len(points) > 20 and len(ring) == 1
        xy = np.array(points)

        # click the point farthest from its neighbours (and from the ring): its pair is shown
        dist = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(dist, np.inf)
        clear = np.hypot(*(xy - [ring[0]["x"], ring[0]["y"]]).T) > 12
        target = int(np.argmax(np.where(clear, dist.min(axis=1), -1)))
        before = _patch_id(page)
        page.mouse.click(*xy[target])
        page.wait_for_function(
            "id => document.querySelector('.eo-sr-qc-info code.qc-patch-id')?.textContent.trim() !== id",
            arg=before, timeout=UPDATE_TIMEOUT_MS)
        ssim, psnr = _shown_scores(page)
        # the shown pair's scores sit where the click was (to the rounding of the panel's numbers)
        assert abs(to_x(psnr) - xy[target, 0]) < 2 and abs(to_y(ssim) - xy[target, 1]) < 2, \
            (psnr, ssim, xy[target])
        page.wait_for_function(
            "([x, y]) => [...document.querySelectorAll('.eo-sr-qc-scatter path.dot')].some(d => {"
            "  const r = d.getBoundingClientRect();"
            "  return r.width > 14 && Math.hypot(r.left + r.width / 2 - x, r.top + r.height / 2 - y) < 2; })",
            arg=[float(xy[target, 0]), float(xy[target, 1])], timeout=UPDATE_TIMEOUT_MS)

        # lasso around every point right of a gap: exactly those are listed
        page.locator("button.widget-toggle-button", has_text="lasso").click()
        page.wait_for_selector(".eo-sr-qc-scatter .lassoselector", state="attached", timeout=UPDATE_TIMEOUT_MS)
        xs = np.sort(xy[:, 0])
        mid = len(xs) // 2
        gaps = [(xs[i + 1] - xs[i], i) for i in range(mid - len(xs) // 4, mid + len(xs) // 4)]
        gap, i = max(gaps)
        assert gap > 4
        split = (xs[i] + xs[i + 1]) / 2
        top, bottom, right = xy[:, 1].min() - 8, xy[:, 1].max() + 8, xy[:, 0].max() + 8
        outline = [(split, top), (right, top), (right, bottom), (split, bottom), (split, top)]
        page.mouse.move(*outline[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(outline, outline[1:]):
            for f in np.linspace(0, 1, 12)[1:]:
                page.mouse.move(x0 + f * (x1 - x0), y0 + f * (y1 - y0))
        page.mouse.up()
        inside = int((xy[:, 0] > split).sum())
        page.wait_for_function(
            "n => document.querySelectorAll('.eo-sr-qc-patches select option').length === n",
            arg=inside, timeout=UPDATE_TIMEOUT_MS)
        labels = page.locator(".eo-sr-qc-patches select option").evaluate_all("os => os.map(o => o.value)")
        psnrs = [float(label.split("PSNR ")[1].split(" ")[0]) for label in labels]
        assert all(to_x(p) > split - 2 for p in psnrs), (split, psnrs)
    finally:
        context.close()


def test_qc_app_renders_selects_drops_and_saves(qc_app, browser):
    server, decisions, patch_color = qc_app
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/voila/render/qc_app.ipynb?token=")
    context = browser.new_context(viewport={"width": 1400, "height": 1150})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        patch_path = _open(page, server, patch_color)

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
