"""The one pure training step of docs/design.md §5, and the metrics it reports.

    step(params, state, opt_state, (x, y), key) -> (params, state, opt_state, metrics)

`x` and `y` are arrays or pytrees of arrays, every leaf with the batch axis first.
A target `y = (target, weights)` (or `{"target": t, "weights": w}`) is read as
`loss(pred, target, weights=weights)`, and accuracy counts each example by its weight;
any other `y` is the target itself, passed whole to the loss.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .. import losses as _losses
from ..core import Layer
from ..optim import apply_updates

GRADS = ("autodiff", "manual")


def split_target(y):
    """`(target, weights)` of a batch's targets; weights is None when `y` carries none."""
    if isinstance(y, tuple) and len(y) == 2 and not hasattr(y, "_fields"):
        return y
    if isinstance(y, dict) and set(y) == {"target", "weights"}:
        return y["target"], y["weights"]
    return y, None


def loss_value(loss: Callable, pred, y):
    """`loss(pred, target)`, or `loss(pred, target, weights=weights)` when `y` carries weights."""
    target, weights = split_target(y)
    return loss(pred, target) if weights is None else loss(pred, target, weights=weights)


def metrics(value, pred, y, report_loss: Callable | None = None, extra: tuple = ()) -> dict:
    """{"loss": value} plus "accuracy" for integer class labels (weighted when `y` carries
    weights), "report_loss", the reported loss, when it differs from the objective, and each
    `(name, fn)` of `extra` as `fn(pred, target)` (weights are not passed)."""
    out = {"loss": value}
    if report_loss is not None:
        out["report_loss"] = loss_value(report_loss, pred, y).astype(value.dtype)
    target, weights = split_target(y)
    for name, fn in extra:
        out[name] = jnp.asarray(fn(pred, target)).astype(value.dtype)
    if is_class_target(pred, target):
        hit = (jnp.argmax(pred, -1).astype(target.dtype) == target).astype(value.dtype)
        if weights is None:
            out["accuracy"] = jnp.mean(hit)
        else:
            w = jnp.broadcast_to(weights, hit.shape).astype(value.dtype)
            out["accuracy"] = jnp.sum(hit * w) / jnp.maximum(jnp.sum(w), 1e-12)
    return out


def is_class_target(pred, target) -> bool:
    """True for integer class labels: target (...,) int against pred (..., C)."""
    return (hasattr(pred, "shape") and hasattr(target, "dtype")
            and jnp.issubdtype(target.dtype, jnp.integer) and pred.ndim == target.ndim + 1
            and pred.shape[:-1] == target.shape)


def hand_gradient(loss: Callable) -> Callable:
    """`loss.grad`, the hand-derived gradient a Loss record carries; TypeError without one."""
    if isinstance(loss, _losses.Loss):
        return loss.grad
    raise TypeError(f"loss_and_grads: grads='manual' needs a fnn.losses.Loss (a value with its hand gradient), "
                    f"got {loss!r}; build one with fnn.losses.Loss(value_fn, grad_fn, name)")


def loss_and_grads(model: Layer, loss: Callable, grads: str = "autodiff",
                   report_loss: Callable | None = None, extra: tuple = ()) -> Callable:
    """`f(params, state, x, y, key) -> (loss, metrics, dparams, new_state)` for one batch in training mode."""
    if grads not in GRADS:
        raise ValueError(f"loss_and_grads: grads must be one of {GRADS}, got {grads!r}")
    if grads == "manual":
        loss_grad = hand_gradient(loss)

        def manual(params, state, x, y, key):
            pred, new_state, cache = model.forward(params, state, x, key=key, train=True)
            value = loss_value(loss, pred, y)
            dparams, _ = model.backward(params, cache, loss_value(loss_grad, pred, y))
            return value, metrics(value, pred, y, report_loss, extra), dparams, new_state
        return manual

    def objective(params, state, x, y, key):
        pred, new_state = model.apply(params, state, x, key=key, train=True)
        value = loss_value(loss, pred, y)
        return value, (metrics(value, pred, y, report_loss, extra), new_state)

    def autodiff(params, state, x, y, key):
        (value, (m, new_state)), dparams = jax.value_and_grad(objective, has_aux=True)(
            params, state, x, y, key)
        return value, m, dparams, new_state
    return autodiff


def train_step(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff",
               report_loss: Callable | None = None, extra: tuple = ()) -> Callable:
    """docs/design.md §5's pure step, not jitted:
    `step(params, state, opt_state, (x, y), key, value=None) -> (params, state, opt_state, metrics)`.

    The optimizer gets `value=` (reduce_on_plateau's monitored loss): `value` when given,
    else the batch loss. `extra`: `(name, fn)` pairs whose `fn(pred, target)` join the metrics.
    `fit`'s two loops run this function; `make_train_step` jits it."""
    compute = loss_and_grads(model, loss, grads, report_loss, extra)

    def step(params, state, opt_state, batch, key, value=None):
        loss_now, m, dparams, new_state = compute(params, state, batch[0], batch[1], key)
        value = loss_now if value is None else jnp.where(jnp.isfinite(value), value, loss_now)
        updates, opt_state = optimizer.update(dparams, opt_state, params, value=value)
        return apply_updates(params, updates), new_state, opt_state, m
    return step


def make_train_step(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff") -> Callable:
    """`train_step` under `jax.jit`, params, state and opt_state donated:
    `step(params, state, opt_state, (x, y), key) -> (params, state, opt_state, metrics)`."""
    step = train_step(model, loss, optimizer, grads=grads)
    return jax.jit(lambda p, s, o, batch, key: step(p, s, o, batch, key), donate_argnums=(0, 1, 2))
