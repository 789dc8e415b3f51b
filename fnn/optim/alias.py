"""The named optimizers: each a short `chain` of transforms, with optax's argument names, defaults
and state fields. The learning rate enters through `scale_by_learning_rate` only.

The tests compare every one with optax step by step (the same kwargs dict on both sides).
"""
from __future__ import annotations

import jax.numpy as jnp

from .adam import scale_by_adam, scale_by_amsgrad, scale_by_belief, scale_by_nadam, scale_by_radam
from .base import Mask, Optimizer, ScalarOrSchedule, as_schedule, chain, check_int, check_ranges
from .factored import clip_by_block_rms, scale_by_factored_rms, scale_by_param_block_rms
from .scaling import ema, scale_by_lion, scale_by_rms, scale_by_rss, trace
from .transforms import add_decayed_weights, scale, scale_by_learning_rate, scale_by_trust_ratio
from .wrappers import masked


def _rate(name: str, learning_rate: ScalarOrSchedule, sign: bool = True) -> Optimizer:
    """scale_by_learning_rate, with a bad rate reported under the optimizer's own name."""
    as_schedule(learning_rate, name)
    return scale_by_learning_rate(learning_rate, flip_sign=sign)


def _adam_checks(name: str, b1: float, b2: float, eps: float, eps_root: float, **more: tuple) -> None:
    check_ranges(name, b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"), eps=(eps, "[0, inf)"),
                 eps_root=(eps_root, "[0, inf)"), **more)


def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None, nesterov: bool = False,
        accumulator_dtype: jnp.dtype | None = None, *, dampening: float = 0.0,
        weight_decay: float = 0.0) -> Optimizer:
    r"""SGD with heavy-ball or Nesterov momentum (Sutskever et al. 2013).

        g'_t = g_t + weight_decay p_t                        (coupled L2, as torch.optim.SGD)
        b_t  = momentum b_{t-1} + (1 - dampening) g'_t       (b_0 = 0; `trace`)
        u_t  = -lr(t) (g'_t + momentum b_t  if nesterov  else  b_t)
    optax.sgd when dampening = weight_decay = 0. dampening = momentum gives the EMA form of
    textbooks (steps ~lr, not lr / (1 - momentum)); Nesterov needs dampening = 0, as PyTorch.
    """
    check_ranges("sgd", momentum=(momentum, "[0, 1)"), dampening=(dampening, "[0, 1]"),
                 weight_decay=(weight_decay, "[0, inf)"))
    if nesterov and (not momentum or dampening != 0):
        raise ValueError(f"sgd: nesterov needs momentum > 0 and dampening = 0, "
                         f"got momentum={momentum}, dampening={dampening}")
    parts = [add_decayed_weights(weight_decay)] if weight_decay else []
    parts += [scale(1 - dampening)] if dampening else []
    parts += [trace(momentum, nesterov, accumulator_dtype)] if momentum else []
    return chain(*parts, _rate("sgd", learning_rate))


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1, eps: float = 1e-7,
            eps_in_sqrt: bool = True) -> Optimizer:
    """AdaGrad (Duchi, Hazan & Singer 2011): `scale_by_rss`, then the rate (optax.adagrad).
    eps_in_sqrt=False with (0, 1e-10) is PyTorch's Adagrad."""
    check_ranges("adagrad", initial_accumulator_value=(initial_accumulator_value, "[0, inf)"),
                 eps=(eps, "[0, inf)"))
    return chain(scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt), _rate("adagrad", learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
            eps_in_sqrt: bool = True, centered: bool = False, momentum: float | None = None,
            nesterov: bool = False, bias_correction: bool = False) -> Optimizer:
    r"""RMSProp (Hinton 2012; centered: Graves 2013), as optax.rmsprop.

        d_t = g_t / sqrt(s_t + eps)  (`scale_by_rms`);   b_t = momentum b_{t-1} - lr(t) d_t
        u_t = b_t  (nesterov: -lr(t) d_t + momentum b_t;  no momentum: -lr(t) d_t)
    The rate enters before the momentum (optax); PyTorch scales the buffer after, which differs
    only when the rate varies. PyTorch puts eps outside the root (eps_in_sqrt=False).
    """
    check_ranges("rmsprop", decay=(decay, "[0, 1]"), eps=(eps, "[0, inf)"),
                 initial_scale=(initial_scale, "[0, inf)"), momentum=(momentum, "[0, 1)"))
    parts = [scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, centered, bias_correction),
             _rate("rmsprop", learning_rate)]
    return chain(*parts, *([trace(momentum, nesterov)] if momentum else []))


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_root: float = 0.0, mu_dtype: jnp.dtype | None = None, *, nesterov: bool = False) -> Optimizer:
    """Adam (Kingma & Ba 2014): `scale_by_adam`, then the rate; u_t = -lr(t) m^_t / (sqrt(v^_t) + eps).
    eps outside the square root, as optax and PyTorch; nesterov=True is `nadam`."""
    _adam_checks("adam", b1, b2, eps, eps_root)
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov), _rate("adam", learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, mu_dtype: jnp.dtype | None = None, weight_decay: float = 1e-4,
          mask: Mask = None, *, nesterov: bool = False) -> Optimizer:
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as optax.adamw.

        u_t = -lr(t) (m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay p_t)
    The decay is multiplied by the learning rate (optax, PyTorch; the paper by the schedule
    factor only). `mask` selects the decayed leaves: a prefix tree of bools or a function
    params -> such a tree, such as `decay_mask`; None decays every leaf.
    """
    _adam_checks("adamw", b1, b2, eps, eps_root, weight_decay=(weight_decay, "[0, inf)"))
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask), _rate("adamw", learning_rate))


def nadam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, momentum_decay: float | None = None) -> Optimizer:
    """NAdam (Dozat 2016): Adam with a Nesterov look-ahead. momentum_decay=None is optax.nadam
    (`scale_by_adam(nesterov=True)`); a float psi is PyTorch's and Keras's momentum schedule
    mu_t = b1 (1 - 0.5 * 0.96^(t psi)) (`scale_by_nadam`; PyTorch's default psi is 0.004)."""
    _adam_checks("nadam", b1, b2, eps, eps_root, momentum_decay=(momentum_decay, "[0, inf)"))
    direction = (scale_by_adam(b1, b2, eps, eps_root, nesterov=True) if momentum_decay is None
                 else scale_by_nadam(b1, b2, eps, eps_root, momentum_decay))
    return chain(direction, _rate("nadam", learning_rate))


def amsgrad(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            eps_root: float = 0.0, mu_dtype: jnp.dtype | None = None, bias_correction_mu: bool = True,
            bias_correction_nu: bool = True, max_before_correction: bool = False) -> Optimizer:
    """AMSGrad (Reddi, Kale & Kumar 2018): `scale_by_amsgrad`, then the rate (optax.amsgrad).
    max_before_correction=True is PyTorch's Adam(amsgrad=True)."""
    _adam_checks("amsgrad", b1, b2, eps, eps_root)
    direction = scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu, bias_correction_nu,
                                 max_before_correction)
    return chain(direction, _rate("amsgrad", learning_rate))


def adabelief(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
              eps_root: float = 1e-16, *, nesterov: bool = False) -> Optimizer:
    """AdaBelief (Zhuang et al. 2020): `scale_by_belief`, then the rate (optax.adabelief, its
    defaults eps = eps_root = 1e-16; the paper's are 1e-8 and 0)."""
    _adam_checks("adabelief", b1, b2, eps, eps_root)
    return chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov), _rate("adabelief", learning_rate))


def radam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          eps_root: float = 0.0, threshold: float = 5.0, *, nesterov: bool = False) -> Optimizer:
    """RAdam (Liu et al. 2020): `scale_by_radam`, then the rate (optax.radam; momentum SGD while
    the variance of the adaptive rate is intractable, rho_t < threshold)."""
    _adam_checks("radam", b1, b2, eps, eps_root, threshold=(threshold, "[0, inf)"))
    direction = scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov)
    return chain(direction, _rate("radam", learning_rate))


def lion(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.99, mu_dtype: jnp.dtype | None = None,
         weight_decay: float = 1e-3, mask: Mask = None) -> Optimizer:
    """Lion (Chen et al. 2023): u_t = -lr(t) (sign(b1 m + (1 - b1) g) + weight_decay p), as
    optax.lion (decoupled decay on the leaves `mask` selects). The paper pairs a 3-10x smaller
    rate than AdamW's with a 3-10x larger weight decay."""
    check_ranges("lion", b1=(b1, "[0, 1)"), b2=(b2, "[0, 1)"), weight_decay=(weight_decay, "[0, inf)"))
    return chain(scale_by_lion(b1, b2, mu_dtype), add_decayed_weights(weight_decay, mask),
                 _rate("lion", learning_rate))


def lamb(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         eps_root: float = 0.0, weight_decay: float = 0.0, mask: Mask = None) -> Optimizer:
    r"""LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning", Algorithm 2).

        d_t = m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay p_t     (m^, v^ as in `adam`)
        u_t = -lr(t) ||p_t|| / ||d_t|| d_t          per leaf (`scale_by_trust_ratio`)
    As optax.lamb: the paper's scaling function phi is the identity, the moments are debiased.
    """
    _adam_checks("lamb", b1, b2, eps, eps_root, weight_decay=(weight_decay, "[0, inf)"))
    return chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
                 scale_by_trust_ratio(), _rate("lamb", learning_rate))


def lars(learning_rate: ScalarOrSchedule, weight_decay: float = 0.0, weight_decay_mask: Mask = True,
         trust_coefficient: float = 0.001, eps: float = 0.0, trust_ratio_mask: Mask = True,
         momentum: float = 0.9, nesterov: bool = False) -> Optimizer:
    r"""LARS (You, Gitman & Ginsburg 2017, "Large Batch Training of Convolutional Networks").

        d_t = g_t + weight_decay p_t;   r_t = trust_coefficient ||p_t|| / (||d_t|| + eps)
        b_t = momentum b_{t-1} - lr(t) r_t d_t;   u_t = b_t  (nesterov: -lr r_t d_t + momentum b_t)
    As optax.lars (the paper divides by ||g|| + wd ||p||, this by ||g + wd p||); the masks select
    the decayed and the trust-ratio-scaled leaves.
    """
    check_ranges("lars", weight_decay=(weight_decay, "[0, inf)"), eps=(eps, "[0, inf)"),
                 trust_coefficient=(trust_coefficient, "(0, inf)"), momentum=(momentum, "[0, 1)"))
    return chain(add_decayed_weights(weight_decay, weight_decay_mask),
                 masked(scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask),
                 _rate("lars", learning_rate), trace(momentum, nesterov))


def adafactor(learning_rate: ScalarOrSchedule | None = None, min_dim_size_to_factor: int = 128,
              decay_rate: float = 0.8, decay_offset: int = 0, multiply_by_parameter_scale: bool = True,
              clipping_threshold: float | None = 1.0, momentum: float | None = None,
              dtype_momentum: jnp.dtype = jnp.float32, weight_decay_rate: float | None = None,
              eps: float = 1e-30, factored: bool = True, weight_decay_mask: Mask = None) -> Optimizer:
    r"""Adafactor (Shazeer & Stern 2018), as optax.adafactor (same arguments, defaults and chain).

        d <- scale_by_factored_rms(g);  d <- d / max(1, rms(d) / clipping_threshold)
        d <- lr(t) d;  d <- max(rms(p), 1e-3) d;  d <- momentum EMA of d (no debiasing)
        u_t = -(d + weight_decay_rate p)       (the decay is not multiplied by the rate, as optax)
    learning_rate=None: no rate (steps relative to the parameter scale; `learning_rate_at` is None).
    """
    check_ranges("adafactor", clipping_threshold=(clipping_threshold, "[1, inf)"), momentum=(momentum, "[0, 1)"),
                 weight_decay_rate=(weight_decay_rate, "[0, inf)"), decay_rate=(decay_rate, "(0, inf)"),
                 eps=(eps, "[0, inf)"))
    check_int("adafactor", "min_dim_size_to_factor", min_dim_size_to_factor, 1)
    parts = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    parts += [clip_by_block_rms(clipping_threshold)] if clipping_threshold is not None else []
    parts += [_rate("adafactor", learning_rate, sign=False)] if learning_rate is not None else []
    parts += [scale_by_param_block_rms()] if multiply_by_parameter_scale else []
    parts += [ema(momentum, debias=False, accumulator_dtype=dtype_momentum)] if momentum is not None else []
    parts += [add_decayed_weights(weight_decay_rate, weight_decay_mask)] if weight_decay_rate is not None else []
    return chain(*parts, scale(-1.0))
