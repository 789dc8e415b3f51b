"""Plots: training curves (matplotlib, optional)."""
from __future__ import annotations

from pathlib import Path


def plot_history(history: dict, path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and validation) side by side, saved as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["train_loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split in ("train", "val"):
            values = history.get(f"{split}_{metric}") or []
            if values and all(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
