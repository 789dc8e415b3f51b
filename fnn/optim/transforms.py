"""Stateless and scalar transforms: the learning rate, constant scaling, clipping, weight decay
and the trust ratio. Each is an Optimizer mapping updates to updates.

`scale_by_learning_rate` is the only transform that knows the learning rate.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .base import (
    Mask,
    Optimizer,
    PyTree,
    ScalarOrSchedule,
    as_schedule,
    check_range,
    check_ranges,
    check_tree,
    float_dtype,
    increment,
    require_params,
    resolve_mask,
    zero_count,
)


def _stateless(update: Any) -> Optimizer:
    return Optimizer(lambda params: (), update)


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far (kept for a schedule only)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True) -> Optimizer:
    """u <- -lr(t) u, with t the number of earlier updates (flip_sign=False: +lr(t) u), as optax.

    The one transform that knows the rate: a float (state ()) or a schedule `count -> rate`
    (state: the count). The rate is cast to each leaf's dtype. The Optimizer's `learning_rate`
    is the schedule (a float as a constant one), read by `learning_rate_at`.
    """
    schedule = as_schedule(learning_rate, "scale_by_learning_rate")
    sign = -1.0 if flip_sign else 1.0
    if not callable(learning_rate):
        factor = sign * float(learning_rate)
        return Optimizer(lambda params: (), scale(factor).update, schedule)

    def update(grads, state, params=None, **extra):
        del params, extra
        rate = sign * jnp.asarray(schedule(state.count), float_dtype())
        updates = jax.tree.map(lambda g: rate.astype(g.dtype) * g, grads)
        return updates, ScaleByLearningRateState(increment(state.count))

    return Optimizer(lambda params: ScaleByLearningRateState(zero_count()), update, schedule)


def scale(step_size: float) -> Optimizer:
    """u <- step_size u (optax.scale). Stateless."""
    check_range("scale", "step_size", step_size, "[-inf, inf]")

    def update(grads, state, params=None, **extra):
        del params, extra
        return jax.tree.map(lambda g: step_size * g, grads), state

    return _stateless(update)


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

    return _stateless(update)


def clip_by_value(max_delta: float) -> Optimizer:
    """g <- clip(g, -max_delta, max_delta), entry by entry (optax.clip). Stateless."""
    check_ranges("clip_by_value", max_delta=(max_delta, "(0, inf)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), grads), state

    return _stateless(update)


def decay_mask(params: PyTree) -> PyTree:
    """Weight-decay mask: True for leaves of two or more axes (weights, kernels, embeddings),
    False for vectors and scalars (biases, normalisation gamma/beta)."""
    return jax.tree.map(lambda p: jnp.ndim(p) >= 2, params)


def add_decayed_weights(weight_decay: float = 0.0, mask: Mask = None) -> Optimizer:
    """u <- u + weight_decay p on the leaves `mask` selects (optax.add_decayed_weights). Stateless.

    Before a direction this is L2 regularisation; after an adaptive direction (and before the
    rate) it is decoupled decay (AdamW). `mask`: a prefix tree of bools or a function
    params -> such a tree, as `decay_mask` (no decay on biases and norms); None decays all.
    """
    check_ranges("add_decayed_weights", weight_decay=(weight_decay, "[0, inf)"))

    def update(grads, state, params=None, **extra):
        del extra
        if weight_decay == 0.0:
            return grads, state
        require_params("add_decayed_weights", params, "weight decay reads them")
        check_tree("add_decayed_weights", grads, params, "params")
        chosen = resolve_mask(True if mask is None else mask, grads, "add_decayed_weights")
        decay = lambda keep, g, p: g + weight_decay * p if keep else g
        return jax.tree.map(decay, chosen, grads, params), state

    return _stateless(update)


def _norm(x: jax.Array, min_norm: float) -> jax.Array:
    return jnp.maximum(jnp.sqrt(jnp.sum(x * x)), min_norm)


def scale_by_trust_ratio(min_norm: float = 0.0, trust_coefficient: float = 1.0, eps: float = 0.0) -> Optimizer:
    """u <- r u per leaf, r = trust_coefficient ||p|| / (||u|| + eps); r = 1 where a norm is 0.

    The layer-wise trust ratio of LARS (You, Gitman & Ginsburg 2017) and LAMB (You et al. 2020),
    as optax: norms are taken no smaller than min_norm. Stateless; reads the params.
    """
    check_ranges("scale_by_trust_ratio", min_norm=(min_norm, "[0, inf)"),
                 trust_coefficient=(trust_coefficient, "(0, inf)"), eps=(eps, "[0, inf)"))

    def ratio(u, p):
        p_norm, u_norm = _norm(p, min_norm), _norm(u, min_norm)
        r = trust_coefficient * p_norm / (u_norm + eps)
        return u * jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones_like(r), r)

    def update(grads, state, params=None, **extra):
        del extra
        require_params("scale_by_trust_ratio", params, "the trust ratio reads them")
        check_tree("scale_by_trust_ratio", grads, params, "params")
        return jax.tree.map(ratio, grads, params), state

    return _stateless(update)
