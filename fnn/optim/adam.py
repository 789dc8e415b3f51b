"""Adam's family of directions: scale_by_adam (Nesterov: NAdam), scale_by_amsgrad, scale_by_belief,
scale_by_radam and scale_by_nadam (PyTorch's momentum schedule).

Each is one transform with its own state and no learning rate; the named optimizers (alias.py)
chain them with `scale_by_learning_rate`. Conventions follow optax (tests compare step by step).
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
    debias,
    float_dtype,
    increment,
    power,
    update_moment,
    zero_count,
    zeros,
)


def _check(name: str, b1: float, b2: float, eps: float, eps_root: float, **more: tuple) -> None:
    check_ranges(name, b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"), eps=(eps, "[0, inf)"),
                 eps_root=(eps_root, "[0, inf)"), **more)


def _direction(mu_hat: PyTree, nu_hat: PyTree, eps: float, eps_root: float) -> PyTree:
    """m^ / (sqrt(v^ + eps_root) + eps): eps outside the root, eps_root inside (optax, PyTorch)."""
    return jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)


def _mean(mu: PyTree, grads: PyTree, b1: float, count: jax.Array, nesterov: bool) -> PyTree:
    """Debiased first moment m / (1 - b1^t), or with nesterov optax's NAdam look-ahead
    b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)."""
    if not nesterov:
        return debias(mu, b1, count)
    ahead, now = debias(mu, b1, increment(count)), debias(grads, b1, count)
    return jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, ahead, now)


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    mu: PyTree        # first-moment EMA m, same tree as params
    nu: PyTree        # second-moment EMA v, same tree as params


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                  mu_dtype: jnp.dtype | None = None, *, nesterov: bool = False) -> Optimizer:
    r"""Adam's direction (Kingma & Ba 2014, Algorithm 1; eps outside the square root, as optax).

        m_t = b1 m_{t-1} + (1 - b1) g_t       m^_t = m_t / (1 - b1^t)
        v_t = b2 v_{t-1} + (1 - b2) g_t^2     v^_t = v_t / (1 - b2^t)
        d_t = m^_t / (sqrt(v^_t + eps_root) + eps)
    nesterov=True is NAdam (Dozat 2016) in optax's form: m^_t as in `_mean`. TensorFlow's eps
    scaled by the debiasing is not offered. mu_dtype stores m in that dtype (say bfloat16).
    """
    _check("scale_by_adam", b1, b2, eps, eps_root)

    def init(params):
        return ScaleByAdamState(zero_count(), zeros(params, mu_dtype), zeros(params))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_adam", grads, state.nu)
        count = increment(state.count)
        mu, nu = update_moment(grads, state.mu, b1), update_moment(grads, state.nu, b2, 2)
        directions = _direction(_mean(mu, grads, b1, count, nesterov), debias(nu, b2, count), eps, eps_root)
        return cast_like(directions, grads), ScaleByAdamState(count, cast_like(mu, state.mu), nu)

    return Optimizer(init, update)


class ScaleByAmsgradState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    mu: PyTree        # first-moment EMA m, same tree as params
    nu: PyTree        # second-moment EMA v, same tree as params
    nu_max: PyTree    # running maximum of v (of v / (1 - b2^t) by default)


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                     mu_dtype: jnp.dtype | None = None, bias_correction_mu: bool = True,
                     bias_correction_nu: bool = True, max_before_correction: bool = False) -> Optimizer:
    r"""AMSGrad's direction (Reddi, Kale & Kumar 2018): Adam whose denominator never shrinks.

        m_t, v_t as in `scale_by_adam`;   v^max_t = max(v^max_{t-1}, v_t / (1 - b2^t))
        d_t = m^_t / (sqrt(v^max_t + eps_root) + eps)
    Default: the max of the debiased v (optax). max_before_correction=True keeps the max of the
    raw v and debiases it afterwards (PyTorch's amsgrad=True). bias_correction_mu/nu=False drop
    the debiasing of m / v (the paper's Algorithm 2 has none).
    """
    _check("scale_by_amsgrad", b1, b2, eps, eps_root)
    correct_max = bias_correction_nu and max_before_correction

    def init(params):
        return ScaleByAmsgradState(zero_count(), zeros(params, mu_dtype), zeros(params), zeros(params))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_amsgrad", grads, state.nu)
        count = increment(state.count)
        mu, nu = update_moment(grads, state.mu, b1), update_moment(grads, state.nu, b2, 2)
        seen = debias(nu, b2, count) if bias_correction_nu and not max_before_correction else nu
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, seen)
        nu_hat = debias(nu_max, b2, count) if correct_max else nu_max
        mu_hat = debias(mu, b1, count) if bias_correction_mu else mu
        new = ScaleByAmsgradState(count, cast_like(mu, state.mu), nu, nu_max)
        return cast_like(_direction(mu_hat, nu_hat, eps, eps_root), grads), new

    return Optimizer(init, update)


class ScaleByBeliefState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    mu: PyTree        # first-moment EMA m, same tree as params
    nu: PyTree        # s: EMA of (g - m)^2 plus eps_root, same tree as params


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16, eps_root: float = 1e-16,
                    *, nesterov: bool = False) -> Optimizer:
    r"""AdaBelief's direction (Zhuang et al. 2020, Algorithm 2): scale by the belief in g.

        m_t = b1 m_{t-1} + (1 - b1) g_t
        s_t = b2 s_{t-1} + (1 - b2) (g_t - m_t)^2 + eps_root      s^_t = s_t / (1 - b2^t)
        d_t = m^_t / (sqrt(s^_t) + eps)
    Defaults are optax's (eps = eps_root = 1e-16; the paper's are eps = 1e-8, eps_root = 0).
    eps_root is added to the stored s every step, as optax. nesterov as in `scale_by_adam`.
    """
    _check("scale_by_belief", b1, b2, eps, eps_root)

    def init(params):
        return ScaleByBeliefState(zero_count(), zeros(params), zeros(params))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_belief", grads, state.nu)
        count = increment(state.count)
        mu = update_moment(grads, state.mu, b1)
        errors = jax.tree.map(lambda g, m: g - m, grads, mu)
        nu = jax.tree.map(lambda s: s + eps_root, update_moment(errors, state.nu, b2, 2))
        directions = _direction(_mean(mu, grads, b1, count, nesterov), debias(nu, b2, count), eps, 0.0)
        return directions, ScaleByBeliefState(count, mu, nu)

    return Optimizer(init, update)


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                   threshold: float = 5.0, *, nesterov: bool = False) -> Optimizer:
    r"""RAdam's direction (Liu et al. 2020, Algorithm 2): Adam with its variance rectified.

        rho_inf = 2 / (1 - b2) - 1       rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        d_t = r_t m^_t / (sqrt(v^_t + eps_root) + eps)   if rho_t >= threshold,   else m^_t
    threshold = 5 as optax and PyTorch (the paper switches at rho_t > 4). State: ScaleByAdamState.
    """
    _check("scale_by_radam", b1, b2, eps, eps_root, threshold=(threshold, "[0, inf)"))
    rho_inf = 2 / (1 - b2) - 1

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_radam", grads, state.nu)
        count = increment(state.count)
        mu, nu = update_moment(grads, state.mu, b1), update_moment(grads, state.nu, b2, 2)
        b2t = power(b2, count)
        rho = rho_inf - 2 * count.astype(float_dtype()) * b2t / (1 - b2t)
        r = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        mu_hat = _mean(mu, grads, b1, count, nesterov)
        adam = _direction(mu_hat, debias(nu, b2, count), eps, eps_root)
        pick = lambda d, m: jnp.where(rho >= threshold, r.astype(d.dtype) * d, m)
        return jax.tree.map(pick, adam, mu_hat), ScaleByAdamState(count, mu, nu)

    return Optimizer(lambda params: ScaleByAdamState(zero_count(), zeros(params), zeros(params)), update)


class ScaleByNadamState(NamedTuple):
    count: jax.Array       # (), int32: updates applied so far
    mu: PyTree             # first-moment EMA m, same tree as params
    nu: PyTree             # second-moment EMA v, same tree as params
    mu_product: jax.Array  # (), float: prod_{i<=t} mu_i of the momentum schedule


def scale_by_nadam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0,
                   momentum_decay: float = 4e-3) -> Optimizer:
    r"""NAdam's direction with PyTorch's and Keras's momentum schedule (Dozat 2016, Algorithm 2).

        mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay))        P_t = prod_{i<=t} mu_i
        m^_t = mu_{t+1} m_t / (1 - P_t mu_{t+1}) + (1 - mu_t) g_t / (1 - P_t)
        d_t  = m^_t / (sqrt(v^_t + eps_root) + eps)         (m_t, v^_t as in `scale_by_adam`)
    With a constant mu_t = b1 this is `scale_by_adam(nesterov=True)`, optax's NAdam.
    """
    _check("scale_by_nadam", b1, b2, eps, eps_root, momentum_decay=(momentum_decay, "[0, inf)"))

    def init(params):
        return ScaleByNadamState(zero_count(), zeros(params), zeros(params), jnp.ones([], float_dtype()))

    def update(grads, state, params=None, **extra):
        del params, extra
        check_tree("scale_by_nadam", grads, state.nu)
        count = increment(state.count)
        mu, nu = update_moment(grads, state.mu, b1), update_moment(grads, state.nu, b2, 2)
        t = count.astype(float_dtype())
        mu_t, mu_next = (b1 * (1 - 0.5 * 0.96 ** (s * momentum_decay)) for s in (t, t + 1))
        product = state.mu_product * mu_t
        w_m, w_g = mu_next / (1 - product * mu_next), (1 - mu_t) / (1 - product)
        mu_hat = jax.tree.map(lambda m, g: w_m.astype(m.dtype) * m + w_g.astype(g.dtype) * g, mu, grads)
        directions = _direction(mu_hat, debias(nu, b2, count), eps, eps_root)
        return directions, ScaleByNadamState(count, mu, nu, product)

    return Optimizer(init, update)
