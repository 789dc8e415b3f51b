"""Shared pieces of the losses: input checks and the three reductions.

A loss computes one value per item (an element for elementwise losses, an
example for losses over a class or feature axis), then reduces:
"mean" averages the items, "sum" adds them, "none" returns them. Its gradient
is the per-item derivative, divided by the item count for "mean"; for "none"
it is the derivative of the sum (each item's own derivative).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .core import check_float

Array = jax.Array
REDUCTIONS = ("mean", "sum", "none")


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


def reduce(values: Array, reduction: str) -> Array:
    """Mean or sum over every item, or the items themselves for "none"."""
    if reduction == "mean":
        return jnp.mean(values)
    if reduction == "sum":
        return jnp.sum(values)
    return values


def scale(grad: Array, count: int, reduction: str) -> Array:
    """The gradient of the reduced loss from the per-item derivatives `grad`."""
    return grad / count if reduction == "mean" else grad


def xlogy(x: Array, y: Array) -> Array:
    """x log y, with 0 where x == 0 (so 0 log 0 = 0), autodiff-safe."""
    safe_y = jnp.where(x == 0, 1, y)
    return jnp.where(x == 0, 0, x * jnp.log(safe_y))
