"""Training SR models on a patch store, with Lightning's Trainer underneath.

:func:`train` is the whole job: ``train("patch-store", TrainConfig(model="residual"), out="runs/res")``.
A run folder holds::

    run.json        the training configuration, the store and its checksum (and "finished")
    best.pt         the best model so far (by the validation gain over bicubic), an eo-sr
                    checkpoint (:mod:`eo_sr.learn.checkpoint`, read with weights_only=True)
    last.ckpt       Lightning's state after the last finished epoch: what a rerun resumes from
    metrics.csv     one row per epoch: losses, validation PSNR of the model and of bicubic, gain

Each epoch ends with a validation pass over the val split: the PSNR of the model and of
bicubic on the same frames, their mean difference (``val_gain``, in dB) and the share of
patches the model wins. Early stopping and the best checkpoint follow ``val_gain``.

A run killed at any moment (``kill -9`` included) resumes from its last finished epoch when
started again with the same configuration and folder: ``last.ckpt`` and ``best.pt`` are written
to a temporary name first and then renamed, so neither is ever half-written.

Models see reflectance scaled per band by the store's LR statistics (the 1st to 99th
percentile onto 0..1), on both sides: the HR targets are histogram-matched to the LR sensor, so
one scale keeps a model's bicubic skip meaningful. The checkpoint keeps those statistics.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from eo_sr.errors import InvalidInputError
from eo_sr.learn.checkpoint import save_checkpoint
from eo_sr.learn.registry import MODELS, build_model

__all__ = ["DEVICES", "TrainConfig", "TrainResult", "batch_inputs", "resolve_device", "train"]

#: Where to train: ``auto`` takes CUDA when torch sees a GPU, else the CPU.
DEVICES = ("auto", "cpu", "cuda")
#: A frame counts as valid when at least this share of its pixels is (the rest are filled).
MIN_FRAME_VALID = 0.5

RUN_FILE, BEST_FILE, LAST_FILE, METRICS_FILE = "run.json", "best.pt", "last.ckpt", "metrics.csv"
ENCODER_FILE = "encoder.pt"
#: The fields of :class:`TrainConfig` that may change between a run and its resumption.
RESUMABLE_CHANGES = ("epochs", "max_minutes", "patience", "device", "progress")


@dataclass
class TrainConfig:
    """What to train, and how (JSON: ``TrainConfig(**json.load(f))``).

    Attributes
    ----------
    model : str
        A name of :func:`eo_sr.learn.registry.build_model`.
    options : dict
        The model's own options (``{"width": 32, "depth": 4}``).
    frames : int, optional
        LR frames per sample (default: 1 for single-frame models, all the store has for multi-frame
        ones; a single-frame model given several uses its ``frame`` option: the first valid or the
        median).
    loss : dict
        Weights of :class:`eo_sr.learn.losses.CompositeLoss`'s terms.
    shiftnet : bool
        Register outputs to targets with a ShiftNet trained alongside, as HighRes-Net does (default
        False: on the demo world, HighRes-Net trained 3 minutes with it gained 0.0 dB cPSNR over
        bicubic, without it +0.28 dB; ``benchmarks/bench_models.py`` has the ablation).
    encoder : str, optional
        For a ``perceptual`` loss term: an encoder file (:func:`eo_sr.learn.encoder.train_encoder`);
        default: one trained on the store's HR patches for ``encoder_minutes``, kept in the run folder.
    encoder_minutes : float
    epochs, batch_size, learning_rate, weight_decay : int, int, float, float
    max_minutes : float, optional
        Stop after this much training time (a resumed run counts the time it already had).
    patience : int
        Epochs without a better ``val_gain`` before early stopping.
    grad_clip : float
        Gradient norm clipping (0: none).
    seed : int
    deterministic : bool
        Deterministic algorithms (reproducible runs; a little slower).
    device : {"auto", "cpu", "cuda"}
    augment : bool
        Random flips and rotations of each training sample.
    qc : bool
        Train and validate on the patches QC keeps only (:func:`eo_sr.qc.keep_ids`).
    max_patches : int, optional
        Use at most this many training patches (quick runs).
    progress : bool
        Show a progress bar.
    """

    model: str = "residual"
    options: dict = field(default_factory=dict)
    frames: int | None = None
    loss: dict = field(default_factory=lambda: {"l1": 1.0, "band_mean": 0.1})
    shiftnet: bool = False
    encoder: str | None = None
    encoder_minutes: float = 1.0
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_minutes: float | None = None
    patience: int = 8
    grad_clip: float = 1.0
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"
    augment: bool = True
    qc: bool = True
    max_patches: int | None = None
    progress: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise InvalidInputError(f"unknown model {self.model!r}: eo-sr's models are {', '.join(sorted(MODELS))}")
        if self.device not in DEVICES:
            raise InvalidInputError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, not {value!r}")
        if self.max_minutes is not None and not (isinstance(self.max_minutes, (int, float)) and self.max_minutes > 0):
            raise InvalidInputError(f"max_minutes must be a positive number of minutes, not {self.max_minutes!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise InvalidInputError(f"learning_rate must be a positive number, not {self.learning_rate!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict (a ``model.json``), refusing keys it does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"unknown training option(s) {', '.join(map(repr, unknown))}: the options are "
                                    f"{', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def multi_frame(self) -> bool:
        return self.model == "highresnet"


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    run_dir, best : Path
        The run folder and its best checkpoint.
    metrics : pandas.DataFrame
        One row per epoch (``metrics.csv``).
    best_gain : float
        The best validation PSNR gain over bicubic, dB.
    resumed : bool
        Whether the run continued an earlier one.
    seconds : float
        Wall time of this call.
    """

    run_dir: Path
    best: Path
    metrics: object
    best_gain: float
    resumed: bool
    seconds: float

    def summary(self) -> str:
        epochs = len(self.metrics)
        return (f"{epochs} epoch(s){' (resumed)' if self.resumed else ''} in {self.seconds:.0f} s; best validation "
                f"PSNR gain over bicubic {self.best_gain:+.2f} dB -> {self.best}")


def resolve_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for ``device`` in :data:`DEVICES`.

    Raises
    ------
    InvalidInputError
        CUDA asked for while torch sees no GPU.
    """
    if device not in DEVICES:
        raise InvalidInputError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("CUDA was asked for but torch sees no GPU (or this torch is a CPU build): train with "
                                "device='cpu' (--device cpu), or 'auto' to use a GPU only when there is one")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def batch_inputs(batch: dict, *, min_frame_valid: float = MIN_FRAME_VALID):
    """Model inputs from a collated batch of :class:`eo_sr.dataset.PatchDataset` samples.

    Returns
    -------
    lr : Tensor, shape (B, T, C, h, w)
        Invalid pixels of valid frames filled with the per-pixel median of the frames valid
        there (or 0 where none is), so that a cloudy frame still contributes where it is clear.
    frame_mask : Tensor of bool, shape (B, T)
        Frames with at least ``min_frame_valid`` valid pixels; the first frame always counts
        when no frame reaches it (a sample is never without input).
    hr : Tensor, shape (B, C, H, W)
    hr_mask : Tensor of bool, shape (B, H, W)
    """
    lr, lr_valid = batch["lr"], batch["lr_valid"].bool()
    if lr.ndim == 4:
        lr, lr_valid = lr[:, None], lr_valid[:, None]
    if lr_valid.ndim == 4:  # (B, T, h, w) -> per band
        lr_valid = lr_valid[:, :, None].expand_as(lr)
    lr_valid = lr_valid & torch.isfinite(lr)
    share = lr_valid.float().mean(dim=(2, 3, 4))
    frame_mask = share >= min_frame_valid
    frame_mask[:, 0] |= ~frame_mask.any(dim=1)
    use = lr_valid & frame_mask[:, :, None, None, None]
    filled = torch.where(use, lr, torch.nan).nanmedian(dim=1, keepdim=True).values
    filled = torch.nan_to_num(filled, nan=0.0)
    lr = torch.where(use, lr, filled.expand_as(lr))
    hr = batch["hr"]
    hr_mask = batch["hr_valid"].bool() & torch.isfinite(hr).all(dim=1)
    return lr, frame_mask, torch.nan_to_num(hr, nan=0.0), hr_mask


def _masked_psnr(sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR per sample over valid pixels, data range 1 (reflectance)."""
    m = mask[:, None].expand_as(hr).float()
    mse = ((sr - hr) ** 2 * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def _task_class():
    """The LightningModule class (built on first use: importing lightning takes seconds)."""
    import lightning as L

    class SRTask(L.LightningModule):
        def __init__(self, model, loss, baseline, *, learning_rate: float, weight_decay: float, norm: dict):
            super().__init__()
            self.model, self.loss, self.learning_rate, self.weight_decay = model, loss, learning_rate, weight_decay
            # validation PSNR is in reflectance, comparable with eo-sr evaluate's
            for key in ("offset", "scale"):
                self.register_buffer(key, torch.tensor(norm[key], dtype=torch.float32)[:, None, None], persistent=False)
            self._baseline = [baseline]  # a list keeps it out of the state dict: it has nothing to learn
            self._val = []

        def training_step(self, batch, batch_idx):
            lr, frame_mask, hr, hr_mask = batch_inputs(batch)
            sr = self.model(lr, frame_mask)
            total, terms = self.loss(sr, hr, lr=lr, mask=hr_mask, frame_mask=frame_mask)
            n = lr.shape[0]
            self.log("train_loss", total, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
            for name, value in terms.items():
                self.log(f"train_{name}", value, on_step=False, on_epoch=True, batch_size=n)
            return total

        def validation_step(self, batch, batch_idx):
            lr, frame_mask, hr, hr_mask = batch_inputs(batch)
            sr = self.model(lr, frame_mask)
            total, _ = self.loss(sr, hr, lr=lr, mask=hr_mask, frame_mask=frame_mask)
            base = self._baseline[0].to(lr.device)(lr, frame_mask)
            self.log("val_loss", total, on_step=False, on_epoch=True, batch_size=lr.shape[0])
            sr, base, hr = (x.float() * self.scale + self.offset for x in (sr, base, hr))
            self._val.append(torch.stack([_masked_psnr(sr, hr, hr_mask), _masked_psnr(base, hr, hr_mask)]).cpu())

        def on_validation_epoch_end(self):
            if not self._val:
                return
            psnr, psnr_base = torch.cat(self._val, dim=1).double()
            self._val.clear()
            gain = psnr - psnr_base
            self.log("val_psnr", psnr.mean().float())
            self.log("val_psnr_bicubic", psnr_base.mean().float())
            self.log("val_gain", gain.mean().float(), prog_bar=True)
            self.log("val_win_rate", (gain > 0).double().mean().float())

        def configure_optimizers(self):
            params = [p for p in self.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_gain"}}

    return SRTask


def _run_files_class():
    import lightning as L

    class RunFiles(L.Callback):
        """Writes best.pt, last.ckpt and metrics.csv after every epoch; its state rides in last.ckpt."""

        def __init__(self, run_dir: Path, *, norm_stats: dict, store_checksum: str, config: dict):
            self.run_dir, self.norm_stats, self.store_checksum, self.config = run_dir, norm_stats, store_checksum, config
            self.history: list[dict] = []
            self.best_gain = -math.inf
            self.started = time.perf_counter()
            self.elapsed_before = 0.0

        def state_dict(self):
            return {"history": json.dumps(self.history), "best_gain": self.best_gain,
                    "elapsed": self.elapsed_before + time.perf_counter() - self.started}

        def load_state_dict(self, state):
            self.history = json.loads(state["history"])
            self.best_gain = float(state["best_gain"])
            self.elapsed_before = float(state["elapsed"])

        def on_validation_end(self, trainer, task):
            if not trainer.sanity_checking:
                self.validated = trainer.current_epoch

        def on_train_epoch_end(self, trainer, task):
            # after validation (Lightning validates inside the epoch), so both losses are in
            if getattr(self, "validated", None) == trainer.current_epoch:
                metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
                row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step,
                       "seconds": round(self.elapsed_before + time.perf_counter() - self.started, 2),
                       "learning_rate": trainer.optimizers[0].param_groups[0]["lr"], **metrics}
                self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
                gain = metrics.get("val_gain", -math.inf)
                if gain > self.best_gain or not (self.run_dir / BEST_FILE).is_file():
                    self.best_gain = max(gain, self.best_gain)
                    save_checkpoint(self.run_dir / BEST_FILE, task.model, norm_stats=self.norm_stats,
                                    store_checksum=self.store_checksum,
                                    extra={"epoch": row["epoch"], "metrics": metrics, "train_config": self.config})
            tmp = self.run_dir / (LAST_FILE + ".part")
            trainer.save_checkpoint(tmp, weights_only=False)
            os.replace(tmp, self.run_dir / LAST_FILE)
            write_metrics(self.run_dir, self.history)

    return RunFiles


def write_metrics(run_dir: Path, history: list[dict]) -> Path:
    """``metrics.csv`` from the epoch rows, written atomically."""
    import pandas as pd

    path = Path(run_dir) / METRICS_FILE
    tmp = path.with_name(path.name + ".part")
    pd.DataFrame(history).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_metrics(run_dir: str | Path):
    """The epoch rows of a run (``metrics.csv``) as a DataFrame."""
    import pandas as pd

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=["epoch"])
    return pd.read_csv(path)


def _check_run_dir(run_dir: Path, record: dict) -> dict | None:
    """The earlier record of this run folder, or None for a new one; refuse a folder of another run."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise InvalidInputError(f"{run_dir} is not empty and holds no eo-sr training run: give --out a new or "
                                    "empty folder")
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise InvalidInputError(f"{path} is unreadable: delete the run folder {run_dir}, or train into another") from None
    if old.get("store_checksum") != record["store_checksum"]:
        raise InvalidInputError(f"{run_dir} holds a run trained on another patch store (checksums differ): train "
                                "into another folder, or delete this one to start again")
    a = {k: v for k, v in old.get("config", {}).items() if k not in RESUMABLE_CHANGES}
    b = {k: v for k, v in record["config"].items() if k not in RESUMABLE_CHANGES}
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if differ:
        raise InvalidInputError(f"{run_dir} holds a run with another configuration (it differs in "
                                f"{', '.join(differ)}): train into another folder, or delete this one to start again")
    return old


def _write_run(run_dir: Path, record: dict) -> None:
    path = run_dir / RUN_FILE
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _datasets(store, config: TrainConfig, norm_stats: dict):
    from eo_sr.dataset import Compose, Normalize, PatchDataset, RandomDihedral

    keep = None
    if config.qc:
        from eo_sr import qc

        keep = qc.keep_ids(qc.store_table(store))
    scale = Normalize(norm_stats["lr"], norm_stats["lr"])
    train_tf = Compose([scale, RandomDihedral(seed=config.seed)]) if config.augment else scale
    frames = config.frames or (store.frames if config.multi_frame else 1)
    train_set = PatchDataset(store, "train", frames=frames, transforms=train_tf, keep=keep)
    val_set = PatchDataset(store, "val", frames=frames, transforms=scale, keep=keep)
    if config.max_patches is not None and len(train_set) > config.max_patches:
        train_set = torch.utils.data.Subset(train_set, range(config.max_patches))
    for name, ds in (("train", train_set), ("val", val_set)):
        if len(ds) == 0:
            raise InvalidInputError(f"the store's {name} split has no patch{' that QC keeps' if keep is not None else ''}"
                                    ": build a larger store (more pairs), or train with qc=False (--no-qc)")
    return train_set, val_set, frames


class _EpochAugment:
    """Lightning callback body: a new augmentation draw each epoch (deterministic by seed and epoch)."""

    def __init__(self, dataset):
        self.dataset = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset

    def __call__(self, trainer, task):
        self.dataset.set_epoch(trainer.current_epoch)


def _remove_run(run_dir: Path) -> None:
    """Delete the files of a run (only those: a folder the user put other files in keeps them)."""
    for name in (RUN_FILE, BEST_FILE, LAST_FILE, METRICS_FILE, ENCODER_FILE, "training_curves.png"):
        for path in (run_dir / name, run_dir / (name + ".part")):
            path.unlink(missing_ok=True)


def train(store, config: TrainConfig | None = None, *, out: str | Path, replace_stale: bool = False) -> TrainResult:
    """Train an SR model on a patch store; resume the run in ``out`` when there is one.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
    config : TrainConfig, optional
        Default: a residual network with L1 and band-mean loss.
    out : path
        The run folder (see the module docstring). A folder of an unfinished run with the same
        configuration and store is resumed from its last finished epoch; a finished run is
        returned as it is.
    replace_stale : bool
        Start afresh when ``out`` holds a run of another configuration or store (default:
        refuse, so that no trained model is lost by mistake).

    Returns
    -------
    TrainResult

    Raises
    ------
    InvalidInputError
        A bad configuration, a store without training or validation patches, a run folder of
        another run, a model that does not fit the store, CUDA asked for and absent.
    NotFoundError
        No store at ``store``.
    """
    import lightning as L

    from eo_sr import __version__
    from eo_sr.learn.losses import CompositeLoss
    from eo_sr.learn.shiftnet import ShiftNet
    from eo_sr.store import PatchStore, open_store

    t0 = time.perf_counter()
    config = config or TrainConfig()
    device = resolve_device(config.device)
    store = store if isinstance(store, PatchStore) else open_store(store)
    run_dir = Path(out)
    checksum = store.checksum()
    record = {"config": config.to_dict(), "store": str(store.path), "store_checksum": checksum,
              "eo_sr_version": __version__, "finished": False}
    try:
        old = _check_run_dir(run_dir, record)
    except InvalidInputError:
        if not (replace_stale and (run_dir / RUN_FILE).is_file()):
            raise
        _remove_run(run_dir)
        old = None
    same_budget = old is not None and all(old["config"].get(k) == record["config"][k] for k in ("epochs", "max_minutes"))
    if old is not None and old.get("finished") and same_budget and (run_dir / BEST_FILE).is_file():
        metrics = read_metrics(run_dir)
        gain = float(metrics["val_gain"].max()) if "val_gain" in metrics else math.nan
        return TrainResult(run_dir, run_dir / BEST_FILE, metrics, gain, True, time.perf_counter() - t0)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run(run_dir, record)

    if device == "cpu":
        torch.set_num_threads(_cpu_threads())
    norm_stats = store.norm_stats()
    train_set, val_set, frames = _datasets(store, config, norm_stats)
    L.seed_everything(config.seed, workers=True, verbose=False)  # before the weights are drawn
    options = dict(config.options)
    # single-frame models take T frames too: they pick one (their ``frame`` option: first or median)
    model = build_model(config.model, factor=store.factor, bands=len(store.bands), frames=frames, **options)
    encoder = None
    if config.loss.get("perceptual", 0) > 0:
        from eo_sr.learn.encoder import load_encoder, train_encoder

        encoder = (load_encoder(config.encoder) if config.encoder else
                   train_encoder(store, out=run_dir / ENCODER_FILE, seed=config.seed, minutes=config.encoder_minutes,
                                 store_checksum=checksum))
    loss = CompositeLoss(config.loss, shiftnet=ShiftNet() if config.shiftnet else None, encoder=encoder)
    baseline = build_model("bicubic", factor=store.factor, bands=len(store.bands), frames=model.frames)
    task = _task_class()(model, loss, baseline, learning_rate=config.learning_rate,
                         weight_decay=config.weight_decay, norm=norm_stats["lr"])

    from eo_sr.dataset import collate_samples

    generator = torch.Generator().manual_seed(config.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=True,
                                               collate_fn=collate_samples, generator=generator, drop_last=False)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.batch_size, collate_fn=collate_samples)

    from lightning.pytorch.callbacks import EarlyStopping, LambdaCallback

    files = _run_files_class()(run_dir, norm_stats=norm_stats, store_checksum=checksum, config=config.to_dict())
    callbacks = [files, EarlyStopping(monitor="val_gain", mode="max", patience=config.patience),
                 LambdaCallback(on_train_epoch_start=_EpochAugment(train_set))]
    precision = "32-true"
    if device == "cuda":
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    resume = run_dir / LAST_FILE
    resumed = resume.is_file()
    _quiet_lightning()
    trainer = L.Trainer(
        accelerator=device, devices=1, precision=precision, max_epochs=config.epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes else None,
        deterministic=config.deterministic, gradient_clip_val=config.grad_clip or None, callbacks=callbacks,
        logger=False, enable_checkpointing=False, enable_progress_bar=config.progress, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=str(run_dir))
    with warnings.catch_warnings():
        # in-memory datasets need no loader workers; a small store has few batches per epoch
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        # lightning 2.6 with torch >= 2.10, in lightning's own code
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
        trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resumed else None,
                    weights_only=True)
    record["finished"] = True
    _write_run(run_dir, record)
    metrics = read_metrics(run_dir)
    return TrainResult(run_dir, run_dir / BEST_FILE, metrics, files.best_gain, resumed,
                       time.perf_counter() - t0)


def _quiet_lightning() -> None:
    """Lightning's banners (GPU/TPU availability, tips) say nothing eo-sr's own lines do not."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)

