"""The Learner record and the input checks every classic learner shares."""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Learner(NamedTuple):
    """A classic learner: a record of pure functions, as a Layer is (docs/design.md §1).

    fit(x, y, *, classes=None, ...) -> params      (a pytree of arrays; `classes` fixes the labels)
    predict(params, x) -> labels (N,)               (values taken from params["classes"])
    decision_function(params, x) -> scores (N,) or (N, K), where the learner has one
    predict_log_proba(params, x) -> (N, K) log posteriors, where the learner has one
    partial_fit(params | None, x, y, *, classes=None) -> params, accumulating over batches
    staged_predict(params, x) -> (rounds, N) labels after each boosting round
    """
    fit: Callable
    predict: Callable
    name: str
    decision_function: Callable | None = None
    predict_log_proba: Callable | None = None
    partial_fit: Callable | None = None
    staged_predict: Callable | None = None


def float_dtype(x) -> jnp.dtype:
    """The floating dtype to compute in: x's own if floating, else JAX's default float."""
    dtype = jnp.asarray(x).dtype
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.result_type(float))


def check_x(name: str, x, n_features: int | None = None, *, nonnegative: bool = False) -> jax.Array:
    """x as a float (N, d) array; raises ValueError naming the learner on a wrong shape or bad values."""
    x = jnp.asarray(x)
    x = x.astype(float_dtype(x))
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name}: expected x of shape (N, d) with N >= 1, got shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValueError(f"{name}: expected x with {n_features} features as in fit, got {x.shape[1]}")
    if not isinstance(x, jax.core.Tracer):      # values are checkable only outside jit
        finite, smallest = _value_summary(x)
        if not bool(finite):
            raise ValueError(f"{name}: expected finite features, got NaN or infinite values in x")
        if nonnegative and float(smallest) < 0:
            raise ValueError(f"{name}: expected non-negative counts in x, got minimum {float(smallest)}")
    return x


@jax.jit
def _value_summary(x):
    """(all finite, smallest value) in one pass over x."""
    finite = jnp.isfinite(x)
    return finite.all(), jnp.where(finite, x, jnp.inf).min()


def encode_labels(name: str, y, n: int, classes=None) -> tuple[np.ndarray, jax.Array]:
    """(classes, index of each label in classes); y must hold n labels, all in `classes` if given."""
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise ValueError(f"{name}: expected numeric labels (JAX arrays hold no strings), got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{name}: expected y of shape ({n},) to match x, got shape {y.shape}")
    if classes is None:
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"{name}: expected at least two classes in y, got only {classes.tolist()}")
    classes = np.asarray(classes)
    if np.unique(classes).size != classes.size or classes.size < 2:
        raise ValueError(f"{name}: expected at least two distinct classes, got classes={classes.tolist()}")
    unknown = np.setdiff1d(y, classes)
    if unknown.size:
        raise ValueError(f"{name}: expected labels in {classes.tolist()}, got also {unknown.tolist()[:10]}")
    order = np.argsort(classes)
    index = order[np.searchsorted(classes, y, sorter=order)]
    return classes, jnp.asarray(index, jnp.int32)


def labels(params, index: jax.Array) -> jax.Array:
    """The class label of each index (the inverse of encode_labels)."""
    return jnp.asarray(params["classes"])[index]
