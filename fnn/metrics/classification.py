"""Classification metrics on arrays: pure JAX functions, jit-able (class counts and `k` are static).

`labels` are integer class ids (N,) in [0, num_classes); `predictions` the predicted ids (N,);
`logits` (or any scores, probabilities included) are (N, C), a larger score meaning more likely.
Values are checked where they are concrete (outside `jit`); under `jit` an id outside
[0, num_classes) counts for no class. Results are in JAX's default float dtype.

Zero division is 0, as scikit-learn's default `zero_division` gives (without its warnings):
precision of a class never predicted, recall of a class that never occurs and F1 of a class
that does neither are 0, and such a class still counts in the macro mean.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["AVERAGES", "PrecisionRecallF1", "accuracy", "confusion_matrix", "precision_recall_f1",
           "roc_auc", "top_k_accuracy"]

AVERAGES = (None, "macro", "micro", "weighted")


class PrecisionRecallF1(NamedTuple):
    precision: jax.Array   # (C,) per class with average=None, else a scalar
    recall: jax.Array      # same shape as precision
    f1: jax.Array          # same shape as precision
    support: jax.Array     # (C,) int: how many labels of each class, whatever the average


def _concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array, or None under `jit` where its values are not known."""
    try:
        return np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return None


def _ids(fn: str, name: str, x, num_classes: int | None = None) -> jax.Array:
    """`x` as a 1-d integer array; a TypeError/ValueError naming `fn` otherwise."""
    x = jnp.asarray(x)
    if x.ndim != 1 or not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{fn}: expected {name} as a 1-d array of integer class ids, got {x.dtype} of shape {x.shape}")
    values = _concrete(x) if num_classes is not None else None
    if values is not None and values.size and not (0 <= values.min() and values.max() < num_classes):
        raise ValueError(f"{fn}: {name} must lie in [0, {num_classes}), got ids from {values.min()} to {values.max()}")
    return x


def _same_length(fn: str, a: jax.Array, b: jax.Array, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{fn}: {names} differ in length: {a.shape[0]} vs {b.shape[0]}")


def _scores(fn: str, logits, labels) -> tuple[jax.Array, jax.Array]:
    """(logits (N, C), labels (N,)) checked, labels in [0, C)."""
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{fn}: expected logits as a float array of shape (N, C), got {logits.dtype} of shape "
                        f"{logits.shape}")
    labels = _ids(fn, "labels", labels, logits.shape[1])
    _same_length(fn, logits, labels, "logits and labels")
    return logits, labels


def _fraction(count, total):
    """count / total in the default float dtype, 0 where total == 0."""
    dtype = jnp.result_type(float)
    count, total = jnp.asarray(count).astype(dtype), jnp.asarray(total).astype(dtype)
    return jnp.where(total > 0, count / jnp.where(total > 0, total, 1), jnp.zeros((), dtype))


def accuracy(logits_or_labels: ArrayLike, labels: ArrayLike) -> jax.Array:
    """mean(predicted == labels), the predicted class the argmax of logits (N, C) or given ids (N,).

    Shapes: logits_or_labels (N, C) float or (N,) int, labels (N,) int -> a scalar in [0, 1].
    """
    given = jnp.asarray(logits_or_labels)
    if given.ndim == 2:
        given, labels = _scores("accuracy", given, labels)
        predicted = jnp.argmax(given, axis=-1).astype(labels.dtype)
    else:
        predicted = _ids("accuracy", "predictions", given)
        labels = _ids("accuracy", "labels", labels)
        _same_length("accuracy", predicted, labels, "predictions and labels")
        predicted = predicted.astype(labels.dtype)
    return _fraction(jnp.sum(predicted == labels), labels.shape[0])


def top_k_accuracy(logits: ArrayLike, labels: ArrayLike, k: int) -> jax.Array:
    """The fraction of examples whose label is among the k largest logits, as scikit-learn's
    `top_k_accuracy_score`: of tied scores the higher class id ranks first.

    Shapes: logits (N, C) float, labels (N,) int -> a scalar in [0, 1]; k = 1 is `accuracy`.
    """
    logits, labels = _scores("top_k_accuracy", logits, labels)
    if not isinstance(k, int) or not 1 <= k <= logits.shape[1]:
        raise ValueError(f"top_k_accuracy: k must be an int in [1, {logits.shape[1]}] (the classes), got {k!r}")
    own = jnp.take_along_axis(logits, labels[:, None].astype(jnp.int32), axis=1)
    ids = jnp.arange(logits.shape[1], dtype=labels.dtype)
    ahead = (logits > own) | ((logits == own) & (ids[None, :] > labels[:, None]))
    return _fraction(jnp.sum(jnp.sum(ahead, axis=1) < k), labels.shape[0])


def confusion_matrix(labels: ArrayLike, predictions: ArrayLike, num_classes: int) -> jax.Array:
    """M[i, j] = the number of examples of true class i predicted as j (rows true, as scikit-learn).

    Shapes: labels (N,) int, predictions (N,) int -> M (num_classes, num_classes) int32.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}")
    labels = _ids("confusion_matrix", "labels", labels, num_classes)
    predictions = _ids("confusion_matrix", "predictions", predictions, num_classes)
    _same_length("confusion_matrix", labels, predictions, "labels and predictions")
    true = jax.nn.one_hot(labels, num_classes, dtype=jnp.int32)      # out-of-range ids: a zero row
    predicted = jax.nn.one_hot(predictions, num_classes, dtype=jnp.int32)
    return true.T @ predicted


def precision_recall_f1(labels: ArrayLike, predictions: ArrayLike, num_classes: int,
                        average: str | None = None) -> PrecisionRecallF1:
    """Per class c: precision = TP / predicted c, recall = TP / true c, F1 = 2 TP / (predicted c + true c).

    average: None (per class, (C,)), "macro" (their mean), "weighted" (mean weighted by support),
    "micro" (from the summed counts: each equals the accuracy). Zero divisions give 0 (module doc).
    Shapes: labels (N,) int, predictions (N,) int -> PrecisionRecallF1 of (C,) or scalars, support (C,).
    """
    if average not in AVERAGES:
        raise ValueError(f"precision_recall_f1: average must be one of {AVERAGES}, got {average!r}")
    matrix = confusion_matrix(labels, predictions, num_classes)
    tp, support, predicted = jnp.diagonal(matrix), jnp.sum(matrix, axis=1), jnp.sum(matrix, axis=0)
    if average == "micro":
        tp, support_sum, predicted = jnp.sum(tp), jnp.sum(support), jnp.sum(predicted)
        return PrecisionRecallF1(_fraction(tp, predicted), _fraction(tp, support_sum),
                                 _fraction(2 * tp, predicted + support_sum), support)
    scores = (_fraction(tp, predicted), _fraction(tp, support), _fraction(2 * tp, predicted + support))
    if average == "macro":
        scores = tuple(jnp.mean(s) for s in scores)
    elif average == "weighted":
        weights = _fraction(support, jnp.sum(support))
        scores = tuple(jnp.sum(s * weights) for s in scores)
    return PrecisionRecallF1(*scores, support)


def roc_auc(labels01: ArrayLike, scores: ArrayLike) -> jax.Array:
    """Area under the ROC curve of a binary task: U / (P N), U the Mann-Whitney statistic.

    U = sum over positives of (rank - mean rank), i.e. the number of (positive, negative) pairs
    ordered right, ties counting 1/2, as scikit-learn's `roc_auc_score`; ranks average over ties.
    Shapes: labels01 (N,) 0/1 (int or bool), scores (N,) float -> a scalar in [0, 1].
    One class only is a ValueError outside `jit` and nan under it.
    """
    scores, labels01 = jnp.asarray(scores), jnp.asarray(labels01)
    if scores.ndim != 1 or not jnp.issubdtype(scores.dtype, jnp.floating):
        raise TypeError(f"roc_auc: expected scores as a 1-d float array, got {scores.dtype} of shape {scores.shape}")
    positive = _ids("roc_auc", "labels01", labels01.astype(jnp.int32) if labels01.dtype == bool else labels01, 2)
    _same_length("roc_auc", positive, scores, "labels01 and scores")
    values = _concrete(positive)
    if values is not None and len(set(values.tolist())) < 2:
        raise ValueError(f"roc_auc: labels01 hold only one class ({values[0] if values.size else 'none'}); "
                         f"the ROC AUC needs both positives and negatives")
    dtype = scores.dtype if jnp.finfo(scores.dtype).bits >= 32 else jnp.float32   # ranks reach N: not in 16 bits
    ordered = jnp.sort(scores)
    twice_rank = (jnp.searchsorted(ordered, scores, side="left") + jnp.searchsorted(ordered, scores, side="right")
                  + 1).astype(dtype)                              # 2 x the average 1-based rank
    is_positive = positive == 1
    n_pos = jnp.sum(is_positive).astype(dtype)
    n_neg = jnp.asarray(positive.shape[0], dtype) - n_pos
    twice_u = jnp.sum(jnp.where(is_positive, twice_rank, 0)) - n_pos * (n_pos + 1)
    return twice_u / (2 * n_pos * n_neg)
