"""Adafactor: second moments of matrices kept as a row and a column vector, O(n + m) memory."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .base import (
    Mask,
    Optimizer,
    PyTree,
    ScalarOrSchedule,
    add_decay,
    check_int,
    check_ranges,
    check_tree,
    float_dtype,
    lift,
    require_params,
    rule,
)


class AdafactorState(NamedTuple):
    count: jax.Array          # (), int32: updates applied so far
    learning_rate: jax.Array  # (), float: rate of the last update (1.0 when learning_rate=None)
    v_row: PyTree             # factored leaves: EMA of mean(g^2 + eps) over the largest axis; else None
    v_col: PyTree             # factored leaves: the same over the second-largest axis; else None
    v: PyTree                 # other leaves: EMA of g^2 + eps, full shape; factored leaves: None
    mu: PyTree                # momentum (momentum is not None only, else ())


def _factored_dims(shape: tuple, factored: bool, min_dim: int) -> tuple[int, int] | None:
    """(second-largest axis, largest axis), or None when the two are not both >= min_dim."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)                # the same tie-breaking as optax
    return None if shape[order[-2]] < min_dim else (int(order[-2]), int(order[-1]))


def _moment_shapes(shape: tuple, factored: bool, min_dim: int) -> tuple:
    """Shapes of (v_row, v_col, v) for a leaf of `shape`; None where that moment is not kept."""
    dims = _factored_dims(shape, factored, min_dim)
    if dims is None:
        return None, None, tuple(shape)
    without = lambda axis: tuple(int(n) for i, n in enumerate(shape) if i != axis)
    return without(dims[1]), without(dims[0]), None


def _check_grads(grads: PyTree, state: AdafactorState, params: PyTree, shapes_of) -> None:
    """The grads' structure and shapes against the state's moments and, if given, the params
    (a transposed leaf would fit the factored moments)."""
    check_tree("adafactor", grads, state.v, none_is_leaf=True)
    if params is not None:
        check_tree("adafactor", grads, params, "params")
    treedef = jax.tree.structure(grads)
    moments = [treedef.flatten_up_to(t) for t in (state.v_row, state.v_col, state.v)]
    for (path, g), *kept in zip(jax.tree_util.tree_flatten_with_path(grads)[0], *moments, strict=True):
        if shapes_of(jnp.shape(g)) != tuple(None if k is None else k.shape for k in kept):
            raise ValueError(f"adafactor: grads{jax.tree_util.keystr(path)} has shape {jnp.shape(g)}, "
                             "which does not fit the optimizer state there")


def _scaled(g, v_row, v_col, v, beta, eps, dims):
    """One factored (or plain) RMS step for one array: returns (g / sqrt(v^), v_row, v_col, v)."""
    g2 = g * g + eps
    if dims is None:
        v = beta * v + (1 - beta) * g2
        return g * v ** -0.5, v_row, v_col, v
    d1, d0 = dims
    v_row = beta * v_row + (1 - beta) * jnp.mean(g2, axis=d0)
    v_col = beta * v_col + (1 - beta) * jnp.mean(g2, axis=d1)
    row = v_row / jnp.mean(v_row, axis=d1 - (d1 > d0), keepdims=True)
    return g * jnp.expand_dims(row ** -0.5, d0) * jnp.expand_dims(v_col ** -0.5, d1), v_row, v_col, v


def adafactor(learning_rate: ScalarOrSchedule | None = None, min_dim_size_to_factor: int = 128,
              decay_rate: float = 0.8, decay_offset: int = 0, multiply_by_parameter_scale: bool = True,
              clipping_threshold: float | None = 1.0, momentum: float | None = None,
              dtype_momentum: jnp.dtype | None = None, weight_decay_rate: float | None = None,
              eps: float = 1e-30, factored: bool = True, weight_decay_mask: Mask = None) -> Optimizer:
    r"""Adafactor (Shazeer & Stern 2018), as optax.adafactor (same arguments and defaults).

        b_t = 1 - (t - decay_offset)^(-decay_rate);   G = g_t^2 + eps
        n x m leaf: R_t = b_t R + (1 - b_t) mean_cols(G),  C_t = b_t C + (1 - b_t) mean_rows(G),
                    d = g_t / sqrt(R_t C_t / mean(R_t))     (other leaves: full v_t, d = g_t / sqrt(v_t))
        d <- d / max(1, rms(d) / clipping_threshold);  d <- lr(t-1) d;  d <- max(rms(p), 1e-3) d
        d <- momentum EMA of d (no debiasing);  u_t = -(d + weight_decay_rate p)
    The two largest axes of a leaf are factored when both are >= min_dim_size_to_factor.
    learning_rate=None: no rate (steps relative to the parameter scale; the state records 1.0).
    Weight decay is not multiplied by the rate (as optax). b_t in the default float (optax: f32).
    """
    _check(learning_rate, min_dim_size_to_factor, decay_rate, clipping_threshold, momentum,
           weight_decay_rate, eps)
    shapes_of = lambda shape: _moment_shapes(shape, factored, min_dim_size_to_factor)

    def leaf(g, v_row, v_col, v, p, m, beta, rate):
        dims = _factored_dims(g.shape, factored, min_dim_size_to_factor)
        d, v_row, v_col, v = _scaled(g, v_row, v_col, v, beta.astype(g.dtype), eps, dims)
        if clipping_threshold is not None:
            d = d / jnp.maximum(1.0, jnp.sqrt(jnp.mean(d * d)) / clipping_threshold)
        d = d * rate.astype(d.dtype) if learning_rate is not None else d
        d = d * _safe_rms(p, 1e-3) if multiply_by_parameter_scale else d
        if momentum is not None:
            m = (momentum * m + (1 - momentum) * d).astype(m.dtype)
            d = m.astype(d.dtype)
        return d, v_row, v_col, v, m

    def step(grads, state, params, rate):
        _check_grads(grads, state, params, shapes_of)
        if multiply_by_parameter_scale or weight_decay_rate:
            require_params("adafactor", params, "the parameter scale and weight decay read them")
        beta = 1 - (state.count - decay_offset).astype(float_dtype()) ** -decay_rate
        trees = (grads, state.v_row, state.v_col, state.v, grads if params is None else params,
                 state.mu if momentum is not None else grads)        # grads stand in for absent trees
        d, v_row, v_col, v, mu = lift(lambda *a: leaf(*a, beta, rate), 5, *trees)
        d = add_decay("adafactor", d, params, weight_decay_rate or 0.0, weight_decay_mask)
        new = {"v_row": v_row, "v_col": v_col, "v": v, "mu": mu if momentum is not None else ()}
        return jax.tree.map(lambda x: -x, d), new

    init_trees = lambda params: _init_trees(params, shapes_of, momentum, dtype_momentum)
    rate = 1.0 if learning_rate is None else learning_rate
    return rule("adafactor", rate, AdafactorState, init_trees, step, None)


def _init_trees(params: PyTree, shapes_of, momentum: float | None, dtype_momentum) -> dict:
    zeros = lambda shape, p: None if shape is None else jnp.zeros(shape, p.dtype)
    row, col, full = lift(lambda p: [zeros(s, p) for s in shapes_of(p.shape)], 3, params)
    mu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype_momentum), params)
    return {"v_row": row, "v_col": col, "v": full, "mu": mu if momentum is not None else ()}


def _safe_rms(x: jax.Array, least: float) -> jax.Array:
    """max(sqrt(mean(x^2)), least)."""
    return jnp.maximum(jnp.sqrt(jnp.mean(x * x)), least).astype(x.dtype)


def _check(learning_rate, min_dim, decay_rate, clipping_threshold, momentum, weight_decay_rate, eps):
    check_int("adafactor", "min_dim_size_to_factor", min_dim, 1)
    checks = {"decay_rate": (decay_rate, "(0, inf)"), "eps": (eps, "[0, inf)")}
    optional = {"learning_rate": (learning_rate, "[0, inf)"), "momentum": (momentum, "[0, 1)"),
                "clipping_threshold": (clipping_threshold, "[1, inf)"),
                "weight_decay_rate": (weight_decay_rate, "[0, inf)")}
    checks.update({k: v for k, v in optional.items() if v[0] is not None and not callable(v[0])})
    check_ranges("adafactor", **checks)
