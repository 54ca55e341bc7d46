"""Open a STAC API and search it: one call for Earth Search, Planetary Computer,
any STAC API URL and the local demo server.

Built for real-world conditions (download quotas, rate limits, flaky Wi-Fi):

* every HTTP request is retried with exponential backoff and jitter on HTTP 429
  and 5xx, on connection errors and timeouts, and on a 200 whose JSON body is cut
  short; ``Retry-After`` is honoured; the number of attempts is bounded
  (``max_retries + 1`` per request) and counted (:func:`request_stats`);
* an optional rate limit (``max_requests_per_second``) spaces the requests out;
* a persistent search cache (``search(..., cache="searches.sqlite")``) replays a
  search with no network at all, so a workshop can rerun yesterday's searches
  when the Wi-Fi is gone;
* Planetary Computer assets are signed as they arrive and re-signed when their
  SAS token expires (:func:`sign_if_needed`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from eo_sr.errors import CatalogError, EoSrError, InvalidInputError, NotFoundError, UnknownNameError

logger = logging.getLogger(__name__)

KNOWN_CATALOGS = {
    "earth-search": "https://earth-search.aws.element84.com/v1",
    "planetary-computer": "https://planetarycomputer.microsoft.com/api/stac/v1",
}
#: HTTP statuses worth retrying: rate limited, or a server/gateway hiccup.
RETRY_STATUS = (429, 500, 502, 503, 504)
#: The longest single wait (seconds) between two attempts; a server asking for
#: more (``Retry-After``) gets a clear error instead of a silent hour-long sleep.
MAX_WAIT = 60.0
#: Host suffix of Azure Blob Storage, where Planetary Computer keeps its assets.
BLOB_STORAGE_DOMAIN = ".blob.core.windows.net"
_CACHE_SCHEMA = 1


class EmptySearchWarning(UserWarning):
    """A search matched no item (a warning, not an error: the query was valid)."""


# ----------------------------------------------------------------------------- HTTP


def _retry_after(value: str | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())


_IO_CLASS = None


def _robust_io_class():
    """The StacApiIO subclass, defined on first use so that importing this module
    does not import pystac_client."""
    global _IO_CLASS
    if _IO_CLASS is not None:
        return _IO_CLASS
    from copy import deepcopy

    import requests
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    # Failures worth another attempt: the connection, a timeout (before or during
    # the body), a body cut short. Malformed URLs and the like are not retried.
    transient = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                 requests.exceptions.ContentDecodingError)

    class RobustStacApiIO(StacApiIO):
        """pystac-client's StacApiIO with one bounded retry loop for every failure
        mode (status, connection, timeout, truncated JSON) and a rate limit.

        One loop here, rather than urllib3's ``Retry`` plus a second loop for bad
        bodies, so that ``max_retries`` bounds the attempts exactly: nested loops
        would multiply their budgets.

        Attributes
        ----------
        attempts : int
            HTTP requests sent (retries included).
        retries : int
            Attempts that were retries.
        waited : float
            Seconds slept between attempts (backoff and ``Retry-After``).
        """

        def __init__(self, *, headers=None, timeout=30.0, max_retries=5, backoff=0.5,
                     max_requests_per_second=None):
            # max_retries=None: no urllib3 Retry on the session; this class retries.
            super().__init__(headers=headers, timeout=timeout, max_retries=None)
            self.max_retries = int(max_retries)
            self.backoff = float(backoff)
            self.min_interval = 1.0 / max_requests_per_second if max_requests_per_second else 0.0
            self._next_slot = 0.0
            self._lock = threading.Lock()
            self.attempts = 0
            self.retries = 0
            self.waited = 0.0

        def _throttle(self) -> None:
            # Minimum interval between request starts (a token bucket of size 1):
            # simple, and exactly what a "requests per second" quota asks for.
            if not self.min_interval:
                return
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_slot)
                self._next_slot = start + self.min_interval
            if start > now:
                time.sleep(start - now)

        def request(self, href, method=None, headers=None, parameters=None) -> str:
            method = (method or "GET").upper()
            if method in ("POST", "PUT", "PATCH"):
                req = requests.Request(method=method, url=href, headers=headers, json=parameters)
            else:
                req = requests.Request(method=method, url=href, headers=headers, params=deepcopy(parameters) or {})
            try:
                modified = self._req_modifier(req) if self._req_modifier else None
                prepped = self.session.prepare_request(modified or req)
                settings = self.session.merge_environment_settings(prepped.url, proxies={}, stream=None,
                                                                   verify=True, cert=None)
            except Exception as exc:  # a malformed URL or request: no point retrying
                raise APIError(f"{method} {href}: {exc}") from exc
            problem = "no attempt made"
            for attempt in range(self.max_retries + 1):
                self._throttle()
                self.attempts += 1
                wait = None
                try:
                    resp = self.session.send(prepped, timeout=self.timeout, **settings)
                except transient as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    if resp.status_code in RETRY_STATUS:
                        problem = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
                        wait = _retry_after(resp.headers.get("Retry-After"))
                    elif not 200 <= resp.status_code < 300:
                        raise APIError(_http_error(method, href, resp))
                    else:
                        text = resp.content.decode("utf-8", errors="replace")
                        if not text.strip():
                            raise APIError(f"{method} {href} answered HTTP {resp.status_code} with an empty "
                                           "body, not JSON: is this the URL of a STAC API?")
                        try:
                            json.loads(text)
                            return text
                        except ValueError:
                            ctype = resp.headers.get("Content-Type", "")
                            if ctype and "json" not in ctype:
                                # An HTML page or the like: the wrong URL, not a hiccup.
                                raise APIError(
                                    f"{method} {href} answered {ctype}, not JSON ({text[:80]!r}...): "
                                    "is this the URL of a STAC API?") from None
                            problem = f"a JSON body cut short or invalid ({len(text)} bytes)"
                if attempt == self.max_retries:
                    break
                if wait is None:
                    wait = min(self.backoff * 2 ** attempt, MAX_WAIT) + random.uniform(0, self.backoff / 2)
                elif wait > MAX_WAIT:
                    raise APIError(f"{method} {href}: the server asks to wait {wait:.0f} s before trying again "
                                   f"({problem}, Retry-After); try again later, or lower max_requests_per_second")
                # A warning, not info: a user waiting on a dead port must see why nothing happens.
                logger.warning("%s %s: %s; retry %d of %d in %.1f s", method, href, problem, attempt + 1,
                               self.max_retries, wait)
                self.retries += 1
                self.waited += wait
                time.sleep(wait)
            raise APIError(f"{method} {href} failed after {attempt + 1} attempt(s) "
                           f"(max_retries={self.max_retries}); last problem: {problem}")

    _IO_CLASS = RobustStacApiIO
    return _IO_CLASS


def open_catalog(source: Any = "earth-search", *, headers: dict | None = None, timeout: float = 30.0,
                 max_retries: int = 5, backoff: float = 0.5, max_requests_per_second: float | None = None):
    """Open a STAC API.

    Parameters
    ----------
    source : str or LocalStacServer
        ``"earth-search"``, ``"planetary-computer"``, the URL of any STAC API, or a
        running :class:`eo_sr.localapi.server.LocalStacServer` (or anything with ``.url``).
    headers : dict, optional
        Extra HTTP headers (e.g. an API key read from the environment).
    timeout : float
        Seconds to wait for the server to connect and for each read of its answer.
    max_retries : int
        Retries per request on 429/5xx, connection errors, timeouts and JSON bodies
        cut short, with exponential backoff and jitter: at most ``max_retries + 1``
        attempts per request.
    backoff : float
        Backoff factor in seconds: waits are ``backoff * 2**n`` plus up to
        ``backoff / 2`` of random jitter (at most 60 s), or what the server's
        ``Retry-After`` asks for.
    max_requests_per_second : float, optional
        Space the requests of this client (retries included) at least
        ``1 / max_requests_per_second`` seconds apart, to stay under a quota.

    Returns
    -------
    pystac_client.Client
        For Planetary Computer, item assets are signed as they arrive. Its request
        counters are in :func:`request_stats`.

    Raises
    ------
    UnknownNameError
        ``source`` is neither a known catalog name nor a URL.
    InvalidInputError
        A bad option (negative retries, a rate limit that is not positive).
    EoSrError
        The URL does not answer as a STAC API with item search.
    """
    from pystac_client import Client

    url = getattr(source, "url", source)
    if not isinstance(url, str):
        raise InvalidInputError(f"source must be a catalog name, a URL or a server, got {type(source).__name__}")
    if not (isinstance(max_retries, int) and max_retries >= 0):
        raise InvalidInputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if not backoff >= 0 or not timeout > 0:
        raise InvalidInputError(f"backoff must be >= 0 and timeout > 0 seconds, got {backoff!r} and {timeout!r}")
    if max_requests_per_second is not None and not max_requests_per_second > 0:
        raise InvalidInputError(f"max_requests_per_second must be > 0 (or None for no limit), "
                                f"got {max_requests_per_second!r}")
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
    stac_io = _robust_io_class()(headers=headers, timeout=timeout, max_retries=max_retries, backoff=backoff,
                                 max_requests_per_second=max_requests_per_second)
    try:
        client = Client.open(url, stac_io=stac_io, modifier=modifier, timeout=timeout)
    except Exception as exc:  # requests/pystac raise many kinds; say which URL failed and why
        raise CatalogError(f"could not open the STAC API at {url}: {_reason(exc)}") from exc
    root = client.get_root_link()
    if root is not None and not root.is_resolved() and root.href.rstrip("/") == url.rstrip("/"):
        # The landing page names itself with another spelling (a trailing "/"): without this,
        # pystac fetches the same page again on first use -- one request more against the quota.
        client.set_root(client)
    # pystac-client 0.9 knows only the v1.0.0 URI of the sort extension; newer servers
    # (stac-fastapi 6+, pgstac) advertise v1.1.0, which is the same for our purposes.
    if any("item-search#sort" in uri for uri in client.get_conforms_to()):
        client.add_conforms_to("SORT")
    if not client.conforms_to("ITEM_SEARCH"):
        raise CatalogError(f"{url} answers but is not a STAC API with item search (no ITEM_SEARCH conformance); "
                        "a static catalog needs a server, e.g. eo_sr.demo.serve_world")
    return client


def _http_error(method: str, href: str, resp) -> str:
    """One line for an HTTP error: the status, and the body's gist (an HTML page stripped)."""
    import re

    body = resp.content.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            body = str(parsed.get("description") or parsed.get("detail") or parsed.get("message") or parsed)
    except ValueError:
        if "<" in body:
            body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
            body = re.sub(r"<[^>]+>", " ", body)
        body = re.sub(r"\s+", " ", body).strip()
    gist = f": {body[:200]}{'...' if len(body) > 200 else ''}" if body else ""
    hint = {404: " (wrong URL or collection id?)", 401: " (an API key is needed?)",
            403: " (no access, or an expired signature?)"}.get(resp.status_code, "")
    return f"{method} {href} answered HTTP {resp.status_code} {resp.reason or ''}".rstrip() + hint + gist


def _reason(exc: BaseException) -> str:
    """The message of an exception and of the exceptions that caused it (pystac hides
    the HTTP error behind "does not resolve to a STAC object")."""
    parts: list[str] = []
    while exc is not None and len(parts) < 5:
        text = str(exc)
        if text and text not in parts:
            parts.append(text)
        exc = exc.__cause__ or exc.__context__
    return ": ".join(parts)


def request_stats(catalog) -> dict:
    """How many HTTP requests a catalog from :func:`open_catalog` has sent.

    Parameters
    ----------
    catalog : pystac_client.Client
        From :func:`open_catalog`.

    Returns
    -------
    dict
        ``attempts`` (requests sent, retries included), ``retries`` and
        ``waited`` (seconds slept between attempts).

    Raises
    ------
    InvalidInputError
        The catalog was not opened with :func:`open_catalog`.
    """
    io = getattr(catalog, "_stac_io", None)
    if not hasattr(io, "attempts"):
        raise InvalidInputError("request_stats needs a catalog opened with eo_sr.stac.open_catalog")
    return {"attempts": io.attempts, "retries": io.retries, "waited": io.waited}


# ----------------------------------------------------------------------------- arguments


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
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise InvalidInputError(f"bbox {list(bbox)} holds NaN or infinity; give four finite numbers "
                                "[west, south, east, north] in degrees")
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


# ----------------------------------------------------------------------------- signing


def token_expiry(href: str) -> _dt.datetime | None:
    """When the SAS token of an Azure Blob Storage URL expires.

    Parameters
    ----------
    href : str
        An asset URL, signed (``...?st=...&se=2024-05-01T12%3A00%3A00Z&sig=...``) or not.

    Returns
    -------
    datetime.datetime or None
        The token's ``se`` (signed expiry) time in UTC; None when the URL carries
        no ``se`` parameter or it cannot be read.
    """
    values = parse_qs(urlsplit(href).query).get("se")
    if not values:
        return None
    text = values[0].strip().replace("Z", "+00:00")
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _asset_hrefs(items):
    """Yield (asset, href) for every asset of pystac Items or item dicts (one or many)."""
    if hasattr(items, "assets") or (isinstance(items, dict) and "assets" in items):
        items = [items]
    for item in items:
        assets = item["assets"] if isinstance(item, dict) else item.assets
        for asset in assets.values():
            if isinstance(asset, dict):
                yield asset, asset["href"]
            else:
                yield asset, asset.href


def _needs_signing(href: str, *, margin: float, unsigned: bool, now: _dt.datetime) -> bool:
    parts = urlsplit(href)
    if not parts.netloc.endswith(BLOB_STORAGE_DOMAIN):
        return False
    expiry = token_expiry(href)
    if expiry is None:
        return unsigned and not parts.query  # a query without `se` is some other signature: leave it
    return (expiry - now).total_seconds() <= margin


def sign_if_needed(items, *, margin: float = 300.0, unsigned: bool = True):
    """Sign, or re-sign, the Planetary Computer asset URLs whose SAS token is
    missing, expired or about to expire.

    SAS tokens last about an hour; items searched earlier (or replayed from a
    search cache) carry tokens that may have expired. Call this just before
    reading the assets. Only Azure Blob Storage URLs are touched, so items from
    other catalogs pass through unchanged and nothing is fetched for them.

    Parameters
    ----------
    items : pystac.Item, pystac.ItemCollection, item dict, or a sequence of them
        Modified in place.
    margin : float
        Re-sign tokens that expire within this many seconds.
    unsigned : bool
        Also sign blob URLs that carry no token at all.

    Returns
    -------
    Same as ``items``
        The same object, its hrefs signed with a fresh token.

    Raises
    ------
    EoSrError
        A token could not be obtained (no network, or the token service refused);
        the message says which storage account and container.
    """
    now = _dt.datetime.now(_dt.timezone.utc)
    todo = [(asset, href) for asset, href in _asset_hrefs(items)
            if _needs_signing(href, margin=margin, unsigned=unsigned, now=now)]
    if not todo:
        return items
    try:
        from planetary_computer import sas
    except ImportError:  # pragma: no cover - it is a dependency
        raise EoSrError("signing Planetary Computer URLs needs the planetary-computer package") from None
    tokens: dict[tuple[str, str], Any] = {}
    for asset, href in todo:
        parts = urlsplit(href)
        base = urlunsplit(parts._replace(query=""))  # drop the stale token
        account = parts.netloc.split(".")[0]
        container = parts.path.lstrip("/").split("/", 1)[0]
        if (account, container) not in tokens:
            tokens[(account, container)] = _fresh_token(sas, account, container, margin)
        signed = tokens[(account, container)].sign(base).href
        if isinstance(asset, dict):
            asset["href"] = signed
        else:
            asset.href = signed
    return items


def _fresh_token(sas, account: str, container: str, margin: float):
    """A token from planetary_computer valid for more than ``margin`` seconds."""
    for _ in range(2):
        try:
            # Few retries: offline, the package's default (10, growing backoff) waits minutes.
            token = sas.get_token(account, container, retry_total=2, retry_backoff_factor=0.5)
        except Exception as exc:
            raise CatalogError(f"could not get a Planetary Computer SAS token for {account}/{container}: {exc}; "
                            "signing needs the network") from exc
        if token.ttl() > margin:
            return token
        # (If the fresh one is short-lived as well, it is still the best there is: used below.)
        # The package caches tokens until a minute before expiry; ours need more: drop it, ask again.
        for key in [k for k, v in sas.TOKEN_CACHE.items() if v is token]:
            del sas.TOKEN_CACHE[key]
    return token


# ----------------------------------------------------------------------------- search cache


def _root_url(catalog: Any) -> str | None:
    """The API root URL of a client or of a source open_catalog accepts (no network)."""
    if hasattr(catalog, "get_self_href"):
        url = catalog.get_self_href()
    else:
        url = getattr(catalog, "url", catalog)
        url = KNOWN_CATALOGS.get(url, url) if isinstance(url, str) else None
    return url.rstrip("/") if isinstance(url, str) else None


def _cache_path(cache: Any) -> Path:
    if cache is True:
        from eo_sr.paths import cache_dir

        return cache_dir("stac") / "searches.sqlite"
    if not isinstance(cache, (str, Path)):
        raise InvalidInputError(f"cache must be a file path (or True for the default), got {type(cache).__name__}")
    path = Path(cache).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _cache_key(root: str, args: dict) -> tuple[str, str]:
    """(hash, canonical JSON) of a search: the API plus every argument that changes the result."""
    canon = dict(args, collections=sorted(args["collections"]))
    text = json.dumps({"api": root, **canon}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest(), text


def _cache_open(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=30)  # waits for another process writing the same cache
        conn.execute("CREATE TABLE IF NOT EXISTS searches (key TEXT PRIMARY KEY, schema INTEGER NOT NULL, "
                     "api TEXT NOT NULL, request TEXT NOT NULL, created TEXT NOT NULL, n_items INTEGER NOT NULL, "
                     "items TEXT NOT NULL)")
    except sqlite3.DatabaseError as exc:
        raise EoSrError(f"{path} is not an eo-sr search cache ({exc}); delete it or pass another cache= path") from exc
    return conn


def _cache_get(path: Path, key: str) -> list[dict] | None:
    if not path.exists():
        return None
    conn = _cache_open(path)
    try:
        row = conn.execute("SELECT items FROM searches WHERE key = ? AND schema = ?", (key, _CACHE_SCHEMA)).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


def _cache_put(path: Path, key: str, request: str, root: str, features: list[dict]) -> None:
    conn = _cache_open(path)
    try:
        with conn:  # one transaction: the entry is stored whole or not at all
            conn.execute("INSERT OR REPLACE INTO searches VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (key, _CACHE_SCHEMA, root, request, _dt.datetime.now(_dt.timezone.utc).isoformat(),
                          len(features), json.dumps(features)))
    finally:
        conn.close()


# ----------------------------------------------------------------------------- search


def search(catalog, *, collections: str | Sequence[str], aoi: Any = None, datetime: Any = None,
           max_cloud_cover: float | None = None, limit: int = 100, max_items: int | None = None,
           filter: dict | None = None, sortby: Any = "datetime", cache: str | Path | bool | None = None,
           refresh: bool = False):
    """Search a STAC API and return every matching item, following all pages.

    Parameters
    ----------
    catalog : pystac_client.Client, str or LocalStacServer
        A client from :func:`open_catalog`, or anything :func:`open_catalog`
        accepts (``"earth-search"``, ``"planetary-computer"``, a URL, a server):
        then the catalog is opened only when the search is not in ``cache``, so a
        cached search replays with no network at all (not even the landing page).
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
    cache : str, pathlib.Path or True, optional
        A search cache file (SQLite; ``True``: ``searches.sqlite`` in eo-sr's cache
        folder). A search already in it (same API root URL and same arguments,
        page size aside) is answered from it; a new one is run and stored whole,
        in one transaction, so an interrupted search never leaves a partial entry.
        Expired Planetary Computer tokens in replayed items are renewed when the
        network allows (see :func:`sign_if_needed`).
    refresh : bool
        Run the search even if it is cached, and store the new result.

    Examples
    --------
    Online, the day before a workshop; offline on the day, the same call answers
    from the cache file without touching the network:

    >>> items = search("earth-search", collections="sentinel-2-l2a", aoi=[33.2, 35.0, 33.5, 35.2],
    ...                datetime="2022-01-01/2022-03-31", max_cloud_cover=20,
    ...                cache="searches.sqlite")  # doctest: +SKIP

    Returns
    -------
    pystac.ItemCollection

    Warns
    -----
    EmptySearchWarning
        Nothing matched; the message says what to widen.

    Raises
    ------
    UnknownNameError
        A collection is not served by this catalog.
    InvalidInputError
        Bad AOI, dates, cloud limit, page size or cache path.
    EoSrError
        The API failed (after its retries), or does not support what the search
        needs (CQL2 filter), or the cache file is not a search cache.
    """
    import pystac

    if isinstance(collections, str):
        collections = [collections]
    collections = list(collections)
    if not collections or not all(isinstance(c, str) and c for c in collections):
        raise InvalidInputError(f"name at least one collection to search (ids as strings), got {collections!r}")
    if not (isinstance(limit, int) and limit > 0):
        raise InvalidInputError(f"limit (the page size) must be a positive integer, got {limit!r}")
    if max_items is not None and not (isinstance(max_items, int) and max_items > 0):
        raise InvalidInputError(f"max_items must be a positive integer or None, got {max_items!r}")
    args: dict[str, Any] = {"collections": collections}
    args.update(normalize_aoi(aoi))
    dt = normalize_datetime(datetime)
    if dt:
        args["datetime"] = dt
    clauses = [cloud_filter(max_cloud_cover)] if max_cloud_cover is not None else []
    if filter:
        clauses.append(filter)
    if clauses:
        args["filter"] = clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}
    if sortby:
        args["sortby"] = sortby
    if max_items is not None:
        args["max_items"] = max_items

    is_client = hasattr(catalog, "search") and hasattr(catalog, "get_collections")
    root = _root_url(catalog)
    path = key = request = None
    if cache is not None and cache is not False:
        if root is None:
            raise InvalidInputError("cannot cache a search of a catalog that has no URL")
        path = _cache_path(cache)
        key, request = _cache_key(root, args)
        features = None if refresh else _cache_get(path, key)
        if features is not None:
            logger.info("search %s answered from the cache %s", request, path)
            items = pystac.ItemCollection([pystac.Item.from_dict(d, preserve_dict=False) for d in features])
            _renew_expired_tokens(items)
            _warn_if_empty(items, args, root)
            return items

    client = catalog if is_client else open_catalog(catalog)
    items = _run_search(client, args, limit)
    if path is not None:
        _cache_put(path, key, request, root, [it.to_dict(transform_hrefs=False) for it in items])
    _warn_if_empty(items, args, root, swapped_finds=_swapped_bbox_finds(client, args) if not len(items) else 0)
    return items


def _swapped_bbox(bbox) -> list[float] | None:
    w, s, e, n = bbox
    if max(abs(w), abs(e)) > 90 or (w, s, e, n) == (s, w, n, e):
        return None
    return [s, w, n, e]


def _swapped_bbox_finds(client, args: dict) -> int:
    """Items that the same search finds with longitude and latitude swapped (one cheap request).

    Both orders are valid boxes at mid-latitudes, so a swapped bbox is no error; an empty
    result that the swapped box would fill is the tell.
    """
    swapped = _swapped_bbox(args["bbox"]) if "bbox" in args else None
    if swapped is None:
        return 0
    try:
        found = _run_search(client, dict(args, bbox=swapped, max_items=1), limit=1)
    except EoSrError:
        return 0
    return len(found)


def _run_search(client, args: dict, limit: int):
    import pystac

    where = client.get_self_href()
    try:
        available = {c.id for c in client.get_collections()}
    except Exception as exc:
        raise CatalogError(f"could not list the collections at {where}: {_reason(exc)}") from exc
    missing = [c for c in args["collections"] if c not in available]
    if missing:
        raise UnknownNameError(f"collection(s) {missing} not found at {where}; available: {sorted(available)}")
    request = dict(args, limit=limit)
    if "filter" in request:
        if not client.conforms_to("FILTER"):
            # pystac-client only warns, and a server may then ignore the filter: results would be wrong.
            raise CatalogError(f"the STAC API at {where} does not support CQL2 filters (no Filter conformance), "
                            "which max_cloud_cover and filter= need; search without them and filter the "
                            "table instead, e.g. to_geodataframe(items).query('`eo:cloud_cover` <= 20')")
        request["filter_lang"] = "cql2-json"
    sort_here = None
    if "sortby" in request and not client.conforms_to("SORT"):
        sort_here = request.pop("sortby")  # sort client-side rather than trust a server that ignores it
    try:
        items = list(client.search(**request).items())
    except Exception as exc:
        raise CatalogError(f"search at {where} failed: {_reason(exc)}") from exc
    if isinstance(sort_here, str):
        prop = sort_here.lstrip("+-")
        items.sort(key=lambda it: (it.properties.get(prop) is None, it.properties.get(prop) or 0),
                   reverse=sort_here.startswith("-"))
    return pystac.ItemCollection(items)


def _renew_expired_tokens(items) -> None:
    """Replayed Planetary Computer items: renew expired tokens, or say why not."""
    try:
        sign_if_needed(items, unsigned=False)
    except EoSrError as exc:
        warnings.warn(f"items replayed from the search cache carry expired Planetary Computer tokens and could "
                      f"not be re-signed ({exc}); call eo_sr.stac.sign_if_needed(items) when online, "
                      "before reading their assets", stacklevel=3)


def _warn_if_empty(items, args: dict, root: str | None, *, swapped_finds: int = 0) -> None:
    if len(items):
        return
    if swapped_finds:
        warnings.warn(f"the search at {root} matched no item, but the same search with bbox "
                      f"{_swapped_bbox(args['bbox'])} does: longitude and latitude look swapped in {args['bbox']}; "
                      f"a bbox is [west, south, east, north] (lon, lat, lon, lat)", EmptySearchWarning, stacklevel=3)
        return
    asked = [f"collections {args['collections']}"]
    if "bbox" in args:
        asked.append(f"bbox {args['bbox']}")
    if "intersects" in args:
        asked.append("an AOI geometry")
    if "datetime" in args:
        asked.append(f"datetime {args['datetime']}")
    if "filter" in args:
        asked.append(f"filter {json.dumps(args['filter'])}")
    warnings.warn(f"the search at {root} matched no item ({'; '.join(asked)}): widen the date range or the AOI, "
                  "raise max_cloud_cover, or check that the collection covers this place and time",
                  EmptySearchWarning, stacklevel=3)


def _epsg(d: dict) -> int | None:
    """EPSG code from ``proj:epsg`` or ``proj:code`` on the item, else on its first asset that has one."""
    for where in [d.get("properties", {}), *d.get("assets", {}).values()]:
        if where.get("proj:epsg") is not None:
            return int(where["proj:epsg"])
        code = where.get("proj:code")
        if isinstance(code, str) and code.upper().startswith("EPSG:"):
            return int(code.split(":", 1)[1])
    return None


def to_geodataframe(items) -> Any:
    """One row per item, EPSG:4326.

    Parameters
    ----------
    items : pystac.ItemCollection or sequence of pystac.Item or item dicts

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``id``, ``collection``, ``datetime``, ``eo:cloud_cover``,
        ``platform``, ``geometry`` and ``epsg`` (the items' native CRS, read from
        ``proj:epsg`` or ``proj:code``, on the item or its assets; providers differ).
    """
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
            "epsg": _epsg(d),
        })
    cols = ["id", "collection", "datetime", "eo:cloud_cover", "platform", "geometry", "epsg"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["epsg"] = frame["epsg"].astype("Int64")
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


# ----------------------------------------------------------------------------- files


def write_items(items, path: str | Path) -> Path:
    """Write items as newline-delimited JSON (one STAC item a line), atomically.

    Hrefs are written as they are (absolute hrefs stay absolute).
    """
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for it in items:
            d = it if isinstance(it, dict) else it.to_dict(transform_hrefs=False)
            f.write(json.dumps(d) + "\n")
    os.replace(tmp, path)
    return path


def read_items(path: str | Path):
    """Read STAC items from a file: one item a line (ndjson), or one FeatureCollection.

    Returns
    -------
    pystac.ItemCollection

    Raises
    ------
    InvalidInputError
        The file is missing, not text, not JSON, or holds something that is not a STAC
        item; the message names the file and the line.
    """
    import pystac

    path = Path(path)
    if not path.is_file():
        if not path.exists():
            raise NotFoundError(f"{path} not found: write it with 'eo-sr search ... --out DIR --name NAME' "
                                "(it writes DIR/NAME.ndjson)")
        raise InvalidInputError(f"{path} is a folder, not a file of STAC items")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not a text file: expected STAC items as JSON, one a line "
                                "(the .ndjson file that 'eo-sr search' writes)") from None
    stripped = text.strip()
    if stripped.startswith("{") and "\n{" not in stripped:  # one object, maybe pretty-printed
        try:
            obj = json.loads(stripped)
            records = [(1, f) for f in obj.get("features", [])] if obj.get("type") == "FeatureCollection" \
                else [(1, obj)]
        except (ValueError, AttributeError):
            records = None
    else:
        records = None
    if records is None:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((lineno, json.loads(line)))
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{lineno} is not JSON ({exc}); expected one STAC item per line")
    items = []
    for lineno, d in records:
        if not isinstance(d, dict) or d.get("type") != "Feature" or "id" not in d:
            kind = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise InvalidInputError(f"{path}:{lineno} is not a STAC item (type {kind!r}, need a GeoJSON Feature "
                                    "with an id); pass the items file that 'eo-sr search' writes")
        try:
            items.append(pystac.Item.from_dict(d, preserve_dict=False))
        except Exception as exc:  # pystac raises STACTypeError, KeyError, TypeError...
            raise InvalidInputError(f"{path}:{lineno} is not a valid STAC item ({type(exc).__name__}: {exc})") \
                from None
    return pystac.ItemCollection(items)
