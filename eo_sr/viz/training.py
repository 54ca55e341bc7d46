"""Figures of training runs: the loss and the validation gain over bicubic, epoch by epoch."""
from __future__ import annotations

from pathlib import Path

__all__ = ["plot_training_curves", "save_training_figure"]

FIGURE_FILE = "training_curves.png"


def plot_training_curves(metrics, *, axes=None, title: str | None = None):
    """Training and validation loss (left) and validation PSNR gain over bicubic (right).

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per epoch, as ``metrics.csv`` of a run (:func:`eo_sr.learn.train.read_metrics`).
    axes : pair of matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    else:
        fig = axes[0].figure
    left, right = axes
    for column, label in (("train_loss", "training"), ("val_loss", "validation")):
        if column in metrics:
            left.plot(metrics["epoch"], metrics[column], marker="o", ms=3, label=label)
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    left.legend()
    if "val_gain" in metrics:
        right.axhline(0, color="0.5", lw=1, ls="--", label="bicubic")
        right.plot(metrics["epoch"], metrics["val_gain"], marker="o", ms=3, color="C2", label="model")
        if len(metrics):
            best = metrics["val_gain"].idxmax()
            right.scatter([metrics.loc[best, "epoch"]], [metrics.loc[best, "val_gain"]], s=60, facecolor="none",
                          edgecolor="k", zorder=3, label=f"best {metrics.loc[best, 'val_gain']:+.2f} dB")
    right.set(xlabel="epoch", ylabel="PSNR gain over bicubic (dB)", title="validation")
    right.legend()
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return fig


def save_training_figure(run_dir: str | Path, *, title: str | None = None) -> Path:
    """Write ``training_curves.png`` into a run folder from its ``metrics.csv``."""
    from matplotlib.figure import Figure  # not pyplot: no GUI backend, nothing left open

    from eo_sr.learn.train import read_metrics

    run_dir = Path(run_dir)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    plot_training_curves(read_metrics(run_dir), axes=fig.subplots(1, 2), title=title)
    path = run_dir / FIGURE_FILE
    fig.savefig(path, dpi=110)
    return path
