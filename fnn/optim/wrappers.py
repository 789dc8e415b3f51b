"""Optimizers that wrap optimizers: masked, freeze, partition (parameter groups), multi_steps.

Masks and labels follow optax: a prefix tree of the params (bools / labels), or a function
params -> such a tree (`decay_mask`, `fnn.select(model, "trunk")`). A wrapped optimizer sees
`None` in place of the leaves it does not own, so its state holds nothing for them (None is an
empty pytree node: the state stays checkpointable). Errors name the function the user called.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .base import Mask, Optimizer, PyTree, chain, check_int, increment, resolve_mask, zero_count


class MaskedState(NamedTuple):
    inner_state: PyTree  # the wrapped optimizer's state, over the selected leaves only


def _select(tree: PyTree, chosen: PyTree) -> PyTree:
    return jax.tree.map(lambda keep, x: x if keep else None, chosen, tree)


def _masked(inner: Optimizer, mask: Mask, name: str) -> Optimizer:
    def init(params):
        return MaskedState(inner.init(_select(params, resolve_mask(mask, params, name))))

    def update(grads, state, params=None, **extra):
        chosen = resolve_mask(mask, grads, name)
        inner_params = None if params is None else _select(params, chosen)
        new, inner_state = inner.update(_select(grads, chosen), state.inner_state, inner_params, **extra)
        merged = jax.tree.map(lambda keep, n, g: n if keep else g, chosen, new, grads)
        return merged, MaskedState(inner_state)

    return Optimizer(init, update, inner.learning_rate)


def masked(inner: Optimizer, mask: Mask) -> Optimizer:
    """Run `inner` on the leaves `mask` selects (True); pass the other updates through unchanged.

    The inner state covers the selected leaves only (optax.masked). Combine with
    `add_decayed_weights`, say, or use `freeze` to zero the unselected updates instead.
    """
    return _masked(inner, mask, "masked")


def freeze(mask: Mask, optimizer: Optimizer | None = None) -> Optimizer:
    """Zero updates for the frozen leaves (mask True); run `optimizer` on the others.

    Frozen leaves keep no optimizer state (fine-tuning: `freeze(fnn.select(model, "trunk"),
    adam(1e-3))`). Without `optimizer` the trainable updates pass through unchanged. To
    unfreeze, build a new optimizer (say `partition` with a smaller rate for the trunk).
    """
    inner = chain() if optimizer is None else optimizer
    trainable = lambda tree: jax.tree.map(lambda frozen: not frozen, resolve_mask(mask, tree, "freeze"))
    wrapped = _masked(inner, trainable, "freeze")

    def update(grads, state, params=None, **extra):
        updates, state = wrapped.update(grads, state, params, **extra)
        frozen = resolve_mask(mask, grads, "freeze")
        return jax.tree.map(lambda f, u: jnp.zeros_like(u) if f else u, frozen, updates), state

    return Optimizer(wrapped.init, update, inner.learning_rate)


class PartitionState(NamedTuple):
    inner_states: dict  # label -> that group's MaskedState (over the group's leaves only)


def partition(transforms: Mapping[Hashable, Optimizer], param_labels: Mask) -> Optimizer:
    """Parameter groups: each leaf is updated by `transforms[label]` (optax.partition).

    `param_labels` is a prefix tree of labels or a function params -> such a tree, e.g.
    `("trunk", "head")` for `serial(trunk, head)`, for discriminative rates. Each group's
    state covers its own leaves. Its `learning_rate` is the groups' one schedule, or None.
    """
    names = sorted(transforms, key=str)
    rates = {id(t.learning_rate): t.learning_rate for t in transforms.values() if t.learning_rate is not None}

    def groups(tree):
        labels = resolve_mask(param_labels, tree, "partition", "param_labels")
        unknown = set(jax.tree.leaves(labels)) - set(names)
        if unknown:
            raise ValueError(f"partition: labels {sorted(map(str, unknown))} have no transform; "
                             f"transforms are given for {names}")
        group = lambda k: jax.tree.map(lambda label: label == k, labels)
        return {k: _masked(transforms[k], group(k), "partition") for k in names}

    def init(params):
        return PartitionState({k: opt.init(params) for k, opt in groups(params).items()})

    def update(grads, state, params=None, **extra):
        new_states = {}
        for k, opt in groups(grads).items():
            grads, new_states[k] = opt.update(grads, state.inner_states[k], params, **extra)
        return grads, PartitionState(new_states)

    return Optimizer(init, update, next(iter(rates.values())) if len(rates) == 1 else None)


class MultiStepsState(NamedTuple):
    mini_step: jax.Array      # (), int32: gradients accumulated since the last inner update
    gradient_step: jax.Array  # (), int32: inner updates applied so far
    inner_opt_state: PyTree   # the wrapped optimizer's state
    acc_grads: PyTree         # running mean of the accumulated gradients, same tree as params


def multi_steps(optimizer: Optimizer, k: int) -> Optimizer:
    """Gradient accumulation: every k-th call applies `optimizer` to the mean of the last k
    gradients; the calls in between return zero updates and leave the inner state alone.

    Same bookkeeping as optax.MultiSteps (running mean acc <- acc + (g - acc) / (n + 1)); the
    inner update runs under lax.cond. Its learning rate at call `step` is the inner one's at step // k.
    """
    check_int("multi_steps", "k", k, 1)
    inner_rate = optimizer.learning_rate

    def init(params):
        return MultiStepsState(zero_count(), zero_count(), optimizer.init(params), jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None, **extra):
        n = state.mini_step
        acc = jax.tree.map(lambda a, g: a + (g - a) / (n + 1).astype(a.dtype), state.acc_grads, grads)

        def emit(_):
            updates, inner = optimizer.update(acc, state.inner_opt_state, params, **extra)
            return updates, inner, jax.tree.map(jnp.zeros_like, acc), increment(state.gradient_step)

        def wait(_):
            return jax.tree.map(jnp.zeros_like, grads), state.inner_opt_state, acc, state.gradient_step

        updates, inner, acc, steps = jax.lax.cond(n == k - 1, emit, wait, None)
        return updates, MultiStepsState((n + 1) % k, steps, inner, acc)

    rate = None if inner_rate is None else (lambda step: inner_rate(step // k))
    return Optimizer(init, update, rate)
