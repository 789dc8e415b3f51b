"""The Adam family: Adam, AdamW, NAdam, AMSGrad, AdaBelief, RAdam and LAMB.

All but AMSGrad run through `_adam_rule`: one per-array step (moments, debiasing, direction)
followed by the rule's extras (decoupled weight decay, trust ratio, rectification).
Conventions follow optax, so the tests compare with optax step by step.
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
    check_ranges,
    float_dtype,
    lift,
    power,
    require_params,
    rule,
    trust_ratio,
    zeros,
)


class AdamState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    mu: PyTree                # first-moment EMA m, same tree as params
    nu: PyTree                # second-moment EMA v (AdaBelief: of (g - m)^2), same tree as params


class NadamState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    mu: PyTree                # first-moment EMA m, same tree as params
    nu: PyTree                # second-moment EMA v, same tree as params
    mu_product: jax.Array     # (), float: prod_{i<=t} mu_i of the momentum schedule (b1^t without)


class AmsgradState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    mu: PyTree                # first-moment EMA m, same tree as params
    nu: PyTree                # second-moment EMA v, same tree as params
    nu_max: PyTree            # running maximum of v (of v / (1 - b2^t) by default)


def _check(name: str, b1: float, b2: float, eps: float, eps_root: float, **more: tuple) -> None:
    check_ranges(name, b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"), eps=(eps, "[0, inf)"),
                 eps_root=(eps_root, "[0, inf)"), **more)


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, *, nesterov: bool = False) -> Optimizer:
    r"""Adam (Kingma & Ba 2014, Algorithm 1; eps outside the square root, as optax and PyTorch).

        m_t = b1 m_{t-1} + (1 - b1) g_t       m^_t = m_t / (1 - b1^t)
        v_t = b2 v_{t-1} + (1 - b2) g_t^2     v^_t = v_t / (1 - b2^t)
        u_t = -lr(t-1) m^_t / (sqrt(v^_t + eps_root) + eps)
    TensorFlow's Adam uses the form before section 2.1 of the paper (eps scaled by the
    debiasing); that is not offered. nesterov=True is `nadam`.
    """
    _check("adam", b1, b2, eps, eps_root)
    return _adam_rule("adam", learning_rate, b1, b2, eps, eps_root, nesterov=nesterov)


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, weight_decay: float = 1e-4, mask: Mask = None, *,
          nesterov: bool = False) -> Optimizer:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

        u_t = -lr(t-1) (m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay p_t)
    with m^, v^ as in `adam`. The decay is multiplied by the learning rate, as in optax and
    PyTorch; the paper multiplies it by the schedule factor eta_t only, not by alpha.
    `mask` selects the decayed leaves: a prefix tree of bools or a function (path, leaf) -> bool,
    such as `decay_mask` (no decay on biases and normalisation parameters); None decays all.
    """
    _check("adamw", b1, b2, eps, eps_root, weight_decay=(weight_decay, "[0, inf)"))
    return _adam_rule("adamw", learning_rate, b1, b2, eps, eps_root, nesterov=nesterov,
                      weight_decay=weight_decay, mask=mask)


def nadam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, momentum_decay: float | None = None) -> Optimizer:
    r"""NAdam (Dozat 2016, Algorithm 2): Adam with a Nesterov look-ahead in the first moment.

        m~_t = mu_{t+1} m_t / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g_t / (1 - prod_{i<=t} mu_i)
        u_t  = -lr(t-1) m~_t / (sqrt(v^_t + eps_root) + eps)      (m_t, v^_t as in `adam`)
    momentum_decay=None: mu_t = b1, optax.nadam's form. momentum_decay=psi: PyTorch's and Keras's
    schedule mu_t = b1 (1 - 0.5 * 0.96^(t psi)) (PyTorch's default psi is 0.004).
    """
    _check("nadam", b1, b2, eps, eps_root)
    if momentum_decay is not None:
        check_ranges("nadam", momentum_decay=(momentum_decay, "[0, inf)"))
    return _adam_rule("nadam", learning_rate, b1, b2, eps, eps_root, nesterov=True,
                      momentum_decay=momentum_decay)


def adabelief(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
              eps_root: float = 1e-16, *, nesterov: bool = False) -> Optimizer:
    r"""AdaBelief (Zhuang et al. 2020, Algorithm 2): scale by the belief in the gradient.

        m_t = b1 m_{t-1} + (1 - b1) g_t
        s_t = b2 s_{t-1} + (1 - b2) (g_t - m_t)^2 + eps_root      s^_t = s_t / (1 - b2^t)
        u_t = -lr(t-1) m^_t / (sqrt(s^_t) + eps)
    Defaults are optax's (eps = eps_root = 1e-16; optax gives the paper's as eps = 1e-8,
    eps_root = 0). eps_root is added to the stored s every step. State: s is kept as `nu`.
    """
    _check("adabelief", b1, b2, eps, eps_root)
    return _adam_rule("adabelief", learning_rate, b1, b2, eps, eps_root, nesterov=nesterov, belief=True)


def radam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, threshold: float = 5.0, *, nesterov: bool = False) -> Optimizer:
    r"""RAdam (Liu et al. 2020, Algorithm 2): Adam with the variance of its rate rectified.

        rho_inf = 2 / (1 - b2) - 1       rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        u_t = -lr(t-1) r_t m^_t / (sqrt(v^_t + eps_root) + eps)   if rho_t >= threshold
        u_t = -lr(t-1) m^_t                                        otherwise (momentum SGD)
    threshold = 5 as optax and PyTorch; the paper's Algorithm 2 switches at rho_t > 4.
    """
    _check("radam", b1, b2, eps, eps_root, threshold=(threshold, "[0, inf)"))
    return _adam_rule("radam", learning_rate, b1, b2, eps, eps_root, nesterov=nesterov, threshold=threshold)


def lamb(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         eps_root: float = 0.0, weight_decay: float = 0.0, mask: Mask = None) -> Optimizer:
    r"""LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2).

        d_t = m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay p_t     (m^, v^ as in `adam`)
        u_t = -lr(t-1) ||p_t|| / ||d_t|| d_t          per leaf (ratio 1 where a norm is 0)
    As optax.lamb: the scaling function phi of the paper is the identity, the moments are
    debiased, and `mask` selects the decayed leaves as in `adamw`.
    """
    _check("lamb", b1, b2, eps, eps_root, weight_decay=(weight_decay, "[0, inf)"))
    return _adam_rule("lamb", learning_rate, b1, b2, eps, eps_root, weight_decay=weight_decay,
                      mask=mask, trust=True)


def _adam_rule(name: str, learning_rate: ScalarOrSchedule, b1: float, b2: float, eps: float,
               eps_root: float, *, nesterov: bool = False, momentum_decay: float | None = None,
               weight_decay: float = 0.0, mask: Mask = None, trust: bool = False,
               belief: bool = False, threshold: float | None = None) -> Optimizer:
    def leaf(g, m, v, k):
        cast = lambda x: x.astype(g.dtype)
        m = b1 * m + (1 - b1) * g
        e = g - m if belief else g
        v = b2 * v + (1 - b2) * e * e
        v = v + eps_root if belief else v                   # AdaBelief keeps eps_root inside s
        m_hat = cast(k["w_m"]) * m + cast(k["w_g"]) * g if nesterov else m / cast(k["c1"])
        v_hat = v / cast(k["c2"])
        d = m_hat / (jnp.sqrt(v_hat + eps_root if eps_root and not belief else v_hat) + eps)
        return (jnp.where(k["rectified"], cast(k["r"]) * d, m_hat) if threshold is not None else d), m, v

    def step(grads, state, params, rate):
        k, extra = _step_scalars(state, b1, b2, nesterov, momentum_decay, threshold)
        directions, mu, nu = lift(lambda g, m, v: leaf(g, m, v, k), 3, grads, state.mu, state.nu)
        directions = add_decay(name, directions, params, weight_decay, mask)
        if trust:
            require_params(name, params, "the trust ratio reads them")
            directions = jax.tree.map(lambda d, p: d * trust_ratio(d, p), directions, params)
        return jax.tree.map(lambda d: -rate.astype(d.dtype) * d, directions), {"mu": mu, "nu": nu, **extra}

    def init_trees(params):
        trees = {"mu": zeros(params), "nu": zeros(params)}
        return {**trees, "mu_product": jnp.ones([], float_dtype())} if nesterov else trees

    return rule(name, learning_rate, NadamState if nesterov else AdamState, init_trees, step, "mu")


def _step_scalars(state, b1, b2, nesterov, momentum_decay, threshold) -> tuple[dict, dict]:
    """Per-step scalars in the default float: debiasing, Nesterov weights, rectification."""
    t = state.count
    k = {"c1": 1 - power(b1, t), "c2": 1 - power(b2, t)}
    if threshold is not None:
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t.astype(float_dtype()) * power(b2, t) / k["c2"]
        k["r"] = jnp.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        k["rectified"] = rho >= threshold
    if not nesterov:
        return k, {}
    if momentum_decay is None:               # mu_t = b1: prod mu_i = b1^t, in closed form
        k["w_m"], k["w_g"] = b1 / (1 - power(b1, t + 1)), (1 - b1) / k["c1"]
        return k, {"mu_product": power(b1, t)}
    tf = t.astype(float_dtype())
    mu_t, mu_next = (b1 * (1 - 0.5 * 0.96 ** (s * momentum_decay)) for s in (tf, tf + 1))
    product = state.mu_product * mu_t
    k["w_m"], k["w_g"] = mu_next / (1 - product * mu_next), (1 - mu_t) / (1 - product)
    return k, {"mu_product": product}


def amsgrad(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            eps_root: float = 0.0, bias_correction_mu: bool = True, bias_correction_nu: bool = True,
            max_before_correction: bool = False) -> Optimizer:
    r"""AMSGrad (Reddi, Kale & Kumar 2018): Adam whose denominator never shrinks.

        m_t, v_t as in `adam`;   v^max_t = max(v^max_{t-1}, v_t / (1 - b2^t))
        u_t = -lr(t-1) m^_t / (sqrt(v^max_t + eps_root) + eps)
    Default: the max of the debiased v (optax). max_before_correction=True takes the max of the
    raw v and divides it by (1 - b2^t) afterwards (PyTorch's amsgrad=True).
    bias_correction_mu/nu=False drop the debiasing of m/v (the paper's Algorithm 2 has none).
    """
    _check("amsgrad", b1, b2, eps, eps_root)
    correct_before = bias_correction_nu and not max_before_correction

    def leaf(g, m, v, v_max, c1, c2):
        cast = lambda x: x.astype(g.dtype)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        v_max = jnp.maximum(v_max, v / cast(c2) if correct_before else v)
        v_hat = v_max / cast(c2) if bias_correction_nu and max_before_correction else v_max
        m_hat = m / cast(c1) if bias_correction_mu else m
        return m_hat / (jnp.sqrt(v_hat + eps_root) + eps), m, v, v_max

    def step(grads, state, params, rate):
        del params
        c1, c2 = 1 - power(b1, state.count), 1 - power(b2, state.count)
        d, mu, nu, nu_max = lift(lambda *a: leaf(*a, c1, c2), 4, grads, state.mu, state.nu, state.nu_max)
        return jax.tree.map(lambda x: -rate.astype(x.dtype) * x, d), {"mu": mu, "nu": nu, "nu_max": nu_max}

    init_trees = lambda p: {"mu": zeros(p), "nu": zeros(p), "nu_max": zeros(p)}
    return rule("amsgrad", learning_rate, AmsgradState, init_trees, step, "mu")
