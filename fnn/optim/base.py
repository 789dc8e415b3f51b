"""The Optimizer record, `chain`, `apply_updates`, and the helpers every rule shares (DESIGN.md §4).

An optimizer is `Optimizer(init, update)`:

    init(params)                                   -> opt_state
    update(grads, opt_state, params=None, **extra) -> (updates, opt_state)

`update` returns *updates* (already multiplied by -learning_rate), so rules chain and
`apply_updates(params, updates)` adds them. A state is a NamedTuple of arrays (a pytree,
checkpointable). Every rule keeps `count` (int32) and `learning_rate`, the rate its last
update applied (before the first update: the rate the first one will apply);
`current_learning_rate(opt_state)` reads it through chains and wrappers.
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
Mask = PyTree | bool | Callable[[tuple, Any], Any]


class Optimizer(NamedTuple):
    init: Callable[[PyTree], PyTree]
    update: Callable[..., tuple[PyTree, PyTree]]


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """params + updates, leaf by leaf; each result keeps its parameter's dtype."""
    check_tree("apply_updates", updates, params, "params", given="updates")
    return jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)


def chain(*optimizers: Optimizer) -> Optimizer:
    """Apply `optimizers` in order, each to the updates of the one before; state is a tuple.

    `chain(clip_by_global_norm(1.0), adamw(1e-3))` clips the gradients, then runs AdamW.
    Extra keyword arguments of `update` (say `value=loss`) reach every member.
    """

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

    return Optimizer(init, update)


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
    """check_range for each `arg=(value, interval)`."""
    for arg, (value, interval) in checks.items():
        check_range(name, arg, value, interval)


def check_int(name: str, arg: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name}: {arg} must be an int >= {least}, got {value!r}")


def as_schedule(learning_rate: ScalarOrSchedule, name: str = "as_schedule",
                arg: str = "learning_rate") -> Schedule:
    """A schedule `count -> rate` from a float (checked >= 0) or a callable (returned as is)."""
    if callable(learning_rate):
        return learning_rate
    check_range(name, arg, learning_rate, "[0, inf)")
    value = float(learning_rate)
    return lambda count: value


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


# ----------------------------------------------------------------- scalars and trees

def float_dtype() -> jnp.dtype:
    """The default float: float64 with jax_enable_x64, float32 otherwise (for scalar state)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def zero_count() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the int32 maximum instead of wrapping round."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def rate_at(schedule: Schedule, count: jax.Array) -> jax.Array:
    """schedule(count) as a scalar of the default float dtype (cast to a leaf's dtype later)."""
    return jnp.asarray(schedule(count), float_dtype())


def power(base: float, count: jax.Array) -> jax.Array:
    """base ** count computed in the default float (b**t in bfloat16 would round to 1)."""
    return base ** count.astype(float_dtype())


def lift(fn: Callable, n_out: int, tree: PyTree, *rest: PyTree) -> tuple:
    """Apply `fn(leaf, *rest_leaves) -> n_out arrays` at every leaf of `tree`; return n_out trees.

    The `rest` trees have `tree` as a prefix (a leaf may face a subtree, such as Adafactor's
    pair of factored moments). `None` subtrees (left by `masked`) are skipped.
    """
    treedef = jax.tree.structure(tree)
    columns = [treedef.flatten_up_to(t) for t in (tree, *rest)]
    outs = [fn(*xs) for xs in zip(*columns, strict=True)]
    return tuple(treedef.unflatten([o[i] for o in outs]) for i in range(n_out))


def plain_path(path: tuple) -> tuple:
    """A jax key path as plain keys: ('trunk', 0, 'W')."""
    keys = ("key", "idx", "name")
    return tuple(next(getattr(k, a) for a in keys if hasattr(k, a)) for k in path)


def resolve_leaves(spec: Mask, tree: PyTree, name: str, what: str = "mask") -> PyTree:
    """A per-leaf value for every leaf of `tree`, from a prefix tree `spec` or a function
    `spec(path, leaf)` of the leaf's path (a tuple of plain keys such as ('trunk', 0, 'W'))."""
    if callable(spec):
        return jax.tree_util.tree_map_with_path(lambda p, x: spec(plain_path(p), x), tree)
    try:
        return jax.tree.map(lambda s, sub: jax.tree.map(lambda _: s, sub), spec, tree)
    except ValueError as err:
        raise ValueError(f"{name}: the {what} tree must be a prefix of the params tree "
                         f"{jax.tree.structure(tree)}, got {spec!r}") from err


def decay_mask(path: tuple, leaf: Any) -> bool:
    """Weight-decay mask: True for leaves of two or more axes (weights, kernels, embeddings),
    False for vectors and scalars (biases, normalisation gamma/beta)."""
    del path
    return jnp.ndim(leaf) >= 2


def add_decay(name: str, updates: PyTree, params: PyTree, weight_decay: float, mask: Mask) -> PyTree:
    """updates + weight_decay * params on the leaves `mask` selects (all when mask is None)."""
    if weight_decay == 0.0:
        return updates
    require_params(name, params, "weight decay reads them")
    chosen = resolve_leaves(True if mask is None else mask, updates, name)
    return jax.tree.map(lambda m, u, p: u + weight_decay * p if m else u, chosen, updates, params)


def zeros(tree: PyTree) -> PyTree:
    return jax.tree.map(jnp.zeros_like, tree)


def rule(name: str, learning_rate: ScalarOrSchedule, state_type: type, init_trees: Callable,
         step: Callable, tree_field: str | None) -> Optimizer:
    """An Optimizer from a rule's two pieces (every rule in rules.py, adam.py, adafactor.py).

    init_trees(params) -> {field: tree}          the rule's per-parameter state
    step(grads, state, params, rate) -> (updates, {field: tree})   one update; `state.count`
        is the count after it and `rate` the learning rate it applies.
    The state is `state_type(count, learning_rate, **trees)`; grads are checked against the
    tree in `tree_field` (skipped when that is () or None).
    """
    schedule = as_schedule(learning_rate, name)

    def init(params):
        count = zero_count()
        return state_type(count=count, learning_rate=rate_at(schedule, count), **init_trees(params))

    def update(grads, state, params=None, **extra):
        del extra                                # rules read only grads, state and params
        reference = getattr(state, tree_field) if tree_field else ()
        if not (isinstance(reference, tuple) and len(reference) == 0):
            check_tree(name, grads, reference)
        rate = rate_at(schedule, state.count)
        state = state._replace(count=increment(state.count), learning_rate=rate)
        updates, trees = step(grads, state, params, rate)
        return updates, state._replace(**trees)

    return Optimizer(init, update)


def inverse_root(s: jax.Array, eps: float, eps_in_sqrt: bool) -> jax.Array:
    """1 / sqrt(s + eps) (eps inside the root) or 1 / (sqrt(s) + eps) (outside)."""
    return jax.lax.rsqrt(s + eps) if eps_in_sqrt else 1 / (jnp.sqrt(s) + eps)


def trust_ratio(update: jax.Array, param: jax.Array, coefficient: float = 1.0,
                eps: float = 0.0) -> jax.Array:
    """coefficient * ||param|| / (||update|| + eps), or 1 where either norm is 0 (LARS, LAMB)."""
    p_norm, u_norm = jnp.sqrt(jnp.sum(param * param)), jnp.sqrt(jnp.sum(update * update))
    ratio = coefficient * p_norm / (u_norm + eps)
    return jnp.where((p_norm == 0) | (u_norm == 0), jnp.ones_like(ratio), ratio)


# ----------------------------------------------------------------- the learning rate in force

def current_learning_rate(opt_state: PyTree) -> Any:
    """The learning rate the last update applied, read from any optimizer state.

    Multiplies every `learning_rate` field (kept by each rule) and `lr_scale` field (kept by
    `scale_by_schedule` and `reduce_on_plateau`) found in the state; a `partition` state gives
    a dict {label: rate}. Works under jit, so a training step can log it as a metric.
    """
    rate = _find_rate(opt_state)
    if rate is None:
        raise ValueError("current_learning_rate: the state holds no learning_rate or lr_scale field; "
                         "was it built by an fnn.optim rule?")
    return rate


def _find_rate(node: Any) -> Any:
    if isinstance(node, dict):
        found = {k: _find_rate(v) for k, v in node.items()}
        found = {k: v for k, v in found.items() if v is not None}
        return found or None
    if isinstance(node, (tuple, list)):
        rate = None
        fields = getattr(node, "_fields", None) or ()
        for field, child in zip(fields or range(len(node)), node, strict=True):
            own = child if field in ("learning_rate", "lr_scale") else _find_rate(child)
            rate = _multiply(rate, own)
        return rate
    return None


def _multiply(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return b if a is None else a
    if isinstance(b, dict) and not isinstance(a, dict):
        a, b = b, a
    if isinstance(a, dict):
        other = b if isinstance(b, dict) else {}
        return {k: _multiply(a.get(k), other.get(k) if other else b) for k in {**a, **other}}
    return a * b
