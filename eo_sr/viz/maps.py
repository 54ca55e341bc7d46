"""Where scenes are: STAC item footprints as a table, an interactive map and a static figure.

The three functions share one view of a search result, :func:`footprints_frame`
(a GeoDataFrame with one row per item), and one colour per collection, so the
interactive map (:func:`footprint_map`, leafmap with the ipyleaflet backend) and
its static twin (:func:`plot_footprints`, matplotlib) show the same thing. The
static figure is what readers of the built book see when they are offline.

Examples
--------
>>> from eo_sr import demo, viz
>>> world = demo.generate("tiny")                              # doctest: +SKIP
>>> viz.footprint_map(world.items(), aoi=world.aoi)            # doctest: +SKIP
>>> viz.plot_footprints(world.items(), aoi=world.aoi)          # doctest: +SKIP
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from eo_sr.errors import InvalidInputError

__all__ = ["footprints_frame", "footprint_map", "plot_footprints"]

#: Columns of :func:`footprints_frame`, in order.
COLUMNS = ["id", "collection", "datetime", "eo:cloud_cover", "platform", "gsd", "geometry"]

#: Colours given to collections, coarsest GSD (the LR sensor) first.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
AOI_COLOR = "#222222"


# ----------------------------------------------------------------- the table


def item_dicts(items) -> list[dict]:
    """Turn an ItemCollection, a FeatureCollection dict, an Item, or a list of
    Items / item dicts into a list of item dicts."""
    if isinstance(items, Mapping):
        if items.get("type") == "FeatureCollection":
            items = items.get("features", [])
        else:
            items = [items]
    elif hasattr(items, "to_dict") and hasattr(items, "assets"):  # a single pystac.Item
        items = [items]
    out = []
    for i, it in enumerate(items):
        if isinstance(it, Mapping):
            d = it
        elif hasattr(it, "to_dict"):
            d = it.to_dict(include_self_link=False, transform_hrefs=False)
        else:
            raise InvalidInputError(
                f"item {i} is a {type(it).__name__}; pass pystac Items, item dicts or a pystac.ItemCollection"
            )
        if not d.get("geometry"):
            raise InvalidInputError(f"item {d.get('id', i)!r} has no geometry, so it has no footprint to show")
        out.append(d)
    return out


def footprints_frame(items):
    """STAC items as a GeoDataFrame, one row per item.

    Parameters
    ----------
    items : pystac.ItemCollection, list of pystac.Item or dict, or GeoDataFrame
        A search result. A GeoJSON FeatureCollection dict and a single item are
        accepted too; a GeoDataFrame made by this function is returned as is.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``id``, ``collection``, ``datetime`` (UTC timestamps),
        ``eo:cloud_cover`` (percent, NaN when unknown), ``platform``, ``gsd``
        (metres, NaN when unknown) and ``geometry`` (the footprint), in EPSG:4326.

    Raises
    ------
    InvalidInputError
        If an element is neither an item nor an item dict, or has no geometry.
    """
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import shape

    if isinstance(items, gpd.GeoDataFrame):
        missing = [c for c in COLUMNS if c not in items.columns]
        if missing:
            raise InvalidInputError(f"the GeoDataFrame lacks the columns {missing}; make it with footprints_frame()")
        return items
    rows = []
    for d in item_dicts(items):
        props = d.get("properties") or {}
        when = props.get("datetime") or props.get("start_datetime")
        cloud, gsd = props.get("eo:cloud_cover"), props.get("gsd")
        rows.append({
            "id": d.get("id"),
            "collection": d.get("collection"),
            "datetime": pd.to_datetime(when, utc=True) if when else pd.NaT,
            "eo:cloud_cover": float(cloud) if cloud is not None else math.nan,
            "platform": props.get("platform"),
            "gsd": float(gsd) if gsd is not None else math.nan,
            "geometry": shape(d["geometry"]),
        })
    frame = gpd.GeoDataFrame(rows, columns=COLUMNS, geometry="geometry", crs="EPSG:4326")
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


# ----------------------------------------------------------------- shared styling


def _collection_styles(frame, colors: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Colour, label and role of each collection, coarsest GSD first.

    With two or more collections of different GSD, the coarsest is labelled
    ``LR`` and the finest ``HR``.
    """
    stats = []
    for coll, group in frame.groupby("collection", sort=True, dropna=False):
        gsds = group["gsd"].dropna()
        stats.append((coll, len(group), float(gsds.median()) if len(gsds) else math.nan))
    stats.sort(key=lambda s: (math.isnan(s[2]), -s[2] if not math.isnan(s[2]) else 0.0, str(s[0])))
    known = [s[2] for s in stats if not math.isnan(s[2])]
    styles = {}
    for i, (coll, n, gsd) in enumerate(stats):
        role = None
        if len(set(known)) > 1 and gsd == max(known):
            role = "LR"
        elif len(set(known)) > 1 and gsd == min(known):
            role = "HR"
        color = (colors or {}).get(coll, PALETTE[i % len(PALETTE)])
        what = f"{role}, " if role else ""
        styles[coll] = {"color": color, "role": role, "n": n,
                        "label": f"{coll} ({what}{n} scene{'s' if n != 1 else ''})"}
    return styles


def _layer_alpha(geoms, total: float) -> float:
    """Opacity for each of ``geoms`` such that a stack of identical footprints (a
    tile seen on many dates) reaches ``total``, not a solid block."""
    counts: dict[bytes, int] = {}
    for g in geoms:
        key = g.normalize().wkb if g is not None else b""
        counts[key] = counts.get(key, 0) + 1
    stack = max(counts.values(), default=1)
    return float(1.0 - (1.0 - min(max(total, 0.0), 1.0)) ** (1.0 / stack))


def aoi_geometry(aoi):
    """A shapely geometry from a geometry, a GeoJSON dict or a ``[w, s, e, n]`` box."""
    from shapely.geometry import box, shape
    from shapely.geometry.base import BaseGeometry

    if aoi is None or isinstance(aoi, BaseGeometry):
        return aoi
    if isinstance(aoi, Mapping):
        return shape(aoi.get("geometry", aoi))
    try:
        w, s, e, n = (float(v) for v in aoi)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"aoi must be a shapely geometry, a GeoJSON dict or [west, south, east, north], got {aoi!r}"
        ) from None
    return box(w, s, e, n)


def _polygons(geom):
    """The polygons of a (multi)polygon geometry."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def map_view(bounds, *, width_px: int, height_px: int) -> tuple[tuple[float, float], int]:
    """Centre (lat, lon) and the largest web-map zoom that shows ``bounds`` in a
    ``width_px`` x ``height_px`` map (no front-end needed, unlike ``fit_bounds``)."""
    w, s, e, n = bounds
    merc = lambda lat: math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))  # noqa: E731
    dx = max(e - w, 1e-9) / 360.0
    dy = max(merc(n) - merc(s), 1e-9) / (2 * math.pi)
    zoom = math.floor(min(math.log2(width_px / 256 / dx), math.log2(height_px / 256 / dy)) - 0.2)
    return ((s + n) / 2, (w + e) / 2), int(min(max(zoom, 1), 18))


# ----------------------------------------------------------------- interactive map


def _feature_collection(frame) -> dict:
    from shapely.geometry import mapping

    feats = []
    for rec in frame.to_dict("records"):
        when, cloud = rec["datetime"], rec["eo:cloud_cover"]
        feats.append({
            "type": "Feature",
            "geometry": mapping(rec["geometry"]),
            "properties": {
                "id": rec["id"], "collection": rec["collection"],
                "datetime": when.isoformat() if when == when else None,
                "eo:cloud_cover": round(float(cloud), 2) if cloud == cloud else None,
                "platform": rec["platform"],
            },
        })
    return {"type": "FeatureCollection", "features": feats}


def _info_html(props: Mapping) -> str:
    from html import escape

    cloud = props.get("eo:cloud_cover")
    lines = [f"<b>{escape(str(props.get('id')))}</b>",
             f"{escape(str(props.get('collection')))} &middot; {escape(str(props.get('platform')))}",
             f"date: {escape(str(props.get('datetime', ''))[:16].replace('T', ' '))} UTC",
             f"cloud cover: {cloud:.1f} %" if cloud is not None else "cloud cover: unknown"]
    return "<br>".join(lines)


def footprint_map(items, *, aoi=None, colors: Mapping[str, str] | None = None, height: int = 500,
                  width: int = 800, fill_opacity: float = 0.3, info: bool = True):
    """An interactive map of an area of interest and the footprints of STAC items.

    One GeoJSON layer per collection (coarsest GSD first, named
    ``"<collection> (LR, n scenes)"`` and so on), plus an ``"AOI"`` layer, a layer
    control and, with ``info=True``, a panel that shows the id, date, platform
    and cloud cover of the footprint under the mouse.

    Uses leafmap with the ipyleaflet backend. Building the map needs no network;
    basemap tiles do (offline they stay grey and nothing else breaks).

    Parameters
    ----------
    items : pystac.ItemCollection, list of items or item dicts, or GeoDataFrame
        What :func:`footprints_frame` accepts.
    aoi : shapely geometry, GeoJSON dict or [west, south, east, north], optional
        The area of interest (lon/lat). The map is centred and zoomed on it, or on
        the footprints when it is not given.
    colors : mapping of str to str, optional
        Colour per collection id; the default palette otherwise.
    height, width : int, optional
        Map size in pixels; the zoom level is chosen to fit this size.
    fill_opacity : float, optional
        Fill opacity reached where footprints of one collection stack most (a
        tile revisited on every date); each footprint gets a fraction of it.
    info : bool, optional
        Add the hover information panel.

    Returns
    -------
    leafmap.Map
    """
    import ipyleaflet
    import ipywidgets as widgets
    import leafmap

    frame = footprints_frame(items)
    aoi = aoi_geometry(aoi)
    bounds = aoi.bounds if aoi is not None else tuple(frame.total_bounds)
    if not frame.empty and aoi is None and not all(map(math.isfinite, bounds)):
        raise InvalidInputError("cannot place the map: the footprints have no finite bounds")
    center, zoom = map_view(bounds if all(map(math.isfinite, bounds)) else (-180, -60, 180, 60),
                         width_px=width, height_px=height)
    with warnings.catch_warnings():  # leafmap hands its own options on to ipyleaflet, which warns
        warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
        m = leafmap.Map(center=center, zoom=zoom, height=f"{height}px", draw_control=False,
                        measure_control=False, toolbar_control=False, search_control=False,
                        scale_control=True)

    panel = widgets.HTML(value="hover over a footprint", layout=widgets.Layout(max_width="320px"))

    def show(feature=None, **_):
        if feature is not None:
            panel.value = _info_html(feature.get("properties", {}))

    for coll, style in _collection_styles(frame, colors).items():
        sub = frame[frame["collection"] == coll]
        layer = ipyleaflet.GeoJSON(
            data=_feature_collection(sub), name=style["label"],
            style={"color": style["color"], "weight": 2, "opacity": 0.9, "fillColor": style["color"],
                   "fillOpacity": _layer_alpha(sub.geometry, fill_opacity)},
            hover_style={"weight": 4, "fillOpacity": min(1.0, fill_opacity + 0.2)},
        )
        if info:
            layer.on_hover(show)
            layer.on_click(show)
        m.add(layer)
    if aoi is not None:
        from shapely.geometry import mapping

        m.add(ipyleaflet.GeoJSON(
            data={"type": "FeatureCollection",
                  "features": [{"type": "Feature", "geometry": mapping(aoi), "properties": {"name": "AOI"}}]},
            name="AOI", style={"color": AOI_COLOR, "weight": 3, "dashArray": "6 4", "fill": False, "opacity": 1},
        ))
    if info:
        m.add(ipyleaflet.WidgetControl(widget=panel, position="bottomright"))
    m.add(ipyleaflet.LayersControl(position="topright"))
    return m


# ----------------------------------------------------------------- static figure


def plot_footprints(items, *, aoi=None, ax=None, colors: Mapping[str, str] | None = None,
                    fill_alpha: float = 0.3, title: str | None = "Scene footprints", legend: bool = True):
    """The static twin of :func:`footprint_map`: AOI and footprints on lon/lat axes.

    Each footprint polygon is one :class:`matplotlib.patches.Polygon` in
    ``ax.patches`` (one per part of a multi-polygon); the AOI outline is one line
    per ring in ``ax.lines``. The aspect ratio is corrected for latitude
    (1 / cos(latitude)), so distances look the same east-west and north-south.

    Parameters
    ----------
    items : pystac.ItemCollection, list of items or item dicts, or GeoDataFrame
        What :func:`footprints_frame` accepts.
    aoi : shapely geometry, GeoJSON dict or [west, south, east, north], optional
        The area of interest (lon/lat), drawn as a dashed outline.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure otherwise.
    colors : mapping of str to str, optional
        Colour per collection id; the default palette otherwise.
    fill_alpha : float, optional
        Fill opacity reached where footprints of one collection stack most (a
        tile revisited on every date); each footprint gets a fraction of it.
    title : str or None, optional
        Axes title.
    legend : bool, optional
        Add a legend (one entry per collection, plus the AOI).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Polygon

    frame = footprints_frame(items)
    aoi = aoi_geometry(aoi)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    handles = []
    for coll, style in _collection_styles(frame, colors).items():
        geoms = frame.loc[frame["collection"] == coll, "geometry"]
        alpha = _layer_alpha(geoms, fill_alpha)
        for geom in geoms:
            for poly in _polygons(geom):
                ax.add_patch(Polygon(list(poly.exterior.coords), closed=True, linewidth=1.2, zorder=2,
                                     facecolor=(*_rgb(style["color"]), alpha), edgecolor=style["color"]))
        handles.append(Patch(facecolor=(*_rgb(style["color"]), 0.25), edgecolor=style["color"],
                             label=style["label"]))
    return finish_lonlat_axes(ax, aoi, frame.total_bounds, handles, title=title, legend=legend, margin=0.04)


def finish_lonlat_axes(ax, aoi, bounds, handles: list, *, title, legend: bool, margin: float):
    """Draw the AOI (dashed), then set up longitude/latitude axes and the legend beside them."""
    from matplotlib.lines import Line2D

    if aoi is not None:
        for i, poly in enumerate(_polygons(aoi)):
            x, y = poly.exterior.xy
            ax.plot(x, y, color=AOI_COLOR, linestyle="--", linewidth=2, zorder=3, label="AOI" if i == 0 else None)
        handles.append(Line2D([], [], color=AOI_COLOR, linestyle="--", linewidth=2, label="AOI"))
    ax.autoscale_view()
    ax.margins(margin)
    _, s, _, n = aoi.bounds if aoi is not None else bounds
    lat0 = (s + n) / 2 if math.isfinite(s + n) else 0.0
    ax.set_aspect(1.0 / math.cos(math.radians(lat0)))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if title:
        ax.set_title(title)
    if legend and handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize="small")
    return ax


def _rgb(color) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)
