"""Binder fitness: every notebook with its default parameters, and the whole book.

Targets (Binder gives a session 2 GB of RAM; CI has 2 cores):

* every notebook runs top to bottom with its default parameters (``size="default"``)
  with a peak memory under 2 GB;
* the whole Jupyter Book builds (``jupyter-book build -W -n``) in under 15 minutes.

How it measures: each notebook runs in its own ``papermill`` subprocess (a fresh kernel,
as a Binder user gets); the process tree (papermill, the kernel and everything the
kernel starts, e.g. the STAC API's uvicorn) is polled with psutil every 0.2 s. Memory is
the peak of the *sum* over the tree, in two flavours: PSS (proportional set size: shared
pages split between the processes that share them; what a container's memory limit
sees, roughly) and RSS (shared pages counted once per process: an upper bound). The
local PostgreSQL server that notebooks start (``demo.serve_world``) runs as separate
``postgres`` processes, detached from the tree (``pg_ctl`` daemonizes the postmaster); they
are reported in their own column (PSS: their shared buffers are counted once), and the
"with pg" column adds them to the tree at each sample. Only the postmasters started by
this run count (found by the unique ``EO_SR_CACHE`` in their environment, with their
child processes), not other PostgreSQL servers on the machine.

By default everything runs against a fresh, empty cache folder (``EO_SR_CACHE``), as on
a new Binder session: the first notebook that needs the default demo world generates it
(about a minute), the later ones reuse it. The book build gets its own fresh cache too
(the worst case: CI on a fresh clone). ``--cache DIR`` reuses a folder instead.

Run:  .venv/bin/python benchmarks/bench_binder.py [--skip-book] [--only 00,02] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BOOK_DIR = ROOT / "book"
BIN = Path(sys.executable).parent
MB = 1024 * 1024
LIMIT_MB = 2048
BOOK_LIMIT_S = 15 * 60


def _is_postgres(proc: psutil.Process) -> bool:
    try:
        return proc.name() in ("postgres", "postmaster")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _our_postmasters(cache: str, known: dict[int, psutil.Process]) -> dict[int, psutil.Process]:
    """PostgreSQL postmasters whose environment has ``EO_SR_CACHE=cache`` (started by our run)."""
    for p in psutil.process_iter():
        if p.pid in known or not _is_postgres(p):
            continue
        try:
            parent = p.parent()
            if parent is not None and _is_postgres(parent):
                continue  # a backend or helper: counted as a child of its postmaster
            if p.environ().get("EO_SR_CACHE") == cache:
                known[p.pid] = p
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return {pid: p for pid, p in known.items() if p.is_running()}


def _with_children(procs) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            out += [p, *p.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return out


def _memory(procs) -> tuple[int, int]:
    """Sum of (PSS, RSS) over processes, in bytes; processes that vanished are skipped."""
    pss = rss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        pss += getattr(info, "pss", info.rss)
        rss += info.rss
    return pss, rss


def run_measured(cmd: list[str], *, env: dict, cwd: Path, interval: float = 0.2, log: Path | None = None) -> dict:
    """Run ``cmd`` and poll the memory of its process tree and of the postgres servers it starts."""
    env = {k: v for k, v in env.items() if k != "MPLBACKEND"}  # inline figures, as in JupyterLab
    cache = env.get("EO_SR_CACHE", "")
    postmasters: dict[int, psutil.Process] = {}
    out = open(log, "w") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak = {"tree_pss": 0, "tree_rss": 0, "pg_pss": 0, "total_pss": 0, "n_procs": 0}
    try:
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            own = [p for p in tree if not _is_postgres(p)]
            postmasters = _our_postmasters(cache, postmasters)
            pg = _with_children(postmasters.values())
            pss, rss = _memory(own)
            pg_pss, _ = _memory(pg)
            peak["tree_pss"] = max(peak["tree_pss"], pss)
            peak["tree_rss"] = max(peak["tree_rss"], rss)
            peak["pg_pss"] = max(peak["pg_pss"], pg_pss)
            peak["total_pss"] = max(peak["total_pss"], pss + pg_pss)
            peak["n_procs"] = max(peak["n_procs"], len(own) + len(pg))
            time.sleep(interval)
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        if log:
            out.close()
    seconds = time.perf_counter() - t0
    return {"rc": rc, "seconds": seconds, **{k: (v / MB if k != "n_procs" else v) for k, v in peak.items()}}


def run_notebook(path: Path, out_dir: Path, env: dict) -> dict:
    cmd = [str(BIN / "python"), "-m", "papermill", str(path), str(out_dir / path.name), "--kernel", "python3",
           "--cwd", str(path.parent), "--no-progress-bar", "--log-level", "WARNING"]
    res = run_measured(cmd, env=env, cwd=path.parent, log=out_dir / f"{path.stem}.log")
    return {"name": path.stem, **res}


def build_book(out_dir: Path, env: dict) -> dict:
    cmd = [str(BIN / "jupyter-book"), "build", "-W", "-n", "--keep-going", "--path-output", str(out_dir),
           str(BOOK_DIR)]
    res = run_measured(cmd, env=env, cwd=ROOT, log=out_dir / "book.log")
    return {"name": "jupyter-book build -W -n", **res}


def _row(r: dict) -> str:
    ok = "ok" if r["rc"] == 0 else f"FAILED ({r['rc']})"
    under = "yes" if r["total_pss"] < LIMIT_MB else "NO"
    return (f"| {r['name']} | {r['seconds']:.1f} | {r['tree_pss']:.0f} | {r['tree_rss']:.0f} | {r['pg_pss']:.0f} | "
            f"{r['total_pss']:.0f} | {under} | {ok} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", help="EO_SR_CACHE to use (default: a fresh temporary folder, as on a new Binder)")
    ap.add_argument("--only", help="comma-separated notebook prefixes, e.g. 00,02")
    ap.add_argument("--skip-book", action="store_true", help="do not build the book")
    ap.add_argument("--skip-notebooks", action="store_true", help="only build the book")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        prefixes = tuple(args.only.split(","))
        notebooks = [p for p in notebooks if p.name.startswith(prefixes)]
    work = Path(tempfile.mkdtemp(prefix="bench-binder-"))
    print(f"{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; logs in {work}")
    results = []
    header = ("| notebook | wall (s) | peak PSS (MB) | peak RSS (MB) | PostgreSQL PSS (MB) | "
              "peak with pg (MB) | < 2 GB | status |\n|---|---|---|---|---|---|---|---|")
    if not args.skip_notebooks:
        cache = Path(args.cache) if args.cache else work / "cache"
        env = {**os.environ, "EO_SR_CACHE": str(cache)}
        print(f"notebooks with default parameters, EO_SR_CACHE={cache}")
        print(header, flush=True)
        for path in notebooks:
            r = run_notebook(path, work, env)
            results.append(r)
            print(_row(r), flush=True)
        total = sum(r["seconds"] for r in results)
        print(f"| **all notebooks** | {total:.1f} | {max(r['tree_pss'] for r in results):.0f} | "
              f"{max(r['tree_rss'] for r in results):.0f} | {max(r['pg_pss'] for r in results):.0f} | "
              f"{max(r['total_pss'] for r in results):.0f} | "
              f"{'yes' if all(r['total_pss'] < LIMIT_MB for r in results) else 'NO'} | "
              f"{sum(r['rc'] == 0 for r in results)}/{len(results)} ok |")
    book = None
    if not args.skip_book:
        book_dir = work / "book"
        book_dir.mkdir()
        env = {**os.environ, "EO_SR_CACHE": str(args.cache or (work / "book-cache"))}
        print(f"\nbuilding the book (fresh cache: {not args.cache}) ...", flush=True)
        book = build_book(book_dir, env)
        print(header)
        print(_row(book))
        verdict = "under" if book["seconds"] < BOOK_LIMIT_S else "OVER"
        print(f"book build: {book['seconds'] / 60:.1f} min, {verdict} the 15 min target; log {book_dir / 'book.log'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"notebooks": results, "book": book}, indent=1))
    failed = [r for r in results + ([book] if book else []) if r["rc"] != 0]
    over = [r for r in results if r["total_pss"] >= LIMIT_MB]
    return 1 if failed or over or (book and book["seconds"] >= BOOK_LIMIT_S) else 0


if __name__ == "__main__":
    sys.exit(main())
