"""Small ipywidgets apps for the notebooks: choose a sensor pair, explore a search,
explore matching criteria, and choose among several LR matches by looking at them.

Every app is an :class:`ipywidgets.VBox` whose controls are attributes (so a test,
or a notebook cell, can set ``app.cloud.value = 40`` and read the result), and
whose state after each update is kept too (``app.items``, ``app.result``,
``app.choices``). Figures are drawn on a fresh :class:`matplotlib.figure.Figure`
(no pyplot state, nothing shown twice) and put into an :class:`ipywidgets.Output`
as a PNG, which works in a live kernel and is stored with the widget state when
a notebook is executed headless. Widgets need a running kernel: the notebooks
show a static figure beside each app for readers of the built book.

Sliders update on release (``continuous_update=False``), so dragging one does not
send a search or a matching run for every step it passes.
"""
from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from eo_sr.errors import EoSrError, InvalidInputError

__all__ = ["MatchChooser", "MatchExplorer", "PairChooser", "SearchExplorer", "describe_pair", "plot_hr_lr",
           "show_figure"]


# ----------------------------------------------------------------- helpers


def show_figure(output: widgets.Output, fig, *, dpi: int = 80) -> bytes:
    """Put a matplotlib figure into an Output widget as a PNG, replacing what it showed.

    Parameters
    ----------
    output : ipywidgets.Output
    fig : matplotlib.figure.Figure
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    bytes
        The PNG.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # legends outside the axes included
    png = buf.getvalue()
    width, height = (round(v * dpi) for v in fig.get_size_inches())
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                "text/plain": f"<Figure size {width}x{height}>"}},)
    return png


def new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def message_html(text: str, *, kind: str = "info") -> str:
    colors = {"info": "#f4f4f4", "ok": "#e8f5e9", "error": "#fdecea"}
    return (f'<div style="background:{colors[kind]};padding:6px 10px;border-radius:4px;'
            f'font-family:sans-serif;line-height:1.4">{text}</div>')


# ----------------------------------------------------------------- 01: sensor pair


def describe_pair(lr: str, hr: str, *, tolerance: float = 0.05):
    """Whether two registered sensors make an SR pair, in words (HTML).

    Parameters
    ----------
    lr, hr : str
        Registered sensor ids (see :func:`eo_sr.sensors.list_sensors`).
    tolerance : float, optional
        Passed to :func:`eo_sr.sensors.check_pair`.

    Returns
    -------
    (PairCheck or None, str)
        The check (None when the pair is not usable) and an HTML paragraph: the
        factor, the shared bands and the warnings, or the error message.
    """
    from eo_sr import sensors

    try:
        check = sensors.check_pair(lr, hr, tolerance=tolerance)
    except EoSrError as err:
        return None, message_html(f"<b>{html.escape(lr)} &rarr; {html.escape(hr)}: not a usable pair.</b><br>"
                              f"{html.escape(str(err))}", kind="error")
    rows = []
    for name, (lb, hb) in check.band_pairs.items():
        def nm(band):
            return f"{band.center_wavelength_nm:g} nm" if band.center_wavelength_nm is not None else "?"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(lb.name)} ({nm(lb)})</td>"
                    f"<td>{html.escape(hb.name)} ({nm(hb)})</td></tr>")
    table = ("<table style='border-collapse:collapse'><tr><th>band</th>"
             f"<th>{html.escape(check.lr.id)}</th><th>{html.escape(check.hr.id)}</th></tr>{''.join(rows)}</table>")
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in check.warnings)
    text = (f"<b>{html.escape(check.lr.id)} ({check.lr.gsd:g} m) &rarr; {html.escape(check.hr.id)} "
            f"({check.hr.gsd:g} m): factor {check.factor}</b> "
            f"(ratio {check.lr.gsd / check.hr.gsd:.2f}; one LR pixel holds {check.factor} x {check.factor} "
            f"= {check.factor ** 2} HR pixels)<br>{table}")
    if notes:
        text += f"warnings:<ul style='margin:0'>{notes}</ul>"
    return check, message_html(text, kind="ok")


class PairChooser(widgets.VBox):
    """Two dropdowns (LR sensor, HR sensor) and what :func:`describe_pair` says.

    Attributes
    ----------
    lr, hr : ipywidgets.Dropdown
        The sensors (values are registry ids).
    result : ipywidgets.HTML
        The factor and shared bands, or the error message.
    check : PairCheck or None
        The last check; None when the pair is not usable.
    """

    def __init__(self, sensor_ids: Sequence[str] | None = None, *, lr: str = "sentinel-2-l2a",
                 hr: str = "demo-hr", tolerance: float = 0.05):
        from eo_sr import sensors

        ids = list(sensor_ids) if sensor_ids is not None else sensors.list_sensors()
        options = [(f"{i} ({sensors.get_sensor(i).gsd:g} m)", sensors.get_sensor(i).id) for i in ids]
        known = [v for _, v in options]
        for role, value in (("lr", lr), ("hr", hr)):
            if sensors.get_sensor(value).id not in known:
                raise InvalidInputError(f"{role}={value!r} is not among the offered sensors {known}")
        style = {"description_width": "90px"}
        self.tolerance = tolerance
        self.lr = widgets.Dropdown(options=options, value=sensors.get_sensor(lr).id, description="LR sensor",
                                   style=style)
        self.hr = widgets.Dropdown(options=options, value=sensors.get_sensor(hr).id, description="HR sensor",
                                   style=style)
        self.result = widgets.HTML()
        self.check = None
        self.lr.observe(self.update, names="value")
        self.hr.observe(self.update, names="value")
        super().__init__([widgets.HBox([self.lr, self.hr]), self.result])
        self.update()

    def update(self, change=None) -> None:
        """Check the selected pair and show the answer."""
        self.check, self.result.value = describe_pair(self.lr.value, self.hr.value, tolerance=self.tolerance)


# ----------------------------------------------------------------- 02: search


class SearchExplorer(widgets.VBox):
    """A date-range slider and a cloud-limit slider that re-run a STAC search.

    Each change runs :func:`eo_sr.stac.search` against ``catalog`` and shows the
    number of scenes per collection and their footprints.

    Parameters
    ----------
    catalog : pystac_client.Client, str or LocalStacServer
        What :func:`eo_sr.stac.search` accepts (a client is fastest: it is opened once).
    collections : sequence of str
        The collections searched together.
    aoi : shapely geometry, GeoJSON dict or bbox
        The area of interest (lon/lat).
    start, end : date-like
        The range the date slider offers.
    step_days : int, optional
        Spacing of the slider's stops.
    max_cloud_cover : float, optional
        Initial cloud limit in percent; 100 means no limit (no filter is sent).
    figsize : (float, float), optional

    Attributes
    ----------
    dates : ipywidgets.SelectionRangeSlider
        The search's date range (``datetime.date`` values, both ends included).
    cloud : ipywidgets.FloatSlider
        The cloud limit (percent).
    count : ipywidgets.HTML
        The number of scenes found, per collection.
    output : ipywidgets.Output
        The footprint figure.
    items : pystac.ItemCollection or None
        The last result (None if the last search failed).
    counts : dict
        Scenes per collection in the last result.
    """

    def __init__(self, catalog, *, collections: Sequence[str], aoi, start, end, step_days: int = 1,
                 max_cloud_cover: float = 100.0, figsize=(6.5, 4.8)):
        import pandas as pd

        if isinstance(collections, str):
            collections = [collections]
        if not (isinstance(step_days, int) and step_days >= 1):
            raise InvalidInputError(f"step_days must be a positive integer, got {step_days!r}")
        days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize(), freq=f"{step_days}D")
        if len(days) < 2:
            raise InvalidInputError(f"the date range {start} .. {end} needs at least two stops of {step_days} day(s)")
        self.catalog, self.collections, self.aoi, self.figsize = catalog, list(collections), aoi, figsize
        self.dates = widgets.SelectionRangeSlider(
            options=[(d.strftime("%Y-%m-%d"), d.date()) for d in days], index=(0, len(days) - 1),
            description="dates", continuous_update=False, layout=widgets.Layout(width="640px"),
            style={"description_width": "90px"})
        self.cloud = widgets.FloatSlider(value=float(max_cloud_cover), min=0.0, max=100.0, step=5.0,
                                         description="max cloud %", continuous_update=False,
                                         style={"description_width": "90px"}, layout=widgets.Layout(width="420px"))
        self.count = widgets.HTML()
        self.output = widgets.Output()
        self.items = None
        self.counts: dict[str, int] = {}
        self.dates.observe(self.update, names="value")
        self.cloud.observe(self.update, names="value")
        super().__init__([self.dates, self.cloud, self.count, self.output])
        self.update()

    def search(self):
        """Run the search with the sliders' values; return the items."""
        from eo_sr import stac

        start, end = self.dates.value
        limit = None if self.cloud.value >= 100 else float(self.cloud.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stac.EmptySearchWarning)
            return stac.search(self.catalog, collections=self.collections, aoi=self.aoi, datetime=(start, end),
                               max_cloud_cover=limit)

    def update(self, change=None) -> None:
        """Search again and show the count and the footprints."""
        from eo_sr.viz.maps import plot_footprints

        start, end = self.dates.value
        try:
            items = self.search()
        except EoSrError as err:
            self.items, self.counts = None, {}
            self.count.value = message_html(f"search failed: {html.escape(str(err))}", kind="error")
            return
        self.items = items
        self.counts = {c: sum(1 for it in items if it.collection_id == c) for c in self.collections}
        limit = "no cloud limit" if self.cloud.value >= 100 else f"cloud cover &le; {self.cloud.value:g} %"
        per = ", ".join(f"{html.escape(c)}: {n}" for c, n in self.counts.items())
        self.count.value = message_html(f"<b>{len(items)} scenes</b> from {start} to {end}, {limit} ({per})")
        fig = new_figure(self.figsize)
        ax = fig.add_subplot()
        plot_footprints(items, aoi=self.aoi, ax=ax, title=f"{len(items)} footprints, {start} to {end}")
        show_figure(self.output, fig)


# ----------------------------------------------------------------- 03: matching


class MatchExplorer(widgets.VBox):
    """Sliders for the time window and the cloud limit that re-run matching.

    Each change runs :func:`eo_sr.matching.match_scenes` and shows the counts of
    matched, multiply matched and unmatched HR scenes (with the reasons) and the
    timeline (:func:`eo_sr.viz.plot_timeline`).

    Parameters
    ----------
    hr_items, lr_items : pystac.ItemCollection or list of items
        The scenes to match.
    max_days, max_cloud_cover, min_coverage : float, optional
        Initial criteria (see :func:`~eo_sr.matching.match_scenes`); the first two
        get sliders.
    strategy : str, optional
        Selection strategy.
    figsize : (float, float), optional

    Attributes
    ----------
    max_days, cloud : ipywidgets.FloatSlider
    counts : ipywidgets.HTML
    output : ipywidgets.Output
        The timeline.
    result : MatchResult
        The last matching result.
    """

    def __init__(self, hr_items, lr_items, *, max_days: float = 3.0, max_cloud_cover: float = 20.0,
                 min_coverage: float = 0.9, strategy: str = "closest", figsize=(10.5, 4.6)):
        from eo_sr import matching
        from eo_sr.viz.timeline import timeline_frame

        # Tables built once: matching and the timeline re-use them on every change.
        self._hr, self._lr = matching.scene_table(hr_items), matching.scene_table(lr_items)
        self._hr_t, self._lr_t = timeline_frame(hr_items), timeline_frame(lr_items)
        self.min_coverage, self.strategy, self.figsize = min_coverage, strategy, figsize
        style = {"description_width": "90px"}
        self.max_days = widgets.FloatSlider(value=float(max_days), min=0.5, max=15.0, step=0.5,
                                            description="max days", continuous_update=False, style=style,
                                            layout=widgets.Layout(width="420px"))
        self.cloud = widgets.FloatSlider(value=float(max_cloud_cover), min=0.0, max=100.0, step=5.0,
                                         description="max cloud %", continuous_update=False, style=style,
                                         layout=widgets.Layout(width="420px"))
        self.counts = widgets.HTML()
        self.output = widgets.Output()
        self.result = None
        self.max_days.observe(self.update, names="value")
        self.cloud.observe(self.update, names="value")
        super().__init__([widgets.HBox([self.max_days, self.cloud]), self.counts, self.output])
        self.update()

    def update(self, change=None) -> None:
        """Match again and show the counts, the reasons and the timeline."""
        from eo_sr import matching
        from eo_sr.viz.timeline import plot_timeline

        days, cloud = float(self.max_days.value), float(self.cloud.value)
        result = matching.match_scenes(self._hr, self._lr, max_days=days, max_cloud_cover=cloud,
                                       min_coverage=self.min_coverage, strategy=self.strategy)
        self.result = result
        status = result.report["status"].value_counts()
        parts = [f"<b>{status.get('matched', 0)}</b> matched", f"<b>{status.get('multiple', 0)}</b> multiple",
                 f"<b>{status.get('unmatched', 0)}</b> unmatched"]
        reasons = "".join(f"<li>{html.escape(r.hr_id)}: <i>{html.escape(str(r.reason))}</i></li>"
                          for r in result.unmatched.itertuples())
        text = f"max {days:g} days, cloud &le; {cloud:g} %: " + ", ".join(parts)
        if reasons:
            text += f"<ul style='margin:0'>{reasons}</ul>"
        self.counts.value = message_html(text)
        fig = new_figure(self.figsize)
        ax = fig.add_subplot()
        plot_timeline(self._hr_t, self._lr_t, pairs=result, candidates=result, report=result, max_days=days,
                      max_cloud_cover=cloud, ax=ax, title=None)
        show_figure(self.output, fig)


def _items_by_id(*collections) -> dict[str, Any]:
    out = {}
    for items in collections:
        if isinstance(items, Mapping):
            out.update(items)
            continue
        for it in items:
            out[it.id] = it
    return out


def _crs_of(item) -> str | None:
    props = item.properties
    if props.get("proj:code"):
        return props["proj:code"]
    if props.get("proj:epsg"):
        return f"EPSG:{props['proj:epsg']}"
    for asset in item.assets.values():
        extra = asset.extra_fields
        if extra.get("proj:code"):
            return extra["proj:code"]
        if extra.get("proj:epsg"):
            return f"EPSG:{extra['proj:epsg']}"
    return None


def plot_hr_lr(hr_item, lr_items, *, fig=None, max_size: int = 600, infos: Sequence[str | None] | None = None):
    """An HR scene and one or more LR scenes side by side, each LR one zoomed on the
    HR footprint (outlined, dashed).

    Parameters
    ----------
    hr_item : pystac.Item
    lr_items : pystac.Item or sequence of pystac.Item
    fig : matplotlib.figure.Figure, optional
        Where to draw (``1 + len(lr_items)`` axes are added); a new pyplot figure otherwise.
    max_size : int, optional
        Longest side read of each image (see :func:`eo_sr.viz.show_rgb`).
    infos : sequence of str or None, optional
        One line per LR scene added to its title (e.g. time difference and cloud cover).

    Returns
    -------
    list of matplotlib.axes.Axes
        The HR axes first.
    """
    from matplotlib.patches import Rectangle

    from eo_sr.viz.figures import show_rgb
    from eo_sr.viz.maps import footprints_frame

    lr_items = [lr_items] if hasattr(lr_items, "assets") else list(lr_items)
    infos = list(infos) if infos is not None else [None] * len(lr_items)
    if len(infos) != len(lr_items):
        raise InvalidInputError(f"give one info line per LR scene ({len(lr_items)}), got {len(infos)}")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(5.2 * (1 + len(lr_items)), 4.8), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, 1 + len(lr_items))))
    show_rgb(hr_item, ax=axes[0], max_size=max_size,
             title=f"HR {hr_item.id}\n{hr_item.datetime:%Y-%m-%d %H:%M} UTC")
    footprint = footprints_frame([hr_item])
    for ax, item, info in zip(axes[1:], lr_items, infos):
        title = f"LR {item.id}\n{item.datetime:%Y-%m-%d %H:%M} UTC"
        show_rgb(item, ax=ax, max_size=max_size, title=title + (f"\n{info}" if info else ""))
        crs = _crs_of(item)
        if crs is not None:
            x0, y0, x1, y1 = footprint.to_crs(crs).total_bounds
            pad = 0.05 * max(x1 - x0, y1 - y0)
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=1.5, ls="--"))
            ax.set_xlim(x0 - pad, x1 + pad)
            ax.set_ylim(y0 - pad, y1 + pad)
    return axes


class MatchChooser(widgets.VBox):
    """Choose among several matching LR scenes by looking at them.

    A dropdown of the multiply matched HR scenes, toggle buttons of their
    candidate LR scenes, the HR scene and the selected LR scene side by side (the
    LR one zoomed on the HR footprint, outlined), and a button that records the
    choice. The choices are shown in a table below and kept in :attr:`choices`.

    Parameters
    ----------
    result : MatchResult
        From :func:`eo_sr.matching.match_scenes`.
    hr_items, lr_items : pystac.ItemCollection, list of items, or mapping of id to item
        The scenes that were matched (their assets are read to show them).
    max_size : int, optional
        Longest side read of each image.
    figsize : (float, float), optional

    Attributes
    ----------
    scene : ipywidgets.Dropdown
        The HR scene (values are HR ids).
    candidate : ipywidgets.ToggleButtons
        Its candidate LR scenes (values are LR ids); the matcher's choice first.
    keep : ipywidgets.Button
        Records ``candidate.value`` as the choice for ``scene.value``.
    output : ipywidgets.Output
        The two images.
    table : ipywidgets.HTML
        The choices so far.
    choices : dict
        HR id -> chosen LR id.
    """

    def __init__(self, result, hr_items, lr_items, *, max_size: int = 600, figsize=(10.5, 4.8)):
        self._items = _items_by_id(hr_items, lr_items)
        self._max_size, self.figsize = int(max_size), figsize
        multiple = result.multiple
        self._candidates = {}
        self._suggested = {}
        for row in multiple.itertuples():
            ids = list(row.candidate_ids)
            first = list(row.lr_ids)[:1]
            self._candidates[row.hr_id] = first + [i for i in ids if i not in first]
            self._suggested[row.hr_id] = first[0] if first else ids[0]
        wanted = {i for ids in self._candidates.values() for i in ids} | set(self._candidates)
        missing = sorted(wanted - set(self._items))
        if missing:
            raise InvalidInputError(f"no item for the scene(s) {missing[:3]}: pass the items that were matched")
        cands = result.candidates
        self._facts = {(r.hr_id, r.lr_id): r for r in cands.itertuples()}
        self.choices: dict[str, str] = {}
        self._pngs: dict[tuple[str, str], bytes] = {}
        options = [(f"{h} ({self._items[h].datetime:%Y-%m-%d})", h) for h in self._candidates]
        self.scene = widgets.Dropdown(options=options, description="HR scene",
                                      style={"description_width": "90px"}, layout=widgets.Layout(width="460px"))
        self.candidate = widgets.ToggleButtons(options=[], description="LR scene",
                                               style={"description_width": "90px", "button_width": "260px"})
        self.keep = widgets.Button(description="Keep this LR scene", button_style="success", icon="check")
        self.output = widgets.Output()
        self.table = widgets.HTML()
        self._quiet = False
        self.scene.observe(self._on_scene, names="value")
        self.candidate.observe(self._on_candidate, names="value")
        self.keep.on_click(lambda _: self.choose())
        super().__init__([self.scene, self.candidate, self.keep, self.output, self.table])
        if self._candidates:
            self._on_scene()
        else:
            self.table.value = message_html("No HR scene has several matching LR scenes: nothing to choose.")
        self._show_table()

    def _on_scene(self, change=None) -> None:
        hr_id = self.scene.value
        if hr_id is None:
            return
        self._quiet = True
        try:
            self.candidate.options = [(self._label(hr_id, lr_id), lr_id) for lr_id in self._candidates[hr_id]]
            self.candidate.value = self.choices.get(hr_id, self._suggested[hr_id])
        finally:
            self._quiet = False
        self.render()

    def _on_candidate(self, change=None) -> None:
        if not self._quiet:
            self.render()

    def _label(self, hr_id: str, lr_id: str) -> str:
        fact = self._facts.get((hr_id, lr_id))
        mark = " (matcher)" if lr_id == self._suggested.get(hr_id) else ""
        if fact is None:
            return lr_id + mark
        return f"{lr_id.split('_L2A')[0]} {fact.delta_days:+.1f} d{mark}"

    def describe(self, hr_id: str, lr_id: str) -> str | None:
        """One line about a candidate: time difference, cloud cover, coverage of the HR footprint."""
        fact = self._facts.get((hr_id, lr_id))
        if fact is None:
            return None
        cloud = "cloud cover unknown" if fact.lr_cloud_cover != fact.lr_cloud_cover else \
            f"cloud {fact.lr_cloud_cover:.1f} %"  # NaN: the item says nothing of clouds
        return f"{fact.delta_days:+.2f} days, {cloud}, covers {fact.coverage:.0%} of the HR footprint"

    def render(self) -> bytes | None:
        """Show the HR scene and the selected LR candidate side by side."""
        hr_id, lr_id = self.scene.value, self.candidate.value
        if hr_id is None or lr_id is None:
            return None
        key = (hr_id, lr_id)
        if key not in self._pngs:
            info = self.describe(hr_id, lr_id)
            fig = new_figure(self.figsize)
            plot_hr_lr(self._items[hr_id], self._items[lr_id], fig=fig, max_size=self._max_size, infos=[info])
            self._pngs[key] = show_figure(self.output, fig)
        else:
            png = self._pngs[key]
            self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                    "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                             "text/plain": "<Figure>"}},)
        return self._pngs[key]

    def choose(self, lr_id: str | None = None) -> None:
        """Record ``lr_id`` (default: the selected candidate) for the selected HR scene."""
        hr_id = self.scene.value
        if hr_id is None:
            return
        lr_id = lr_id if lr_id is not None else self.candidate.value
        if lr_id not in self._candidates[hr_id]:
            raise InvalidInputError(f"{lr_id!r} is not a candidate of {hr_id}: {self._candidates[hr_id]}")
        self.choices[hr_id] = lr_id
        self._show_table()

    def choices_frame(self):
        """The choices as a table: hr_id, chosen lr_id, the matcher's choice, and whether they agree."""
        import pandas as pd

        rows = [{"hr_id": h, "chosen_lr_id": lr_id, "matcher_lr_id": self._suggested[h],
                 "same_as_matcher": lr_id == self._suggested[h]} for h, lr_id in self.choices.items()]
        return pd.DataFrame(rows, columns=["hr_id", "chosen_lr_id", "matcher_lr_id", "same_as_matcher"])

    def _show_table(self) -> None:
        if not self._candidates:
            return
        frame = self.choices_frame()
        if frame.empty:
            self.table.value = message_html("No choice recorded yet: pick an LR scene and press the button.")
        else:
            self.table.value = message_html(f"<b>{len(frame)} of {len(self._candidates)} choices recorded</b>"
                                        + frame.to_html(index=False, border=0))

