"""Open a STAC API and search it: one call for Earth Search, Planetary Computer,
any STAC API URL and the local demo server.

Requests are retried with exponential backoff and jitter on HTTP 429 and 5xx and
on connection errors, honouring ``Retry-After`` (urllib3's ``Retry`` does the work).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from eo_sr.errors import EoSrError, InvalidInputError, UnknownNameError

KNOWN_CATALOGS = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
RETRY_STATUS = (429, 500, 502, 503, 504)


def _retry(max_retries: int, backoff: float):
    from urllib3.util.retry import Retry

    return Retry(
        total=max_retries, connect=max_retries, read=max_retries, status=max_retries,
        backoff_factor=backoff, backoff_jitter=backoff / 2, backoff_max=60.0,
        status_forcelist=RETRY_STATUS, allowed_methods=None,  # POST searches are safe to repeat
        respect_retry_after_header=True, raise_on_status=False,
    )


def open_catalog(source: Any = "earth-search", *, headers: dict | None = None, timeout: float = 30.0,
                 max_retries: int = 5, backoff: float = 0.5):
    """Open a STAC API.

    Parameters
    ----------
    source : str or LocalStacServer
        ``"earth-search"``, ``"planetary-computer"``, the URL of any STAC API, or a
        running :class:`eo_sr.demo.server.LocalStacServer` (or anything with ``.url``).
    headers : dict, optional
        Extra HTTP headers (e.g. an API key read from the environment).
    timeout : float
        Seconds to wait for each response.
    max_retries : int
        Retries on 429/5xx/connection errors, with exponential backoff and jitter.
    backoff : float
        Backoff factor in seconds: waits are ``backoff * 2**n`` (at most 60 s),
        or what the server's ``Retry-After`` asks for.

    Returns
    -------
    pystac_client.Client
        For Planetary Computer, item assets are signed as they arrive.

    Raises
    ------
    UnknownNameError
        ``source`` is neither a known catalog name nor a URL.
    EoSrError
        The URL does not answer as a STAC API with item search.
    """
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    url = getattr(source, "url", source)
    if not isinstance(url, str):
        raise InvalidInputError(f"source must be a catalog name, a URL or a server, got {type(source).__name__}")
    modifier = None
    if url in KNOWN_CATALOGS:
        if url == "planetary-computer":
            import planetary_computer

            modifier = planetary_computer.sign_inplace
        url = KNOWN_CATALOGS[url]
    elif not url.startswith(("http://", "https://")):
        raise UnknownNameError(
            f"unknown catalog {url!r}: use one of {sorted(KNOWN_CATALOGS)}, a STAC API URL (http...), "
            "or the local demo server (eo_sr.demo.serve_world)"
        )
    stac_io = StacApiIO(headers=headers, timeout=timeout, max_retries=_retry(max_retries, backoff))
    try:
        client = Client.open(url, stac_io=stac_io, modifier=modifier, timeout=timeout)
    except Exception as exc:  # requests/pystac raise many kinds; say which URL failed and why
        raise EoSrError(f"could not open the STAC API at {url}: {exc}") from exc
    if not client.conforms_to("ITEM_SEARCH"):
        raise EoSrError(f"{url} answers but is not a STAC API with item search (no ITEM_SEARCH conformance); "
                        "a static catalog needs a server, e.g. eo_sr.demo.serve_world")
    return client


def normalize_bbox(bbox: Sequence[float]) -> list[float]:
    """Check a ``[west, south, east, north]`` bounding box in degrees.

    Raises
    ------
    InvalidInputError
        Not four numbers, out of range, latitude/longitude swapped, or south > north.
    """
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InvalidInputError(f"bbox must be four numbers [west, south, east, north], got {bbox!r}") from None
    if max(abs(w), abs(e), abs(s), abs(n)) > 180:
        raise InvalidInputError(f"bbox {list(bbox)} is not in degrees: is it in a projected CRS? "
                                "Give [west, south, east, north] in EPSG:4326, or pass a GeoDataFrame "
                                "that carries its CRS")
    if max(abs(s), abs(n)) > 90:
        if max(abs(w), abs(e)) <= 90:
            raise InvalidInputError(
                f"bbox {list(bbox)} has a latitude beyond +-90: longitude and latitude look swapped; "
                f"write it as [west, south, east, north], e.g. [{s}, {w}, {n}, {e}]")
        raise InvalidInputError(f"bbox {list(bbox)} has a latitude beyond +-90")
    if s > n:
        raise InvalidInputError(f"bbox {list(bbox)} has south ({s}) > north ({n}); the order is "
                                "[west, south, east, north]")
    return [w, s, e, n]


def normalize_aoi(aoi: Any) -> dict:
    """Turn an AOI into search arguments: ``{"bbox": [...]}`` or ``{"intersects": geojson}``.

    Accepts a bbox sequence, a GeoJSON dict (geometry or Feature), a shapely geometry
    in lon/lat, or a GeoDataFrame/GeoSeries in any CRS (reprojected to EPSG:4326).
    """
    if aoi is None:
        return {}
    if hasattr(aoi, "to_crs") and hasattr(aoi, "crs"):  # GeoDataFrame / GeoSeries
        if aoi.crs is None:
            raise InvalidInputError("the AOI GeoDataFrame has no CRS; set one with .set_crs(...)")
        geom = aoi.to_crs(4326).union_all()
        return normalize_aoi(geom)
    if isinstance(aoi, dict):
        geom = aoi.get("geometry", aoi) if aoi.get("type") == "Feature" else aoi
        from shapely.geometry import shape

        return normalize_aoi(shape(geom))
    if hasattr(aoi, "__geo_interface__"):
        w, s, e, n = aoi.bounds
        if max(abs(w), abs(e)) > 180 or max(abs(s), abs(n)) > 90:
            raise InvalidInputError(
                f"the AOI's coordinates (bounds {tuple(round(v, 1) for v in aoi.bounds)}) are not degrees: it looks "
                "projected. Reproject it to EPSG:4326 first, or pass a GeoDataFrame that carries its CRS")
        return {"intersects": aoi.__geo_interface__}
    return {"bbox": normalize_bbox(aoi)}


def _parse_time(value, *, end: bool) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, _dt.date):
        t = _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
        return t + _dt.timedelta(days=1) - _dt.timedelta(microseconds=1) if end else t
    try:
        text = str(value).replace("Z", "+00:00")
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"cannot read {value!r} as a date; use ISO format, e.g. '2022-01-31'") from None
    if len(str(value)) == 10:
        return _parse_time(t.date(), end=end)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def normalize_datetime(value: Any) -> str | None:
    """Turn ``"2022-01-01/2022-02-01"``, a (start, end) pair or one date into a STAC interval.

    Raises
    ------
    InvalidInputError
        The end is before the start, or a date cannot be read.
    """
    if value is None:
        return None
    if isinstance(value, str) and "/" in value:
        value = value.split("/")
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InvalidInputError(f"a date range needs (start, end), got {value!r}")
        start, end = value
        t0 = None if start in (None, "", "..") else _parse_time(start, end=False)
        t1 = None if end in (None, "", "..") else _parse_time(end, end=True)
        if t0 and t1 and t1 < t0:
            raise InvalidInputError(f"the date range ends ({end}) before it starts ({start}); swap them")
        fmt = lambda t: ".." if t is None else t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
        return f"{fmt(t0)}/{fmt(t1)}"
    t0, t1 = _parse_time(value, end=False), _parse_time(value, end=True)
    return normalize_datetime((t0, t1))


def cloud_filter(max_cloud_cover: float) -> dict:
    """A CQL2-JSON filter ``eo:cloud_cover <= max``, understood by Earth Search,
    Planetary Computer and pgstac alike."""
    value = float(max_cloud_cover)
    if not 0 <= value <= 100:
        raise InvalidInputError(f"max_cloud_cover is a percentage between 0 and 100, got {max_cloud_cover!r}")
    return {"op": "<=", "args": [{"property": "eo:cloud_cover"}, value]}


def search(catalog, *, collections: str | Sequence[str], aoi: Any = None, datetime: Any = None,
           max_cloud_cover: float | None = None, limit: int = 100, max_items: int | None = None,
           filter: dict | None = None, sortby: Any = "datetime"):
    """Search a STAC API and return every matching item, following all pages.

    Parameters
    ----------
    catalog : pystac_client.Client
        From :func:`open_catalog`.
    collections : str or sequence of str
        Collection ids; an unknown id raises with the list of available ones.
    aoi : bbox, GeoJSON, shapely geometry or GeoDataFrame, optional
    datetime : str or (start, end), optional
        E.g. ``"2022-01-01/2022-03-31"``.
    max_cloud_cover : float, optional
        Percentage; sent as a CQL2 filter.
    limit : int
        Page size asked of the server (all pages are read).
    max_items : int, optional
        Stop after this many items.
    filter : dict, optional
        More CQL2-JSON, combined with the cloud filter by ``and``.
    sortby : str, optional
        Sort key (default datetime ascending); ``None`` for the server's order.

    Returns
    -------
    pystac.ItemCollection

    Raises
    ------
    UnknownNameError
        A collection is not served by this catalog.
    InvalidInputError
        Bad AOI, dates or cloud limit.
    """
    import pystac

    if isinstance(collections, str):
        collections = [collections]
    collections = list(collections)
    if not collections:
        raise InvalidInputError("name at least one collection to search")
    available = {c.id for c in catalog.get_collections()}
    missing = [c for c in collections if c not in available]
    if missing:
        raise UnknownNameError(f"collection(s) {missing} not found at {catalog.self_href}; "
                               f"available: {sorted(available)}")
    args: dict[str, Any] = {"collections": collections, "limit": limit, "max_items": max_items}
    args.update(normalize_aoi(aoi))
    dt = normalize_datetime(datetime)
    if dt:
        args["datetime"] = dt
    clauses = [cloud_filter(max_cloud_cover)] if max_cloud_cover is not None else []
    if filter:
        clauses.append(filter)
    if clauses:
        args["filter"] = clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}
        args["filter_lang"] = "cql2-json"
    if sortby:
        args["sortby"] = sortby
    try:
        items = list(catalog.search(**args).items())
    except Exception as exc:
        raise EoSrError(f"search at {catalog.self_href} failed: {exc}") from exc
    return pystac.ItemCollection(items)


def to_geodataframe(items) -> Any:
    """One row per item (id, collection, datetime, cloud cover, platform, geometry), EPSG:4326."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import shape

    rows = []
    for it in items:
        d = it if isinstance(it, dict) else it.to_dict(transform_hrefs=False)
        p = d.get("properties", {})
        rows.append({
            "id": d["id"], "collection": d.get("collection"),
            "datetime": pd.Timestamp(p.get("datetime")) if p.get("datetime") else pd.NaT,
            "eo:cloud_cover": p.get("eo:cloud_cover"), "platform": p.get("platform"),
            "geometry": shape(d["geometry"]) if d.get("geometry") else None,
        })
    cols = ["id", "collection", "datetime", "eo:cloud_cover", "platform", "geometry"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs="EPSG:4326")
