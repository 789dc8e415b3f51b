"""What `fnn evaluate` shows beyond accuracy and loss: the per-class table and confusion.png.

    class_table(labels, predictions, names)       -> str (as scikit-learn's classification_report)
    plot_confusion(matrix, names, path, title)     -> path of the PNG (matplotlib, the plot extra)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import metrics
from ._optional import require

_HEADER = ("precision", "recall", "f1", "support")


def class_table(labels, predictions, names: Sequence[str]) -> str:
    """Precision, recall, F1 and support of each class (a row per name, in class-id order), then the
    macro mean and the mean weighted by support; zero divisions count 0 (see fnn.metrics)."""
    per_class = metrics.precision_recall_f1(labels, predictions, len(names))
    support = np.asarray(per_class.support)
    rows = [(name, *(float(v[c]) for v in per_class[:3]), int(support[c])) for c, name in enumerate(names)]
    for average in ("macro", "weighted"):
        means = metrics.precision_recall_f1(labels, predictions, len(names), average)
        rows.append((f"{average} avg", *(float(v) for v in means[:3]), int(support.sum())))
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'class':<{width}}" + "".join(f"{h:>11}" for h in _HEADER)]
    for i, (name, precision, recall, f1, count) in enumerate(rows):
        if i == len(names):
            lines.append("")
        lines.append(f"{name:<{width}}{precision:>11.4f}{recall:>11.4f}{f1:>11.4f}{count:>11d}")
    return "\n".join(lines)


def plot_confusion(matrix, names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """The confusion matrix as a PNG: rows the true class, columns the predicted one, counts in the cells."""
    matplotlib = require("matplotlib", extra="plot", purpose="confusion.png")   # one line if it is missing
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 0.6 + 0.55 * len(names)))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    dark = matrix.max() / 2
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if count > dark else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
