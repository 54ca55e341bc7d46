"""Server processes that never outlive the command that started them.

A local STAC API is PostgreSQL plus uvicorn; the QC app is JupyterLab. Each runs in
its own session, so that Ctrl-C in a terminal reaches eo-sr first and eo-sr shuts them
down in order. That leaves the cases where eo-sr itself dies without cleaning up: a
``kill -9``, an out-of-memory kill, a Jupyter kernel restart. For those, every server
gets a :class:`Watchdog`: a tiny process, in a session of its own, that holds the read
end of a pipe whose write end only the parent has. When the parent dies, however it
dies, the kernel closes that pipe; the watchdog reads end-of-file, stops the processes
it was told about and removes the folders it was told about. A parent that stops its
servers normally calls :meth:`Watchdog.release` first, and the watchdog exits quietly.

What a watchdog cannot clean (both killed at once, a machine reset) is found on the next
start by :func:`owner_alive` on the owner file each server folder holds.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Watchdog", "free_port", "pid_alive", "stop_pid", "process_identity", "write_owner",
           "owner_alive", "OWNER_FILE"]

#: Name of the file, inside a server's folder, that says which process owns the folder.
OWNER_FILE = "eo-sr-owner"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def process_identity(pid: int) -> str:
    """``"<pid>:<start time>"``: unlike a bare pid, it is not reused by a later process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "?"
    return f"{pid}:{start}"


def write_owner(folder: Path) -> None:
    """Record in ``folder`` that this process owns it (see :func:`owner_alive`)."""
    (Path(folder) / OWNER_FILE).write_text(process_identity(os.getpid()) + "\n")


def owner_alive(folder: Path) -> bool:
    """Whether the process recorded by :func:`write_owner` in ``folder`` still runs.

    A folder without an owner file counts as owned (it may be being created right now).
    """
    try:
        recorded = (Path(folder) / OWNER_FILE).read_text().strip()
    except FileNotFoundError:
        return True
    except OSError:
        return True
    try:
        pid = int(recorded.split(":", 1)[0])
    except ValueError:
        return False
    return pid_alive(pid) and process_identity(pid) == recorded


def stop_pid(pid: int | None, *signals: signal.Signals, grace: float = 5.0) -> bool:
    """Send each signal in turn (default SIGTERM, then SIGKILL) until ``pid`` is gone.

    Returns whether the process is gone.
    """
    for sig in signals or (signal.SIGTERM, signal.SIGKILL):
        if not pid_alive(pid):
            return True
        with contextlib.suppress(OSError):
            os.kill(pid, sig)  # type: ignore[arg-type]
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
    return not pid_alive(pid)


class Watchdog:
    """A process that stops servers and removes their folders when this process dies.

    Examples
    --------
    >>> dog = Watchdog()                        # doctest: +SKIP
    >>> dog.guard_pid(server.pid)               # doctest: +SKIP
    >>> dog.guard_path(cluster_folder)          # doctest: +SKIP
    >>> ...                                     # doctest: +SKIP
    >>> dog.release()   # stopped in order: nothing left to do
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "eo_sr.localapi.processes"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, text=True,
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _send(self, line: str) -> None:
        if self._proc.stdin is None or self._proc.stdin.closed:
            return
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):  # the watchdog died: nothing to tell it
            pass

    def guard_pid(self, pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
        """On this process's death, send ``sig`` to ``pid`` (SIGKILL 5 s later if needed)."""
        self._send(f"pid {int(pid)} {int(sig)}")

    def guard_path(self, path: str | Path) -> None:
        """On this process's death, remove ``path`` (after the processes are stopped)."""
        self._send(f"path {os.fspath(path)}")

    def release(self) -> None:
        """Stop watching: the parent has cleaned up itself. Safe to call twice."""
        self._send("release")
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)


def _watch(stream) -> None:
    """The watchdog's loop: collect orders until end-of-file, then carry them out."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    pids: list[tuple[int, int]] = []
    paths: list[str] = []
    for line in stream:
        kind, _, rest = line.rstrip("\n").partition(" ")
        if kind == "release":
            return
        if kind == "pid":
            pid, sig = rest.split()
            pids.append((int(pid), int(sig)))
        elif kind == "path":
            paths.append(rest)
    # End of file without a release: the parent died without cleaning up.
    for pid, sig in pids:  # in the order given: the API before its database
        stop_pid(pid, signal.Signals(sig), signal.SIGKILL)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - run as the watchdog process
    _watch(sys.stdin)
