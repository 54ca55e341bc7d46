"""When scenes were taken: HR and LR acquisitions on one time axis.

:func:`plot_timeline` draws one row per LR tile (or per LR collection when the
scenes carry no tile) and one row per HR collection, with time on the x axis:

* LR scenes are circles coloured by their cloud cover (0-100 %);
* HR scenes are diamonds, black, or coloured by their matching status when a
  match report is given (matched, multiple, unmatched);
* a solid line joins each selected (HR, LR) pair, a dashed one each other
  candidate, and a pale bar around every HR scene shows the time window
  (``max_days``) in which its partners may lie.

It is the picture behind matching (notebook 03): an HR scene with no LR
circle in its window has no partner; one with a circle in the window that is red
(cloudy) is too cloudy; one with two circles in the window (two dates, or two
overlapping tiles of one date) has several candidates.

Examples
--------
>>> from eo_sr import demo, matching, viz
>>> world = demo.generate("tiny")                                          # doctest: +SKIP
>>> hr, lr = world.items(demo.HR_COLLECTION), world.items(demo.LR_COLLECTION)  # doctest: +SKIP
>>> result = matching.match_scenes(hr, lr, **demo.MATCH_CRITERIA)          # doctest: +SKIP
>>> viz.plot_timeline(hr, lr, pairs=result, report=result)                 # doctest: +SKIP
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from eo_sr.errors import InvalidInputError

__all__ = ["STATUS_COLORS", "plot_timeline", "timeline_frame"]

#: Colours of HR markers by matching status (see :func:`eo_sr.matching.match_scenes`).
STATUS_COLORS = {"matched": "#2ca02c", "multiple": "#ff7f0e", "unmatched": "#d62728"}
HR_COLOR = "#222222"
PAIR_COLOR = "#333333"
CANDIDATE_COLOR = "#888888"
WINDOW_COLOR = "#c6dbef"
#: Colour map of LR cloud cover: blue is clear, red is cloudy.
CLOUD_CMAP = "RdYlBu_r"

# An MGRS tile code inside an item id: "36SWD" in "S2A_36SWD_20220110_0_L2A" (Earth Search)
# or "T36SWD" in "S2A_MSIL2A_..._T36SWD_..." (Planetary Computer, ESA).
_MGRS_IN_ID = re.compile(r"(?:^|_)T?(\d{1,2}[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V])(?=_|$)")
_TILE_COLUMNS = ("tile", "grid:code", "s2:mgrs_tile")


# ----------------------------------------------------------------- the table


def _tile_of_properties(props: Mapping) -> str | None:
    """The tile an item belongs to, from the properties real providers use."""
    code = props.get("grid:code")
    if isinstance(code, str) and code:
        return code.split("-", 1)[1] if code.upper().startswith(("MGRS-", "WRS2-", "WRS-")) else code
    if props.get("s2:mgrs_tile"):
        return str(props["s2:mgrs_tile"])
    zone, band, square = (props.get(k) for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"))
    if zone is not None and band and square:
        return f"{int(zone):02d}{band}{square}"
    path, row = props.get("landsat:wrs_path"), props.get("landsat:wrs_row")
    if path is not None and row is not None:
        return f"{int(path):03d}/{int(row):03d}"
    return None


def _tile_of_id(item_id: Any) -> str | None:
    m = _MGRS_IN_ID.search(str(item_id)) if item_id is not None else None
    return m.group(1) if m else None


def timeline_frame(scenes):
    """The table :func:`plot_timeline` draws: one row per scene.

    Parameters
    ----------
    scenes : pystac.ItemCollection, list of items or item dicts, or DataFrame
        A search result, or a table with at least ``id`` and ``datetime`` columns
        (such as :func:`eo_sr.viz.footprints_frame` or
        :func:`eo_sr.stac.to_geodataframe` make).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``collection``, ``datetime`` (UTC), ``eo:cloud_cover``
        (NaN when unknown) and ``tile``. The tile is read from the item properties
        (``grid:code``, ``s2:mgrs_tile``, ``mgrs:*``, ``landsat:wrs_*``), from a
        ``tile``/``grid:code``/``s2:mgrs_tile`` column of a table, or else from an
        MGRS code in the id; None when none of them says.

    Raises
    ------
    InvalidInputError
        A table lacks ``id`` or ``datetime``, an element is not an item, or a
        scene has no acquisition time.
    """
    import pandas as pd

    columns = ["id", "collection", "datetime", "eo:cloud_cover", "tile"]
    if isinstance(scenes, pd.DataFrame):
        missing = [c for c in ("id", "datetime") if c not in scenes.columns]
        if missing:
            raise InvalidInputError(f"the scene table lacks the column(s) {missing}; it has {list(scenes.columns)}")
        frame = pd.DataFrame({"id": scenes["id"].to_numpy(), "datetime": scenes["datetime"].to_numpy()})
        frame["collection"] = scenes["collection"].to_numpy() if "collection" in scenes.columns else None
        frame["eo:cloud_cover"] = (pd.to_numeric(scenes["eo:cloud_cover"], errors="coerce").to_numpy()
                                   if "eo:cloud_cover" in scenes.columns else math.nan)
        column = next((c for c in _TILE_COLUMNS if c in scenes.columns), None)
        if column is not None:
            frame["tile"] = [_tile_of_properties({"grid:code": v}) if column == "grid:code" else v
                             for v in scenes[column]]
        else:
            frame["tile"] = [_tile_of_id(i) for i in frame["id"]]
    else:
        from eo_sr.viz.maps import item_dicts

        rows = []
        for d in item_dicts(scenes):
            props = d.get("properties") or {}
            cloud = props.get("eo:cloud_cover")
            rows.append({
                "id": d.get("id"), "collection": d.get("collection"),
                "datetime": props.get("datetime") or props.get("start_datetime"),
                "eo:cloud_cover": float(cloud) if cloud is not None else math.nan,
                "tile": _tile_of_properties(props) or _tile_of_id(d.get("id")),
            })
        frame = pd.DataFrame(rows, columns=columns)
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    if frame["datetime"].isna().any():
        bad = frame.loc[frame["datetime"].isna(), "id"].tolist()[:5]
        raise InvalidInputError(f"scene(s) {bad} have no acquisition time; a timeline needs one per scene")
    frame["eo:cloud_cover"] = frame["eo:cloud_cover"].astype(float)
    return frame[columns].reset_index(drop=True)


def _pair_table(pairs, attribute: str):
    """(hr_id, lr_id) rows from a MatchResult, a DataFrame or a list of tuples."""
    import pandas as pd

    if pairs is None:
        return pd.DataFrame(columns=["hr_id", "lr_id"])
    if hasattr(pairs, attribute) and hasattr(pairs, "report"):  # a MatchResult
        pairs = getattr(pairs, attribute)
    if isinstance(pairs, pd.DataFrame):
        missing = [c for c in ("hr_id", "lr_id") if c not in pairs.columns]
        if missing:
            raise InvalidInputError(f"the {attribute} table lacks the column(s) {missing}; "
                                    "pass a MatchResult or a table with hr_id and lr_id")
        return pairs[["hr_id", "lr_id"]].astype(str).reset_index(drop=True)
    try:
        rows = [(str(h), str(lr)) for h, lr in pairs]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{attribute} must be a MatchResult, a DataFrame with hr_id and lr_id, "
                                f"or (hr_id, lr_id) tuples; got {type(pairs).__name__}") from None
    return pd.DataFrame(rows, columns=["hr_id", "lr_id"])


def _status_map(report) -> dict[str, str]:
    import pandas as pd

    if report is None:
        return {}
    if hasattr(report, "report") and hasattr(report, "pairs"):  # a MatchResult
        report = report.report
    if isinstance(report, pd.DataFrame):
        if not {"hr_id", "status"} <= set(report.columns):
            raise InvalidInputError("the report needs hr_id and status columns (MatchResult.report)")
        return dict(zip(report["hr_id"].astype(str), report["status"].astype(str)))
    if isinstance(report, Mapping):
        return {str(k): str(v) for k, v in report.items()}
    raise InvalidInputError(f"report must be a MatchResult, its report table or a {{hr_id: status}} mapping, "
                            f"got {type(report).__name__}")


def _row_labels(frame, role: str, multi_collection: bool) -> list[str]:
    """"LR 36SWD" (a tile), "LR demo-s2-l2a" (a collection without tiles), "HR demo-hr"."""
    labels = []
    for coll, tile in zip(frame["collection"], frame["tile"]):
        parts = [role]
        if coll is not None and (role == "HR" or tile is None or multi_collection):
            parts.append(str(coll))
        if role == "LR" and tile is not None:
            parts.append(str(tile))
        labels.append(" ".join(parts))
    return labels


# ----------------------------------------------------------------- the figure


def plot_timeline(hr_frame, lr_frame, *, pairs=None, ax=None, candidates=None, report=None,
                  max_days: float | None = None, max_cloud_cover: float | None = None,
                  title: str | None = "HR and LR acquisitions", legend: bool = True, colorbar: bool = True):
    """HR and LR acquisitions on one time axis, with the matched pairs.

    Parameters
    ----------
    hr_frame, lr_frame : pystac.ItemCollection, list of items or item dicts, or DataFrame
        The HR and the LR scenes; what :func:`timeline_frame` accepts.
    pairs : MatchResult, DataFrame or sequence of (hr_id, lr_id), optional
        The selected pairs (``MatchResult.pairs``), drawn as solid lines.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure otherwise.
    candidates : MatchResult, DataFrame or sequence of (hr_id, lr_id), optional
        Every candidate pair (``MatchResult.candidates``); those that are not
        among ``pairs`` are drawn as dashed lines.
    report : MatchResult, DataFrame or mapping of hr_id to status, optional
        Colour the HR markers by matching status (``MatchResult.report``).
    max_days : float, optional
        Draw the time window (HR time +- ``max_days``) around every HR scene.
    max_cloud_cover : float, optional
        Cross out the LR scenes over this cloud cover (percent) and mark the limit
        on the colour bar.
    title : str or None, optional
        Axes title.
    legend : bool, optional
        Add a legend below the axes.
    colorbar : bool, optional
        Add a colour bar of LR cloud cover.

    Returns
    -------
    matplotlib.axes.Axes
        The markers are scatter collections in ``ax.collections``: the LR scenes
        in one with ``get_gid() == "lr"``, the HR scenes in one per HR status (or
        a single one) with gid ``"hr"``, one marker per scene. The pair lines are
        one :class:`~matplotlib.collections.LineCollection` with gid ``"pairs"``
        (one segment per pair), the other candidates one with gid
        ``"candidates"``, the time windows one with gid ``"windows"``.

    Raises
    ------
    InvalidInputError
        A pair or a candidate names a scene that is not in the frames, or an
        argument has the wrong form.
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    hr = timeline_frame(hr_frame)
    lr = timeline_frame(lr_frame)
    pair_rows = _pair_table(pairs, "pairs")
    cand_rows = _pair_table(candidates, "candidates")
    status = _status_map(report)
    if max_days is not None and not (isinstance(max_days, (int, float)) and max_days > 0):
        raise InvalidInputError(f"max_days must be a positive number of days, got {max_days!r}")
    if max_cloud_cover is not None and not 0 <= float(max_cloud_cover) <= 100:
        raise InvalidInputError(f"max_cloud_cover is a percentage between 0 and 100, got {max_cloud_cover!r}")

    # Rows: LR tiles from the bottom (sorted), HR collections on top.
    lr["row"] = _row_labels(lr, "LR", lr["collection"].nunique() > 1)
    hr["row"] = _row_labels(hr, "HR", hr["collection"].nunique() > 1)
    lr_rows = sorted(lr["row"].unique(), reverse=True)
    hr_rows = sorted(hr["row"].unique(), reverse=True)
    rows = {label: i for i, label in enumerate(lr_rows + hr_rows)}
    for frame in (lr, hr):
        frame["y"] = [rows[r] for r in frame["row"]]
        frame["x"] = mdates.date2num(frame["datetime"].dt.tz_convert(None).to_numpy()) if len(frame) else []

    if ax is None:
        height = 1.9 + 0.55 * max(len(rows), 2) + (0.6 if legend else 0.0)
        _, ax = plt.subplots(figsize=(11, height), layout="constrained")
    cmap = colormaps[CLOUD_CMAP].with_extremes(bad="#dddddd")
    norm = Normalize(vmin=0.0, vmax=100.0)

    # Time windows around the HR scenes.
    handles = []
    if max_days is not None and len(hr):
        segments = [[(x - max_days, y), (x + max_days, y)] for x, y in zip(hr["x"], hr["y"])]
        windows = LineCollection(segments, colors=WINDOW_COLOR, linewidths=9, zorder=1,
                                 capstyle="butt")
        windows.set_gid("windows")
        ax.add_collection(windows)
        handles.append(Line2D([], [], color=WINDOW_COLOR, lw=6, label=f"time window (±{max_days:g} days)"))

    # Lines between pairs, under the markers.
    where = {i: (x, y) for i, x, y in zip(lr["id"], lr["x"], lr["y"])}
    where_hr = {i: (x, y) for i, x, y in zip(hr["id"], hr["x"], hr["y"])}

    def segments_of(table, what):
        missing_hr = sorted(set(table["hr_id"]) - set(where_hr))
        missing_lr = sorted(set(table["lr_id"]) - set(where))
        if missing_hr or missing_lr:
            raise InvalidInputError(
                f"{what} name scenes that are not in the frames: HR {missing_hr[:3]}, LR {missing_lr[:3]}; "
                "plot the same scenes that were matched")
        return [[where_hr[h], where[lr_id]] for h, lr_id in zip(table["hr_id"], table["lr_id"])]

    chosen = set(zip(pair_rows["hr_id"], pair_rows["lr_id"]))
    others = cand_rows[[(h, lr_id) not in chosen for h, lr_id in zip(cand_rows["hr_id"], cand_rows["lr_id"])]]
    if candidates is not None:
        dashed = LineCollection(segments_of(others, "candidates"), colors=CANDIDATE_COLOR, linewidths=1.2,
                                linestyles=(0, (4, 3)), zorder=2)
        dashed.set_gid("candidates")
        ax.add_collection(dashed)
        handles.append(Line2D([], [], color=CANDIDATE_COLOR, lw=1.2, ls=(0, (4, 3)), label="other candidate"))
    if pairs is not None:
        solid = LineCollection(segments_of(pair_rows, "pairs"), colors=PAIR_COLOR, linewidths=1.8, zorder=2)
        solid.set_gid("pairs")
        ax.add_collection(solid)
        handles.append(Line2D([], [], color=PAIR_COLOR, lw=1.8, label="selected pair"))

    # LR markers, coloured by cloud cover.
    lr_points = ax.scatter(lr["x"], lr["y"], c=lr["eo:cloud_cover"].to_numpy(), cmap=cmap, norm=norm,
                           plotnonfinite=True, s=70, marker="o", edgecolors="#333333", linewidths=0.7, zorder=3)
    lr_points.set_gid("lr")
    handles.insert(0, Line2D([], [], ls="", marker="o", markersize=8, markerfacecolor="#dddddd",
                             markeredgecolor="#333333", label="LR scene (colour: cloud cover)"))
    if max_cloud_cover is not None:
        over = lr[lr["eo:cloud_cover"] > float(max_cloud_cover)]
        if len(over):
            crosses = ax.scatter(over["x"], over["y"], marker="x", s=45, color="black", linewidths=1.3, zorder=4)
            crosses.set_gid("over_limit")
            handles.append(Line2D([], [], ls="", marker="x", color="black", label=f"over {max_cloud_cover:g} % cloud"))

    # HR markers: one collection per status (or one, black).
    if status:
        states = [status.get(i, "unknown") for i in hr["id"]]
        for name in [*STATUS_COLORS, *sorted(set(states) - set(STATUS_COLORS))]:
            sel = np.array([s == name for s in states], bool)
            if not sel.any():
                continue
            color = STATUS_COLORS.get(name, HR_COLOR)
            pts = ax.scatter(hr["x"][sel], hr["y"][sel], s=80, marker="D", color=color, edgecolors="black",
                             linewidths=0.7, zorder=5)
            pts.set_gid("hr")
            handles.append(Line2D([], [], ls="", marker="D", markersize=8, markerfacecolor=color,
                                  markeredgecolor="black", label=f"HR {name} ({int(sel.sum())})"))
    else:
        pts = ax.scatter(hr["x"], hr["y"], s=80, marker="D", color=HR_COLOR, edgecolors="black", linewidths=0.7,
                         zorder=5)
        pts.set_gid("hr")
        handles.insert(1, Line2D([], [], ls="", marker="D", markersize=8, markerfacecolor=HR_COLOR,
                                 markeredgecolor="black", label="HR scene"))

    # Axes: one labelled row per tile / collection, dates on x.
    ax.set_yticks(list(rows.values()), list(rows))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    if len(rows) > 1 and lr_rows and hr_rows:
        ax.axhline(len(lr_rows) - 0.5, color="#999999", lw=0.8)
    xs = np.concatenate([np.asarray(lr["x"], float), np.asarray(hr["x"], float)])
    if len(xs):
        pad = max(2.0, (xs.max() - xs.min()) * 0.03) + (max_days or 0.0)
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, axis="x", linewidth=0.4, alpha=0.6)
    ax.set_xlabel("acquisition time (UTC)")
    if title:
        ax.set_title(title)
    if colorbar:
        bar = ax.figure.colorbar(lr_points, ax=ax, pad=0.01, fraction=0.04, aspect=12)
        bar.set_label("LR cloud cover (%)")
        if max_cloud_cover is not None:
            bar.ax.axhline(float(max_cloud_cover), color="black", lw=2)
    if legend:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(handles), 4),
                  fontsize="small", frameon=False)
    return ax

