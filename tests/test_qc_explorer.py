"""eo_sr.viz.qc_explorer: QC figures, the explorer widget, decisions, the app helpers,
on a patch store of the tiny demo world."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from eo_sr import demo, matching, patches, qc  # noqa: E402
from eo_sr.errors import EoSrError, InvalidInputError, NotFoundError  # noqa: E402
from eo_sr.apps import qc_app  # noqa: E402
from eo_sr.pipeline import demo_qc  # noqa: E402
from eo_sr.viz import qc_explorer as qx  # noqa: E402


@pytest.fixture(scope="module")
def qc_data(tiny_world, tmp_path_factory):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION),
                                **demo.MATCH_CRITERIA)
    store = tmp_path_factory.mktemp("qcx") / "store"
    patches.build_patch_store(res.pairs, {it.id: it for it in tiny_world.items()}, store,
                              config=patches.PatchConfig(lr_size=16), progress=False)
    table, clustering = qc.cluster(qc.run_qc(store, progress=False))
    return store, qc.apply_rules(table), clustering


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _explorer(qc_data, tmp_path, **kwargs):
    store, table, _ = qc_data
    return qx.QCExplorer(store, table, decisions_path=tmp_path / "decisions.parquet", **kwargs)


def _png(output) -> bytes:
    import base64

    (out,) = output.outputs
    return base64.b64decode(out["data"]["image/png"])


# ----------------------------------------------------------------- figures


def test_scatter_draws_every_patch_by_cluster_and_marks_the_dropped(qc_data):
    _, table, _ = qc_data
    ax = qx.plot_qc_scatter(table)
    names = table["cluster_name"].value_counts()
    dropped = int((~table["keep"]).sum())
    assert dropped > 0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for name, n in names.items():
        assert f"{name} ({n})" in labels
    assert f"dropped by the rules ({dropped})" in labels
    # one collection per cluster, then the crosses; points sit at (psnr, ssim)
    offsets = np.concatenate([c.get_offsets() for c in ax.collections[:len(names)]])
    assert len(offsets) == len(table)
    assert sorted(map(tuple, np.round(offsets, 6))) == sorted(
        zip(np.round(table["psnr"], 6), np.round(table["ssim"], 6)))
    assert len(ax.collections[len(names)].get_offsets()) == dropped
    assert "PSNR" in ax.get_xlabel() and "SSIM" in ax.get_ylabel()


def test_scatter_numeric_colour_highlight_and_errors(qc_data):
    _, table, _ = qc_data
    pid = table["patch_id"].iloc[3]
    ax = qx.plot_qc_scatter(table, color_by="delta_days", mark_dropped=False, highlight=[pid])
    assert len(ax.collections) == 2  # the points (with a colour bar) and the circle
    np.testing.assert_allclose(ax.collections[1].get_offsets()[0], table.loc[3, ["psnr", "ssim"]].astype(float))
    assert len(ax.figure.axes) == 2  # the colour bar
    with pytest.raises(InvalidInputError, match="nope"):
        qx.plot_qc_scatter(table, color_by="nope")
    with pytest.raises(InvalidInputError, match="ssim"):
        qx.plot_qc_scatter(table.drop(columns="ssim"))


def test_bic_plot_marks_the_chosen_size(qc_data):
    _, _, clustering = qc_data
    ax = qx.plot_bic(clustering)
    best = clustering.n_components  # the size chosen, not always the lowest BIC (see qc.cluster)
    x, y = ax.lines[1].get_data()
    assert list(x) == [best] and y[0] == pytest.approx(clustering.bic[best])
    assert list(ax.lines[0].get_xdata()) == sorted(clustering.bic)
    ineligible = sorted(set(clustering.bic) - set(clustering.eligible))
    if ineligible:
        assert list(ax.lines[2].get_xdata()) == ineligible
    ax = qx.plot_bic({1: 5.0, 2: 3.0, 3: 4.0})  # a bare mapping: its lowest
    assert list(ax.lines[1].get_xdata()) == [2]


def test_patch_images_and_show_patch_pair(qc_data):
    store, table, _ = qc_data
    pid = table["patch_id"].iloc[0]
    img = qx.patch_images(store, pid)
    assert img["lr"].shape == (3, 16, 16) and img["hr"].shape == (3, 64, 64) and img["bicubic"].shape == (3, 64, 64)
    np.testing.assert_allclose(img["difference"], np.abs(img["hr"] - img["bicubic"]).mean(axis=0), rtol=1e-6)
    # the bicubic panel is the LR patch upsampled: its 4x4 block means stay close to the LR pixels
    blocks = img["bicubic"].reshape(3, 16, 4, 16, 4).mean(axis=(2, 4))
    assert np.abs(blocks - img["lr"])[:, 2:-2, 2:-2].mean() < 0.01
    axes = qx.show_patch_pair(store, pid, label="a label")
    assert len(axes) == 4
    assert [a.get_title() for a in axes] == ["LR (10 m, 16x16)", "bicubic LR x4", "HR (2.5 m, 64x64)",
                                             "|HR - bicubic|"]
    assert [a.images[0].get_array().shape[:2] for a in axes] == [(16, 16), (64, 64), (64, 64), (64, 64)]
    assert axes[0].get_ylabel() == "a label"
    # one shared stretch: equal reflectances map to equal colours in the bicubic and the HR panel
    rgba_b, rgba_h = axes[1].images[0].get_array(), axes[2].images[0].get_array()
    assert rgba_b.shape == rgba_h.shape == (64, 64, 4)
    with pytest.raises(NotFoundError, match="no patch"):
        qx.show_patch_pair(store, "nope")
    with pytest.raises(InvalidInputError, match="four panels"):
        qx.show_patch_pair(store, pid, axes=plt.subplots(1, 3)[1])


# ----------------------------------------------------------------- the explorer


def test_explorer_starts_on_the_lowest_ssim(qc_data, tmp_path):
    _, table, _ = qc_data
    ex = _explorer(qc_data, tmp_path)
    assert ex.kind == "bqplot"
    assert len(ex.patch.options) == len(table)
    lowest = table.loc[table["ssim"].idxmin(), "patch_id"]
    assert ex.current == ex.patch.value == lowest
    assert lowest in ex.info.value and len(ex.images.outputs) == 1
    app = ex.app()
    assert ex in app.children and "eo-sr quality control" in app.children[0].value


def test_selecting_a_patch_updates_images_metadata_and_map(qc_data, tmp_path):
    store, table, _ = qc_data
    ex = _explorer(qc_data, tmp_path)
    first_png = _png(ex.images)
    pid = ex.patch.options[5][1]
    ex.patch.value = pid
    assert ex.current == pid
    assert f'<code class="qc-patch-id">{pid}</code>' in ex.info.value
    row = table.set_index("patch_id").loc[pid]
    assert f"{row['ssim']:.4f}" in ex.info.value and str(row["cluster_name"]) in ex.info.value
    assert _png(ex.images) != first_png and _png(ex.images)[:4] == b"\x89PNG"
    # the map: the patch's box in lon/lat, inside the HR footprint, and the other patches of its pair
    from shapely.geometry import shape

    (feat,) = ex.patch_layer.data["features"]
    assert feat["properties"]["patch_id"] == pid
    poly = shape(feat["geometry"])
    manifest = pd.read_parquet(store / "manifest.parquet").set_index("patch_id")
    from pyproj import Transformer

    m = manifest.loc[pid]
    cx, cy = Transformer.from_crs(m["crs"], 4326, always_xy=True).transform((m.left + m.right) / 2,
                                                                            (m.bottom + m.top) / 2)
    assert poly.centroid.distance(shape({"type": "Point", "coordinates": (cx, cy)})) < 1e-5
    w, s, e, n = poly.bounds  # a 160 m patch (16 LR pixels of 10 m)
    assert (n - s) * 111_000 == pytest.approx(160, rel=0.02)
    assert (e - w) * 111_000 * np.cos(np.radians(cy)) == pytest.approx(160, rel=0.02)
    scene = shape(ex.scene_layer.data["features"][0]["geometry"])
    assert scene.buffer(1e-6).contains(poly)
    n_pair = int((manifest["pair_id"] == m["pair_id"]).sum())
    assert len(ex.pair_layer.data["features"]) == n_pair - 1
    assert ex.map.center == pytest.approx((poly.centroid.y, poly.centroid.x))
    # highlighted on the scatter
    assert list(ex._highlight.x) == pytest.approx([row["psnr"]]) and list(ex._highlight.y) == pytest.approx(
        [row["ssim"]])
    with pytest.raises(InvalidInputError):
        ex.show("nope")


def test_brush_selection_fills_the_list_and_the_cluster_filter_narrows_it(qc_data, tmp_path):
    store, table, _ = qc_data
    # The tiny world's clusters may all be "normal" (none lies apart from the bulk); the filter
    # needs two names, so the five lowest in SSIM are named suspect here.
    table = table.copy()
    table.loc[table["ssim"].nsmallest(5).index, "cluster_name"] = "suspect"
    ex = qx.QCExplorer(store, table, decisions_path=tmp_path / "decisions.parquet")
    ex.tool.value = "brush"
    assert ex.scatter_figure.interaction is ex._brush
    mark, pos = ex._marks[0]
    mark.selected = [0, 1] if len(pos) > 1 else [0]  # what the front-end does on a brush
    chosen = list(table["patch_id"].iloc[pos[: len(mark.selected)]])
    assert sorted(ex.selected_ids) == sorted(chosen)
    assert sorted(v for _, v in ex.patch.options) == sorted(chosen)
    assert ex.current in chosen
    # a programmatic selection, then a cluster filter that excludes part of it
    normal = table[table["cluster_name"] == "normal"]["patch_id"]
    other = table[table["cluster_name"] != "normal"]["patch_id"]
    ex.select([normal.iloc[0], other.iloc[0]])
    assert len(ex.patch.options) == 2
    ex.cluster.value = "normal"
    assert [v for _, v in ex.patch.options] == [normal.iloc[0]] and ex.current == normal.iloc[0]
    ex.select(None)
    assert len(ex.patch.options) == len(normal)
    ex.cluster.value = "all"
    assert len(ex.patch.options) == len(table)
    # a click shows that point
    ex.tool.value = "click"
    assert ex.scatter_figure.interaction is None
    mark, pos = ex._marks[-1]
    mark.selected = [0]
    assert ex.current == table["patch_id"].iloc[pos[0]]


def test_static_scatter_selects_by_ranges(qc_data, tmp_path):
    _, table, _ = qc_data
    ex = _explorer(qc_data, tmp_path, scatter="static")
    assert ex.kind == "static" and ex.tool is None
    assert _png(ex.scatter_output)[:4] == b"\x89PNG"
    cut = float(table["ssim"].median())
    ex.ssim_range.value = (ex.ssim_range.min, cut)
    listed = {v for _, v in ex.patch.options}
    assert listed == set(table.loc[table["ssim"] <= cut, "patch_id"])
    assert ex.current in listed


def test_keep_drop_save_and_reload(qc_data, tmp_path):
    store, table, _ = qc_data
    ex = _explorer(qc_data, tmp_path)
    path = tmp_path / "decisions.parquet"
    a, b = ex.patch.options[0][1], ex.patch.options[1][1]
    ex.patch.value = a
    ex.drop_button.click()
    ex.patch.value = b
    ex.keep_button.click()
    ex.decide("keep", a)  # a later decision replaces the earlier one
    ex.decide("drop", b)
    assert not path.exists() and "2 unsaved" in ex.status.value
    ex.save_button.click()
    assert "saved 2 decision(s)" in ex.status.value
    saved = pd.read_parquet(path)
    assert list(saved.columns) == ["patch_id", "decision", "time"]
    assert dict(zip(saved["patch_id"], saved["decision"])) == {a: "keep", b: "drop"}
    assert pd.to_datetime(saved["time"], utc=True).notna().all()
    assert not list(tmp_path.glob(".*part"))  # no temporary file left
    assert "you: drop" in {v: k for k, v in ex.patch.options}[b]
    # a new explorer on the same file has them back
    again = qx.QCExplorer(store, table, decisions_path=path)
    assert {k: v["decision"] for k, v in again.decisions.items()} == {a: "keep", b: "drop"}
    again.patch.value = b
    assert "<b>drop</b>" in again.info.value
    # and they overrule the rules
    final = again.table_with_decisions()
    kept = set(qc.keep_ids(final))
    assert a in kept and b not in kept
    assert final.set_index("patch_id").loc[b, "drop_reason"] == "manual"
    assert len(kept) == int(table["keep"].sum()) + (0 if table.set_index("patch_id").loc[a, "keep"] else 1) - (
        1 if table.set_index("patch_id").loc[b, "keep"] else 0)


def test_decisions_as_csv_and_bad_input(qc_data, tmp_path):
    store, table, _ = qc_data
    path = tmp_path / "sub" / "d.csv"
    ex = qx.QCExplorer(store, table, decisions_path=path)
    ex.decide("drop")
    ex.save()
    assert pd.read_csv(path)["decision"].tolist() == ["drop"]
    assert qc.load_decisions(path)[ex.current]["decision"] == "drop"
    with pytest.raises(InvalidInputError, match="'keep' or 'drop'"):
        ex.decide("maybe")
    with pytest.raises(InvalidInputError, match="not in the store"):
        qx.QCExplorer(store, pd.concat([table, table.iloc[:1].assign(patch_id="x")]))
    with pytest.raises(InvalidInputError, match="more than once"):
        qx.QCExplorer(store, pd.concat([table, table.iloc[:1]]))
    with pytest.raises(NotFoundError, match="not a patch store"):
        qx.QCExplorer(tmp_path, table)
    (tmp_path / "bad.parquet").write_bytes(b"")
    pd.DataFrame({"patch_id": ["a"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InvalidInputError, match="decision"):
        qc.load_decisions(tmp_path / "bad.parquet")
    with pytest.raises(InvalidInputError, match="'keep' or 'drop'"):
        qc.apply_decisions(table, {"a": "maybe"})


def test_explorer_without_cluster_columns(qc_data, tmp_path):
    store, table, _ = qc_data
    bare = table[["patch_id", "ssim", "psnr"]]
    ex = qx.QCExplorer(store, bare, decisions_path=tmp_path / "d.parquet")
    assert len(ex.patch.options) == len(bare) and "rules say" in ex.info.value


# ----------------------------------------------------------------- the app helpers


def test_app_notebook_is_found_and_loads_its_size_from_the_environment():
    import nbformat

    path = qc_app.app_notebook_path()
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert "EO_SR_QC_SIZE" in source and "QCExplorer" in source and ".app()" in source
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


def test_launch_fails_clearly_without_the_notebook(monkeypatch, tmp_path):
    import eo_sr

    monkeypatch.setattr(eo_sr, "__file__", str(tmp_path / "site-packages" / "eo_sr" / "__init__.py"))
    with pytest.raises(EoSrError, match="source checkout"):
        qc_app.launch_qc_app("tiny", prepare=False)


def test_prepare_demo_qc_builds_once_then_reuses(cache_root):
    first = demo_qc.prepare_demo_qc("tiny")
    assert first.store == demo_qc.demo_store_dir("tiny", 0)
    assert json.loads((first.store / "config.json").read_text())["lr_size"] == 16
    assert {"cluster_name", "keep", "drop_reason"} <= set(first.table.columns)
    stamp = (first.store / qc.QC_TABLE_FILE).stat().st_mtime_ns
    again = demo_qc.prepare_demo_qc("tiny")
    assert (first.store / qc.QC_TABLE_FILE).stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first.table, again.table)
    with pytest.raises(InvalidInputError, match="16 LR pixels, not 32"):
        demo_qc.prepare_demo_qc("tiny", lr_size=32)


def test_cli_has_the_qc_app_command():
    from eo_sr.cli import build_parser

    args = build_parser().parse_args(["qc-app", "--size", "tiny", "--port", "8999"])
    assert args.func.__name__ == "cmd_qc_app" and args.size == "tiny" and args.port == 8999
