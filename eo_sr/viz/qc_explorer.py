"""Quality control, looked at: static figures, an interactive explorer and its Voila app.

The QC table (:func:`eo_sr.qc.run_qc`, :func:`~eo_sr.qc.cluster`,
:func:`~eo_sr.qc.apply_rules`) says for every patch pair how similar the HR patch is
to its bicubic-upsampled LR partner. This module shows it:

* :func:`plot_qc_scatter`: SSIM against PSNR, one colour per cluster, the patches
  that the rules drop marked (the scatter of the multi-temporal SR study, section
  "Cleaning remaining noise");
* :func:`plot_bic`: the Bayesian information criterion per number of clusters;
* :func:`show_patch_pair`: LR, bicubic LR, HR and ``|HR - bicubic|`` side by side;
* :class:`QCExplorer`: select points on the scatter (click, brush or lasso with
  bqplot; cluster and range filters otherwise), look at the pair, its place on a
  map and its numbers, and record a keep/drop decision per patch, saved atomically
  and reloaded next time;

The explorer's keep/drop decisions are read and written by :mod:`eo_sr.qc`
(:func:`~eo_sr.qc.load_decisions`, :func:`~eo_sr.qc.save_decisions`,
:func:`~eo_sr.qc.apply_decisions`). The demo data it shows come from
:func:`eo_sr.pipeline.demo_qc.prepare_demo_qc`, and ``eo-sr qc-app`` serves it through
Voila (:mod:`eo_sr.apps.qc_app`).
"""
from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np

from eo_sr.errors import InvalidInputError
from eo_sr.qc import DECISIONS, DECISIONS_FILE, apply_decisions, decisions_frame, load_decisions, save_decisions

__all__ = ["QCExplorer", "patch_images", "plot_bic", "plot_qc_scatter", "show_patch_pair"]

#: Colour of each cluster name (other categories get the tab10 colours).
CLUSTER_COLORS = {"suspect": "#d62728", "normal": "#1f77b4", "high_score": "#2ca02c", "unscored": "#7f7f7f"}
#: Outline colour of the selected patch on the map (tests look for it).
PATCH_COLOR = "#ff00ff"
SCENE_COLOR = "#ff7f0e"
#: File names inside a patch store.
ALL = "all"  # the cluster filter's value for "no filter"
RGB = ("red", "green", "blue")


# ----------------------------------------------------------------- reading patches


def _reader(store):
    from eo_sr.store import PatchStore, open_store

    return store if isinstance(store, PatchStore) else open_store(store)


def patch_images(store, patch_id: str, *, bands: Sequence[str] = RGB) -> dict:
    """The arrays :func:`show_patch_pair` draws, for one patch.

    Returns
    -------
    dict
        ``lr`` (3, s, s), ``bicubic`` and ``hr`` (3, S, S) in the order of ``bands``;
        ``difference`` (S, S): mean over those bands of ``|HR - bicubic|``;
        ``valid`` (S, S) where both images have data; ``lr_valid`` (s, s);
        ``bounds`` (left, bottom, right, top) and ``crs`` of the patch.
    """
    from eo_sr import metrics

    reader = _reader(store)
    missing = [b for b in bands if b not in reader.bands]
    if missing:
        raise InvalidInputError(f"the store has no band(s) {missing}; it holds {reader.bands}")
    data = reader.read_patch(patch_id)
    data = {**data, "lr": data["lr"][0], "lr_valid": data["lr_valid"][0]}  # LR frame 0
    data = {k: np.asarray(v, np.float32) if k in ("lr", "hr") else v for k, v in data.items()}
    idx = [reader.bands.index(b) for b in bands]
    up = metrics.upsample_bicubic(data["lr"], reader.factor)
    f = reader.factor
    lr_up_valid = np.repeat(np.repeat(data["lr_valid"], f, axis=0), f, axis=1)
    valid = data["hr_valid"] & lr_up_valid
    row = reader.row(patch_id)
    return {"lr": data["lr"][idx], "bicubic": up[idx], "hr": data["hr"][idx],
            "difference": np.abs(data["hr"][idx] - up[idx]).mean(axis=0), "valid": valid,
            "lr_valid": data["lr_valid"],
            "bounds": tuple(float(row[k]) for k in ("left", "bottom", "right", "top")), "crs": row["crs"]}


def _stretch(rgb: np.ndarray, lo: float, hi: float, valid: np.ndarray) -> np.ndarray:
    out = np.zeros((*rgb.shape[1:], 4), np.float32)
    scale = (hi - lo) if hi > lo else 1.0
    out[..., :3] = np.clip((np.moveaxis(rgb, 0, -1) - lo) / scale, 0, 1)
    out[..., 3] = valid
    return out


def show_patch_pair(store, patch_id: str, *, axes=None, bands: Sequence[str] = RGB,
                    percentiles: tuple[float, float] = (2.0, 98.0), label: str | None = None,
                    max_difference: float | None = None):
    """LR, bicubic LR, HR and ``|HR - bicubic|`` of one patch, side by side.

    The three true-colour panels share one contrast stretch (percentiles over the
    bicubic and the HR pixels together), so a darker or brighter HR patch looks
    darker or brighter; pixels without data are transparent. The difference is the
    mean absolute difference over the shown bands, in reflectance.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
    patch_id : str
    axes : sequence of 4 matplotlib Axes, optional
        Where to draw; a new pyplot figure otherwise.
    bands : three band names, optional
        Shown as red, green, blue.
    percentiles : (float, float), optional
        The shared stretch.
    label : str, optional
        Written beside the first panel (e.g. the cluster and the scores).
    max_difference : float, optional
        Top of the difference colour scale (default: its 99th percentile, at least 0.02).

    Returns
    -------
    numpy.ndarray of Axes
        The four panels.
    """
    img = patch_images(store, patch_id, bands=bands)
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
    axes = np.asarray(axes).ravel()
    if axes.size != 4:
        raise InvalidInputError(f"show_patch_pair draws four panels; got {axes.size} axes")
    valid = img["valid"]
    both = np.concatenate([img["bicubic"][:, valid], img["hr"][:, valid]], axis=1)
    lo, hi = np.percentile(both, percentiles) if both.size else (0.0, 1.0)
    left, bottom, right, top = img["bounds"]
    extent = (0, right - left, 0, top - bottom)
    s, S = img["lr"].shape[-1], img["hr"].shape[-1]
    lr_res, hr_res = (right - left) / s, (right - left) / S
    panels = [(_stretch(img["lr"], lo, hi, img["lr_valid"]), f"LR ({lr_res:g} m, {s}x{s})"),
              (_stretch(img["bicubic"], lo, hi, valid), f"bicubic LR x{S // s}"),
              (_stretch(img["hr"], lo, hi, valid), f"HR ({hr_res:g} m, {S}x{S})")]
    for ax, (rgba, title) in zip(axes[:3], panels):
        ax.imshow(rgba, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize="medium")
    diff = np.where(valid, img["difference"], np.nan)
    vmax = max_difference if max_difference is not None else max(
        float(np.nanpercentile(diff, 99)) if np.isfinite(diff).any() else 0.0, 0.02)
    im = axes[3].imshow(diff, extent=extent, interpolation="nearest", cmap="magma", vmin=0, vmax=vmax)
    axes[3].set_title("|HR - bicubic|", fontsize="medium")
    axes[3].figure.colorbar(im, ax=axes[3], fraction=0.046, pad=0.03, label="reflectance")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if label:
        axes[0].set_ylabel(label, fontsize="small")
    return axes


# ----------------------------------------------------------------- static QC figures


def _categories(values) -> list:
    present = list(dict.fromkeys(values))
    known = [c for c in CLUSTER_COLORS if c in present]
    return known + sorted((c for c in present if c not in known), key=str)


#: Colours of "nothing wrong" categories (e.g. a truth column), drawn in grey.
NEUTRAL_COLORS = {"clean": "#b0b0b0", "kept": "#b0b0b0", "none": "#b0b0b0", "False": "#b0b0b0"}


def _category_colors(categories, palette: Mapping | None = None) -> dict:
    tab10 = ["#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#d62728", "#2ca02c", "#1f77b4"]
    colors, i = {}, 0
    for c in categories:
        if palette and c in palette:
            colors[c] = palette[c]
        elif c in CLUSTER_COLORS:
            colors[c] = CLUSTER_COLORS[c]
        elif c in NEUTRAL_COLORS:
            colors[c] = NEUTRAL_COLORS[c]
        else:
            colors[c] = tab10[i % len(tab10)]
            i += 1
    return colors


def plot_qc_scatter(table, *, ax=None, color_by: str | None = "cluster_name", mark_dropped: bool = True,
                    highlight: Iterable[str] | None = None, title: str | None = "SSIM against PSNR",
                    legend: bool = True, size: float = 14, palette: Mapping[str, str] | None = None):
    """SSIM against PSNR of every patch (HR against its bicubic-upsampled LR partner).

    Parameters
    ----------
    table : pandas.DataFrame
        A QC table with ``ssim`` and ``psnr`` (and what ``color_by`` names).
    ax : matplotlib.axes.Axes, optional
    color_by : str or None, optional
        A column: categorical (e.g. ``cluster_name``, a truth reason, a bool)
        gives one colour and legend entry per value; numeric gives a colour bar.
    mark_dropped : bool, optional
        Cross out the patches whose ``keep`` is false (needs ``keep``).
    highlight : patch ids, optional
        Circled.
    title : str or None, optional
    legend : bool, optional
    size : float, optional
        Marker area.
    palette : mapping of str to str, optional
        Colour per category (clusters have fixed colours; "clean", "kept" and
        "none" are grey; the rest follow a qualitative palette).

    Returns
    -------
    matplotlib.axes.Axes
        One collection per category (or one for a numeric column) in ``ax.collections``,
        then the crosses and the circles.
    """
    import pandas as pd

    for col in ("ssim", "psnr"):
        if col not in table.columns:
            raise InvalidInputError(f"the QC table has no {col!r} column: run eo_sr.qc.run_qc first")
    if color_by is not None and color_by not in table.columns:
        raise InvalidInputError(f"no column {color_by!r} to colour by; the table has {list(table.columns)}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 5.2))
    x, y = table["psnr"].to_numpy(float), table["ssim"].to_numpy(float)
    if color_by is None:
        ax.scatter(x, y, s=size, color=CLUSTER_COLORS["normal"], alpha=0.7, linewidths=0, label=f"{len(x)} patches")
    elif pd.api.types.is_numeric_dtype(table[color_by]) and not pd.api.types.is_bool_dtype(table[color_by]):
        sc = ax.scatter(x, y, s=size, c=table[color_by].to_numpy(float), cmap="viridis", alpha=0.8, linewidths=0)
        ax.figure.colorbar(sc, ax=ax, label=color_by)
    else:
        values = table[color_by].astype(object).where(table[color_by].notna(), "none").map(str)
        cats = _categories(values)
        colors = _category_colors(cats, palette)
        for c in cats:
            sel = (values == c).to_numpy()
            ax.scatter(x[sel], y[sel], s=size, color=colors[c], alpha=0.85, linewidths=0, zorder=2,
                       label=f"{c} ({int(sel.sum())})")
    if mark_dropped and "keep" in table.columns:
        drop = ~table["keep"].to_numpy(bool)
        ax.scatter(x[drop], y[drop], s=size * 3.5, marker="x", color="black", linewidths=0.8, alpha=0.8,
                   zorder=1.5, label=f"dropped by the rules ({int(drop.sum())})")
    if highlight is not None:
        sel = table["patch_id"].isin(set(highlight)).to_numpy()
        ax.scatter(x[sel], y[sel], s=size * 12, facecolors="none", edgecolors="black", linewidths=1.6,
                   zorder=3, label="selected")
    ax.set_xlabel("PSNR (dB), HR against bicubic LR")
    ax.set_ylabel("SSIM, HR against bicubic LR")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small", framealpha=0.85)
    return ax


def plot_bic(clustering, *, ax=None, title: str | None = "Choosing the number of clusters"):
    """BIC per number of Gaussian-mixture components, and the number chosen.

    Parameters
    ----------
    clustering : eo_sr.qc.Clustering or mapping of int to float
        From :func:`eo_sr.qc.cluster`: its ``bic``, the size it chose (circled; not always
        the lowest BIC: sizes with a cluster of too few patches cannot be chosen, drawn
        hollow, and a larger size must win by a margin) - or the mapping itself, whose
        lowest value is circled.

    Returns
    -------
    matplotlib.axes.Axes
    """
    bic = clustering.bic if hasattr(clustering, "bic") else dict(clustering)
    if not bic:
        raise InvalidInputError("no BIC values to plot")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5.5, 3.6))
    ks = sorted(bic)
    values = [bic[k] for k in ks]
    chosen = getattr(clustering, "n_components", None)
    best = chosen if chosen in bic else min(bic, key=bic.get)
    ax.plot(ks, values, "o-", color="#444444")
    label = f"chosen: {best} clusters" if chosen in bic else f"lowest: {best} clusters"
    ax.plot([best], [bic[best]], "o", ms=12, mfc="none", mec="#d62728", mew=2, label=label)
    eligible = getattr(clustering, "eligible", None)
    if eligible:
        out = [k for k in ks if k not in eligible]
        if out:
            ax.plot(out, [bic[k] for k in out], "o", ms=6, mfc="white", mec="#444444", ls="none",
                    label="a cluster under the minimum size")
    ax.set_xticks(ks)
    ax.set_xlabel("number of clusters (Gaussian mixture components)")
    ax.set_ylabel("BIC (lower is better)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


# ----------------------------------------------------------------- geometry for the map


def _box_lonlat(bounds, crs, *, points: int = 8):
    """A box in ``crs`` as a lon/lat polygon (edges densified so the reprojection bends them)."""
    from pyproj import Transformer
    from shapely.geometry import Polygon

    left, bottom, right, top = (float(v) for v in bounds)
    t = np.linspace(0, 1, points)
    xs = np.r_[left + (right - left) * t, np.full(points, right), right - (right - left) * t, np.full(points, left)]
    ys = np.r_[np.full(points, bottom), bottom + (top - bottom) * t, np.full(points, top), top - (top - bottom) * t]
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(xs, ys)
    return Polygon(zip(lon, lat))


def _collection(features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(geom, **props) -> dict:
    from shapely.geometry import mapping

    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def _item_geometries(items) -> dict:
    from shapely.geometry import shape

    if items is None:
        return {}
    if isinstance(items, Mapping):
        items = items.values()
    out = {}
    for it in items:
        d = it if isinstance(it, Mapping) else it.to_dict(include_self_link=False, transform_hrefs=False)
        if d.get("geometry"):
            out[d["id"]] = shape(d["geometry"])
    return out


# ----------------------------------------------------------------- the explorer


def _fmt(value, spec: str = ".3f") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return "-" if not math.isfinite(v) else format(v, spec)


def _has_bqplot() -> bool:
    import importlib.util

    return importlib.util.find_spec("bqplot") is not None


class QCExplorer(widgets.VBox):
    """Explore a QC table: select points on the SSIM-PSNR scatter, look at the pairs,
    and keep or drop them by hand.

    With bqplot installed the scatter is interactive: click a point to show it, or
    switch the tool to *brush* (a rectangle) or *lasso* to fill the patch list with
    the points inside. Without bqplot the scatter is a picture and two range sliders
    (SSIM, PSNR) select. In both, a cluster dropdown filters the list, which is
    sorted from the lowest SSIM up.

    The shown patch gets: LR, bicubic, HR and difference (:func:`show_patch_pair`),
    its footprint on a leafmap (ipyleaflet) map with the HR scene's footprint and the
    other patches of its pair, and its ids, dates, features, cluster and the rules'
    verdict. *Keep* and *Drop* record a decision for it; *Save* writes all decisions
    to ``decisions_path`` (atomically), from where the next explorer on the same
    path reloads them.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
        The patch store the table was computed on.
    table : pandas.DataFrame
        From :func:`eo_sr.qc.run_qc` (``patch_id``, ``ssim``, ``psnr``), ideally after
        :func:`~eo_sr.qc.cluster` and :func:`~eo_sr.qc.apply_rules`.
    decisions_path : path, optional
        Parquet (or ``.csv``) file of decisions; default ``<store>/qc_decisions.parquet``.
    items : STAC items or mapping of id to item, optional
        For the HR footprints on the map; without them the map shows the extent of
        the HR scene's patches.
    scatter : {"auto", "bqplot", "static"}, optional
        The scatter's kind ("auto": bqplot when installed).
    map_height : int, optional
        Pixels.
    figsize : (float, float), optional
        Size of the four-panel figure.

    Attributes
    ----------
    table : pandas.DataFrame
    cluster : ipywidgets.Dropdown
        Cluster filter (a cluster name, or ``"all"``).
    tool : ipywidgets.ToggleButtons or None
        bqplot selection tool: "click", "brush" or "lasso".
    ssim_range, psnr_range : ipywidgets.FloatRangeSlider or None
        Range selection of the static scatter.
    patch : ipywidgets.Select
        The patches in the selection; its value is the shown patch.
    info : ipywidgets.HTML
        The shown patch's metadata.
    images : ipywidgets.Output
        Its four panels (a PNG).
    map : leafmap.Map
    keep_button, drop_button, save_button : ipywidgets.Button
    status : ipywidgets.HTML
    decisions : dict
        ``{patch_id: {"decision": "keep" | "drop", "time": ISO timestamp}}``.
    selected_ids : list of str or None
        Points selected on the scatter (None: no selection, all points).
    """

    def __init__(self, store, table, *, decisions_path=None, items=None, scatter: str = "auto",
                 map_height: int = 360, figsize=(12.0, 3.3)):
        import pandas as pd

        self.reader = _reader(store)
        for col in ("patch_id", "ssim", "psnr"):
            if col not in table.columns:
                raise InvalidInputError(f"the QC table has no {col!r} column: run eo_sr.qc.run_qc on the store")
        if table["patch_id"].duplicated().any():
            raise InvalidInputError("the QC table lists a patch more than once")
        unknown = sorted(set(table["patch_id"]) - set(self.reader.manifest["patch_id"]))
        if unknown:
            raise InvalidInputError(f"{len(unknown)} patch(es) of the table are not in the store "
                                    f"{self.reader.path}, e.g. {unknown[0]!r}: was the table computed on it?")
        if scatter not in ("auto", "bqplot", "static"):
            raise InvalidInputError(f"scatter must be 'auto', 'bqplot' or 'static', got {scatter!r}")
        if scatter == "bqplot" and not _has_bqplot():
            raise InvalidInputError("scatter='bqplot' needs bqplot (pip install bqplot); use 'static'")
        self.kind = "bqplot" if scatter == "bqplot" or (scatter == "auto" and _has_bqplot()) else "static"
        table = table.reset_index(drop=True).copy()
        if "cluster_name" not in table.columns:
            table["cluster_name"] = "all"
        table["cluster_name"] = table["cluster_name"].astype(object).where(table["cluster_name"].notna(), "none")
        self.table = table
        self._pos = pd.Series(np.arange(len(table)), index=table["patch_id"])
        self.figsize, self.map_height = figsize, int(map_height)
        self.decisions_path = Path(decisions_path) if decisions_path else self.reader.path / DECISIONS_FILE
        self.decisions = load_decisions(self.decisions_path)
        self._unsaved: set[str] = set()
        self._pngs: dict[str, bytes] = {}
        self._quiet = False
        self.selected_ids: list[str] | None = None
        self._footprints = _item_geometries(items)
        self.current: str | None = None

        style = {"description_width": "70px"}
        names = _categories(table["cluster_name"])
        counts = table["cluster_name"].value_counts()
        self.cluster = widgets.Dropdown(options=[(f"all clusters ({len(table)})", ALL)]
                                        + [(f"{n} ({counts[n]})", n) for n in names],
                                        value=ALL, description="cluster", style=style,
                                        layout=widgets.Layout(width="250px"))
        self.clear_button = widgets.Button(description="clear selection", icon="times",
                                           layout=widgets.Layout(width="auto"))
        self.patch = widgets.Select(options=[], rows=9, layout=widgets.Layout(width="100%"))
        self.patch.add_class("eo-sr-qc-patches")
        self.count = widgets.HTML()
        self.info = widgets.HTML()
        self.info.add_class("eo-sr-qc-info")
        self.images = widgets.Output(layout=widgets.Layout(min_height="120px"))
        self.images.add_class("eo-sr-qc-images")
        self.keep_button = widgets.Button(description="Keep", button_style="success", icon="check",
                                          tooltip="record 'keep' for the shown patch")
        self.drop_button = widgets.Button(description="Drop", button_style="danger", icon="trash",
                                          tooltip="record 'drop' for the shown patch")
        self.save_button = widgets.Button(description="Save", button_style="primary", icon="save",
                                          tooltip=f"write the decisions to {self.decisions_path}")
        for b, cls in ((self.keep_button, "keep"), (self.drop_button, "drop"), (self.save_button, "save")):
            b.add_class(f"eo-sr-qc-{cls}")
        self.status = widgets.HTML()
        self.status.add_class("eo-sr-qc-status")
        self.tool = self.ssim_range = self.psnr_range = None
        scatter_box = self._build_scatter()
        self.map = self._build_map()

        self.cluster.observe(lambda _: self._refresh_list(), names="value")
        self.clear_button.on_click(lambda _: self.select(None))
        self.patch.observe(self._on_patch, names="value")
        self.keep_button.on_click(lambda _: self.decide("keep"))
        self.drop_button.on_click(lambda _: self.decide("drop"))
        self.save_button.on_click(lambda _: self._save_clicked())

        controls = widgets.HBox([self.cluster, self.clear_button] + ([self.tool] if self.tool is not None else []),
                                layout=widgets.Layout(flex_flow="row wrap"))
        left = widgets.VBox([scatter_box, controls] + ([self.ssim_range, self.psnr_range]
                                                       if self.ssim_range is not None else [])
                            + [self.count, self.patch], layout=widgets.Layout(width="50%"))
        buttons = widgets.HBox([self.keep_button, self.drop_button, self.save_button])
        right = widgets.VBox([self.map, buttons, self.status, self.info], layout=widgets.Layout(width="50%"))
        super().__init__([widgets.HBox([left, right]), self.images])
        self._refresh_list()
        self._show_status()

    # ------------------------------------------------------------- building

    def _build_scatter(self):
        if self.kind == "static":
            t = self.table
            style = {"description_width": "70px"}
            lay = widgets.Layout(width="95%")

            def slider(col, step, desc):
                lo, hi = float(np.nanmin(t[col])), float(np.nanmax(t[col]))
                lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
                return widgets.FloatRangeSlider(value=(lo, hi), min=lo, max=hi, step=step, description=desc,
                                                continuous_update=False, readout_format=".3f" if step < 0.1 else
                                                ".1f", style=style, layout=lay)

            self.ssim_range = slider("ssim", 0.001, "SSIM")
            self.psnr_range = slider("psnr", 0.1, "PSNR (dB)")
            self.ssim_range.observe(lambda _: self._range_select(), names="value")
            self.psnr_range.observe(lambda _: self._range_select(), names="value")
            self.scatter_output = widgets.Output()
            self._draw_static_scatter()
            return self.scatter_output
        import bqplot as bq

        t = self.table
        xs, ys = bq.LinearScale(), bq.LinearScale()
        self._marks = []  # (mark, table positions)
        keep = t["keep"].to_numpy(bool) if "keep" in t.columns else np.ones(len(t), bool)
        names = _categories(t["cluster_name"])
        colors = _category_colors(names)
        tooltip = bq.Tooltip(fields=["x", "y"], labels=["PSNR", "SSIM"], formats=[".2f", ".4f"])
        for name in names:
            for kept in (True, False):
                pos = np.flatnonzero((t["cluster_name"] == name).to_numpy() & (keep == kept))
                if not len(pos):
                    continue
                mark = bq.Scatter(x=t["psnr"].to_numpy(float)[pos], y=t["ssim"].to_numpy(float)[pos],
                                  scales={"x": xs, "y": ys}, colors=[colors[name]],
                                  marker="circle" if kept else "cross", default_size=28 if kept else 40,
                                  stroke="white" if kept else "black", stroke_width=0.5,
                                  default_opacities=[0.8], tooltip=tooltip,
                                  interactions={"click": "select", "hover": "tooltip"},
                                  unselected_style={"opacity": 0.3}, selected_style={"opacity": 1.0},
                                  labels=[f"{name}{'' if kept else ', dropped by the rules'}"])
                mark.observe(self._on_mark_selected, names="selected")
                self._marks.append((mark, pos))
        self._highlight = bq.Scatter(x=[], y=[], scales={"x": xs, "y": ys}, colors=["black"], fill=False,
                                     stroke="black", stroke_width=2.5, default_size=260, marker="circle",
                                     interactions={}, enable_hover=False)
        axes = [bq.Axis(scale=xs, label="PSNR (dB)", grid_lines="dashed"),
                bq.Axis(scale=ys, orientation="vertical", label="SSIM", grid_lines="dashed", tick_format=".3f",
                        label_offset="50px")]
        marks = [m for m, _ in self._marks]
        self._brush = bq.interacts.BrushSelector(x_scale=xs, y_scale=ys, marks=marks, color="gray")
        self._lasso = bq.interacts.LassoSelector(marks=marks)
        self.scatter_figure = bq.Figure(marks=[*marks, self._highlight], axes=axes,
                                        title="SSIM against PSNR (HR vs bicubic LR)", animation_duration=0,
                                        fig_margin={"top": 40, "bottom": 45, "left": 70, "right": 15},
                                        layout=widgets.Layout(width="100%", height="360px"))
        self.tool = widgets.ToggleButtons(options=[("click", "click"), ("brush", "brush"), ("lasso", "lasso")],
                                          value="click", tooltips=["click a point to show it",
                                                                   "drag a rectangle to select",
                                                                   "draw around points to select"],
                                          style={"button_width": "60px"})
        self.tool.observe(self._on_tool, names="value")
        legend = " &nbsp; ".join(f'<span style="color:{colors[n]}">&#9679;</span> {html.escape(str(n))}'
                                 for n in names)
        legend += " &nbsp; &#10010; dropped by the rules &nbsp; &#9711; shown patch"
        self.legend = widgets.HTML(f'<div style="font-size:90%">{legend}</div>')
        self.scatter_figure.add_class("eo-sr-qc-scatter")
        return widgets.VBox([self.scatter_figure, self.legend])

    def _build_map(self):
        import warnings

        import ipyleaflet
        import leafmap

        from eo_sr.viz.maps import map_view

        m = self.reader.manifest
        boxes = [_box_lonlat((m["left"].min(), m["bottom"].min(), m["right"].max(), m["top"].max()), crs)
                 for crs in m["crs"].unique()] if len(m) else []
        bounds = boxes[0].bounds if boxes else (-1, -1, 1, 1)
        center, zoom = map_view(bounds, width_px=500, height_px=self.map_height)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
            fmap = leafmap.Map(center=center, zoom=zoom, height=f"{self.map_height}px", draw_control=False,
                               measure_control=False, toolbar_control=False, search_control=False,
                               scale_control=True)
        self.scene_layer = ipyleaflet.GeoJSON(
            data=_collection([]), name="HR footprint",
            style={"color": SCENE_COLOR, "weight": 2, "fillOpacity": 0.05, "dashArray": "6 4"})
        self.pair_layer = ipyleaflet.GeoJSON(
            data=_collection([]), name="patches of this pair",
            style={"color": "#555555", "weight": 1, "fillOpacity": 0.0, "opacity": 0.8})
        self.patch_layer = ipyleaflet.GeoJSON(
            data=_collection([]), name="patch",
            style={"color": PATCH_COLOR, "weight": 3, "fillColor": PATCH_COLOR, "fillOpacity": 0.25, "opacity": 1})
        for layer in (self.scene_layer, self.pair_layer, self.patch_layer):
            fmap.add(layer)
        fmap.add(ipyleaflet.LayersControl(position="topright"))
        return fmap

    # ------------------------------------------------------------- selection

    def _on_tool(self, change=None) -> None:
        tool = self.tool.value
        self.scatter_figure.interaction = {"brush": self._brush, "lasso": self._lasso}.get(tool)
        self._quiet = True
        try:
            for mark, _ in self._marks:
                mark.interactions = {"click": "select", "hover": "tooltip"} if tool == "click" else \
                    {"hover": "tooltip"}
                # a selector updates only the marks with points inside it: a clicked point left
                # selected in another mark would join every later brush or lasso
                mark.selected = None
        finally:
            self._quiet = False

    def _on_mark_selected(self, change) -> None:
        if self._quiet:
            return
        if self.tool is not None and self.tool.value == "click":
            # a click selects one point of one mark: that point is the patch to show
            new = change["new"]
            if new is None or not len(new):
                return
            self._quiet = True
            try:
                for mark, _ in self._marks:
                    if mark is not change["owner"]:
                        mark.selected = None
            finally:
                self._quiet = False
            pos = next(p for m, p in self._marks if m is change["owner"])
            ids = [self.table["patch_id"].iloc[int(pos[i])] for i in new]
            self.select(ids, show=ids[-1], _from_marks=True)
            return
        ids = []
        for mark, pos in self._marks:
            if mark.selected is not None and len(mark.selected):
                ids.extend(self.table["patch_id"].iloc[pos[np.asarray(mark.selected, int)]])
        self.select(ids if ids else None, _from_marks=True)

    def _range_select(self) -> None:
        (s0, s1), (p0, p1) = self.ssim_range.value, self.psnr_range.value
        t = self.table
        sel = t["ssim"].between(s0, s1) & t["psnr"].between(p0, p1)
        self.select(list(t.loc[sel, "patch_id"]) if not sel.all() else None, _from_marks=True)

    def select(self, patch_ids: Iterable[str] | None, *, show: str | None = None, _from_marks: bool = False) -> None:
        """Select points (None: no selection, all points) and list them; show
        ``show`` (default: the shown patch if still listed, else the first)."""
        if patch_ids is not None:
            patch_ids = list(dict.fromkeys(patch_ids))
            unknown = [p for p in patch_ids if p not in self._pos.index]
            if unknown:
                raise InvalidInputError(f"unknown patch id(s) {unknown[:3]}")
        self.selected_ids = patch_ids
        if not _from_marks and self.kind == "bqplot":
            wanted = set(patch_ids) if patch_ids is not None else set()
            self._quiet = True
            try:
                for mark, pos in self._marks:
                    ids = self.table["patch_id"].to_numpy()[pos]
                    hit = [i for i, p in enumerate(ids) if p in wanted]
                    mark.selected = hit if hit else None
            finally:
                self._quiet = False
        self._refresh_list(show=show)

    def visible_ids(self) -> list[str]:
        """The listed patches: the selection, filtered by cluster, lowest SSIM first."""
        t = self.table
        sel = np.ones(len(t), bool)
        if self.selected_ids is not None:
            sel &= t["patch_id"].isin(set(self.selected_ids)).to_numpy()
        if self.cluster.value != ALL:
            sel &= (t["cluster_name"] == self.cluster.value).to_numpy()
        return list(t[sel].sort_values(["ssim", "patch_id"], na_position="first")["patch_id"])

    def _label(self, pid: str) -> str:
        r = self.table.iloc[int(self._pos[pid])]
        parts = [pid, str(r["cluster_name"]), f"SSIM {_fmt(r['ssim'], '.3f')}", f"PSNR {_fmt(r['psnr'], '.1f')}"]
        if "keep" in r and not bool(r["keep"]):
            parts.append(f"rules: drop ({r.get('drop_reason')})")
        if pid in self.decisions:
            parts.append(f"you: {self.decisions[pid]['decision']}")
        return " | ".join(parts)

    def _refresh_list(self, show: str | None = None) -> None:
        ids = self.visible_ids()
        target = show if show in ids else (self.patch.value if self.patch.value in ids else (ids[0] if ids else None))
        self._quiet = True
        try:
            self.patch.options = [(self._label(p), p) for p in ids]
            self.patch.value = target
        finally:
            self._quiet = False
        total = len(self.table)
        what = "selected" if self.selected_ids is not None else "in the table"
        filt = f", cluster {html.escape(str(self.cluster.value))}" if self.cluster.value != ALL else ""
        self.count.value = (f"<b>{len(ids)}</b> of {total} patches listed ({what}{filt}); lowest SSIM first"
                            if self.selected_ids is not None or self.cluster.value != ALL else
                            f"<b>{len(ids)}</b> patches, lowest SSIM first: select points on the scatter")
        self.show(target)

    def _on_patch(self, change) -> None:
        if not self._quiet:
            self.show(change["new"])

    # ------------------------------------------------------------- showing

    def show(self, patch_id: str | None) -> None:
        """Show a patch: images, map, metadata (None clears)."""
        if patch_id is not None and patch_id not in self._pos.index:
            raise InvalidInputError(f"unknown patch id {patch_id!r}")
        self.current = patch_id
        if patch_id is None:
            self.images.outputs = ()
            self.info.value = "<i>no patch listed: change the selection or the cluster filter</i>"
            self.patch_layer.data = _collection([])
            self.pair_layer.data = _collection([])
            self.scene_layer.data = _collection([])
            self._mark_current()
            return
        if self.patch.value != patch_id and any(v == patch_id for _, v in self.patch.options):
            self._quiet = True
            try:
                self.patch.value = patch_id
            finally:
                self._quiet = False
        self._show_images(patch_id)
        self._show_map(patch_id)
        self._show_info(patch_id)
        self._mark_current()

    def _show_images(self, patch_id: str) -> None:
        from eo_sr.viz.widgets import new_figure, show_figure

        if patch_id in self._pngs:
            import base64

            self.images.outputs = ({"output_type": "display_data", "metadata": {},
                                    "data": {"image/png": base64.b64encode(self._pngs[patch_id]).decode("ascii"),
                                             "text/plain": f"<Figure: {patch_id}>"}},)
            return
        fig = new_figure(self.figsize)
        axes = fig.subplots(1, 4)
        show_patch_pair(self.reader, patch_id, axes=axes)
        fig.suptitle(patch_id, fontsize="medium")
        self._pngs[patch_id] = show_figure(self.images, fig)

    def _show_map(self, patch_id: str) -> None:
        from eo_sr.viz.maps import map_view

        row = self.reader.row(patch_id)
        crs = row["crs"]
        poly = _box_lonlat((row["left"], row["bottom"], row["right"], row["top"]), crs)
        self.patch_layer.data = _collection([_feature(poly, patch_id=patch_id)])
        m = self.reader.manifest
        same = m[(m["pair_id"] == row["pair_id"]) & (m["patch_id"] != patch_id)]
        self.pair_layer.data = _collection(
            _feature(_box_lonlat((r.left, r.bottom, r.right, r.top), r.crs), patch_id=r.patch_id)
            for r in same.itertuples())
        scene = self._footprints.get(row["hr_id"])
        if scene is None:
            scene_rows = m[m["hr_id"] == row["hr_id"]]
            scene = _box_lonlat((scene_rows["left"].min(), scene_rows["bottom"].min(), scene_rows["right"].max(),
                                 scene_rows["top"].max()), crs)
            self.scene_layer.name = "HR scene (extent of its patches)"
        self.scene_layer.data = _collection([_feature(scene, hr_id=row["hr_id"])])
        _, zoom = map_view(scene.bounds, width_px=480, height_px=self.map_height)
        self.map.center = (float(poly.centroid.y), float(poly.centroid.x))
        self.map.zoom = zoom

    def _show_info(self, patch_id: str) -> None:
        r = self.table.iloc[int(self._pos[patch_id])]
        m = self.reader.row(patch_id)

        def date(v):
            try:
                import pandas as pd

                return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M UTC")
            except (TypeError, ValueError):
                return "-"

        lr_ids = m["lr_ids"]
        lr_ids = ", ".join(map(str, lr_ids)) if isinstance(lr_ids, (list, tuple, np.ndarray)) else str(lr_ids)
        rule = "keep" if ("keep" not in r or bool(r["keep"])) else f"drop ({r.get('drop_reason')})"
        dec = self.decisions.get(patch_id)
        rows = [
            ("patch", f'<code class="qc-patch-id">{html.escape(patch_id)}</code>'),
            ("split, row, col", f"{m['split']}, {m['row']}, {m['col']}"),
            ("HR scene", f"{html.escape(str(m['hr_id']))} ({date(m['hr_datetime'])})"),
            ("LR scene(s)", f"{html.escape(lr_ids)} ({date(m['lr_datetime'])})"),
            ("LR - HR", f"{_fmt(m['delta_days'], '+.2f')} days"),
            ("SSIM, PSNR", f"{_fmt(r['ssim'], '.4f')}, {_fmt(r['psnr'], '.2f')} dB"),
        ]
        feats = [("min_block_ratio", "darkest block, HR/LR", ".3f"),
                 ("max_block_ratio", "brightest block, HR/LR", ".3f"),
                 ("max_block_error", "worst block error", ".4f"),
                 ("shift_anomaly", "shift vs its scene (px)", ".2f"),
                 ("shadow_neighbour", "beside a cloudy patch", "")]
        for col, label, spec in feats:
            if col in r.index:
                rows.append((label, html.escape(str(r[col])) if not spec else _fmt(r[col], spec)))
        rows.append(("cluster", html.escape(str(r["cluster_name"]))))
        color = "#b71c1c" if rule != "keep" else "#1b5e20"
        rows.append(("rules say", f'<b style="color:{color}">{html.escape(rule)}</b>'))
        rows.append(("your decision", f"<b>{dec['decision']}</b> ({html.escape(dec['time'][:19])})"
                     if dec else "<i>none</i>"))
        body = "".join(f'<tr><td style="padding:1px 8px 1px 0;color:#555;white-space:nowrap">{k}</td><td>{v}</td></tr>'
                       for k, v in rows)
        self.info.value = f'<table style="font-size:90%;line-height:1.3">{body}</table>'

    def _mark_current(self) -> None:
        if self.kind == "bqplot":
            if self.current is None:
                self._highlight.x, self._highlight.y = [], []
            else:
                r = self.table.iloc[int(self._pos[self.current])]
                with self._highlight.hold_sync():
                    self._highlight.x, self._highlight.y = [float(r["psnr"])], [float(r["ssim"])]
        else:
            self._draw_static_scatter()

    def _draw_static_scatter(self) -> None:
        from eo_sr.viz.widgets import new_figure, show_figure

        fig = new_figure((5.6, 4.2))
        ax = fig.add_subplot()
        plot_qc_scatter(self.table, ax=ax, highlight=[self.current] if self.current else None,
                        title="SSIM against PSNR (HR vs bicubic LR)")
        if self.ssim_range is not None:
            (s0, s1), (p0, p1) = self.ssim_range.value, self.psnr_range.value
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((p0, s0), p1 - p0, s1 - s0, fill=False, ls="--", ec="gray"))
        show_figure(self.scatter_output, fig)

    # ------------------------------------------------------------- decisions

    def decide(self, decision: str, patch_id: str | None = None) -> None:
        """Record ``"keep"`` or ``"drop"`` for a patch (default: the shown one)."""
        import pandas as pd

        if decision not in DECISIONS:
            raise InvalidInputError(f"a decision is 'keep' or 'drop', got {decision!r}")
        patch_id = patch_id if patch_id is not None else self.current
        if patch_id is None:
            self._show_status("no patch shown: nothing to decide", kind="error")
            return
        if patch_id not in self._pos.index:
            raise InvalidInputError(f"unknown patch id {patch_id!r}")
        self.decisions[patch_id] = {"decision": decision, "time": pd.Timestamp.now(tz="UTC").isoformat()}
        self._unsaved.add(patch_id)
        self._refresh_list(show=self.current)
        self._show_status(f"{decision}: {html.escape(patch_id)}")

    def decisions_frame(self):
        """The decisions as a table: ``patch_id``, ``decision``, ``time``."""
        return decisions_frame(self.decisions)

    def save(self) -> Path:
        """Write the decisions to :attr:`decisions_path` (atomically); return the path."""
        path = save_decisions(self.decisions, self.decisions_path)
        self._unsaved.clear()
        self._show_status(f"saved {len(self.decisions)} decision(s) to {html.escape(str(path))}", kind="ok")
        return path

    def _save_clicked(self) -> None:
        try:
            self.save()
        except (OSError, EoSrError) as exc:
            self._show_status(f"could not save: {html.escape(str(exc))}", kind="error")

    def table_with_decisions(self):
        """The QC table with the decisions applied (see :func:`apply_decisions`)."""
        return apply_decisions(self.table, self.decisions)

    def _show_status(self, text: str | None = None, *, kind: str = "info") -> None:
        from eo_sr.viz.widgets import message_html

        n = len(self.decisions)
        drops = sum(d["decision"] == "drop" for d in self.decisions.values())
        summary = (f"{n} decision(s): {n - drops} keep, {drops} drop; "
                   f"{len(self._unsaved)} unsaved" if n else "no decision yet")
        self.status.value = message_html((f"{text}<br>" if text else "") + summary, kind=kind)

    # ------------------------------------------------------------- app

    def app(self) -> widgets.VBox:
        """The explorer under a heading, as the top-level widget of the Voila app."""
        t = self.table
        dropped = int((~t["keep"].astype(bool)).sum()) if "keep" in t.columns else 0
        how = ("click a point, or switch to brush or lasso and select several"
               if self.kind == "bqplot" else "narrow the SSIM and PSNR ranges")
        head = widgets.HTML(
            f"<h2 style='margin:4px 0'>eo-sr quality control</h2>"
            f"<div>{len(t)} patch pairs of <code>{html.escape(str(self.reader.path))}</code>; the rules drop "
            f"{dropped}. On the scatter, {how}; pick a patch in the list, look at it, then Keep or Drop it "
            f"and Save (to <code>{html.escape(str(self.decisions_path))}</code>).</div>")
        return widgets.VBox([head, self])
