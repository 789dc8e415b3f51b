"""The Loss record and what every loss shares: input checks, weights and the three reductions.

A loss computes one value l_i per item (an element for elementwise losses, an
example for losses over a class or feature axis), weighs it by w_i when
`weights=` is given (broadcastable to the items' shape; 1 otherwise) and reduces:

    "mean":  sum_i w_i l_i / sum_i w_i      "sum":  sum_i w_i l_i      "none":  w_i l_i

An item of weight 0 counts for nothing, even where its l_i is NaN (a padded
position with an out-of-range label); all-zero weights give 0. The gradient is
w_i dl_i/dpred, divided by sum_i w_i for "mean"; for "none" it is the
derivative of the sum.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..activations import fixed_options
from ..core import check_float

Array = jax.Array
REDUCTIONS = ("mean", "sum", "none")


@dataclasses.dataclass(frozen=True, repr=False)
class Loss:
    """A loss with its hand-derived gradient with respect to the prediction, as `Layer`
    pairs forward and backward.

        loss(pred, target, **kw)        -> value_fn(pred, target, **options, **kw)
        loss.grad(pred, target, **kw)   -> dL/dpred, shaped like pred (a tuple for several inputs)
        loss.partial(**kw)              -> the same loss with hyperparameters fixed (a Loss)

    Build one from two functions: `Loss(value_fn, grad_fn, "name")`. `options` holds the
    fixed keywords as sorted (key, value) pairs, so equal configurations are == and hash
    alike (a compile cache can key on them). A frozen dataclass, as `Activation`.
    """
    value_fn: Callable
    grad_fn: Callable
    name: str = "loss"
    options: tuple = ()

    def __post_init__(self):
        if getattr(self.value_fn, "__doc__", None):       # inspect.getdoc(mse) gives the formula
            object.__setattr__(self, "__doc__", self.value_fn.__doc__)

    def __call__(self, *arrays, **kwargs) -> Array:
        return self.value_fn(*arrays, **{**dict(self.options), **kwargs})

    def grad(self, *arrays, **kwargs):
        return self.grad_fn(*arrays, **{**dict(self.options), **kwargs})

    def partial(self, **kwargs) -> Loss:
        return dataclasses.replace(self, options=fixed_options(self.name, self.value_fn, self.options, kwargs))

    def __repr__(self) -> str:
        return f"Loss({', '.join([self.name, *(f'{k}={v!r}' for k, v in self.options)])})"


def check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_same_shape(name: str, pred, target, what: tuple = ("pred", "target")) -> None:
    if jnp.shape(pred) != jnp.shape(target):
        raise ValueError(f"{name}: {what[0]} and {what[1]} must have the same shape, got "
                         f"{what[0]} {tuple(jnp.shape(pred))} and {what[1]} {tuple(jnp.shape(target))}")


def paired(name: str, pred, target, reduction: str) -> tuple[Array, Array]:
    """Check a (pred, target) pair of one shape; return them with target cast to
    pred's float dtype (so integer or boolean targets work under strict promotion)."""
    check_reduction(name, reduction)
    check_float(name, pred)
    check_same_shape(name, pred, target)
    pred = jnp.asarray(pred)
    return pred, jnp.asarray(target).astype(pred.dtype)


def item_weights(name: str, weights, items_shape: tuple, dtype) -> Array | None:
    """`weights` broadcast to the items' shape and cast to `dtype` (None stays None)."""
    if weights is None:
        return None
    weights = jnp.asarray(weights)
    try:
        fits = jnp.broadcast_shapes(weights.shape, tuple(items_shape)) == tuple(items_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: weights must broadcast to the per-item loss shape "
                         f"{tuple(items_shape)}, got weights of shape {weights.shape}")
    return jnp.broadcast_to(weights, items_shape).astype(dtype)


def _weighted(values: Array, weights: Array) -> Array:
    """w * values, with 0 wherever w == 0 (so a NaN there counts for nothing)."""
    weights = weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))
    return jnp.where(weights == 0, 0, weights * values)


def _total(weights: Array) -> Array:
    total = jnp.sum(weights)
    return jnp.where(total == 0, 1, total)


def reduce(name: str, values: Array, reduction: str, weights=None) -> Array:
    """Weighted mean or sum over every item, or the weighted items for "none"."""
    weights = item_weights(name, weights, values.shape, values.dtype)
    if weights is not None:
        values = _weighted(values, weights)
        if reduction == "mean":
            return jnp.sum(values) / _total(weights)
    if reduction == "mean":
        return jnp.mean(values)
    if reduction == "sum":
        return jnp.sum(values)
    return values


def scale(name: str, grad: Array, items_shape: tuple, reduction: str, weights=None) -> Array:
    """The gradient of the reduced loss from the per-item derivatives `grad`, whose
    leading axes are the items' (trailing ones, such as a class axis, follow)."""
    weights = item_weights(name, weights, items_shape, grad.dtype)
    if weights is not None:
        grad = _weighted(grad, weights)
        return grad / _total(weights) if reduction == "mean" else grad
    return grad / math.prod(items_shape) if reduction == "mean" else grad


def xlogy(x: Array, y: Array) -> Array:
    """x log y, with 0 where x == 0 (so 0 log 0 = 0), autodiff-safe."""
    safe_y = jnp.where(x == 0, 1, y)
    return jnp.where(x == 0, 0, x * jnp.log(safe_y))
