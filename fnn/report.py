"""What `fnn evaluate` reports: loss, accuracy, the per-class table and confusion.png.

    scores(logits, labels)              -> dict of every number, in one compiled call
    class_table(scores, names)          -> str (as scikit-learn's classification_report)
    plot_confusion(matrix, names, path) -> path of the PNG (matplotlib, the plot extra)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import losses, metrics
from ._optional import require

ROWS = (("per class", None), ("macro avg", "macro"), ("weighted avg", "weighted"))   # table row -> average
_HEADER = ("precision", "recall", "f1", "support")


@jax.jit
def scores(logits: jax.Array, labels: jax.Array) -> dict:
    """{"loss", "accuracy", "confusion", and a PrecisionRecallF1 per ROWS name} of logits (N, C) against
    integer labels (N,); jitted once, as a dozen eager calls would each compile (seconds on a CPU)."""
    labels = labels.astype(jnp.int32)
    predictions = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    classes = logits.shape[-1]
    return {"loss": losses.softmax_cross_entropy(logits, labels), "accuracy": metrics.accuracy(logits, labels),
            "confusion": metrics.confusion_matrix(labels, predictions, classes),
            **{row: metrics.precision_recall_f1(labels, predictions, classes, avg) for row, avg in ROWS}}


def class_table(scores: dict, names: Sequence[str]) -> str:
    """Precision, recall, F1 and support of each class (a row per name, in class-id order), then the
    macro mean and the mean weighted by support; zero divisions count 0 (see fnn.metrics)."""
    per_class = jax.tree.map(np.asarray, scores["per class"])
    rows = [(name, *(float(v[c]) for v in per_class[:3]), int(per_class.support[c])) for c, name in enumerate(names)]
    for row, _ in ROWS[1:]:
        rows.append((row, *(float(v) for v in scores[row][:3]), int(per_class.support.sum())))
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
