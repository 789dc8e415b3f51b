"""First-order rules without Adam's moments: SGD, AdaGrad, RMSProp, Lion, LARS.

Each rule is written for one array (`leaf`) and lifted to pytrees by `lift`; `rule` builds
the Optimizer and its state `(count, learning_rate, ...)`. Updates carry the minus sign.
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
    inverse_root,
    lift,
    require_params,
    resolve_leaves,
    rule,
    trust_ratio,
    zeros,
)


class SgdState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    trace: PyTree             # momentum buffer b, same tree as params; () without momentum


def sgd(learning_rate: ScalarOrSchedule, momentum: float = 0.0, nesterov: bool = False,
        dampening: float = 0.0, weight_decay: float = 0.0) -> Optimizer:
    r"""SGD with heavy-ball or Nesterov momentum (Sutskever et al. 2013), PyTorch's form.

        g'_t = g_t + weight_decay p_t                        (coupled L2, as torch.optim.SGD)
        b_t  = momentum b_{t-1} + (1 - dampening) g'_t       (b_0 = 0)
        u_t  = -lr(t-1) (g'_t + momentum b_t  if nesterov  else  b_t)
    dampening = 0 is the trace of optax.sgd and PyTorch (steps grow to lr/(1-momentum)).
    dampening = momentum gives the EMA form b = βb + (1-β)g of textbooks (steps stay ~lr).
    PyTorch starts b_1 = g'_1 undamped; here b_0 = 0, so the two agree when dampening = 0.
    Nesterov needs dampening = 0, as in PyTorch. momentum = 0 is plain SGD and keeps no buffer.
    """
    check_ranges("sgd", momentum=(momentum, "[0, 1)"), dampening=(dampening, "[0, 1]"),
                 weight_decay=(weight_decay, "[0, inf)"))
    if nesterov and (momentum == 0 or dampening != 0):
        raise ValueError(f"sgd: nesterov needs momentum > 0 and dampening = 0, "
                         f"got momentum={momentum}, dampening={dampening}")

    def leaf(g, b, rate):
        b = momentum * b + (1 - dampening) * g
        return -rate.astype(g.dtype) * (g + momentum * b if nesterov else b), b

    def step(grads, state, params, rate):
        grads = add_decay("sgd", grads, params, weight_decay, None)
        if not momentum:
            return jax.tree.map(lambda g: -rate.astype(g.dtype) * g, grads), {}
        updates, trace = lift(lambda g, b: leaf(g, b, rate), 2, grads, state.trace)
        return updates, {"trace": trace}

    init_trees = lambda params: {"trace": zeros(params) if momentum else ()}
    return rule("sgd", learning_rate, SgdState, init_trees, step, "trace")


class AdagradState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    sum_of_squares: PyTree    # s, running sum of squared gradients, same tree as params


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7, eps_in_sqrt: bool = True) -> Optimizer:
    r"""AdaGrad (Duchi, Hazan & Singer 2011): per-coordinate rates from the summed squares.

        s_t = s_{t-1} + g_t^2                        (s_0 = initial_accumulator_value)
        u_t = -lr(t-1) g_t / sqrt(s_t + eps)         eps_in_sqrt=True: optax's convention
        u_t = -lr(t-1) g_t / (sqrt(s_t) + eps)       eps_in_sqrt=False: PyTorch's
    Names and defaults are optax's (0.1, 1e-7); PyTorch's defaults are
    initial_accumulator_value=0, eps=1e-10, eps_in_sqrt=False. Where s_t = 0 the update is 0.
    """
    check_ranges("adagrad", initial_accumulator_value=(initial_accumulator_value, "[0, inf)"),
                 eps=(eps, "[0, inf)"))

    def leaf(g, s, rate):
        s = s + g * g
        step = -rate.astype(g.dtype) * g * inverse_root(s, eps, eps_in_sqrt)
        return jnp.where(s > 0, step, jnp.zeros_like(step)), s

    def step(grads, state, params, rate):
        del params
        updates, s = lift(lambda g, s: leaf(g, s, rate), 2, grads, state.sum_of_squares)
        return updates, {"sum_of_squares": s}

    full = lambda params: jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
    return rule("adagrad", learning_rate, AdagradState, lambda p: {"sum_of_squares": full(p)}, step,
                "sum_of_squares")


class RmspropState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    nu: PyTree                # EMA of g^2, same tree as params
    mu: PyTree                # EMA of g (centered only, else ())
    trace: PyTree             # momentum buffer (momentum > 0 only, else ())


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
    r"""RMSProp (Hinton 2012, lecture 6e; centered: Graves 2013), optax's convention.

        nu_t = decay nu_{t-1} + (1 - decay) g_t^2            (nu_0 = initial_scale)
        s_t  = nu_t, or centered: nu_t - mu_t^2 with mu_t = decay mu_{t-1} + (1 - decay) g_t
        d_t  = -lr(t-1) g_t / sqrt(s_t + eps)                (eps_in_sqrt=False: / (sqrt(s_t) + eps))
        b_t  = momentum b_{t-1} + d_t;   u_t = b_t  (nesterov: d_t + momentum b_t; momentum 0: d_t)
    eps inside the root is optax's default; PyTorch puts it outside. The rate enters before the
    momentum buffer (optax); PyTorch scales the buffer after, which differs only when lr varies.
    """
    check_ranges("rmsprop", decay=(decay, "[0, 1]"), eps=(eps, "[0, inf)"),
                 initial_scale=(initial_scale, "[0, inf)"), momentum=(momentum, "[0, 1)"))

    def leaf(g, nu, mu, b, rate):
        nu = decay * nu + (1 - decay) * g * g
        mu = decay * mu + (1 - decay) * g if centered else mu
        d = -rate.astype(g.dtype) * g * inverse_root(nu - mu * mu if centered else nu, eps, eps_in_sqrt)
        b = momentum * b + d if momentum else b
        return (d + momentum * b if nesterov else b) if momentum else d, nu, mu, b

    def step(grads, state, params, rate):
        del params
        mu, trace = state.mu if centered else grads, state.trace if momentum else grads
        updates, nu, mu, trace = lift(lambda *a: leaf(*a, rate), 4, grads, state.nu, mu, trace)
        return updates, {"nu": nu, "mu": mu if centered else (), "trace": trace if momentum else ()}

    def init_trees(params):
        nu = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return {"nu": nu, "mu": zeros(params) if centered else (), "trace": zeros(params) if momentum else ()}

    return rule("rmsprop", learning_rate, RmspropState, init_trees, step, "nu")


class LionState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    mu: PyTree                # momentum m, same tree as params


def lion(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.99,
         weight_decay: float = 1e-3, mask: Mask = None) -> Optimizer:
    r"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as optax.lion.

        c_t = b1 m_{t-1} + (1 - b1) g_t
        u_t = -lr(t-1) (sign(c_t) + weight_decay p_t)    (decoupled; on the leaves `mask` selects)
        m_t = b2 m_{t-1} + (1 - b2) g_t
    weight_decay defaults to optax's 1e-3; the paper pairs a 3-10x smaller lr than AdamW's with
    a 3-10x larger weight decay. `mask` as in `adamw`.
    """
    check_ranges("lion", b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"), weight_decay=(weight_decay, "[0, inf)"))

    def leaf(g, m):
        return jnp.sign(b1 * m + (1 - b1) * g), b2 * m + (1 - b2) * g

    def step(grads, state, params, rate):
        directions, mu = lift(leaf, 2, grads, state.mu)
        directions = add_decay("lion", directions, params, weight_decay, mask)
        return jax.tree.map(lambda d: -rate.astype(d.dtype) * d, directions), {"mu": mu}

    return rule("lion", learning_rate, LionState, lambda p: {"mu": zeros(p)}, step, "mu")


class LarsState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (before any: of the first)
    trace: PyTree             # momentum buffer b, same tree as params


def lars(learning_rate: ScalarOrSchedule, momentum: float = 0.9, weight_decay: float = 0.0,
         trust_coefficient: float = 0.001, eps: float = 0.0, nesterov: bool = False,
         weight_decay_mask: Mask = None, trust_ratio_mask: Mask = None) -> Optimizer:
    r"""LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks").

        d_t = g_t + weight_decay p_t                       (on leaves weight_decay_mask selects)
        r_t = trust_coefficient ||p_t|| / (||d_t|| + eps)  per leaf; 1 where a norm is 0 or the
                                                           leaf is outside trust_ratio_mask
        b_t = momentum b_{t-1} - lr(t-1) r_t d_t;   u_t = b_t  (nesterov: -lr r_t d_t + momentum b_t)
    As optax.lars: the paper divides by ||g|| + wd ||p||, this by ||g + wd p||. Masks: None = all.
    """
    check_ranges("lars", momentum=(momentum, "[0, 1)"), weight_decay=(weight_decay, "[0, inf)"),
                 trust_coefficient=(trust_coefficient, "(0, inf)"), eps=(eps, "[0, inf)"))

    def leaf(d, p, trusted, b, rate):
        step = -rate.astype(d.dtype) * d
        step = step * trust_ratio(d, p, trust_coefficient, eps) if trusted else step
        b = momentum * b + step
        return step + momentum * b if nesterov else b, b

    def step(grads, state, params, rate):
        require_params("lars", params, "the trust ratio reads them")
        grads = add_decay("lars", grads, params, weight_decay, weight_decay_mask)
        trusted = resolve_leaves(True if trust_ratio_mask is None else trust_ratio_mask, grads, "lars")
        updates, trace = lift(lambda *a: leaf(*a, rate), 2, grads, params, trusted, state.trace)
        return updates, {"trace": trace}

    return rule("lars", learning_rate, LarsState, lambda p: {"trace": zeros(p)}, step, "trace")
