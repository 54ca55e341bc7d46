"""A real STAC API on the loopback interface: PostgreSQL + pgstac + stac-fastapi-pgstac.

The demo world (and the tests) search their STAC items through the same HTTP API a
user would use against Planetary Computer or Earth Search, so this module runs the
server stack Planetary Computer itself runs, locally and offline:

* a throw-away PostgreSQL cluster (``initdb`` into a temporary folder, trust
  authentication, TCP on ``127.0.0.1`` plus a private unix socket folder, fsync and
  synchronous commit off: the data is disposable and is reloaded on every start);
* the pgstac schema, installed with ``pypgstac`` (``Migrate(db).run_migration()``)
  and filled with ``pypgstac.load.Loader`` in *upsert* mode, so loading the same
  items twice leaves one copy of each;
* ``stac-fastapi-pgstac`` under ``uvicorn`` in a child process.

Why not ``rustac serve`` (stac-geoparquet over DuckDB), which starts ten times
faster and needs no PostgreSQL? Its DuckDB backend does not page -- a ``limit``
silently truncates the result instead of returning a ``next`` link -- and it does not
implement the ``query`` extension; its in-memory backend pages but silently ignores
``filter``. A search by collections, bbox, intersects, datetime and cloud cover
(CQL2 ``filter`` or ``query``) must return *every* match, page after page, exactly as
the public APIs do; pgstac does (see ``tests/test_server.py``).

Typical use::

    from eo_sr.localapi.server import serve

    with serve(collections, "items.ndjson") as server:
        client = pystac_client.Client.open(server.url)
        ...

PostgreSQL binaries are looked up on ``PATH`` (conda-forge's ``postgresql``) or under
``/usr/lib/postgresql/<version>/bin`` (Debian's ``postgresql-15``); PostGIS must be
installed for that PostgreSQL. PostgreSQL refuses to run as root: when this process
is root, the cluster belongs to the ``postgres`` user and the PostgreSQL tools run
through ``runuser -u postgres --``.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from eo_sr.paths import cache_dir
from eo_sr.localapi.processes import (OWNER_FILE, Watchdog, free_port, owner_alive, pid_alive, stop_pid,
                                     write_owner)
from eo_sr.errors import InvalidInputError, NotFoundError, ServerError

__all__ = ["LocalStacServer", "serve", "find_postgres_bindir"]

#: The database superuser created by ``initdb`` (any name works with trust auth).
DB_USER = "postgres"
#: The database that holds the pgstac schema (created by ``initdb``).
DB_NAME = "postgres"

_INSTALL_HINT = (
    "Install PostgreSQL with PostGIS: on Debian/Ubuntu "
    "`apt-get install postgresql-15 postgresql-15-postgis-3`; with conda "
    "`conda install -c conda-forge postgresql postgis`."
)
_PYTHON_HINT = (
    "Install the Python side of the server: "
    "`pip install 'pypgstac[psycopg]>=0.10,<0.11' 'stac-fastapi-pgstac>=7.2,<8' uvicorn`."
)
_PG_TOOLS = ("initdb", "pg_ctl", "postgres")

# Settings appended to postgresql.conf: a disposable, single-user, loopback cluster.
_PG_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "50",
    "shared_buffers": "64MB",
    "log_checkpoints": "off",
    "log_destination": "'stderr'",
    "logging_collector": "off",
    "jit": "off",
}


# ----------------------------------------------------------------------------- helpers


def find_postgres_bindir() -> Path:
    """Return the folder that holds PostgreSQL's ``initdb``, ``pg_ctl`` and ``postgres``.

    ``PATH`` comes first (a conda environment puts them there; symbolic links are
    followed to the real folder), then ``/usr/lib/postgresql/<version>/bin`` with the
    highest version (Debian and Ubuntu packages).

    Raises
    ------
    eo_sr.errors.ServerError
        When no PostgreSQL is installed; the message says how to install it.
    """
    candidates: list[Path] = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
        candidates.append(Path(found).parent)

    def version_key(p: Path) -> tuple:
        return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", p.parent.name))

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
    candidates.extend(debian)
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in _PG_TOOLS):
            return bindir
    raise ServerError(
        "PostgreSQL was not found (looked for initdb, pg_ctl and postgres on PATH and "
        f"under /usr/lib/postgresql/*/bin). {_INSTALL_HINT}"
    )


def _port_is_free(host: str, port: int) -> bool:
    # SO_REUSEADDR as uvicorn and postgres use it: a port in TIME_WAIT is free, a
    # port with a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _tail(path: Path | None, n: int = 20) -> str:
    if path is None or not path.exists():
        return "(no log)"
    try:
        with open(path, errors="replace") as f:
            lines = deque(f, maxlen=n)
    except OSError as exc:  # pragma: no cover - unreadable log
        return f"(log unreadable: {exc})"
    return "".join(lines).rstrip() or "(log is empty)"


def _to_dict(obj: Any, kind: str) -> dict:
    """A STAC object (pystac or dict) as a plain dict, hrefs left as they are."""
    if isinstance(obj, dict):
        return dict(obj)
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is None:
        raise InvalidInputError(
            f"A {kind} must be a pystac.{kind.capitalize()} or a dict, not {type(obj).__name__}."
        )
    d = to_dict(include_self_link=False, transform_hrefs=False)
    # A relative asset href only means something next to its item's file: make it
    # absolute (a bare path would be rewritten by clients into http://<api>/path).
    assets = getattr(obj, "assets", None) or {}
    for key, asset in assets.items():
        href = d.get("assets", {}).get(key, {}).get("href")
        if href and "://" not in href and not href.startswith("/"):
            absolute = asset.get_absolute_href()
            if absolute:
                d["assets"][key]["href"] = absolute
    return d


def _read_ndjson(path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise NotFoundError(f"Items file {path} does not exist.")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{path}:{lineno} is not JSON ({exc.msg}); expected one STAC item per line."
                ) from None
            if obj.get("type") == "FeatureCollection":
                yield from obj.get("features", [])
            else:
                yield obj


def _stale_cluster_dirs() -> Iterator[Path]:
    yield from Path("/tmp").glob("eo-sr-pgstac-*")  # clusters run as the postgres user
    yield from cache_dir("stac-server").glob("*/pgstac-*")


def clean_stale_servers() -> list[Path]:
    """Stop and remove what servers whose process died left behind; return what was removed.

    A cluster folder whose owner (recorded when it was made) no longer runs is stale: its
    PostgreSQL, if still running, gets an immediate shutdown, and the folder goes. Log
    folders of dead servers under the cache's ``stac-server/`` go too. Folders of servers
    that still run, this one's or another process's, are left alone.
    """
    removed: list[Path] = []
    for folder in _stale_cluster_dirs():
        if not folder.is_dir() or owner_alive(folder) or not (folder / OWNER_FILE).exists():
            continue
        try:
            pid = int((folder / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            pid = None
        if pid and _is_postgres(pid):
            stop_pid(pid, signal.SIGQUIT, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    for folder in cache_dir("stac-server").glob("*"):
        if folder.is_dir() and (folder / OWNER_FILE).exists() and not owner_alive(folder) \
                and not any(folder.glob("pgstac-*")):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# ----------------------------------------------------------------------------- server


class LocalStacServer:
    """A STAC API (stac-fastapi-pgstac over a private PostgreSQL) on the loopback.

    Parameters
    ----------
    port : int, optional
        TCP port of the API. ``None`` (default) picks a free one. A port that is
        already taken makes :meth:`start` raise :class:`~eo_sr.errors.ServerError`.
    workdir : str or pathlib.Path, optional
        Folder for the log files (and, when not running as root, the database
        cluster). Default: ``eo_sr.paths.cache_dir("stac-server") / "<port>"``.
    host : str, optional
        Interface to listen on (default ``"127.0.0.1"``).

    Examples
    --------
    >>> with LocalStacServer() as server:          # doctest: +SKIP
    ...     server.load(collections, "items.ndjson")
    ...     pystac_client.Client.open(server.url).search(collections=["s2"]).item_collection()

    Notes
    -----
    The database is created afresh on every :meth:`start` and deleted by
    :meth:`stop`; reload the items after a restart. :attr:`timings` records how
    long each step took (seconds).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: str | Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise InvalidInputError(f"port must be an integer in 1..65535 or None, not {port!r}.")
        self.host = host
        self._requested_port = port
        self._workdir_arg = Path(workdir).expanduser().resolve() if workdir is not None else None
        self.timings: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self._port: int | None = None
        self._pg_port: int | None = None
        self._workdir: Path | None = None
        self._bindir: Path | None = None
        self._run_as: str | None = None
        self._cluster_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._own_socket_dir = False
        self._datadir: Path | None = None
        self._api_log: Path | None = None
        self._pg_log: Path | None = None
        self._api_proc: subprocess.Popen | None = None
        self._api_log_fh: IO[bytes] | None = None
        self._pg_started = False
        self._pg_pid: int | None = None
        self._atexit_registered = False
        self._watchdog: Watchdog | None = None
        self.pgstac_version: str | None = None

    # ------------------------------------------------------------------ properties

    def _require(self, value: Any, what: str) -> Any:
        if value is None:
            raise ServerError(f"The STAC server is not started, so it has no {what} yet: call start().")
        return value

    @property
    def port(self) -> int:
        """TCP port of the API."""
        return self._require(self._port, "port")

    @property
    def url(self) -> str:
        """Root URL of the STAC API, e.g. ``"http://127.0.0.1:8123"``."""
        return f"http://{self.host}:{self.port}"

    @property
    def workdir(self) -> Path:
        """Folder that holds the log files."""
        return self._require(self._workdir, "workdir")

    @property
    def log_path(self) -> Path:
        """Log file of the API process (uvicorn / stac-fastapi-pgstac)."""
        return self._require(self._api_log, "log")

    @property
    def postgres_log_path(self) -> Path:
        """Log file of initdb, pg_ctl and PostgreSQL."""
        return self._require(self._pg_log, "PostgreSQL log")

    @property
    def database_url(self) -> str:
        """libpq URL of the pgstac database (trust authentication, no password)."""
        port = self._require(self._pg_port, "database")
        return f"postgresql://{DB_USER}@127.0.0.1:{port}/{DB_NAME}"

    @property
    def api_pid(self) -> int | None:
        """PID of the uvicorn process, ``None`` when not running."""
        return self._api_proc.pid if self._api_proc is not None else None

    @property
    def postgres_pid(self) -> int | None:
        """PID of the PostgreSQL postmaster, ``None`` when not running."""
        return self._pg_pid

    @property
    def running(self) -> bool:
        """Whether both the API and PostgreSQL processes are alive."""
        return (
            self._api_proc is not None
            and self._api_proc.poll() is None
            and pid_alive(self._pg_pid)
        )

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port and self.running else "stopped"
        return f"<LocalStacServer {state}>"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "LocalStacServer":
        if self._api_proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, timeout: float = 30) -> "LocalStacServer":
        """Create the database, install pgstac and start the API; return ``self``.

        Blocks until ``GET {url}/`` answers 200.

        Raises
        ------
        eo_sr.errors.ServerError
            PostgreSQL, PostGIS or the Python packages are missing, the port is
            taken, or a process died or did not answer within ``timeout`` seconds
            (the message names the log file and shows its last lines).
        """
        if self._api_proc is not None:
            raise ServerError(f"The STAC server is already running at {self.url}.")
        self._reset()
        self.timings = {}
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            self._prepare()
            # Stops PostgreSQL and uvicorn and removes the cluster if this process dies
            # without calling stop() (kill -9, a kernel restart).
            self._watchdog = Watchdog()
            # uvicorn takes about a second to import; start it first and build the
            # database meanwhile (its pool connects lazily, DB_MIN_CONN_SIZE=0).
            self._start_api()
            self._start_postgres(deadline)
            self._install_pgstac()
            self._wait_api(deadline)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.perf_counter() - t0
        return self

    def _prepare(self) -> None:
        missing = [
            name
            for name in ("pypgstac", "psycopg", "stac_fastapi.pgstac", "uvicorn")
            if _find_spec(name) is None
        ]
        if missing:
            raise ServerError(f"Missing Python packages: {', '.join(missing)}. {_PYTHON_HINT}")
        self._bindir = find_postgres_bindir()

        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerError(
                    "PostgreSQL refuses to run as root, and there is no `postgres` user to run "
                    "it as. Create one (`useradd --system postgres`) or run as a normal user."
                ) from None
            if shutil.which("runuser") is None:
                raise ServerError(
                    "PostgreSQL refuses to run as root and `runuser` (util-linux) is missing."
                )
            self._run_as = "postgres"

        if self._requested_port is not None:
            if not _port_is_free(self.host, self._requested_port):
                raise ServerError(
                    f"Port {self._requested_port} on {self.host} is taken (another process "
                    "listens there). Pass port=None to pick a free port, or another port."
                )
            self._port = self._requested_port
        else:
            self._port = free_port(self.host)
        self._pg_port = free_port("127.0.0.1")
        while self._pg_port == self._port:  # pragma: no cover - unlucky draw
            self._pg_port = free_port("127.0.0.1")

        clean_stale_servers()
        self._workdir = self._workdir_arg or cache_dir("stac-server", str(self._port))
        self._workdir.mkdir(parents=True, exist_ok=True)
        write_owner(self._workdir)
        self._api_log = self._workdir / "api.log"
        self._pg_log = self._workdir / "postgres.log"
        for log in (self._api_log, self._pg_log):
            log.write_text("")

    # ------------------------------------------------------------------ postgres

    def _pg_cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self._bindir / tool), *args]
        if self._run_as:
            cmd = ["runuser", "-u", self._run_as, "--", *cmd]
        return cmd

    def _run_pg(self, tool: str, *args: str, timeout: float, new_session: bool = False) -> None:
        assert self._pg_log is not None
        with open(self._pg_log, "ab") as log:
            log.write(f"$ {tool} {' '.join(args)}\n".encode())
            log.flush()
            try:
                proc = subprocess.run(
                    self._pg_cmd(tool, *args),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._cluster_dir,
                    env=self._pg_env(),
                    timeout=max(timeout, 1.0),
                    start_new_session=new_session,
                )
            except subprocess.TimeoutExpired:
                raise ServerError(
                    f"`{tool}` did not finish within {timeout:.0f} s; see {self._pg_log}:\n"
                    f"{_tail(self._pg_log)}"
                ) from None
        if proc.returncode != 0:
            raise ServerError(
                f"`{tool} {' '.join(args)}` failed (exit {proc.returncode}); see {self._pg_log}:\n"
                f"{_tail(self._pg_log)}"
            )

    def _pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        return env

    def _start_postgres(self, deadline: float) -> None:
        t = time.perf_counter()
        if self._run_as:
            # The parents of the workdir may not be traversable by `postgres`.
            self._cluster_dir = Path(tempfile.mkdtemp(prefix="eo-sr-pgstac-", dir="/tmp"))
            pw = pwd.getpwnam(self._run_as)
            os.chown(self._cluster_dir, pw.pw_uid, pw.pw_gid)
        else:
            assert self._workdir is not None
            self._cluster_dir = Path(tempfile.mkdtemp(prefix="pgstac-", dir=self._workdir))
        os.chmod(self._cluster_dir, 0o700)
        write_owner(self._cluster_dir)
        assert self._watchdog is not None
        self._watchdog.guard_path(self._cluster_dir)
        self._datadir = self._cluster_dir / "data"
        # A unix socket path must stay under ~107 bytes.
        if len(str(self._cluster_dir)) <= 80:
            self._socket_dir = self._cluster_dir
        else:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="eo-sr-pgsock-"))
            self._own_socket_dir = True
            self._watchdog.guard_path(self._socket_dir)
            if self._run_as:
                pw = pwd.getpwnam(self._run_as)
                os.chown(self._socket_dir, pw.pw_uid, pw.pw_gid)

        self._run_pg(
            "initdb",
            "-D", str(self._datadir),
            "-U", DB_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            timeout=deadline - time.monotonic(),
        )
        self.timings["initdb"] = time.perf_counter() - t

        settings = dict(_PG_SETTINGS)
        settings["listen_addresses"] = "'127.0.0.1'"
        settings["port"] = str(self._pg_port)
        settings["unix_socket_directories"] = "'" + str(self._socket_dir).replace("'", "''") + "'"
        with open(self._datadir / "postgresql.conf", "a") as conf:  # root may append
            conf.write("\n# eo-sr local STAC server\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

        t = time.perf_counter()
        remaining = max(deadline - time.monotonic(), 1.0)
        # A new session keeps Ctrl-C in the terminal away from PostgreSQL: stop()
        # shuts it down in order.
        self._pg_started = True  # from here on, stop() must try pg_ctl stop
        self._run_pg(
            "pg_ctl",
            "-D", str(self._datadir),
            "-w", "-t", str(int(remaining)),
            "start",
            timeout=remaining + 5,
            new_session=True,
        )
        self._pg_pid = self._read_postmaster_pid()
        if self._pg_pid:
            # SIGQUIT: immediate shutdown; the data are thrown away anyway.
            self._watchdog.guard_pid(self._pg_pid, signal.SIGQUIT)
        self.timings["postgres_start"] = time.perf_counter() - t

    def _read_postmaster_pid(self) -> int | None:
        assert self._datadir is not None
        try:
            return int((self._datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise ServerError(
                f"Cannot connect to the local PostgreSQL at {self.database_url}: {exc}; "
                f"see {self._pg_log}:\n{_tail(self._pg_log)}"
            ) from None

    def _install_pgstac(self) -> None:
        t = time.perf_counter()
        import psycopg

        major = self._bindir.parent.name if self._bindir.parent.parent.name == "postgresql" else "N"
        hint = (f"install the PostGIS of that PostgreSQL (Debian/Ubuntu: `apt-get install postgresql-{major}-postgis-3`, "
                "which `bash .ci/setup` does for you as root; conda: `conda install -c conda-forge postgis`).")
        with self._connect() as conn:
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
            if row is None:
                raise ServerError(f"PostGIS is not installed for the PostgreSQL in {self._bindir}: {hint}")
            try:  # the control file can outlive the library (Debian's -scripts package stays behind)
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as exc:
                raise ServerError(f"PostGIS is only partly installed for the PostgreSQL in {self._bindir} "
                                  f"({str(exc).strip()}): {hint}") from None
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        db = PgstacDB(dsn=self.database_url)
        try:
            version = Migrate(db).run_migration()
            # numberMatched in search results, so clients can tell how many to expect.
            db.connect().execute(
                "INSERT INTO pgstac.pgstac_settings (name, value) VALUES ('context', 'on') "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value"
            )
        except ServerError:
            raise
        except Exception as exc:
            raise ServerError(
                f"Installing pgstac into the local PostgreSQL failed: {exc}; "
                f"see {self._pg_log}:\n{_tail(self._pg_log)}"
            ) from exc
        finally:
            _close_db(db)
        self.pgstac_version = version
        self.timings["migrate"] = time.perf_counter() - t

    # ------------------------------------------------------------------ API

    def _api_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))}
        env.update(
            {
                # stac-fastapi-pgstac 7.x (PostgresSettings) reads the libpq names.
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self._pg_port),
                "PGUSER": DB_USER,
                "PGPASSWORD": "unused",  # required by the settings class; trust auth
                "PGDATABASE": DB_NAME,
                # Older releases read these.
                "POSTGRES_HOST_READER": "127.0.0.1",
                "POSTGRES_HOST_WRITER": "127.0.0.1",
                "POSTGRES_PORT": str(self._pg_port),
                "POSTGRES_USER": DB_USER,
                "POSTGRES_PASS": "unused",
                "POSTGRES_DBNAME": DB_NAME,
                # Connect lazily, so the API can start while the database is built.
                "DB_MIN_CONN_SIZE": "0",
                "DB_MAX_CONN_SIZE": "10",
                # Read-only API; nothing that fetches schemas from the network.
                "ENABLE_TRANSACTIONS_EXTENSIONS": "false",
                "VALIDATE_EXTENSIONS": "false",
                "ENABLE_METRICS": "false",
                "STAC_FASTAPI_TITLE": "eo-sr local STAC API",
                "STAC_FASTAPI_DESCRIPTION": "pgstac on the loopback, made by eo_sr.localapi.server",
                "STAC_FASTAPI_LANDING_ID": "eo-sr-local",
                "STAC_FASTAPI_VERSION": "1.0.0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _start_api(self) -> None:
        assert self._workdir is not None and self._api_log is not None
        cmd = [
            sys.executable, "-m", "uvicorn",
            "stac_fastapi.pgstac.app:create_app", "--factory",
            "--host", self.host,
            "--port", str(self._port),
            "--log-level", "warning",
            "--no-access-log",
            "--workers", "1",
        ]
        self._api_log_fh = open(self._api_log, "ab")
        self._api_log_fh.write(("$ " + " ".join(cmd) + "\n").encode())
        self._api_log_fh.flush()
        self._api_started_at = time.perf_counter()
        # cwd = workdir: the settings classes read a `.env` from the current folder.
        self._api_proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._api_log_fh,
            stderr=subprocess.STDOUT,
            cwd=self._workdir,
            env=self._api_env(),
            start_new_session=True,
        )
        assert self._watchdog is not None
        self._watchdog.guard_pid(self._api_proc.pid, signal.SIGTERM)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True

    def _wait_api(self, deadline: float) -> None:
        assert self._api_proc is not None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        last_error = "no answer"
        while True:
            code = self._api_proc.poll()
            if code is not None:
                log = _tail(self._api_log)
                if "address already in use" in log.lower():
                    raise ServerError(
                        f"Port {self._port} on {self.host} is taken. Pass port=None to pick a "
                        f"free port, or another port. Log {self._api_log}:\n{log}"
                    )
                raise ServerError(
                    f"The STAC API process exited (code {code}) before answering; "
                    f"see {self._api_log}:\n{log}"
                )
            try:
                with opener.open(self.url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        break
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(getattr(exc, "reason", exc))
            if time.monotonic() > deadline:
                raise ServerError(
                    f"The STAC API at {self.url} did not answer 200 in time ({last_error}); "
                    f"see {self._api_log}:\n{_tail(self._api_log)}"
                )
            time.sleep(0.05)
        self.timings["api_ready"] = time.perf_counter() - self._api_started_at

    # ------------------------------------------------------------------ data

    def load(
        self,
        collections: Iterable[Any],
        items: Iterable[Any] | str | Path,
    ) -> int:
        """Load (upsert) collections, then items, into the database.

        Loading the same ids again replaces them, so a reload is idempotent.

        Parameters
        ----------
        collections : iterable of pystac.Collection or dict
            Every collection the items refer to (unless loaded before).
        items : iterable of pystac.Item or dict, or str / pathlib.Path
            The items, or the path to an ndjson file with one item per line.
            Asset hrefs are stored unchanged (relative hrefs of pystac items
            are made absolute first).

        Returns
        -------
        int
            The number of items loaded.
        """
        if self._pg_port is None or not pid_alive(self._pg_pid):
            raise ServerError("The STAC server is not running: call start() before load().")
        t = time.perf_counter()
        if isinstance(collections, (dict, str, Path)) or hasattr(collections, "to_dict"):
            raise InvalidInputError("collections must be a list of collections, not a single one.")
        coll_dicts = [_to_dict(c, "collection") for c in collections]
        for c in coll_dicts:
            if not c.get("id"):
                raise InvalidInputError(f"A collection has no id: {str(c)[:200]}")

        count = 0

        def item_dicts() -> Iterator[dict]:
            nonlocal count
            source = _read_ndjson(Path(items)) if isinstance(items, (str, Path)) else items
            for obj in source:
                d = _to_dict(obj, "item")
                if not d.get("collection"):
                    raise InvalidInputError(
                        f"Item {d.get('id')!r} has no 'collection'; pgstac needs one."
                    )
                count += 1
                yield d

        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods

        db = PgstacDB(dsn=self.database_url)
        try:
            loader = Loader(db)
            if coll_dicts:
                loader.load_collections(iter(coll_dicts), insert_mode=Methods.upsert)
            loader.load_items(item_dicts(), insert_mode=Methods.upsert)
        except (InvalidInputError, ServerError):
            raise
        except Exception as exc:
            raise ServerError(f"Loading STAC items into pgstac failed: {exc}") from exc
        finally:
            _close_db(db)
        self.timings["load"] = time.perf_counter() - t
        self.timings["load_items"] = count
        return count

    # ------------------------------------------------------------------ stop

    def wait(self) -> None:
        """Block until Ctrl-C (or until a server process dies), then stop cleanly.

        SIGTERM is treated like Ctrl-C while waiting (in the main thread), so
        ``kill <pid>`` also shuts PostgreSQL down instead of orphaning it.

        Raises
        ------
        eo_sr.errors.ServerError
            A server process died on its own; the message shows its log.
        """
        previous = None
        if threading.current_thread() is threading.main_thread():

            def _on_term(signum, frame):
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGTERM, _on_term)
        try:
            while True:
                if self._api_proc is None:
                    return
                code = self._api_proc.poll()
                if code is not None:
                    raise ServerError(
                        f"The STAC API process exited (code {code}); see {self._api_log}:\n"
                        f"{_tail(self._api_log)}"
                    )
                if not pid_alive(self._pg_pid):
                    raise ServerError(
                        f"PostgreSQL exited; see {self._pg_log}:\n{_tail(self._pg_log)}"
                    )
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.stop()

    def stop(self) -> None:
        """Stop the API and PostgreSQL and delete the database; safe to call twice."""
        proc, self._api_proc = self._api_proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
        if self._api_log_fh is not None:
            with contextlib.suppress(OSError):
                self._api_log_fh.close()
            self._api_log_fh = None

        if self._pg_started:
            self._pg_started = False
            pid = self._pg_pid or self._read_postmaster_pid()
            if self._datadir is not None and self._datadir.exists():
                with contextlib.suppress(ServerError):
                    self._run_pg("pg_ctl", "-D", str(self._datadir), "-m", "fast", "-w", "-t", "20", "stop", timeout=25)
            stop_pid(pid, signal.SIGQUIT, signal.SIGKILL)  # when pg_ctl failed
        self._pg_pid = None

        for path, owned in ((self._cluster_dir, True), (self._socket_dir, self._own_socket_dir)):
            if path is not None and owned:
                shutil.rmtree(path, ignore_errors=True)
        self._cluster_dir = None
        self._socket_dir = None
        self._own_socket_dir = False
        self._datadir = None

        if self._watchdog is not None:
            self._watchdog.release()
            self._watchdog = None
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _close_db(db: Any) -> None:
    with contextlib.suppress(Exception):
        db.disconnect()
    with contextlib.suppress(Exception):
        db.close()
    # PgstacDB.connect registers an atexit hook per connection; drop it.
    with contextlib.suppress(Exception):
        atexit.unregister(db.disconnect)


def serve(
    collections: Iterable[Any],
    items: Iterable[Any] | str | Path,
    *,
    port: int | None = None,
    workdir: str | Path | None = None,
    timeout: float = 30,
) -> LocalStacServer:
    """Start a :class:`LocalStacServer`, load the collections and items, return it.

    The returned server is running; use it as a context manager (or call
    :meth:`LocalStacServer.stop`, or :meth:`LocalStacServer.wait` to block until
    Ctrl-C) to shut it down.

    Parameters
    ----------
    collections : iterable of pystac.Collection or dict
    items : iterable of pystac.Item or dict, or path to an ndjson file
    port : int, optional
        API port; ``None`` picks a free one.
    workdir : str or pathlib.Path, optional
        Folder for the logs (see :class:`LocalStacServer`).
    timeout : float, optional
        Seconds to wait for the server to come up (default 30).
    """
    server = LocalStacServer(port=port, workdir=workdir)
    server.start(timeout=timeout)
    try:
        server.load(collections, items)
    except BaseException:
        server.stop()
        raise
    return server
