"""The local STAC API (PostgreSQL + pgstac + stac-fastapi-pgstac), for real.

No mocks: a module-scoped server is started once, loaded with synthetic items built
here, and searched through ``pystac_client``. Every search result is compared with
the ids computed in Python from the same items, with a page size smaller than the
number of matches so that paging is exercised each time.
"""
from __future__ import annotations

import json
import random
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pystac
import pytest
from shapely.geometry import box, shape

from eo_sr.errors import ServerError

import pystac_client

from eo_sr.localapi import server as server_mod

pytestmark = pytest.mark.server

N_ITEMS = 150
PAGE = 10  # page size, smaller than every match count below
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
COLLECTIONS = ("demo-s2", "demo-hr")


def _require_postgres() -> None:
    """PostgreSQL is required (bash .ci/setup installs it): a missing one fails with how to install it."""
    server_mod.find_postgres_bindir()


# ----------------------------------------------------------------------------- data


def make_collections() -> list[pystac.Collection]:
    out = []
    for cid in COLLECTIONS:
        out.append(
            pystac.Collection(
                id=cid,
                description=f"Synthetic collection {cid} over Cyprus",
                extent=pystac.Extent(
                    pystac.SpatialExtent([[32.2, 34.5, 34.6, 35.7]]),
                    pystac.TemporalExtent([[START, START + timedelta(days=183)]]),
                ),
                license="CC-BY-4.0",
            )
        )
    return out


def make_items(n: int = N_ITEMS, seed: int = 7) -> list[pystac.Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        cid = COLLECTIONS[0] if i % 3 else COLLECTIONS[1]  # 100 + 50
        lon = rng.uniform(32.3, 34.5)
        lat = rng.uniform(34.6, 35.6)
        size = rng.uniform(0.01, 0.05)
        geom = box(lon, lat, lon + size, lat + size)
        # ~6 months, at odd minutes so no item sits on a query bound
        dt = START + timedelta(days=rng.uniform(0, 182), minutes=7)
        item = pystac.Item(
            id=f"{cid}-{i:04d}",
            geometry=geom.__geo_interface__,
            bbox=list(geom.bounds),
            datetime=dt,
            properties={"eo:cloud_cover": round(100 * i / (n - 1), 2), "gsd": 10.0},
            collection=cid,
        )
        item.add_asset(
            "data",
            pystac.Asset(
                href=f"file:///srv/eo-sr/demo/{cid}/{item.id}.tif",
                media_type=pystac.MediaType.COG,
                roles=["data"],
            ),
        )
        items.append(item)
    rng.shuffle(items)
    return items


ITEMS = make_items()
BY_ID = {it.id: it for it in ITEMS}


def expected(pred) -> set[str]:
    return {it.id for it in ITEMS if pred(it)}


def ids(search) -> list[str]:
    return [it.id for it in search.items()]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stac_server(tmp_path_factory):
    _require_postgres()
    workdir = tmp_path_factory.mktemp("stac-server")
    server = server_mod.serve(make_collections(), ITEMS, workdir=workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(stac_server):
    return pystac_client.Client.open(stac_server.url)


def search_ids(client, **kwargs) -> list[str]:
    kwargs.setdefault("collections", list(COLLECTIONS))
    kwargs.setdefault("limit", PAGE)
    kwargs.setdefault("max_items", None)
    return ids(client.search(**kwargs))


def _pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # reaped later by init
    except FileNotFoundError:
        return True


# ----------------------------------------------------------------------------- tests


def test_server_basics(stac_server):
    assert stac_server.url.startswith("http://127.0.0.1:")
    assert stac_server.running
    assert stac_server.log_path.is_file()
    assert stac_server.database_url.startswith("postgresql://")
    assert stac_server.timings["start"] < 30


def test_collections_listed(client):
    assert sorted(c.id for c in client.get_collections()) == sorted(COLLECTIONS)


def test_paging_returns_every_match(client):
    search = client.search(collections=list(COLLECTIONS), limit=PAGE, max_items=None)
    pages = list(search.pages())
    got = [it.id for page in pages for it in page.items]
    assert len(pages) == N_ITEMS // PAGE  # 15 pages of 10
    assert all(len(p.items) == PAGE for p in pages)
    assert len(got) == len(set(got)) == N_ITEMS
    assert set(got) == set(BY_ID)
    assert client.search(collections=list(COLLECTIONS), limit=PAGE).matched() == N_ITEMS


def test_search_one_collection(client):
    got = search_ids(client, collections=[COLLECTIONS[1]])
    want = expected(lambda it: it.collection_id == COLLECTIONS[1])
    assert len(want) == 50 and len(got) == len(want)
    assert set(got) == want


def test_bbox(client):
    bbox = (33.0, 34.9, 33.8, 35.3)
    got = search_ids(client, bbox=bbox)
    want = expected(lambda it: shape(it.geometry).intersects(box(*bbox)))
    assert len(want) > PAGE
    assert len(got) == len(want) and set(got) == want


def test_intersects(client):
    aoi = {
        "type": "Polygon",
        "coordinates": [[[32.9, 34.7], [33.9, 34.8], [34.2, 35.4], [33.2, 35.5], [32.9, 34.7]]],
    }
    got = search_ids(client, intersects=aoi)
    want = expected(lambda it: shape(it.geometry).intersects(shape(aoi)))
    assert len(want) > PAGE
    assert len(got) == len(want) and set(got) == want


def test_datetime_range(client):
    lo = datetime(2024, 2, 1, tzinfo=timezone.utc)
    hi = datetime(2024, 3, 31, 23, 59, 59, tzinfo=timezone.utc)
    got = search_ids(client, datetime=[lo, hi])
    want = expected(lambda it: lo <= it.datetime <= hi)
    assert len(want) > PAGE
    assert len(got) == len(want) and set(got) == want


def test_cql2_filter_cloud_cover(client):
    got = search_ids(
        client,
        filter={"op": "<=", "args": [{"property": "eo:cloud_cover"}, 20]},
        filter_lang="cql2-json",
    )
    want = expected(lambda it: it.properties["eo:cloud_cover"] <= 20)
    assert len(want) > PAGE
    assert len(got) == len(want) and set(got) == want


def test_query_extension_cloud_cover(client):
    got = search_ids(client, query={"eo:cloud_cover": {"lt": 20}})
    want = expected(lambda it: it.properties["eo:cloud_cover"] < 20)
    assert len(want) > PAGE
    assert len(got) == len(want) and set(got) == want


def test_combined_search(client):
    bbox = (32.5, 34.6, 34.0, 35.6)
    lo = datetime(2024, 1, 15, tzinfo=timezone.utc)
    hi = datetime(2024, 5, 15, tzinfo=timezone.utc)
    got = search_ids(
        client,
        collections=[COLLECTIONS[0]],
        bbox=bbox,
        datetime=[lo, hi],
        filter={"op": "<=", "args": [{"property": "eo:cloud_cover"}, 60]},
        filter_lang="cql2-json",
        limit=3,
    )
    want = expected(
        lambda it: it.collection_id == COLLECTIONS[0]
        and shape(it.geometry).intersects(box(*bbox))
        and lo <= it.datetime <= hi
        and it.properties["eo:cloud_cover"] <= 60
    )
    assert len(want) > 3
    assert len(got) == len(want) and set(got) == want


def test_asset_hrefs_unchanged(client):
    got = {it.id: it.assets["data"].href for it in client.search(collections=list(COLLECTIONS), limit=50).items()}
    assert len(got) == N_ITEMS
    for item_id, href in got.items():
        assert href == BY_ID[item_id].assets["data"].href
        assert href.startswith("file:///")


def test_reload_is_idempotent(stac_server, client, tmp_path):
    # again from objects, then from an ndjson file
    assert stac_server.load(make_collections(), ITEMS) == N_ITEMS
    ndjson = tmp_path / "items.ndjson"
    ndjson.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in ITEMS))
    assert stac_server.load([c.to_dict() for c in make_collections()], ndjson) == N_ITEMS
    assert stac_server.load([], str(ndjson)) == N_ITEMS
    got = search_ids(client)
    assert len(got) == N_ITEMS and set(got) == set(BY_ID)
    assert sorted(c.id for c in client.get_collections()) == sorted(COLLECTIONS)


def test_port_in_use(stac_server, tmp_path):
    with pytest.raises(ServerError, match=str(stac_server.port)) as exc:
        server_mod.LocalStacServer(port=stac_server.port, workdir=tmp_path).start()
    assert "port=None" in str(exc.value)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        srv = server_mod.LocalStacServer(port=port, workdir=tmp_path)
        with pytest.raises(ServerError, match=f"Port {port} .*taken"):
            srv.start()
        srv.stop()  # harmless after a failed start


def test_stop_leaves_nothing_behind(tmp_path):
    _require_postgres()
    items = ITEMS[:12]
    with server_mod.serve(make_collections(), items, workdir=tmp_path) as srv:
        api_pid, pg_pid = srv.api_pid, srv.postgres_pid
        assert api_pid and pg_pid
        assert not _pid_gone(api_pid) and not _pid_gone(pg_pid)
        cluster = srv._cluster_dir
        assert cluster is not None and Path(cluster).exists()
        got = ids(pystac_client.Client.open(srv.url).search(collections=list(COLLECTIONS), limit=5))
        assert set(got) == {it.id for it in items}
        srv.stop()
        srv.stop()  # twice is fine
        assert _pid_gone(api_pid) and _pid_gone(pg_pid)
        assert not srv.running
        assert not Path(cluster).exists()
    # __exit__ called stop() a third time
    with pytest.raises(ServerError):
        srv.load([], items)
