"""The Optimizer record, `chain`, `apply_updates`, `learning_rate_at`, and the helpers every
transform shares (docs/design.md §4).

An optimizer, and each transform it is built from, is `Optimizer(init, update, learning_rate)`:

    init(params)                                   -> opt_state
    update(grads, opt_state, params=None, **extra) -> (updates, opt_state)

A transform maps updates to updates and keeps its own NamedTuple state (a pytree of arrays,
checkpointable); `chain` composes transforms and `apply_updates` adds the result to the params.
Only `scale_by_learning_rate` knows the rate: the Optimizer it returns holds the schedule in
`learning_rate`, which `chain` and the wrappers pass on, so `learning_rate_at(optimizer, step)`
reads the rate of any step from the schedule, never from a state.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any
Schedule = Callable[[jax.Array], Any]
ScalarOrSchedule = float | Schedule
Mask = PyTree | Callable[[PyTree], PyTree]


class Optimizer(NamedTuple):
    init: Callable[[PyTree], PyTree]
    update: Callable[..., tuple[PyTree, PyTree]]
    learning_rate: Schedule | None = None  # step -> rate, set by scale_by_learning_rate


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """params + updates, leaf by leaf; each result keeps its parameter's dtype."""
    check_tree("apply_updates", updates, params, "params", given="updates")
    return jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)


def chain(*optimizers: Optimizer) -> Optimizer:
    """Apply `optimizers` in order, each to the updates of the one before; the state is a tuple.

    `chain(clip_by_global_norm(1.0), scale_by_adam(), scale_by_learning_rate(1e-3))` is a
    clipped Adam. Extra keyword arguments of `update` (say `value=loss`) reach every member.
    Its `learning_rate` is that of the one member that has one (None if none has).
    """
    for i, opt in enumerate(optimizers):
        if not isinstance(opt, Optimizer):
            raise TypeError(f"chain: member {i} must be an fnn.optim.Optimizer, got {type(opt).__name__}")
    rates = [opt.learning_rate for opt in optimizers if opt.learning_rate is not None]
    if len(rates) > 1:
        raise ValueError(f"chain: expected at most one member that scales by a learning rate, got {len(rates)}")

    def init(params):
        return tuple(opt.init(params) for opt in optimizers)

    def update(grads, state, params=None, **extra):
        if not isinstance(state, tuple) or len(state) != len(optimizers):
            size = f"{len(state)} members" if isinstance(state, tuple) else type(state).__name__
            raise ValueError(f"chain: expected a state of {len(optimizers)} members, got {size}")
        new_state = []
        for opt, member in zip(optimizers, state, strict=True):
            grads, member = opt.update(grads, member, params, **extra)
            new_state.append(member)
        return grads, tuple(new_state)

    return Optimizer(init, update, rates[0] if rates else None)


def learning_rate_at(optimizer: Optimizer, step: int) -> float | None:
    """The learning rate `optimizer` applies in update number `step` (0 for the first), from the
    schedule of its `scale_by_learning_rate`; None when it has none, or parameter groups differ.

    Factors kept in a state (reduce_on_plateau's scale) are not part of it.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"learning_rate_at: expected an fnn.optim.Optimizer, got {type(optimizer).__name__}")
    return None if optimizer.learning_rate is None else float(optimizer.learning_rate(step))


def as_schedule(learning_rate: ScalarOrSchedule, name: str = "as_schedule",
                arg: str = "learning_rate") -> Schedule:
    """A schedule `count -> rate` from a float (checked >= 0) or a callable (returned as is)."""
    if callable(learning_rate):
        return learning_rate
    check_range(name, arg, learning_rate, "[0, inf)")
    value = float(learning_rate)
    return lambda count: jnp.full([], value, float_dtype())


# ----------------------------------------------------------------- validation

def check_range(name: str, arg: str, value: Any, interval: str) -> None:
    """Raise a ValueError naming `arg` unless `value` lies in `interval`, written '[0, 1)'."""
    lo_text, hi_text = interval[1:-1].split(",")
    lo, hi = float(lo_text), float(hi_text)
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, jax.Array)) or jnp.ndim(value):
        raise TypeError(f"{name}: {arg} must be a real number in {interval}, got {value!r}")
    value = float(value)
    above = value >= lo if interval[0] == "[" else value > lo
    below = value <= hi if interval[-1] == "]" else value < hi
    if not (above and below and not math.isnan(value)):
        raise ValueError(f"{name}: {arg} must lie in {interval}, got {value!r}")


def check_ranges(name: str, **checks: tuple[Any, str]) -> None:
    """check_range for each `arg=(value, interval)`; a value of None is skipped."""
    for arg, (value, interval) in checks.items():
        if value is not None:
            check_range(name, arg, value, interval)


def check_int(name: str, arg: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name}: {arg} must be an int >= {least}, got {value!r}")


def check_tree(name: str, grads: PyTree, reference: PyTree, what: str = "the optimizer state",
               none_is_leaf: bool = False, given: str = "grads") -> None:
    """Raise a ValueError when `grads` and `reference` differ in tree structure or leaf shapes.
    With none_is_leaf, a None in `reference` stands for a leaf of any shape (Adafactor's state)."""
    is_leaf = (lambda x: x is None) if none_is_leaf else None
    structure, expected = jax.tree.structure(grads), jax.tree.structure(reference, is_leaf=is_leaf)
    if structure != expected:
        hint = "; build the state with init() on params of that structure" if given == "grads" else ""
        raise ValueError(f"{name}: {given} have tree structure {structure}, but {what} has {expected}{hint}")
    pairs = zip(jax.tree_util.tree_flatten_with_path(grads)[0], jax.tree.leaves(reference, is_leaf=is_leaf),
                strict=True)
    for (path, g), r in pairs:
        if r is not None and jnp.shape(g) != jnp.shape(r):
            raise ValueError(f"{name}: {given}{jax.tree_util.keystr(path)} has shape {jnp.shape(g)}, "
                             f"but {what} holds shape {jnp.shape(r)} there")


def require_params(name: str, params: PyTree, why: str) -> None:
    if params is None:
        raise ValueError(f"{name}: update needs params ({why}); call update(grads, state, params)")


def resolve_mask(mask: Mask, tree: PyTree, name: str, what: str = "mask") -> PyTree:
    """One value per leaf of `tree` from `mask`, as optax: a prefix tree of `tree` (True,
    {"W": True, "b": False}) or a function params -> such a tree (`decay_mask`, `fnn.select`).
    `name` is the function the user called, named in the error with the mask as given."""
    given = mask(tree) if callable(mask) else mask
    try:
        return jax.tree.map(lambda value, sub: jax.tree.map(lambda _: value, sub), given, tree)
    except (ValueError, TypeError) as err:
        shown = f"{mask!r}, which gave {given!r}," if callable(mask) else f"{mask!r}"
        raise ValueError(f"{name}: the {what} {shown} does not fit the params tree {jax.tree.structure(tree)}; "
                         "give a prefix of it (one value per leaf or subtree) or a function params -> "
                         "such a tree") from err


# ----------------------------------------------------------------- scalars and trees

def float_dtype() -> jnp.dtype:
    """The default float: float64 with jax_enable_x64, float32 otherwise (for scalar state)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def zero_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the int32 maximum instead of wrapping round."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def power(base: float, count: jax.Array) -> jax.Array:
    """base ** count computed in the default float (b**t in bfloat16 would round to 1)."""
    return base ** count.astype(float_dtype())


def zeros(tree: PyTree, dtype: Any = None) -> PyTree:
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def lift(fn: Callable, n_out: int, tree: PyTree, *rest: PyTree) -> tuple:
    """Apply `fn(leaf, *rest_leaves) -> n_out arrays` at every leaf of `tree`; return n_out trees.

    The `rest` trees have `tree` as a prefix (a leaf may face a subtree, such as Adafactor's
    None for a moment it does not keep). `None` subtrees (left by `masked`) are skipped.
    """
    treedef = jax.tree.structure(tree)
    columns = [treedef.flatten_up_to(t) for t in (tree, *rest)]
    outs = [fn(*xs) for xs in zip(*columns, strict=True)]
    return tuple(treedef.unflatten([o[i] for o in outs]) for i in range(n_out))


def update_moment(grads: PyTree, moment: PyTree, decay: float, order: int = 1) -> PyTree:
    """decay m + (1 - decay) g^order at every leaf, in the wider of the two dtypes (a moment
    kept in another dtype than the gradient's: mu_dtype, accumulator_dtype)."""
    def step(g, m):
        dtype = wider(g.dtype, m.dtype)
        return (decay * m).astype(dtype) + (1 - decay) * g.astype(dtype) ** order

    return jax.tree.map(step, grads, moment)


def wider(a: jnp.dtype, b: jnp.dtype) -> jnp.dtype:
    """The float dtype of more bits (`a` on a tie); jnp.promote_types refuses under strict promotion."""
    return a if jnp.finfo(a).bits >= jnp.finfo(b).bits else b


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """`tree` cast leaf by leaf to the dtypes of `like`."""
    return jax.tree.map(lambda x, y: x.astype(y.dtype), tree, like)


def debias(moment: PyTree, decay: float, count: jax.Array) -> PyTree:
    """m / (1 - decay^count), the factor computed in the default float, then cast per leaf."""
    correction = 1 - power(decay, count)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)
