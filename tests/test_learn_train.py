"""eo_sr.learn.train, eo_sr.learn.predict and the train / evaluate CLI, on the tiny world's patch store.

Small settings only: the long trainings and their targets are benchmarks/bench_models.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from eo_sr.errors import InvalidInputError
from eo_sr.learn.checkpoint import load_checkpoint, save_checkpoint
from eo_sr.learn.predict import predict_split
from eo_sr.learn.train import TrainConfig, batch_inputs, resolve_device, train

SMALL = {"model": "residual", "options": {"width": 8, "depth": 1}, "batch_size": 16, "progress": False}


@pytest.fixture(scope="module")
def store(tiny_world):
    from eo_sr.pipeline.demo_qc import prepare_demo_qc

    return prepare_demo_qc("tiny").store


def test_a_run_writes_its_files_and_the_best_checkpoint_loads_without_pickle(store, tmp_path):
    result = train(store, TrainConfig(**SMALL, epochs=2), out=tmp_path / "run")
    run = tmp_path / "run"
    assert {"run.json", "best.pt", "last.ckpt", "metrics.csv"} <= {p.name for p in run.iterdir()}
    assert not list(run.glob("*.part"))
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert metrics[["train_loss", "val_loss", "val_psnr", "val_psnr_bicubic", "val_gain"]].notna().all().all()
    assert result.best_gain == pytest.approx(metrics["val_gain"].max(), abs=1e-6)
    payload = torch.load(run / "best.pt", weights_only=True)  # no pickle needed
    assert json.loads(payload["config"])["name"] == "residual"
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt.norm_stats["lr"]["bands"] == ["blue", "green", "red", "nir"]
    assert ckpt.store_checksum == json.loads((run / "run.json").read_text())["store_checksum"]
    assert ckpt.extra["epoch"] == int(metrics.loc[metrics["val_gain"].idxmax(), "epoch"])
    assert json.loads((run / "run.json").read_text())["finished"] is True


def test_training_is_reproducible_from_its_seed(store, tmp_path):
    a = train(store, TrainConfig(**SMALL, epochs=1, seed=3), out=tmp_path / "a").metrics
    b = train(store, TrainConfig(**SMALL, epochs=1, seed=3), out=tmp_path / "b").metrics
    c = train(store, TrainConfig(**SMALL, epochs=1, seed=4), out=tmp_path / "c").metrics
    assert a["val_psnr"].iloc[0] == pytest.approx(b["val_psnr"].iloc[0], abs=1e-4)
    assert a["val_psnr"].iloc[0] != pytest.approx(c["val_psnr"].iloc[0], abs=1e-4)


def test_a_finished_run_is_extended_by_more_epochs_and_kept_as_it_was(store, tmp_path):
    first = train(store, TrainConfig(**SMALL, epochs=2), out=tmp_path / "run").metrics
    again = train(store, TrainConfig(**SMALL, epochs=2), out=tmp_path / "run")
    assert again.resumed and len(again.metrics) == 2  # nothing to do
    more = train(store, TrainConfig(**SMALL, epochs=3), out=tmp_path / "run")
    assert more.resumed
    assert list(more.metrics["epoch"]) == [1, 2, 3]
    pd.testing.assert_frame_equal(more.metrics.iloc[:2][first.columns], first)


def test_a_run_killed_with_sigkill_resumes_from_its_last_epoch(store, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "eo_sr.cli", "train", str(store), "--model", "residual", "--out", str(run),
           "--epochs", "40", "--quiet", "--config", str(tmp_path / "small.json")]
    (tmp_path / "small.json").write_text(json.dumps({"options": SMALL["options"]}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while not (run / "last.ckpt").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stdout.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = pd.read_csv(run / "metrics.csv")["epoch"].tolist()
    assert 1 <= len(done) < 40
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(resumed)" in out.stdout
    metrics = pd.read_csv(run / "metrics.csv")
    epochs = metrics["epoch"].tolist()
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > len(done)  # each epoch once, in order
    assert len(epochs) == 40 or len(epochs) < 40 and "val_gain" in metrics  # early stopping may end it sooner
    load_checkpoint(run / "best.pt")


def test_a_run_folder_of_another_run_or_other_files_is_refused(store, tmp_path):
    train(store, TrainConfig(**SMALL, epochs=1), out=tmp_path / "run")
    with pytest.raises(InvalidInputError, match="another configuration.*learning_rate"):
        train(store, TrainConfig(**SMALL, epochs=1, learning_rate=0.01), out=tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty"):
        train(store, TrainConfig(**SMALL, epochs=1), out=tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_bad_training_options_are_refused_with_what_to_do():
    with pytest.raises(InvalidInputError, match="unknown model 'edsr'"):
        TrainConfig(model="edsr")
    with pytest.raises(InvalidInputError, match="unknown training option.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(InvalidInputError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(InvalidInputError, match="max_minutes"):
        TrainConfig(max_minutes=-1)


def test_cuda_asked_for_without_a_gpu_says_so():
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(InvalidInputError, match="no GPU.*device='cpu'"):
            resolve_device("cuda")
    assert resolve_device("auto") in ("cpu", "cuda")
    assert resolve_device("cpu") == "cpu"


def test_cloudy_frames_are_masked_and_their_clouds_filled_from_the_clear_frames():
    lr = torch.rand(2, 3, 4, 8, 8)
    valid = torch.ones(2, 3, 8, 8, dtype=torch.bool)
    valid[0, 1] = False  # a frame without a clear pixel
    valid[0, 2, :3] = False  # a frame with a cloud: kept, the cloud filled
    lr[0, 2, :, :3] = float("nan")
    batch = {"lr": lr, "lr_valid": valid, "hr": torch.rand(2, 4, 32, 32),
             "hr_valid": torch.ones(2, 32, 32, dtype=torch.bool)}
    x, frame_mask, _, _ = batch_inputs(batch)
    assert frame_mask.tolist() == [[True, False, True], [True, True, True]]
    assert torch.isfinite(x).all()
    assert torch.equal(x[0, 2, :, :3], lr[0, 0, :, :3])  # the median of the one frame clear there
    assert torch.equal(x[1], lr[1])


def test_predictions_are_reflectance_and_a_checkpoint_of_other_bands_is_refused(store, tmp_path):
    result = train(store, TrainConfig(**SMALL, epochs=1), out=tmp_path / "run")
    pred = predict_split(result.best, store, "val")
    assert pred.sr.shape == pred.hr.shape and pred.sr.shape[1] == 4
    valid = pred.mask[:, None].repeat(4, axis=1)
    assert abs(pred.sr[valid].mean() - pred.hr[valid].mean()) < 0.02  # reflectance, not scaled units
    ckpt = load_checkpoint(result.best)
    stats = {side: {**s, "bands": ["blue", "green", "red", "swir16"]} for side, s in ckpt.norm_stats.items()}
    save_checkpoint(tmp_path / "other.pt", ckpt.model, norm_stats=stats)
    with pytest.raises(InvalidInputError, match="trained on bands .*swir16.*the store holds"):
        predict_split(tmp_path / "other.pt", store, "val")


def test_train_and_evaluate_cli_write_the_run_and_the_results(store, tmp_path, capsys):
    from eo_sr.cli import main

    run = tmp_path / "run"
    assert main(["train", str(store), "--model", "srcnn", "--out", str(run), "--epochs", "2", "--quiet"]) == 0
    assert (run / "training_curves.png").stat().st_size > 10_000
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(store), "--checkpoint", str(run / "best.pt"), "--split", "val", "--json", str(out),
                 "--quiet"]) == 0
    results = json.loads(out.read_text())["models"]
    assert set(results) == {"bicubic", "srcnn"}
    for key in ("psnr", "cpsnr", "ssim", "sam", "cpsnr_gain", "cpsnr_win_rate", "psnr_gain"):
        assert key in results["srcnn"]
    assert results["srcnn"]["n_patches"] == results["bicubic"]["n_patches"] > 0
    assert results["srcnn"]["cpsnr"] - results["bicubic"]["cpsnr"] == pytest.approx(results["srcnn"]["cpsnr_gain"],
                                                                                    abs=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(store), "--checkpoint", str(tmp_path / "nothing.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["train", str(store), "--out", str(tmp_path / "x"), "--device", "cuda", "--epochs", "1", "--quiet"]) == (
        0 if torch.cuda.is_available() else 2)


def test_replace_stale_starts_afresh_and_keeps_other_files(store, tmp_path):
    run = tmp_path / "run"
    train(store, TrainConfig(**SMALL, epochs=1), out=run)
    (run / "notes.txt").write_text("mine")
    result = train(store, TrainConfig(**SMALL, epochs=2, learning_rate=0.01), out=run, replace_stale=True)
    assert not result.resumed and list(result.metrics["epoch"]) == [1, 2]
    assert (run / "notes.txt").read_text() == "mine"


def test_the_perceptual_term_uses_an_encoder_trained_on_the_stores_hr_patches(store, tmp_path):
    from eo_sr.learn.encoder import DomainEncoder, load_encoder, train_encoder

    config = TrainConfig(**{**SMALL, "loss": {"l1": 1.0, "perceptual": 0.1}}, epochs=1, encoder_minutes=0.05)
    result = train(store, config, out=tmp_path / "run")
    assert "train_perceptual" in result.metrics and result.metrics["train_perceptual"].gt(0).all()
    encoder = load_encoder(tmp_path / "run" / "encoder.pt")  # weights_only=True inside
    assert isinstance(encoder, DomainEncoder) and not any(p.requires_grad for p in encoder.parameters())
    feats = encoder(torch.rand(2, 4, 64, 64))
    assert [f.shape[-1] for f in feats] == [64, 32]
    # reused while the store is the same, not retrained
    mtime = (tmp_path / "run" / "encoder.pt").stat().st_mtime_ns
    train_encoder(store, out=tmp_path / "run" / "encoder.pt", minutes=0.05)
    assert (tmp_path / "run" / "encoder.pt").stat().st_mtime_ns == mtime
