"""Optimizers that wrap optimizers: masked, freeze, partition (parameter groups), multi_steps.

Masks and labels are static: a prefix tree of the params (bools / labels) or a function
`(path, leaf) -> value` of the leaf's path, a tuple of plain keys such as ('trunk', 0, 'W').
A wrapped optimizer sees `None` in place of the leaves it does not own, so its state holds
nothing for them (None is an empty pytree node: the state stays checkpointable).
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .base import Mask, Optimizer, PyTree, chain, check_int, increment, resolve_leaves, zero_count


class MaskedState(NamedTuple):
    inner_state: PyTree  # the wrapped optimizer's state, over the selected leaves only


def _select(tree: PyTree, chosen: PyTree) -> PyTree:
    return jax.tree.map(lambda keep, x: x if keep else None, chosen, tree)


def masked(optimizer: Optimizer, mask: Mask) -> Optimizer:
    """Run `optimizer` on the leaves `mask` selects (True); pass the other updates through as they are.

    The inner state covers the selected leaves only (as optax.masked). Combine with
    `add_decayed_weights`, say, or use `freeze` to zero the unselected updates instead.
    """

    def init(params):
        return MaskedState(optimizer.init(_select(params, resolve_leaves(mask, params, "masked"))))

    def update(grads, state, params=None, **extra):
        chosen = resolve_leaves(mask, grads, "masked")
        inner_params = None if params is None else _select(params, chosen)
        new, inner = optimizer.update(_select(grads, chosen), state.inner_state, inner_params, **extra)
        merged = jax.tree.map(lambda keep, n, g: n if keep else g, chosen, new, grads)
        return merged, MaskedState(inner)

    return Optimizer(init, update)


def freeze(mask: Mask, optimizer: Optimizer | None = None) -> Optimizer:
    """Zero updates for the frozen leaves (mask True); run `optimizer` on the others.

    Frozen leaves keep no optimizer state at all (fine-tuning: `freeze(trunk_mask, adam(1e-3))`).
    Without `optimizer` the trainable updates pass through unchanged. To unfreeze, build a new
    optimizer (say with `partition` and a smaller rate for the trunk) and init it.
    """
    if callable(mask):
        trainable = lambda path, leaf: not mask(path, leaf)
    else:
        trainable = jax.tree.map(lambda frozen: not frozen, mask)
    inner = masked(chain() if optimizer is None else optimizer, trainable)

    def update(grads, state, params=None, **extra):
        updates, state = inner.update(grads, state, params, **extra)
        frozen = resolve_leaves(mask, grads, "freeze")
        return jax.tree.map(lambda f, u: jnp.zeros_like(u) if f else u, frozen, updates), state

    return Optimizer(inner.init, update)


class PartitionState(NamedTuple):
    groups: dict  # label -> that group's optimizer state (over the group's leaves only)


def partition(optimizers: Mapping[Hashable, Optimizer], labels: Mask) -> Optimizer:
    """Parameter groups: each leaf is updated by `optimizers[label]`, label read from `labels`.

    `labels` is a prefix tree of labels or a function (path, leaf) -> label, e.g.
    `lambda path, leaf: "trunk" if path[0] == "trunk" else "head"` for discriminative rates.
    Each group's state covers its own leaves; `current_learning_rate` gives {label: rate}.
    """
    names = sorted(optimizers)

    def groups(tree):
        found = resolve_leaves(labels, tree, "partition", "labels")
        unknown = set(jax.tree.leaves(found)) - set(names)
        if unknown:
            raise ValueError(f"partition: labels {sorted(map(str, unknown))} have no optimizer; "
                             f"optimizers are given for {names}")
        return {k: masked(optimizers[k], jax.tree.map(lambda label, k=k: label == k, found)) for k in names}

    def init(params):
        return PartitionState({k: opt.init(params) for k, opt in groups(params).items()})

    def update(grads, state, params=None, **extra):
        new_states = {}
        for k, opt in groups(grads).items():
            grads, new_states[k] = opt.update(grads, state.groups[k], params, **extra)
        return grads, PartitionState(new_states)

    return Optimizer(init, update)


class MultiStepsState(NamedTuple):
    mini_step: jax.Array      # (), int32: gradients accumulated since the last inner update
    gradient_step: jax.Array  # (), int32: inner updates applied so far
    acc_grads: PyTree         # running mean of the accumulated gradients, same tree as params
    inner_state: PyTree       # the wrapped optimizer's state


def multi_steps(optimizer: Optimizer, k: int) -> Optimizer:
    """Gradient accumulation: every k-th call applies `optimizer` to the mean of the last k
    gradients; the calls in between return zero updates and leave the inner state alone.

    Same bookkeeping as optax.MultiSteps (running mean acc <- acc + (g - acc) / (n + 1)). The
    inner update runs under lax.cond, so its cost is paid once per k calls.
    """
    check_int("multi_steps", "k", k, 1)

    def init(params):
        acc = jax.tree.map(jnp.zeros_like, params)
        return MultiStepsState(zero_count(), zero_count(), acc, optimizer.init(params))

    def update(grads, state, params=None, **extra):
        n = state.mini_step
        acc = jax.tree.map(lambda a, g: a + (g - a) / (n + 1).astype(a.dtype), state.acc_grads, grads)

        def emit(_):
            updates, inner = optimizer.update(acc, state.inner_state, params, **extra)
            return updates, inner, jax.tree.map(jnp.zeros_like, acc), increment(state.gradient_step)

        def wait(_):
            return jax.tree.map(jnp.zeros_like, grads), state.inner_state, acc, state.gradient_step

        updates, inner, acc, steps = jax.lax.cond(n == k - 1, emit, wait, None)
        return updates, MultiStepsState((n + 1) % k, steps, acc, inner)

    return Optimizer(init, update)
