"""Directions without Adam's pair of moments: scale_by_rms (RMSProp), scale_by_rss (AdaGrad),
scale_by_lion, and the momentum accumulators trace (heavy ball, Nesterov) and ema.

One transform per idea, each with its own NamedTuple state and no learning rate.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .base import (
    Optimizer,
    PyTree,
    cast_like,
    check_ranges,
    check_tree,
    increment,
    update_moment,
    wider,
    zero_count,
    zeros,
)
from .base import (
    debias as unbias,
)


def _inverse_root(s: jax.Array, eps: float, eps_in_sqrt: bool) -> jax.Array:
    """1 / sqrt(s + eps) (eps inside the root) or 1 / (sqrt(s) + eps) (outside)."""
    return jax.lax.rsqrt(s + eps) if eps_in_sqrt else 1 / (jnp.sqrt(s) + eps)


def _wide(x: jax.Array, other: jax.Array) -> jax.Array:
    """x in the wider of the two dtypes (an accumulator kept in another dtype than the updates)."""
    return x.astype(wider(x.dtype, other.dtype))


class ScaleByRmsState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far (read by bias_correction)
    mu: PyTree        # EMA of g (centered only, else ())
    nu: PyTree        # EMA of g^2, same tree as params


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True, centered: bool = False, bias_correction: bool = False) -> Optimizer:
    r"""RMSProp's direction (Hinton 2012, lecture 6e; centered: Graves 2013), optax's convention.

        nu_t = decay nu_{t-1} + (1 - decay) g_t^2            (nu_0 = initial_scale)
        s_t  = nu_t, or centered: nu_t - mu_t^2 with mu_t = decay mu_{t-1} + (1 - decay) g_t
        d_t  = g_t / sqrt(s_t + eps)                         (eps_in_sqrt=False: / (sqrt(s_t) + eps))
    eps inside the root is optax's default; PyTorch puts it outside. bias_correction divides
    nu (and mu) by 1 - decay^t first. centered=True is optax's scale_by_stddev.
    """
    check_ranges("scale_by_rms", decay=(decay, "[0, 1]"), eps=(eps, "[0, inf)"),
                 initial_scale=(initial_scale, "[0, inf)"))

    def init(params):
        nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return ScaleByRmsState(zero_count(), zeros(params) if centered else (), nu)

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_rms", grads, state.nu)
        count = increment(state.count)
        nu = update_moment(grads, state.nu, decay, 2)
        mu = update_moment(grads, state.mu, decay) if centered else ()
        corrected = (lambda tree: unbias(tree, decay, count)) if bias_correction else (lambda tree: tree)
        spread = jax.tree.map(lambda v, m: v - m * m, corrected(nu), corrected(mu)) if centered else corrected(nu)
        updates = jax.tree.map(lambda g, s: g * _inverse_root(s, eps, eps_in_sqrt), grads, spread)
        return updates, ScaleByRmsState(count, mu, nu)

    return Optimizer(init, update)


class ScaleByRssState(NamedTuple):
    sum_of_squares: PyTree  # s, running sum of squared gradients, same tree as params


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7,
                 eps_in_sqrt: bool = True) -> Optimizer:
    r"""AdaGrad's direction (Duchi, Hazan & Singer 2011): per-coordinate rates from summed squares.

        s_t = s_{t-1} + g_t^2                   (s_0 = initial_accumulator_value)
        d_t = g_t / sqrt(s_t + eps)             eps_in_sqrt=True: optax's convention
        d_t = g_t / (sqrt(s_t) + eps)           eps_in_sqrt=False: PyTorch's
    Where s_t = 0 the direction is 0. Defaults are optax's; PyTorch's are 0, 1e-10, outside.
    """
    check_ranges("scale_by_rss", initial_accumulator_value=(initial_accumulator_value, "[0, inf)"),
                 eps=(eps, "[0, inf)"))

    def init(params):
        return ScaleByRssState(jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_rss", grads, state.sum_of_squares)
        sums = jax.tree.map(lambda g, s: s + g * g, grads, state.sum_of_squares)
        scaled = lambda g, s: jnp.where(s > 0, g * _inverse_root(s, eps, eps_in_sqrt), jnp.zeros_like(g))
        return jax.tree.map(scaled, grads, sums), ScaleByRssState(sums)

    return Optimizer(init, update)


class TraceState(NamedTuple):
    trace: PyTree  # momentum buffer b, same tree as params


def trace(decay: float, nesterov: bool = False, accumulator_dtype: jnp.dtype | None = None) -> Optimizer:
    r"""Momentum (Polyak 1964; Nesterov form: Sutskever et al. 2013), as optax.trace.

        b_t = decay b_{t-1} + g_t           (b_0 = 0)
        d_t = b_t,   or with nesterov:  d_t = g_t + decay b_t
    No (1 - decay) factor: steps grow to lr / (1 - decay), as PyTorch's SGD with dampening 0.
    """
    check_ranges("trace", decay=(decay, "[0, 1)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("trace", grads, state.trace)
        buffers = jax.tree.map(lambda g, b: _wide(g, b) + decay * _wide(b, g), grads, state.trace)
        updates = jax.tree.map(lambda g, b: g.astype(b.dtype) + decay * b, grads, buffers) if nesterov else buffers
        return cast_like(updates, grads), TraceState(cast_like(buffers, state.trace))

    return Optimizer(lambda params: TraceState(zeros(params, accumulator_dtype)), update)


class EmaState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    ema: PyTree       # the moving average, same tree as params


def ema(decay: float, debias: bool = True, accumulator_dtype: jnp.dtype | None = None) -> Optimizer:
    r"""Exponential moving average of the updates (optax.ema; Adafactor's momentum).

        e_t = decay e_{t-1} + (1 - decay) g_t        d_t = e_t / (1 - decay^t)  (debias=False: e_t)
    """
    check_ranges("ema", decay=(decay, "[0, 1)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("ema", grads, state.ema)
        count = increment(state.count)
        average = update_moment(grads, state.ema, decay)
        updates = unbias(average, decay, count) if debias else average
        return cast_like(updates, grads), EmaState(count, cast_like(average, state.ema))

    return Optimizer(lambda params: EmaState(zero_count(), zeros(params, accumulator_dtype)), update)


class ScaleByLionState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    mu: PyTree        # momentum m, same tree as params


def scale_by_lion(b1: float = 0.9, b2: float = 0.99, mu_dtype: jnp.dtype | None = None) -> Optimizer:
    r"""Lion's direction (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms").

        d_t = sign(b1 m_{t-1} + (1 - b1) g_t)        m_t = b2 m_{t-1} + (1 - b2) g_t
    `lion` chains it with decoupled weight decay and the learning rate, as optax.lion.
    """
    check_ranges("scale_by_lion", b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_lion", grads, state.mu)
        signs = jax.tree.map(jnp.sign, update_moment(grads, state.mu, b1))
        mu = cast_like(update_moment(grads, state.mu, b2), state.mu)
        return cast_like(signs, grads), ScaleByLionState(increment(state.count), mu)

    return Optimizer(lambda params: ScaleByLionState(zero_count(), zeros(params, mu_dtype)), update)
