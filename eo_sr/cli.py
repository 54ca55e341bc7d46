"""The ``eo-sr`` command line.

``eo-sr quickstart`` runs the pipeline as far as it exists on the offline demo
world; ``eo-sr demo``, ``serve``, ``search``, ``index``, ``match``, ``patches`` and ``sensors`` run
single steps; ``eo-sr qc-app`` serves the interactive quality-control explorer.
Errors that a user can fix are printed as one line, without a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eo_sr.errors import EoSrError


def _add_world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="default", help="demo world size: tiny or default (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="demo world seed (default: %(default)s)")


def _world(args):
    from eo_sr import demo

    return demo.generate(args.size, seed=args.seed)


def cmd_demo(args) -> int:
    from eo_sr import demo

    t0 = time.perf_counter()
    world = demo.generate(args.size, seed=args.seed, root=args.root, overwrite=args.overwrite)
    print(world.summary())
    print(f"  ready in {time.perf_counter() - t0:.1f} s")
    return 0


def _serve_items(paths, port):
    """Start the local STAC API with the items of ndjson files (from eo-sr index or search) and their collections."""
    from eo_sr import indexing, stac
    from eo_sr.localapi import serve

    items = [it for path in paths for it in stac.read_items(path)]
    if not items:
        raise EoSrError(f"{', '.join(map(str, paths))} hold(s) no item: index a folder first (eo-sr index)")
    groups: dict = {}
    for it in items:
        if not it.collection_id:
            raise EoSrError(f"item {it.id} names no collection: index it with --collection")
        groups.setdefault(it.collection_id, []).append(it)
    collections = [indexing.items_collection(group, id=cid) for cid, group in sorted(groups.items())]
    return serve(collections, items, port=port), f"{len(items)} items of {', '.join(sorted(groups))}"


def cmd_serve(args) -> int:
    from eo_sr import demo

    if args.items:
        server, what = _serve_items(args.items, args.port)
    else:
        world = _world(args)
        print(world.summary())
        server = demo.serve_world(world, port=args.port)
        what = f"{demo.LR_COLLECTION} and {demo.HR_COLLECTION}"
    try:
        print(f"STAC API serving {what} at {server.url}  (Ctrl-C stops it)")
        print(f"  log: {server.log_path}")
        print(f"  processes: API pid {server.api_pid}, PostgreSQL pid {server.postgres_pid}")
        sys.stdout.flush()
        server.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how this command is meant to end
        pass
    finally:
        server.stop()
    print("stopped: the STAC API and its database are shut down")
    return 0


def cmd_search(args) -> int:
    from contextlib import nullcontext

    from eo_sr import demo, stac
    from eo_sr.pipeline.steps import check_output_dir, search_to_files

    # Everything that can be wrong with the arguments is found before a server starts.
    if args.bbox is not None:
        stac.normalize_bbox(args.bbox)
    stac.normalize_datetime(args.datetime)
    if args.max_cloud is not None:
        stac.cloud_filter(args.max_cloud)
    out = check_output_dir(args.out)
    server_cm = nullcontext(args.catalog)
    if args.catalog == "demo":
        world = _world(args)
        server_cm = demo.serve_world(world)
        if args.bbox is None:
            args.bbox = world.bbox
    with server_cm as source:
        catalog = stac.open_catalog(source)
        n, ndjson = search_to_files(catalog, out, args.name, collections=args.collections, aoi=args.bbox,
                                    datetime=args.datetime, max_cloud_cover=args.max_cloud)
    print(f"{n} items from {', '.join(args.collections)} -> {ndjson} (table: {ndjson.with_suffix('.parquet').name})")
    return 0


def cmd_match(args) -> int:
    from eo_sr.pipeline.steps import check_output_dir, match_to_files

    out = check_output_dir(args.out)
    result = match_to_files(args.hr, args.lr, out, max_days=args.max_days, max_cloud_cover=args.max_cloud,
                            min_coverage=args.min_coverage, strategy=args.strategy, k=args.k,
                            datatake_minutes=args.datatake_minutes)
    print(result.summary())
    print(f"report -> {out / 'match_report.parquet'}; selected pairs and their items -> {out}/ "
          f"(next: eo-sr patches --matches {out})")
    return 0


def _report_patches(manifest, out) -> int:
    """Print what a patch build made and what failed; non-zero when it made nothing."""
    counts = manifest["split"].value_counts().to_dict() if len(manifest) else {}
    print(f"{len(manifest)} patch pairs {counts} -> {out}")
    failed = manifest.attrs.get("failed", [])
    if failed:
        print(f"{len(failed)} pair(s) failed (recorded in {Path(out) / 'pairs.parquet'}; fix the input, or rerun "
              "with --retry-failed):", file=sys.stderr)
        for f in failed[:20]:
            print(f"  {f['hr_id']}: {f['reason']}", file=sys.stderr)
        if len(failed) > 20:
            print(f"  ... and {len(failed) - 20} more", file=sys.stderr)
    if not len(manifest):
        print("eo-sr: error: no patch was produced" + (" (every pair failed, see above)" if failed else
              ": no pair left a patch inside the nodata and cloud limits"), file=sys.stderr)
        return 1
    return 0


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise EoSrError(f"{option} takes a number or 'none', got {text!r}") from None


def cmd_patches(args) -> int:
    from eo_sr import patches
    from eo_sr.pipeline.steps import patches_from_matches

    _require_extra("ml")
    if args.max_pairs is not None and args.max_pairs < 1:
        raise EoSrError(f"--max-pairs must be at least 1, got {args.max_pairs} (leave it out for all pairs)")
    threshold = None if args.hr_cloud_threshold.lower() == "none" else _number(args.hr_cloud_threshold,
                                                                               "--hr-cloud-threshold")
    config = patches.PatchConfig(lr_size=args.lr_size, frames=args.frames, factor=args.factor,
                                 bands=tuple(args.bands), hr_cloud_threshold=threshold)
    manifest = patches_from_matches(args.matches, args.out, config=config, lr_res=args.lr_res,
                                    max_pairs=args.max_pairs, retry_failed=args.retry_failed)
    return _report_patches(manifest, args.out)


def _train_config(args):
    """A TrainConfig from --config (training options, or a model's own config) and the flags."""
    import json

    from eo_sr.learn.train import TrainConfig

    base: dict = {}
    if args.config:
        path = Path(args.config)
        try:
            base = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise EoSrError(f"{path} is not valid JSON ({exc}): give a JSON object of training options") from None
        if not isinstance(base, dict):
            raise EoSrError(f"{path} must hold a JSON object of training options, not {type(base).__name__}")
        if "name" in base:  # a model's config (model.config, or a checkpoint's): its options, not its shape
            options = {k: v for k, v in base.items() if k not in ("name", "factor", "bands", "frames")}
            base = {"model": base["name"], "options": options}
    flags = {"model": args.model, "frames": args.frames, "epochs": args.epochs, "max_minutes": args.max_minutes,
             "batch_size": args.batch_size, "seed": args.seed, "device": args.device,
             "max_patches": args.max_patches}
    base.update({k: v for k, v in flags.items() if v is not None})
    if args.no_qc:
        base["qc"] = False
    if args.quiet:
        base["progress"] = False
    return TrainConfig.from_dict(base)


def cmd_train(args) -> int:
    from eo_sr.learn.train import train

    _require_extra("ml")
    config = _train_config(args)
    print(f"training {config.model} on {args.store} -> {args.out}")
    result = train(args.store, config, out=args.out)
    print(result.summary())
    try:
        from eo_sr.viz.training import save_training_figure
    except ModuleNotFoundError:  # the figure needs the notebooks extra; the run is complete without it
        return 0
    print(f"training curves -> {save_training_figure(args.out, title=config.model)}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from eo_sr import evaluate

    _require_extra("ml")
    table, summary = evaluate.evaluate_checkpoint(args.checkpoint, args.store, split=args.split, qc=not args.no_qc,
                                                  device=args.device, progress=not args.quiet)
    results = evaluate.report(summary)
    cols = [c for c in ("model", "n_patches", "psnr_mean", "cpsnr_mean", "ssim_mean", "sam_mean", "cpsnr_gain",
                        "cpsnr_win_rate") if c in summary.columns]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"store": str(args.store), "checkpoint": str(args.checkpoint), "split": args.split,
                   "qc": not args.no_qc, "models": results}
        out.write_text(json.dumps(payload, indent=1))
        print(f"results -> {out}")
    if args.table:
        table.to_parquet(args.table)
        print(f"per-patch scores -> {args.table}")
    return 0


def cmd_qc_app(args) -> int:
    """Serve the QC explorer (notebooks/qc_app.ipynb) through Voila inside JupyterLab until Ctrl-C."""
    import os

    from eo_sr.apps.qc_app import launch_qc_app

    _require_extra("ml")
    _require_extra("notebooks")
    size = args.size or os.environ.get("EO_SR_QC_SIZE") or "default"
    print(f"preparing the demo patch store and its QC table ({size}, seed {args.seed}) ...")
    sys.stdout.flush()
    server = launch_qc_app(size, seed=args.seed, port=args.port, decisions_path=args.decisions)
    try:
        print(f"QC app: {server.url}")
        print(f"  (JupyterLab: {server.lab_url}; log: {server.log_path})  Ctrl-C stops it")
        sys.stdout.flush()
        server.wait()
    except KeyboardInterrupt:
        print("stopping the server ...")
    finally:
        server.stop()
    return 0


def cmd_index(args) -> int:
    from eo_sr import indexing, sensors, stac

    sensor = sensors.get_sensor(args.sensor)  # a name, or a sensor file (read and registered)
    items = indexing.index_folder(args.folder, sensor=sensor, collection=args.collection, pattern=args.pattern,
                                  datetime=args.datetime, provider=args.provider, cloud_cover=args.cloud_cover,
                                  footprint=args.footprint)
    out = Path(args.out)
    if out.is_dir():
        raise EoSrError(f"--out {out} is a folder: give the items file to write, e.g. {out / 'items.ndjson'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    stac.write_items(items, out)
    collections = sorted({it.collection_id for it in items})
    print(f"{len(items)} item(s) of {sensor.id} (collection {', '.join(collections)}) from {args.folder} -> {out}")
    no_cloud = [it.id for it in items if "eo:cloud_cover" not in it.properties]
    if no_cloud:
        print(f"  {len(no_cloud)} item(s) have no eo:cloud_cover (no mask file): 'eo-sr match' treats their cloud "
              "cover as unknown (matched, with a note); pass --cloud-cover 0 for imagery known to be clear")
    return 0


def cmd_sensors(args) -> int:
    import pandas as pd

    from eo_sr import sensors

    for path in args.register or ():
        kept = sensors.save_user_sensor(path)
        sensor = sensors.get_sensor(kept.stem)
        print(f"{path}: sensor {sensor.id!r} is valid ({len(sensor.bands)} bands, {sensor.gsd:g} m, providers "
              f"{', '.join(sensor.providers)}); registered for later eo-sr commands too (kept as {kept}; delete "
              "that file to forget it)")

    table = pd.DataFrame(sensors.sensor_table())
    for col in table.columns:
        table[col] = table[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    cols = [c for c in ("id", "gsd", "dtype", "cloud_mask", "providers", "bands") if c in table.columns]
    print(table[cols].to_string(index=False))
    return 0


#: The quickstart's model: a small residual net, trained for a few minutes on 2 CPU cores.
QUICK_MODEL = {"model": "residual", "options": {"width": 32, "depth": 4}, "epochs": 40, "patience": 6}


def _quickstart_train(args, out: Path) -> None:
    from eo_sr import evaluate
    from eo_sr.learn.train import TrainConfig, train
    from eo_sr.store import open_store

    store = open_store(out / "patches")
    tiny = args.size == "tiny"
    config = TrainConfig(**{**QUICK_MODEL, "epochs": 3 if tiny else QUICK_MODEL["epochs"]},
                         max_minutes=args.train_minutes, progress=False)
    print(f"[6/6] train a small residual net for at most {args.train_minutes:g} min and compare it with bicubic")
    result = train(store, config, out=out / "run", replace_stale=True)
    print("      " + result.summary())
    split = "test" if "test" in store.splits() else "val"  # the tiny world has no test block
    _, summary = evaluate.evaluate_checkpoint(result.best, store, split=split)
    scores = evaluate.report(summary)[config.model]
    print(f"      {split} split, {scores['n_patches']} QC-kept patches: cPSNR {scores['cpsnr']:.2f} dB, "
          f"{scores['cpsnr_gain']:+.2f} dB over bicubic, better than bicubic on {scores['cpsnr_win_rate']:.0%} "
          "of them")
    print(f"      run -> {out / 'run'} (eo-sr evaluate {out / 'patches'} --checkpoint {result.best})")


def cmd_quickstart(args) -> int:
    """Demo world -> local STAC API -> search -> match -> aligned patch store -> a small model vs bicubic."""
    from eo_sr import demo, patches, stac
    from eo_sr.paths import cache_dir
    from eo_sr.pipeline.steps import check_output_dir, match_to_files, patches_from_matches, search_to_files

    _require_extra("ml")  # the patch step needs it: say so before a minute of work
    out = check_output_dir(Path(args.out) if args.out else
                           cache_dir("runs", f"quickstart-{args.size}-seed{args.seed}"))
    t0 = time.perf_counter()
    steps = 5 if args.no_train else 6
    print(f"[1/{steps}] demo world ({args.size}, seed {args.seed})")
    world = _world(args)
    print("      " + world.summary().replace("\n", "\n      "))
    print(f"[2/{steps}] local STAC API on 127.0.0.1")
    with demo.serve_world(world) as server:
        print(f"      serving at {server.url} (log {server.log_path})")
        catalog = stac.open_catalog(server)
        print(f"[3/{steps}] search over the AOI")
        n_hr, hr_file = search_to_files(catalog, out, "hr", collections=demo.HR_COLLECTION, aoi=world.bbox,
                                        max_cloud_cover=args.hr_max_cloud)
        n_lr, lr_file = search_to_files(catalog, out, "lr", collections=demo.LR_COLLECTION, aoi=world.bbox)
    print(f"      {n_hr} HR scenes with cloud cover <= {args.hr_max_cloud}% -> {hr_file}")
    print(f"      {n_lr} LR scenes -> {lr_file}")
    print(f"[4/{steps}] match HR scenes with LR scenes in space and time")
    result = match_to_files(hr_file, lr_file, out / "matches", **demo.MATCH_CRITERIA)
    print("      " + result.summary().replace("\n", "\n      "))
    print(f"      report -> {out / 'matches' / 'match_report.parquet'}")
    print(f"[5/{steps}] cut aligned LR/HR patches (32x32 LR, 128x128 HR), histogram-matched, split by space")
    manifest = patches_from_matches(out / "matches", out / "patches", config=patches.PatchConfig(lr_size=32),
                                    replace_stale=True)
    code = _report_patches(manifest, out / "patches")
    if code == 0 and not args.no_train:
        _quickstart_train(args, out)
    print(f"done in {time.perf_counter() - t0:.1f} s; outputs in {out}")
    print("next: open notebooks/00_welcome.ipynb, or build the book (see README)")
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eo-sr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("quickstart", help="run the pipeline as far as it exists on the demo world")
    _add_world_args(p)
    p.add_argument("--out", help="output folder (default: <cache>/runs/quickstart-...)")
    p.add_argument("--hr-max-cloud", type=float, default=30.0, help="HR cloud limit in %% (default: %(default)s)")
    p.add_argument("--train-minutes", type=float, default=3.0,
                   help="training time of the small model (default: %(default)s)")
    p.add_argument("--no-train", action="store_true", help="stop after the patch store")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("demo", help="generate the offline demo world (or reuse it)")
    _add_world_args(p)
    p.add_argument("--root", help="folder to write it to (default: in the cache)")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if it exists")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve the demo world (or your items) on a local STAC API until Ctrl-C")
    _add_world_args(p)
    p.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    p.add_argument("--items", nargs="+", metavar="NDJSON",
                   help="serve these items (from eo-sr index or search) instead of the demo world")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", help="search a STAC API and write the results as GeoParquet + ndjson")
    _add_world_args(p)
    p.add_argument("--catalog", default="demo",
                   help="demo, earth-search, planetary-computer or a STAC API URL (default: %(default)s)")
    p.add_argument("--collections", nargs="+", required=True)
    p.add_argument("--bbox", nargs=4, type=float, metavar=("WEST", "SOUTH", "EAST", "NORTH"))
    p.add_argument("--datetime", help="e.g. 2022-01-01/2022-03-31")
    p.add_argument("--max-cloud", type=float, help="cloud cover limit in %%")
    p.add_argument("--out", default="search-results", help="output folder (default: %(default)s)")
    p.add_argument("--name", default="items",
                   help="output file stem: writes OUT/NAME.ndjson and OUT/NAME.parquet (default: %(default)s)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("index", help="index a folder of GeoTIFFs as STAC items (ndjson, for match and serve)")
    p.add_argument("folder", help="folder of GeoTIFFs: one multi-band file per scene, or SCENE_BAND.tif files")
    p.add_argument("--sensor", required=True,
                   help="sensor name (eo-sr sensors lists them) or a YAML sensor file (my_camera.yaml)")
    p.add_argument("--out", required=True, help="items file to write (ndjson), e.g. results/hr.ndjson")
    p.add_argument("--collection", help="collection id of the items (default: the sensor provider's)")
    p.add_argument("--pattern", default="*.tif", help="glob of the files in FOLDER (default: %(default)s)")
    p.add_argument("--datetime", help="acquisition time of every item, ISO 8601 (default: from the file names "
                                      "or their TIFFTAG_DATETIME)")
    p.add_argument("--provider", help="provider of the sensor whose asset keys to use (default: the one that fits)")
    p.add_argument("--cloud-cover", type=float, help="eo:cloud_cover in %% of every item (default: from mask files)")
    p.add_argument("--footprint", choices=["valid", "bounds"], default="valid",
                   help="geometry: outline of the valid pixels, or the raster bounds (default: %(default)s)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("match", help="pair HR scenes with LR scenes; write a report of (un)matched scenes")
    p.add_argument("--hr", required=True, help="HR items, one JSON per line (from 'eo-sr search' or 'eo-sr index')")
    p.add_argument("--lr", required=True, help="LR items, one JSON per line")
    p.add_argument("--max-days", type=float, default=3.0, help="time window in days (default: %(default)s)")
    p.add_argument("--max-cloud", type=float, default=20.0, help="LR cloud limit in %% (default: %(default)s)")
    p.add_argument("--min-coverage", type=float, default=0.9,
                   help="share of the HR footprint the LR scene must cover (default: %(default)s)")
    p.add_argument("--strategy", default="closest", help="closest, least_cloudy, best_k or uniform")
    p.add_argument("-k", type=int, default=1, help="partners per HR scene (default: %(default)s)")
    p.add_argument("--datatake-minutes", type=float, default=30.0,
                   help="LR scenes of one platform and orbit this close in time are one datatake, counted "
                        "once (default: %(default)s)")
    p.add_argument("--out", default="match-results", help="output folder (default: %(default)s)")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("patches", help="cut matched pairs into an aligned LR/HR patch store (resumable)")
    p.add_argument("--matches", required=True,
                   help="the --out folder of 'eo-sr match' (pairs.parquet, hr_scenes.ndjson, lr_scenes.ndjson)")
    p.add_argument("--lr-size", type=int, default=32, help="LR patch side in pixels (default: %(default)s)")
    p.add_argument("--frames", type=int, default=1, help="LR frames per patch (default: %(default)s)")
    p.add_argument("--bands", nargs="+", default=["blue", "green", "red", "nir"],
                   help="common band names (default: %(default)s)")
    p.add_argument("--factor", type=int, default=None,
                   help="resolution factor (default: from the sensors' GSDs)")
    p.add_argument("--lr-res", type=float, default=None,
                   help="LR pixel size in metres (default: the LR sensor's GSD for the bands)")
    p.add_argument("--hr-cloud-threshold", default="0.25",
                   help="blue reflectance above which an HR pixel is cloud, or 'none' for no cloud test "
                        "(an HR sensor flown cloud-free, e.g. NAIP) (default: %(default)s)")
    p.add_argument("--max-pairs", type=int, default=None, help="stop after this many pairs (at least 1)")
    p.add_argument("--retry-failed", action="store_true",
                   help="try again the pairs that failed in an earlier run into the same store")
    p.add_argument("--out", default="patch-store", help="store folder (default: %(default)s)")
    p.set_defaults(func=cmd_patches)

    p = sub.add_parser("train", help="train an SR model on a patch store (resumes an unfinished run in --out)")
    p.add_argument("store", help="patch store folder (from 'eo-sr patches' or 'eo-sr quickstart')")
    p.add_argument("--model", help="srcnn, residual, highresnet (or bicubic, lanczos); default residual")
    p.add_argument("--out", required=True, help="run folder: best.pt, last.ckpt, metrics.csv, training_curves.png")
    p.add_argument("--config", help="JSON of training options (TrainConfig fields), or a model config")
    p.add_argument("--frames", type=int, help="LR frames per sample (multi-frame models; default all stored)")
    p.add_argument("--epochs", type=int, help="most epochs (default 30)")
    p.add_argument("--max-minutes", type=float, help="stop after this many minutes of training")
    p.add_argument("--batch-size", type=int, help="patches per step (default 16)")
    p.add_argument("--max-patches", type=int, help="train on at most this many patches (quick runs)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto: CUDA when there is a GPU")
    p.add_argument("--no-qc", action="store_true", help="train on every patch, not only those QC keeps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained model and bicubic on a split of a patch store")
    p.add_argument("store", help="patch store folder")
    p.add_argument("--checkpoint", required=True, help="RUN_DIR/best.pt of 'eo-sr train'")
    p.add_argument("--split", choices=["train", "val", "test"], default="test", help="default %(default)s")
    p.add_argument("--json", help="write the results (per model: PSNR, cPSNR, SSIM, SAM, gains, win rates)")
    p.add_argument("--table", help="write the per-patch scores as Parquet")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--no-qc", action="store_true", help="score every patch, not only those QC keeps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("qc-app", help="serve the interactive QC explorer (Voila in JupyterLab) until Ctrl-C")
    p.add_argument("--size", choices=["tiny", "default"], default=None,
                   help="demo world size (default: $EO_SR_QC_SIZE, else default)")
    p.add_argument("--seed", type=int, default=0, help="demo world seed (default: %(default)s)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    p.add_argument("--decisions", default=None,
                   help="Parquet or CSV file for keep/drop decisions (default: next to the patch store)")
    p.set_defaults(func=cmd_qc_app)

    p = sub.add_parser("sensors", help="list the sensors eo-sr knows; check sensor files")
    p.add_argument("--register", nargs="+", metavar="FILE",
                   help="YAML sensor file(s) to check and list with the others (for this command)")
    p.set_defaults(func=cmd_sensors)
    return parser


_FIRST_STEPS = """\
New to eo-sr? Start with
  eo-sr quickstart          the whole pipeline on the offline demo world (about a minute)
then run single steps: eo-sr demo, serve, search, index, match, patches, train, evaluate
(eo-sr COMMAND --help)."""


#: The import names that only an extra installs, and that extra (tests/test_packaging.py keeps
#: this in step with pyproject.toml).
EXTRA_OF_IMPORT = {"torch": "ml", "sklearn": "ml", "zarr": "ml", "lightning": "ml",
                   "matplotlib": "notebooks", "ipywidgets": "notebooks", "leafmap": "notebooks",
                   "ipyleaflet": "notebooks", "bqplot": "notebooks", "jupyterlab": "notebooks",
                   "voila": "notebooks"}


def _missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_IMPORT.get(top)
    if extra is None:
        return None
    return (f"this step needs {top}, which the '{extra}' extra installs: pip install 'eo-sr[{extra}]' "
            f"(in a source checkout: pip install -e '.[{extra}]', or bash .ci/setup)")


def _require_extra(extra: str) -> None:
    """Check up front that an extra is installed, so a step fails before it writes anything."""
    import importlib.util

    for name, of in EXTRA_OF_IMPORT.items():
        if of == extra and importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _on_sigterm(signum, frame):
    # `timeout`, `kill` and a Jupyter kernel restart send SIGTERM: unwind like Ctrl-C, so
    # every `with`/`finally` stops the servers this command started.
    raise KeyboardInterrupt


def _os_error_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}:{where}" if where else str(exc.strerror or exc)


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from eo_sr import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_usage(sys.stderr)
        print(_FIRST_STEPS, file=sys.stderr)
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except EoSrError as exc:
        print(f"eo-sr: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = _missing_extra_message(exc)
        if message is None:
            raise
        print(f"eo-sr: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full, a folder that vanished: say which file, not a traceback
        print(f"eo-sr: error: {_os_error_message(exc)} (check the path and its permissions)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eo-sr: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
