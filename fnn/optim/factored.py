"""Adafactor's pieces: scale_by_factored_rms (second moments of a matrix kept as a row and a
column vector, O(n + m) memory), clip_by_block_rms and scale_by_param_block_rms."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .base import (
    Optimizer,
    PyTree,
    check_int,
    check_ranges,
    check_tree,
    float_dtype,
    increment,
    lift,
    require_params,
    zero_count,
)


class FactoredState(NamedTuple):
    count: jax.Array  # (), int32: updates applied so far
    v_row: PyTree     # factored leaves: EMA of mean(g^2 + eps) over the largest axis; else None
    v_col: PyTree     # factored leaves: the same over the second-largest axis; else None
    v: PyTree         # other leaves: EMA of g^2 + eps, full shape; factored leaves: None


def _factored_dims(shape: tuple, factored: bool, min_dim: int) -> tuple[int, int] | None:
    """(second-largest axis, largest axis), or None when the two are not both >= min_dim."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)                # the same tie-breaking as optax
    return None if shape[order[-2]] < min_dim else (int(order[-2]), int(order[-1]))


def _moment_shapes(shape: tuple, dims: tuple[int, int] | None) -> tuple:
    """Shapes of (v_row, v_col, v) for a leaf of `shape`; None where that moment is not kept."""
    if dims is None:
        return None, None, tuple(shape)
    without = lambda axis: tuple(int(n) for i, n in enumerate(shape) if i != axis)
    return without(dims[1]), without(dims[0]), None


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


def scale_by_factored_rms(factored: bool = True, decay_rate: float = 0.8, step_offset: int = 0,
                          min_dim_size_to_factor: int = 128, epsilon: float = 1e-30) -> Optimizer:
    r"""Adafactor's direction (Shazeer & Stern 2018), as optax.scale_by_factored_rms.

        b_t = 1 - (t - step_offset)^(-decay_rate);   G = g_t^2 + epsilon
        n x m leaf: R_t = b_t R + (1 - b_t) mean_cols(G),  C_t = b_t C + (1 - b_t) mean_rows(G),
                    d = g_t / sqrt(R_t C_t / mean(R_t))     other leaves: d = g_t / sqrt(v_t)
    The two largest axes of a leaf are factored when both are >= min_dim_size_to_factor.
    b_t is computed in the default float (optax: float32 even under x64).
    """
    check_int("scale_by_factored_rms", "min_dim_size_to_factor", min_dim_size_to_factor, 1)
    check_ranges("scale_by_factored_rms", decay_rate=(decay_rate, "(0, inf)"), epsilon=(epsilon, "[0, inf)"))
    dims_of = lambda shape: _factored_dims(shape, factored, min_dim_size_to_factor)

    def init(params):
        zeros = lambda shape, p: None if shape is None else jnp.zeros(shape, p.dtype)
        row, col, full = lift(lambda p: [zeros(s, p) for s in _moment_shapes(p.shape, dims_of(p.shape))],
                              3, params)
        return FactoredState(zero_count(), row, col, full)

    def update(grads, state, params=None, **extra):
        del extra
        _check_grads(grads, state, params, dims_of)
        count = increment(state.count)
        beta = 1 - (count - step_offset).astype(float_dtype()) ** -decay_rate
        step = lambda g, r, c, v: _scaled(g, r, c, v, beta.astype(g.dtype), epsilon, dims_of(g.shape))
        updates, v_row, v_col, v = lift(step, 4, grads, state.v_row, state.v_col, state.v)
        return updates, FactoredState(count, v_row, v_col, v)

    return Optimizer(init, update)


def _check_grads(grads: PyTree, state: FactoredState, params: PyTree, dims_of) -> None:
    """The grads' structure and shapes against the state's moments and, if given, the params
    (a transposed leaf would fit the factored moments)."""
    check_tree("scale_by_factored_rms", grads, state.v, none_is_leaf=True)
    if params is not None:
        check_tree("scale_by_factored_rms", grads, params, "params")
    treedef = jax.tree.structure(grads)
    moments = [treedef.flatten_up_to(t) for t in (state.v_row, state.v_col, state.v)]
    for (path, g), *kept in zip(jax.tree_util.tree_flatten_with_path(grads)[0], *moments, strict=True):
        expected = _moment_shapes(jnp.shape(g), dims_of(jnp.shape(g)))
        if expected != tuple(None if k is None else k.shape for k in kept):
            raise ValueError(f"scale_by_factored_rms: grads{jax.tree_util.keystr(path)} has shape "
                             f"{jnp.shape(g)}, which does not fit the optimizer state there")


def clip_by_block_rms(threshold: float) -> Optimizer:
    """u <- u / max(1, rms(u) / threshold), leaf by leaf (optax.clip_by_block_rms). Stateless."""
    check_ranges("clip_by_block_rms", threshold=(threshold, "(0, inf)"))

    def update(grads, state, params=None, **extra):
        del params, extra
        clip = lambda u: u / jnp.maximum(1.0, jnp.sqrt(jnp.mean(u * u)) / threshold)
        return jax.tree.map(clip, grads), state

    return Optimizer(lambda params: (), update)


def scale_by_param_block_rms(min_scale: float = 1e-3) -> Optimizer:
    """u <- u max(rms(p), min_scale), leaf by leaf: steps relative to the parameter's scale
    (optax.scale_by_param_block_rms). Stateless; reads the params."""
    check_ranges("scale_by_param_block_rms", min_scale=(min_scale, "[0, inf)"))

    def update(grads, state, params=None, **extra):
        del extra
        require_params("scale_by_param_block_rms", params, "the parameter scale reads them")
        rms = lambda p: jnp.maximum(jnp.sqrt(jnp.mean(p * p)), min_scale).astype(p.dtype)
        return jax.tree.map(lambda u, p: u * rms(p), grads, params), state

    return Optimizer(lambda params: (), update)
