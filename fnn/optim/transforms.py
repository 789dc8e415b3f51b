"""Gradient transforms that compose with the rules through `chain`.

Each is an Optimizer whose `update` maps updates to updates: clipping, decoupled weight
decay, scaling by a schedule, and reduce-on-plateau (which reads `update(..., value=loss)`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .base import (
    Mask,
    Optimizer,
    PyTree,
    ScalarOrSchedule,
    add_decay,
    as_schedule,
    check_int,
    check_ranges,
    float_dtype,
    increment,
    rate_at,
    zero_count,
)


def global_norm(tree: PyTree) -> jax.Array:
    """sqrt of the sum of squares of every entry of every leaf (in float32 or wider)."""
    wide = lambda x: x.astype(jnp.float32) if jnp.finfo(x.dtype).bits < 32 else x
    squares = [jnp.sum(jnp.square(wide(x))).astype(float_dtype()) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squares, jnp.zeros([], float_dtype())))


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """g <- g max_norm / ||g|| when the global norm ||g|| (over all leaves) is >= max_norm.

    Pascanu, Mikolov & Bengio 2013; the same test (norm < max_norm keeps g) as optax. Stateless.
    """
    check_ranges("clip_by_global_norm", max_norm=(max_norm, "(0, inf)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        norm = global_norm(grads)
        clip = lambda g: jnp.where(norm < max_norm, g, g / norm.astype(g.dtype) * max_norm)
        return jax.tree.map(clip, grads), state

    return Optimizer(lambda params: (), update)


def clip_by_value(max_delta: float) -> Optimizer:
    """g <- clip(g, -max_delta, max_delta), entry by entry (optax.clip). Stateless."""
    check_ranges("clip_by_value", max_delta=(max_delta, "(0, inf)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), grads), state

    return Optimizer(lambda params: (), update)


def add_decayed_weights(weight_decay: float, mask: Mask = None) -> Optimizer:
    """g <- g + weight_decay p on the leaves `mask` selects (optax.add_decayed_weights). Stateless.

    Before a rule this is L2 regularisation; after an adaptive rule (and before the rate) it is
    decoupled decay. `mask`: a prefix tree of bools or a function (path, leaf) -> bool, such as
    `decay_mask`, which skips biases and normalisation parameters; None decays every leaf.
    """
    check_ranges("add_decayed_weights", weight_decay=(weight_decay, "[0, inf)"))

    def update(grads, state, params=None, **extra):
        del extra
        return add_decay("add_decayed_weights", grads, params, weight_decay, mask), state

    return Optimizer(lambda params: (), update)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array     # (), int32: updates applied so far
    lr_scale: jax.Array  # (), float: the factor the last update applied (before any: the first's)


def scale_by_schedule(schedule: ScalarOrSchedule) -> Optimizer:
    """g <- schedule(t) g, with t the number of earlier updates (optax.scale_by_schedule).

    The factor is kept as `lr_scale`, so `current_learning_rate` multiplies it in: with
    `chain(adam(1.0), scale_by_schedule(warmup_cosine(...)))` it reports the scheduled rate.
    """
    schedule = as_schedule(schedule, "scale_by_schedule", "schedule")

    def init(params):
        del params
        return ScaleByScheduleState(zero_count(), rate_at(schedule, zero_count()))

    def update(grads, state, params=None, **extra):
        del params, extra
        scale = rate_at(schedule, state.count)
        updates = jax.tree.map(lambda g: scale.astype(g.dtype) * g, grads)
        return updates, ScaleByScheduleState(increment(state.count), scale)

    return Optimizer(init, update)


class ReduceOnPlateauState(NamedTuple):
    count: jax.Array           # (), int32: values received
    lr_scale: jax.Array        # (), float: factor on the updates (1 until the first reduction)
    best_value: jax.Array      # (), float: lowest window mean so far (+inf before the first)
    plateau_count: jax.Array   # (), int32: windows without improvement since the last change
    cooldown_count: jax.Array  # (), int32: windows left in which plateaus are not counted
    value_sum: jax.Array       # (), float: sum of the values of the window being filled


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4, atol: float = 0.0,
                      cooldown: int = 0, accumulation_size: int = 1, min_scale: float = 0.0) -> Optimizer:
    """g <- scale g, where scale <- max(scale factor, min_scale) once `value` stops improving.

    Read through update(grads, state, params, value=loss); values are averaged over windows of
    `accumulation_size` calls. A window mean v improves on the best b when
        v < b - rtol |b| - atol,
    which is right for negative losses too (PyTorch's and optax's b (1 - rtol) is not). PyTorch's
    ReduceLROnPlateau bookkeeping: after more than `patience` windows without improvement the
    scale drops, then `cooldown` windows pass uncounted. The new scale applies from this update on.
    """
    check_ranges("reduce_on_plateau", factor=(factor, "(0, 1)"), rtol=(rtol, "[0, 1]"),
                 atol=(atol, "[0, inf)"), min_scale=(min_scale, "[0, 1]"))
    for arg, value, least in (("patience", patience, 0), ("cooldown", cooldown, 0),
                              ("accumulation_size", accumulation_size, 1)):
        check_int("reduce_on_plateau", arg, value, least)

    def init(params):
        del params
        one, zero = jnp.ones([], float_dtype()), jnp.zeros([], float_dtype())
        return ReduceOnPlateauState(zero_count(), one, one * jnp.inf, zero_count(), zero_count(), zero)

    def update(grads, state, params=None, **extra):
        if extra.get("value") is None:
            raise ValueError("reduce_on_plateau: update needs the loss, call update(grads, state, "
                             "params, value=loss)")
        total = state.value_sum + jnp.asarray(extra["value"]).astype(float_dtype())
        count = increment(state.count)
        waiting = state._replace(count=count, value_sum=total)
        decided = _plateau_step(waiting, total / accumulation_size, factor, patience, rtol, atol,
                                cooldown, min_scale)
        state = jax.tree.map(lambda a, b: jnp.where(count % accumulation_size == 0, a, b), decided, waiting)
        return jax.tree.map(lambda g: state.lr_scale.astype(g.dtype) * g, grads), state

    return Optimizer(init, update)


def _plateau_step(state, mean, factor, patience, rtol, atol, cooldown, min_scale):
    """One window's decision, as PyTorch's ReduceLROnPlateau.step with the threshold above."""
    best = state.best_value
    threshold = jnp.where(jnp.isinf(best), best, best - rtol * jnp.abs(best) - atol)
    better = mean < threshold
    bad = jnp.where(better, 0, state.plateau_count + 1)
    in_cooldown = state.cooldown_count > 0
    bad = jnp.where(in_cooldown, 0, bad)
    wait = jnp.where(in_cooldown, state.cooldown_count - 1, state.cooldown_count)
    reduce = bad > patience
    return state._replace(
        best_value=jnp.where(better, mean, best),
        lr_scale=jnp.where(reduce, jnp.maximum(state.lr_scale * factor, min_scale), state.lr_scale),
        plateau_count=jnp.where(reduce, 0, bad).astype(jnp.int32),
        cooldown_count=jnp.where(reduce, cooldown, wait).astype(jnp.int32),
        value_sum=jnp.zeros_like(state.value_sum))
