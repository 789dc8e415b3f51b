"""The Layer record, `manual`, shape checks and tree helpers (docs/design.md §2-3).

A layer is `Layer(init, forward, backward, name, children=())`:

    init(key, in_shape)                               -> (out_shape, params, state)
    forward(params, state, x, *, key=None, train=False) -> (y, new_state, cache)
    backward(params, cache, dy)                       -> (dparams, dx)

`in_shape`/`out_shape` describe ONE example (no batch axis); a layer that takes
several inputs (`Concat`, `Add`) has a tuple of shapes as `in_shape` and a tuple
of arrays as `x`. Parameters default to float32; `cast` moves a tree to another
float dtype (float64 for gradient checks).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
Shape = tuple


class Layer(NamedTuple):
    init: Callable
    forward: Callable
    backward: Callable
    name: str
    children: tuple = ()      # the layers a combinator holds, in params order (docs/design.md §2)

    def apply(self, params, state, x, *, key=None, train=False):
        """`forward` without the cache: `(y, new_state)`."""
        y, new_state, _ = self.forward(params, state, x, key=key, train=train)
        return y, new_state


# ----------------------------------------------------------------- tree helpers

def is_float(x) -> bool:
    return jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)


def cast(tree: PyTree, dtype: Any) -> PyTree:
    """Cast every floating leaf of `tree` to `dtype`; integer leaves are kept."""
    return jax.tree.map(lambda a: a.astype(dtype) if is_float(a) else a, tree)


def tree_size(tree: PyTree) -> int:
    """Total number of scalars in the leaves of `tree`."""
    return int(sum(np.size(a) for a in jax.tree.leaves(tree)))


def add_trees(a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(jnp.add, a, b)


def is_multi_shape(shape) -> bool:
    """True when `shape` is a tuple of shapes (several inputs), not one shape."""
    return isinstance(shape, (tuple, list)) and len(shape) > 0 and isinstance(shape[0], (tuple, list))


# ----------------------------------------------------------------- checks

def check_float(name: str, x) -> None:
    """Raise a TypeError naming the layer when `x` is not a floating array."""
    dtype = jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {dtype}")


def require_key(name: str, key) -> None:
    """Training-mode randomness (dropout masks, augmentation) needs an explicit PRNG key."""
    if key is None:
        raise ValueError(f"{name}: training mode needs a PRNG key: call forward/apply with "
                         f"key=jax.random.PRNGKey(...) (or train=False for evaluation)")


def check_input(name: str, x, in_shape=None, *, min_ndim: int = 1) -> None:
    """Check a batch `x`: floating dtype, at least `min_ndim` axes after the
    batch axis, and, when `in_shape` is given, `x.shape[1:] == in_shape`."""
    if not hasattr(x, "shape"):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    check_float(name, x)
    if in_shape is not None and tuple(x.shape[1:]) != tuple(in_shape):
        raise ValueError(f"{name}: expected x of shape (B, {', '.join(map(str, in_shape))}), "
                         f"got {tuple(x.shape)}")
    if x.ndim < 1 + min_ndim:
        raise ValueError(f"{name}: expected x with a batch axis and at least {min_ndim} more, "
                         f"got shape {tuple(x.shape)}")


def check_example_shape(name: str, in_shape, what: str, *, rank: int | None = None, min_rank: int = 1) -> None:
    """Raise unless `in_shape` is ONE example's shape (a tuple of ints, no batch axis) with
    `rank` axes (or at least `min_rank`); `what` names the axes, e.g. "(H, W, C)"."""
    if not isinstance(in_shape, (tuple, list)) or is_multi_shape(in_shape) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in in_shape):
        raise ValueError(f"{name}: in_shape is the shape of ONE example, a tuple such as (784,) or "
                         f"(28, 28, 1), got {in_shape!r}")
    if (rank is not None and len(in_shape) != rank) or len(in_shape) < min_rank:
        batch = " (in_shape has no batch axis)" if rank is not None and len(in_shape) == rank + 1 else ""
        raise ValueError(f"{name}: expected in_shape {what}, got {tuple(in_shape)}{batch}")


# ----------------------------------------------------------------- manual

def _zero_cotangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


def manual(layer: Layer) -> Layer:
    """The same layer, with `forward` a `jax.custom_vjp` whose backward rule is
    `layer.backward`: `jax.grad` of any loss through it runs the hand-derived
    pass. State and key get zero cotangents; the returned cache is not
    differentiable (it is for `backward`, not for a loss)."""

    def forward(params, state, x, *, key=None, train=False):
        @jax.custom_vjp
        def run(params, state, x, key):
            return layer.forward(params, state, x, key=key, train=train)

        def run_fwd(params, state, x, key):
            y, new_state, cache = layer.forward(params, state, x, key=key, train=train)
            return (y, new_state, cache), (params, state, key, cache)

        def run_bwd(residuals, cotangents):
            params, state, key, cache = residuals
            dparams, dx = layer.backward(params, cache, cotangents[0])
            return (dparams, jax.tree.map(_zero_cotangent, state), dx,
                    jax.tree.map(_zero_cotangent, key))

        run.defvjp(run_fwd, run_bwd)
        return run(params, state, x, key)

    return layer._replace(forward=forward)
