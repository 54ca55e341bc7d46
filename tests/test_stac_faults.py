"""eo_sr.stac under real-world faults: a proxy on 127.0.0.1 in front of the real local STAC API
answers 429 with Retry-After, 503, slow responses and JSON cut short, as the public APIs do under
load. Searches must come back complete and identical to a direct search, and retries stay bounded."""
from __future__ import annotations

import sqlite3
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eo_sr import demo, stac
from eo_sr.errors import EoSrError

pytestmark = pytest.mark.server

TIMEOUT = 0.5  # the client's timeout in these tests, seconds
SLOW = 1.0  # how long a "slow" answer stalls: longer than TIMEOUT
FAULTS = ("429", "503", "slow", "slow-body", "truncate", "cut", "html", "404", "empty")


def _answer(h, status: int, ctype: str | None, data: bytes, headers: dict | None = None) -> None:
    """Send one complete HTTP answer."""
    h.send_response(status)
    for key, value in {**({"Content-Type": ctype} if ctype else {}), **(headers or {})}.items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


class FaultProxy:
    """A forwarding proxy that injects one kind of fault into chosen requests.

    Requests are numbered from 1 since the last :meth:`plan`. A request is faulty when
    its number is <= ``first``, or a multiple of ``every``, or > ``after``. Others
    are forwarded to the upstream API, with the upstream URL in the answers
    (``links``, paging) replaced by the proxy's, so that paging goes through it too.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.lock = threading.Lock()
        self.plan()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.handle(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def plan(self, fault: str | None = None, *, first: int = 0, every: int = 0, after: int | None = None,
             retry_after: str = "1") -> None:
        assert fault is None or fault in FAULTS
        with self.lock:
            self.fault, self.first, self.every, self.after = fault, first, every, after
            self.retry_after = retry_after
            self.count = 0  # requests received since this plan
            self.faults = 0  # faults injected since this plan

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _is_faulty(self) -> str | None:
        with self.lock:
            self.count += 1
            n = self.count
            hit = self.fault is not None and (
                n <= self.first or (self.every and n % self.every == 0) or (self.after is not None and n > self.after))
            if hit:
                self.faults += 1
            return self.fault if hit else None

    def _forward(self, h) -> tuple[int, str, bytes]:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) or None
        req = urllib.request.Request(self.upstream + h.path, data=body, method=h.command,
                                     headers={k: v for k, v in h.headers.items()
                                              if k.lower() in ("content-type", "accept")})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as resp:
                status, ctype, data = resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            status, ctype, data = err.code, err.headers.get("Content-Type", ""), err.read()
        return status, ctype, data.replace(self.upstream.encode(), self.url.encode())

    def handle(self, h) -> None:
        fault = self._is_faulty()
        try:
            if fault in ("429", "503"):
                headers = {"Retry-After": self.retry_after} if fault == "429" else {}
                return _answer(h, int(fault), "application/json",
                               b'{"code": "busy", "description": "try again later"}', headers)
            if fault == "404":  # a wrong URL on a web server: an HTML error page
                return _answer(h, 404, "text/html",
                               b"<!DOCTYPE html><html><head><title>404 Not Found</title><style>body{color:red}</style>"
                               b"</head><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p>"
                               + b"<p>padding</p>" * 200 + b"</body></html>")
            if fault == "empty":  # a 200 with nothing in it (a misconfigured gateway)
                return _answer(h, 200, None, b"")
            if fault == "slow":  # no answer within the client's timeout; then hang up
                time.sleep(SLOW)
                return
            if fault == "html":  # a captive portal or a web page: not an API at all
                return _answer(h, 200, "text/html", b"<html><body>Welcome to the workshop Wi-Fi</body></html>")
            status, ctype, data = self._forward(h)
            half = data[: len(data) // 2]
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            # truncate: a complete HTTP answer whose JSON stops half-way; cut/slow-body: the
            # connection stops (or stalls) before the announced length.
            h.send_header("Content-Length", str(len(half) if fault == "truncate" else len(data)))
            h.end_headers()
            if fault in ("truncate", "cut"):
                h.wfile.write(half)
            elif fault == "slow-body":
                h.wfile.write(half)
                h.wfile.flush()
                time.sleep(SLOW)
                h.wfile.write(data[len(half):])
            else:
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first: as a real server sees it
            pass


@pytest.fixture(scope="module")
def proxy(demo_server):
    p = FaultProxy(demo_server.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def direct(demo_server):
    """Ids of the reference search, straight to the API."""
    items = stac.search(stac.open_catalog(demo_server), collections=demo.LR_COLLECTION, limit=3)
    assert len(items) > 9  # several pages of 3
    return [it.id for it in items]


def _open(proxy, max_retries=4):
    proxy.plan()
    return stac.open_catalog(proxy.url, timeout=TIMEOUT, max_retries=max_retries, backoff=0.05)


def _search(cat, **kw):
    return [it.id for it in stac.search(cat, collections=demo.LR_COLLECTION, limit=3, **kw)]


def test_the_proxy_is_transparent(proxy, direct):
    cat = _open(proxy)
    assert _search(cat) == direct
    assert proxy.count > 4 and proxy.faults == 0  # every page went through the proxy
    assert stac.request_stats(cat)["retries"] == 0


def test_429_retry_after_is_honoured(proxy, direct):
    cat = _open(proxy)
    proxy.plan("429", first=1, retry_after="1")
    t0 = time.perf_counter()
    assert _search(cat) == direct
    assert time.perf_counter() - t0 >= 1.0
    assert proxy.faults == 1 and stac.request_stats(cat)["retries"] == 1
    assert stac.request_stats(cat)["waited"] >= 1.0


@pytest.mark.parametrize("fault", ["503", "truncate", "cut"])
def test_every_other_request_failing_still_gives_every_item(proxy, direct, fault):
    cat = _open(proxy)
    before = stac.request_stats(cat)["attempts"]
    proxy.plan(fault, every=2)
    assert _search(cat) == direct
    stats = stac.request_stats(cat)
    assert proxy.faults >= 4 and stats["retries"] == proxy.faults
    assert stats["attempts"] - before == proxy.count  # the client counts what the proxy saw


@pytest.mark.parametrize("fault", ["slow", "slow-body"])
def test_slow_answers_time_out_and_are_retried(proxy, direct, fault):
    cat = _open(proxy)
    proxy.plan(fault, first=2)
    assert _search(cat) == direct
    assert proxy.faults == 2 and stac.request_stats(cat)["retries"] == 2


def test_opening_a_catalog_is_retried_too(proxy, direct):
    proxy.plan("503", first=2)
    cat = stac.open_catalog(proxy.url, timeout=TIMEOUT, max_retries=2, backoff=0.05)
    assert stac.request_stats(cat)["retries"] == 2
    assert _search(cat) == direct


@pytest.mark.parametrize("max_retries", [0, 2])
def test_retries_are_bounded(proxy, max_retries, tmp_path):
    cat = _open(proxy, max_retries=max_retries)
    proxy.plan("503", every=1)
    t0 = time.perf_counter()
    with pytest.raises(EoSrError, match=rf"failed after {max_retries + 1} attempt.*HTTP 503"):
        _search(cat, cache=tmp_path / "c.sqlite")
    assert proxy.count == max_retries + 1  # counted at the proxy
    assert time.perf_counter() - t0 < 2


def test_a_search_that_fails_half_way_leaves_nothing_in_the_cache(proxy, direct, tmp_path):
    path = tmp_path / "c.sqlite"
    cat = _open(proxy, max_retries=1)
    stac.search(cat, collections=demo.HR_COLLECTION, cache=path)  # another search, stored
    proxy.plan("503", after=3)  # the collection list and two pages, then the API goes down
    with pytest.raises(EoSrError, match="HTTP 503"):
        _search(cat, cache=path)
    assert proxy.faults == 2  # one attempt and one retry of the third page
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM searches").fetchone() == (1,)
    proxy.plan()  # back up: the search runs and is stored whole
    assert _search(cat, cache=path) == direct
    proxy.plan("503", every=1)  # down again: the cache answers
    assert _search(cat, cache=path) == direct and proxy.count == 0


def test_a_server_asking_for_a_long_wait_fails_fast_with_the_reason(proxy):
    cat = _open(proxy)
    proxy.plan("429", every=1, retry_after="3600")
    t0 = time.perf_counter()
    with pytest.raises(EoSrError, match="asks to wait 3600 s"):
        _search(cat)
    assert time.perf_counter() - t0 < 1 and proxy.count == 1


def test_a_web_page_instead_of_an_api_is_a_clear_error_not_retried(proxy):
    proxy.plan("html", every=1)
    with pytest.raises(EoSrError, match="text/html, not JSON.*STAC API"):
        stac.open_catalog(proxy.url, timeout=TIMEOUT, max_retries=3, backoff=0.05)
    assert proxy.count == 1


def test_a_404_says_its_status_in_one_short_line(proxy):
    proxy.plan("404", every=1)
    with pytest.raises(EoSrError) as info:
        stac.open_catalog(proxy.url, timeout=TIMEOUT, max_retries=3, backoff=0.05)
    text = str(info.value)
    assert "HTTP 404" in text and "Not Found" in text and "wrong URL" in text
    assert "<" not in text and "color:red" not in text and len(text) < 600, text
    assert proxy.count == 1  # not retried


def test_an_empty_body_is_named_not_left_blank(proxy):
    proxy.plan("empty", every=1)
    with pytest.raises(EoSrError) as info:
        stac.open_catalog(proxy.url, timeout=TIMEOUT, max_retries=3, backoff=0.05)
    assert "empty body" in str(info.value) and not str(info.value).rstrip().endswith(":"), str(info.value)


def test_a_closed_port_says_what_it_retries(caplog):
    import logging
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="eo_sr.stac"):
        with pytest.raises(EoSrError, match="failed after 3 attempt"):
            stac.open_catalog(f"http://127.0.0.1:{port}", timeout=TIMEOUT, max_retries=2, backoff=0.05)
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and all(f"127.0.0.1:{port}" in m and "ConnectionError" in m for m in retries), retries


def test_retry_after_as_an_http_date():
    from email.utils import format_datetime
    from datetime import datetime, timedelta, timezone

    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 28 <= stac._retry_after(format_datetime(when, usegmt=True)) <= 30
    assert stac._retry_after("2") == 2.0 and stac._retry_after(None) is None
    assert stac._retry_after("soon") is None
