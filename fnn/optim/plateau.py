"""reduce_on_plateau: scale the updates down once a monitored value (the loss) stops improving."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .base import Optimizer, check_int, check_ranges, float_dtype, increment, zero_count


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
