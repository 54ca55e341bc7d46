"""The QC app: JupyterLab serving ``notebooks/qc_app.ipynb`` through Voila (``eo-sr qc-app``).

Voila runs as a server extension inside Lab, so leaflet maps and their tile proxies work.
The server never outlives the command that started it (a watchdog stops it, see
:mod:`eo_sr.localapi.processes`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eo_sr.errors import EoSrError

__all__ = ["QCAppServer", "app_notebook_path", "launch_qc_app"]


def app_notebook_path() -> Path:
    """``notebooks/qc_app.ipynb`` of the source checkout that holds this eo_sr."""
    import eo_sr

    path = Path(eo_sr.__file__).resolve().parent.parent / "notebooks" / "qc_app.ipynb"
    if not path.is_file():
        raise EoSrError(f"the QC app notebook is not at {path}: 'eo-sr qc-app' runs from a source checkout of "
                        "eo-sr (git clone, then pip install -e .), which has notebooks/qc_app.ipynb")
    return path


@dataclass
class QCAppServer:
    """A running JupyterLab server that serves the QC app through Voila."""

    process: object
    port: int
    token: str
    root: Path
    log_path: Path
    watchdog: object = None  # eo_sr.localapi.processes.Watchdog: stops Lab if eo-sr dies

    @property
    def url(self) -> str:
        """The Voila page of the app (with the token)."""
        return f"http://127.0.0.1:{self.port}/voila/render/qc_app.ipynb?token={self.token}"

    @property
    def lab_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/qc_app.ipynb?token={self.token}"

    def wait(self) -> int:
        return self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (it shuts its kernels down)."""
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.watchdog is not None:
            self.watchdog.release()
            self.watchdog = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def launch_qc_app(size: str = "default", *, seed: int = 0, port: int | None = None, token: str | None = None,
                  decisions_path=None, root=None, prepare: bool = True, progress: bool = True,
                  timeout: float = 90.0) -> QCAppServer:
    """Start JupyterLab with the QC app notebook; Voila renders it at :attr:`QCAppServer.url`.

    Voila runs as a server extension inside Lab (so leaflet maps and their tile
    proxies work). The demo data are prepared first (:func:`eo_sr.pipeline.demo_qc.prepare_demo_qc`), so the
    page only loads them. The app notebook reads its size, seed and decisions file
    from ``EO_SR_QC_SIZE``, ``EO_SR_QC_SEED`` and ``EO_SR_QC_DECISIONS``, set here.

    Parameters
    ----------
    size, seed : demo world
    port : int, optional
        Default: a free one.
    token : str, optional
        Default: a random one.
    decisions_path : path, optional
        Default: ``qc_decisions.parquet`` in the store.
    root : path, optional
        Folder the server is rooted at (the notebook is copied there); default in the cache.
    prepare : bool
        Build the store and the QC table before starting the server.
    timeout : float
        Seconds to wait for the server to answer.

    Raises
    ------
    EoSrError
        The app notebook is missing, or the server did not start (the message names its log).
    """
    import secrets
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    from eo_sr.paths import cache_dir
    from eo_sr.pipeline.demo_qc import prepare_demo_qc

    notebook = app_notebook_path()
    if prepare:
        prepare_demo_qc(size, seed=seed, progress=progress)
    root = Path(root) if root is not None else cache_dir("qc-app")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, root / "qc_app.ipynb")
    from eo_sr.localapi.processes import Watchdog, free_port

    port = int(port) if port else free_port()
    token = token or secrets.token_hex(24)
    env = dict(os.environ, EO_SR_QC_SIZE=str(size), EO_SR_QC_SEED=str(int(seed)))
    if decisions_path is not None:
        env["EO_SR_QC_DECISIONS"] = str(Path(decisions_path).resolve())
    else:
        env.pop("EO_SR_QC_DECISIONS", None)
    log_path = root / f"jupyter-{port}.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={root}", "--VoilaConfiguration.show_tracebacks=True"]
    with open(log_path, "w") as log:
        # Its own session: Ctrl-C in the terminal reaches eo-sr, which stops the server cleanly.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(root),
                                start_new_session=True)
    watchdog = Watchdog()
    watchdog.guard_pid(proc.pid)
    server = QCAppServer(proc, port, token, root, log_path, watchdog)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise EoSrError(f"JupyterLab exited with code {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise EoSrError(f"JupyterLab did not answer on port {port} within {timeout:g} s; see {log_path}")
        time.sleep(0.3)
