"""Data checks at the entry of fit/evaluate, `predict` and `evaluate`.

Data is `(x, y)`: arrays or pytrees of arrays, every leaf with the example axis first.
Labels are checked once, at entry (integer class ids in [0, classes)); NumPy int64
leaves become int32 (and float64 float32 unless x64 is on), so JAX never truncates.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer
from .step import loss_value, metrics, split_target


def length(fn: str, name: str, tree) -> int:
    """The common leading length of the leaves of `tree`; ValueError naming `fn` if they differ."""
    leaves = jax.tree.leaves(tree)
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(sizes) != 1 or -1 in sizes:
        shapes = [tuple(np.shape(a)) for a in leaves]
        raise ValueError(f"{fn}: every array of {name} must have the example axis first, with one "
                         f"length for all, got shapes {shapes}")
    return sizes.pop()


def check_pair(fn: str, name: str, data) -> tuple:
    """`data` as an `(x, y)` pair of equal length, leaves as JAX-ready NumPy or JAX arrays."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{fn}: {name} must be an (inputs, targets) pair, got {type(data).__name__}")
    x, y = (jax.tree.map(_jax_ready, part) for part in data)
    nx, ny = length(fn, f"{name} inputs", x), length(fn, f"{name} targets", y)
    if nx != ny:
        raise ValueError(f"{fn}: {name} inputs and targets differ in length: {nx} vs {ny}")
    return x, y


def _jax_ready(a):
    """NumPy int64/float64 leaves narrowed to what JAX keeps without x64, so nothing warns."""
    a = a if isinstance(a, jax.Array) else np.asarray(a)
    if isinstance(a, np.ndarray) and not jax.config.jax_enable_x64:
        if a.dtype == np.int64 and a.size and np.iinfo(np.int32).min <= a.min() <= a.max() <= np.iinfo(np.int32).max:
            return a.astype(np.int32)
        if a.dtype == np.float64:
            return a.astype(np.float32)
    return a


def check_labels(fn: str, name: str, model: Layer, params, state, data) -> None:
    """Class labels (a target with one axis fewer than the predictions) must be integers
    in [0, classes), checked on the host once; other targets are the loss's business."""
    x, y = data
    target, _ = split_target(y)
    if not hasattr(target, "dtype"):
        return
    one = jax.eval_shape(lambda p, s, xb: model.apply(p, s, xb)[0], params, state,
                         jax.tree.map(lambda a: a[:1], x))
    if not hasattr(one, "shape") or len(one.shape) != target.ndim + 1:
        return
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"{fn}: {name} labels must be integer class ids (the predictions have one more "
                        f"axis, of {one.shape[-1]} classes), got {target.dtype} labels")
    lo, hi, classes = int(np.min(target)), int(np.max(target)), one.shape[-1]
    if lo < 0 or hi >= classes:
        raise ValueError(f"{fn}: {name} labels must lie in [0, {classes}) for the model's {classes} "
                         f"classes, got labels from {lo} to {hi}")


def warn_nonfinite(fn: str, name: str, x) -> None:
    """Warn (once per call) when floating inputs hold NaN or infinity."""
    for a in jax.tree.leaves(x):
        if jnp.issubdtype(a.dtype, jnp.floating) and not bool(np.isfinite(np.asarray(a)).all()):
            warnings.warn(f"{fn}: the {name} inputs hold NaN or infinite values; its loss will be nan",
                          RuntimeWarning, stacklevel=3)
            return


def _apply_fn(model: Layer) -> Callable:
    from .loops import cached
    return cached(model, ("apply",), lambda: jax.jit(lambda p, s, xb: model.apply(p, s, xb, train=False)[0]))


def _slice(x, start: int, size: int, n: int):
    """Examples start..start+size-1 of `x`, zero-padded past its n examples."""
    chunk = jax.tree.map(lambda a: a[start:start + size], x)
    short = start + size - n
    if short <= 0:
        return chunk
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros((short, *a.shape[1:]), a.dtype)]), chunk)


def _batched(fn: Callable, x, batch_size: int):
    """`fn` over consecutive batches of `x`, the last padded to the same shape (one compile)."""
    n = length("predict", "x", x)
    size = min(batch_size, n)
    outs = [fn(_slice(x, start, size, n)) for start in range(0, n, size)]
    last = n - size * (len(outs) - 1)
    outs[-1] = jax.tree.map(lambda o: o[:last], outs[-1])
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


def predict(model: Layer, params, state, x, *, batch_size: int = 1000):
    """Model outputs in evaluation mode for every example of `x` (an array or a pytree of
    arrays, examples first), in jitted batches of `batch_size`."""
    x = jax.tree.map(_jax_ready, x)
    fn = _apply_fn(model)
    return _batched(lambda xb: fn(params, state, xb), x, batch_size)


_SCORES: dict = {}     # loss -> jitted scoring; bounded, keyed by the loss record


def _scores(loss: Callable) -> Callable:
    try:
        found = _SCORES.get(loss)
    except TypeError:
        found = None
    if found is None:
        found = jax.jit(lambda pred, y: metrics(loss_value(loss, pred, y), pred, y))
        if len(_SCORES) >= 16:
            _SCORES.pop(next(iter(_SCORES)))
        try:
            _SCORES[loss] = found
        except TypeError:
            pass
    return found


def score(model: Layer, params, state, data, loss: Callable, batch_size: int, extra: tuple = ()) -> dict:
    """Mean loss (and accuracy for class labels) of checked data, and each `(name, fn)` of `extra`
    as `fn(predictions, targets)` over the whole split, jitted; no entry checks."""
    pred = predict(model, params, state, data[0], batch_size=batch_size)
    found = {k: float(v) for k, v in _scores(loss)(pred, data[1]).items()}
    target, _ = split_target(data[1])
    return {**found, **{name: float(jax.jit(fn)(pred, target)) for name, fn in extra}}


def evaluate(model: Layer, params, state, data, *, loss: Callable, batch_size: int = 1000) -> dict:
    """Mean loss (and accuracy for integer labels) over every example of `data = (x, y)`.

    `y = (labels, weights)` weighs the loss and the accuracy per example or position.
    Labels are checked first (integer, in [0, classes)); NaN in the inputs warns."""
    data = check_pair("evaluate", "data", data)
    check_labels("evaluate", "data", model, params, state, data)
    warn_nonfinite("evaluate", "data", data[0])
    return score(model, params, state, data, loss, batch_size)

