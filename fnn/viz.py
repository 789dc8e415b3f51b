"""Plots: training curves (matplotlib, optional)."""
from __future__ import annotations

from pathlib import Path

from ._optional import require

# panel -> (history key, legend label); the objective is drawn dashed when the history has one
# (fit(report_loss=...) reports plain losses and keeps the optimised one, e.g. with label smoothing)
CURVES = {"loss": (("train_loss", "train"), ("val_loss", "val"), ("train_objective", "train objective")),
          "accuracy": (("train_accuracy", "train"), ("val_accuracy", "val"))}


def plot_history(history: dict, path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and validation) side by side, saved as a PNG."""
    matplotlib = require("matplotlib", extra="plot", purpose="plot_history")   # one line if it is missing
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["train_loss"]) + 1)
    for ax, (metric, curves) in zip(axes, CURVES.items()):
        for key, label in curves:
            values = history.get(key) or []
            if values and len(values) == len(epochs) and all(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=label, linestyle="--" if "objective" in key else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
