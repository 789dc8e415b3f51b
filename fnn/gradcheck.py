"""Gradient checks: hand-derived backward vs `jax.vjp` and vs central differences.

Autodiff is the point here: this module is the independent oracle the
hand-derived passes are held to (docs/design.md §3). Every check runs in float64 (inside
`jax.enable_x64(True)`, whatever the global setting), on inputs cast to float64.

    check_layer(layer, in_shape, key=...)      -> Report
    check_function(f, hand_vjp, primals, key=...) -> Report
    check_all()                                -> list[Report] for every CASES row in fnn
    select_cases(only)                         -> the discovered rows whose name contains `only`

A module lists its rows in a module-level `CASES` tuple of `Case` (a layer) or
`FunctionCase` (an activation, a loss); `discover_cases` finds them all. This module
imports nothing of fnn but `core`, so any layer module can import the row types.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .core import Layer, cast, is_multi_shape

AUTODIFF_TOLERANCE = 1e-9
FINITE_DIFFERENCE_TOLERANCE = 1e-6


class Case(NamedTuple):
    """One row of the gradient-check table: `make()` builds the layer, fed a
    batch of `batch` examples of `in_shape` (`train` selects the mode; a float
    `in_shape` of tuples means several inputs). Layer modules list their rows
    in a module-level `CASES` tuple; `discover_cases` finds them."""
    name: str
    make: Callable[[], Layer]
    in_shape: Any
    train: bool = False
    batch: int = 3


class FunctionCase(NamedTuple):
    """One row of the gradient-check table for a function (activation, loss):
    `make(key) -> (f, hand_vjp, primals)` in float64, where `f(*primals)` is an
    array and `hand_vjp(primals, cotangent)` returns one cotangent per primal
    (None for a primal that is not differentiated, such as integer labels)."""
    name: str
    make: Callable


class Report(NamedTuple):
    name: str
    autodiff_error: float     # ||hand - vjp|| / max(||hand||, ||vjp||) over all cotangents
    fd_error: float           # worst relative gap of <hand, v> vs a central difference along v
    passed: bool
    message: str = ""


def _norm(tree) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(a, np.float64))) for a in jax.tree.leaves(tree))))


def relative_error(a, b) -> float:
    """||a - b|| / max(||a||, ||b||) over two pytrees of the same structure (0 when both are 0)."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        raise ValueError(f"relative_error: tree structures differ: {jax.tree.structure(a)} "
                         f"vs {jax.tree.structure(b)}")
    scale = max(_norm(a), _norm(b))
    return 0.0 if scale == 0.0 else _norm(jax.tree.map(jnp.subtract, a, b)) / scale


def _directional_fd(phi, h: float) -> float:
    return (phi(h) - phi(-h)) / (2 * h)


def _normal(key, shape, dtype) -> np.ndarray:
    """A standard normal draw seeded by `key`, made by numpy: jax.random would compile a program per
    shape, about a quarter of a gradient check's time."""
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _fd_error(f, primals, diff, hand, ct, key, directions: int, h: float) -> float:
    """Compare <hand, v> with d/dt <ct, f(primals + t v)> at t = 0 along random v (numpy arithmetic:
    no program is compiled but f's)."""
    worst = 0.0
    for k in jax.random.split(key, directions):
        vs = [jax.tree.map(lambda a, kk=kk: _normal(kk, np.shape(a), np.asarray(a).dtype), primals[i])
              for i, kk in zip(diff, jax.random.split(k, len(diff)))]

        def phi(t, vs=vs):
            moved = list(primals)
            for i, v in zip(diff, vs):
                moved[i] = jax.tree.map(lambda p, d: np.asarray(p) + t * d, primals[i], v)
            return float(np.vdot(np.asarray(ct), np.asarray(f(*moved))))

        analytic = sum(float(sum(np.vdot(np.asarray(g), v) for g, v in zip(jax.tree.leaves(hand[i]),
                                                                            jax.tree.leaves(vv))))
                       for i, vv in zip(diff, vs))
        numeric = _directional_fd(phi, h)
        scale = max(abs(analytic), abs(numeric), 1e-12)
        worst = max(worst, abs(analytic - numeric) / scale)
    return worst


def _in_float64(check: Callable) -> Callable:
    """Run `check` with 64-bit types on, whatever `jax_enable_x64` says: in float32 a
    central difference is only good to ~1e-2, and the 1e-9 bar cannot be met."""

    @functools.wraps(check)
    def run(*args, **kwargs):
        with jax.enable_x64(True):
            return check(*args, **kwargs)

    return run


@_in_float64
def check_function(f: Callable, hand_vjp: Callable, primals: tuple, *, key: jax.Array,
                   name: str = "function", directions: int = 3, h: float = 1e-5) -> Report:
    """Check `hand_vjp(primals, ct)` against `jax.vjp(f, *primals)` and central
    differences, for a random cotangent `ct`. Primals whose hand cotangent is
    None (integer labels, say) are held fixed. Float primals are cast to float64."""
    primals = tuple(cast(p, jnp.float64) for p in primals)
    y = f(*primals)
    k1, k2 = jax.random.split(key)
    ct = jnp.asarray(_normal(k1, jnp.shape(y), jnp.asarray(y).dtype))
    hand = tuple(hand_vjp(primals, ct))
    diff = [i for i, g in enumerate(hand) if g is not None]
    if len(hand) != len(primals) or not diff:
        return Report(name, np.inf, np.inf, False, f"hand_vjp gave {len(hand)} cotangents "
                      f"for {len(primals)} primals")

    def f_diff(*d):
        full = list(primals)
        for i, di in zip(diff, d):
            full[i] = di
        return f(*full)

    _, vjp = jax.vjp(f_diff, *[primals[i] for i in diff])
    auto = vjp(ct)
    try:
        ad = max(relative_error(hand[i], a) for i, a in zip(diff, auto))
    except ValueError as err:
        return Report(name, np.inf, np.inf, False, str(err))
    fd = _fd_error(f, primals, diff, hand, ct, k2, directions, h)
    passed = bool(ad < AUTODIFF_TOLERANCE and fd < FINITE_DIFFERENCE_TOLERANCE)
    return Report(name, ad, fd, passed)


def _random_input(key, in_shape, batch, dtype):
    if is_multi_shape(in_shape):
        keys = jax.random.split(key, len(in_shape))
        return tuple(jnp.asarray(_normal(k, (batch, *s), dtype)) for k, s in zip(keys, in_shape))
    return jnp.asarray(_normal(key, (batch, *in_shape), dtype))


@_in_float64
def check_layer(layer: Layer, in_shape: Any, *, key: jax.Array, train: bool = False, batch: int = 3,
                name: str | None = None) -> Report:
    """Gradient-check `layer.backward` (params and input) at random float64
    params and input of `batch` examples of `in_shape`; `train` picks the mode
    (a fixed forward key makes dropout masks reproducible)."""
    name = name or layer.name
    k_init, k_x, k_fwd, k_check = jax.random.split(key, 4)
    out_shape, params, state = layer.init(k_init, in_shape)
    params, state = cast(params, jnp.float64), cast(state, jnp.float64)
    params = jax.tree.map(lambda p, k: p + 0.1 * _normal(k, p.shape, p.dtype), params,
                          _tree_keys(k_init, params))   # move off symmetric inits (zeros, ones)
    x = _random_input(k_x, in_shape, batch, jnp.float64)

    forward = jax.jit(functools.partial(layer.forward, key=k_fwd, train=train))  # one compile, not
    backward = jax.jit(layer.backward)                                            # op-by-op kernels

    def f(p, xx):
        return forward(p, state, xx)[0]

    def hand_vjp(primals, ct):
        _, _, cache = forward(primals[0], state, primals[1])
        return backward(primals[0], cache, ct)

    y = f(params, x)
    if tuple(y.shape[1:]) != tuple(out_shape):
        return Report(name, np.inf, np.inf, False, f"init says out_shape {out_shape}, forward gave {y.shape}")
    report = check_function(f, hand_vjp, (params, x), key=k_check, name=name)
    if report.passed or not report.fd_error < FINITE_DIFFERENCE_TOLERANCE:
        return report
    return _against_eager_autodiff(report, layer, state, k_fwd, train, hand_vjp, (params, x), k_check)


def _against_eager_autodiff(report, layer, state, k_fwd, train, hand_vjp, primals, key) -> Report:
    """The hand pass agrees with central differences but not with `jax.vjp` of the jitted forward:
    ask `jax.vjp` of the forward run op by op. XLA:CPU's compiled gradient has been seen to stray
    (the default CNN with BatchNorm, batch 3, float64: by 31-56%) where eager autodiff and the hand pass
    agree; then the hand pass passes, and the message says the jitted reference was off."""
    eager = check_function(lambda p, xx: layer.forward(p, state, xx, key=k_fwd, train=train)[0],
                           hand_vjp, primals, key=key, name=report.name)
    if not eager.passed:
        return report
    return eager._replace(message=f"jax.vjp of the jitted forward differs by {report.autodiff_error:.1e}; "
                                  f"eager jax.vjp agrees with the hand pass ({eager.autodiff_error:.1e})")


def _tree_keys(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, list(jax.random.split(key, len(leaves))) if leaves else [])


def discover_cases() -> list:
    """Every `CASES` row of every module under `fnn` (layers, activations, losses, ...)."""
    import fnn
    rows = []
    for info in pkgutil.walk_packages(fnn.__path__, "fnn."):
        if info.name.split(".")[-1] in ("__main__", "cli"):
            continue
        module = importlib.import_module(info.name)
        rows.extend(getattr(module, "CASES", ()))
    return rows


def select_cases(only: str | None = None) -> list:
    """The discovered rows whose name contains `only` (any case; all rows for None).
    A filter that matches nothing raises ValueError listing the closest names."""
    cases = discover_cases()
    if only is None:
        return cases
    chosen = [c for c in cases if only.lower() in c.name.lower()]
    if not chosen:
        names = [c.name for c in cases]
        close = difflib.get_close_matches(only, names, n=5, cutoff=0.4)
        hint = f"close names: {', '.join(close)}" if close else f"names look like {', '.join(names[:5])}"
        raise ValueError(f"no gradcheck case name contains {only!r}; {hint}")
    return chosen


@_in_float64
def check_case(case, key: jax.Array) -> Report:
    """Run one `Case` (layer) or `FunctionCase` (activation, loss) row, in float64."""
    if isinstance(case, Case):
        return check_layer(case.make(), case.in_shape, key=key, train=case.train, batch=case.batch,
                           name=case.name)
    if isinstance(case, FunctionCase):
        f, hand_vjp, primals = case.make(key)
        return check_function(f, hand_vjp, primals, key=jax.random.fold_in(key, 1), name=case.name)
    raise TypeError(f"check_case: expected a Case or FunctionCase, got {type(case).__name__}")


def check_all(seed: int = 0) -> list[Report]:
    """Reports for every discovered case, in discovery order."""
    key = jax.random.PRNGKey(seed)
    return [check_case(c, jax.random.fold_in(key, i)) for i, c in enumerate(discover_cases())]


def format_table(reports: list[Report]) -> str:
    """One row per report: name, error vs autodiff, vs finite differences, PASS/FAIL."""
    width = max([len(r.name) for r in reports] + [4])
    lines = [f"{'name':<{width}}  {'vs autodiff':>12}  {'vs finite diff':>14}  result",
             "-" * (width + 40)]
    for r in reports:
        lines.append(f"{r.name:<{width}}  {r.autodiff_error:12.2e}  {r.fd_error:14.2e}  "
                     f"{'PASS' if r.passed else 'FAIL'} {r.message}".rstrip())
    return "\n".join(lines)
