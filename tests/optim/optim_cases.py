"""Shared pieces of the optimizer tests: the parameter pytree, the fixed gradient sequence,
jitted runners for fnn and for the optax oracle, and the tables of rules."""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn.optim as fo

FAST_COMPILE = {"xla_backend_optimization_level": 0}   # about 20% less compile time; both sides alike
STEPS = 100          # oracle comparisons run this many updates
RTOL = 1e-10         # and require ||fnn - oracle||_inf / ||oracle||_inf below this, per leaf


def make_params(dtype=jnp.float64, seed=0):
    """A pytree of several shapes and containers: a matrix, a 4-d kernel in a nested dict, and
    a tuple holding a vector and a list with a scalar. (NumPy draws: no compilation per shape.)"""
    rng = np.random.default_rng(seed)
    normal = lambda shape: jnp.asarray(rng.standard_normal(shape)).astype(dtype)
    return {"W": normal((5, 4)), "conv": {"kernel": normal((3, 3, 2, 4))},
            "seq": (normal((4,)), [normal(())])}


def grad_sequence(params, steps=STEPS, seed=1):
    """A fixed random gradient sequence: every leaf gets a leading axis of `steps` entries,
    with a per-leaf scale so the leaves differ in magnitude."""
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(params)
    seq = [jnp.asarray((0.1 + i) * rng.standard_normal((steps, *p.shape))).astype(p.dtype)
           for i, p in enumerate(leaves)]
    return jax.tree.unflatten(treedef, seq)


def _run(opt, apply, params, grads, with_state=False):
    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (apply(p, u), s), None

    (params, state), _ = jax.lax.scan(body, (params, opt.init(params)), grads)
    return (params, state) if with_state else params


class Both(NamedTuple):
    """A kwarg value that each library spells its own way (fnn's mask function, optax's tree)."""
    fnn: object
    optax: object


def split(kwargs):
    """(fnn kwargs, optax kwargs) from one dict: the same values, `Both` resolved per side."""
    pick = lambda side: {k: getattr(v, side) if isinstance(v, Both) else v for k, v in kwargs.items()}
    return pick("fnn"), pick("optax")


def row_ids(rows):
    """Test ids for (fnn factory, oracle, kwargs) rows: the rule's name and the row's index."""
    return [f"{row[0].__name__}{i}" for i, row in enumerate(rows)]


def run_fnn(opt, params, grads):
    """Final params after feeding `grads` (stacked on axis 0) through `opt`, in one jitted scan."""
    run = jax.jit(functools.partial(_run, opt, fo.apply_updates), compiler_options=FAST_COMPILE)
    return run(params, grads)


def _run_both(ours, oracle, params, grads, with_state=False):
    mine = _run(ours, fo.apply_updates, params, grads, with_state)
    with jax.numpy_dtype_promotion("standard"):            # optax is not written for strict promotion
        theirs = _run(oracle, optax.apply_updates, params, grads, with_state)
    return mine, theirs


def run_both(ours, oracle, params, grads, with_state=False):
    """(fnn's, optax's) final params (with_state: (params, state) pairs), both runs traced into one
    jitted function (one compilation)."""
    run = functools.partial(_run_both, ours, oracle, with_state=with_state)
    return jax.jit(run, compiler_options=FAST_COMPILE)(params, grads)


def run_numpy(step, state, params, grads):
    """The same with a NumPy oracle `step(g, state, p) -> (new_p, state)` over dicts of arrays."""
    p = jax.tree.map(np.asarray, params)
    for t in range(jax.tree.leaves(grads)[0].shape[0]):
        p, state = step(jax.tree.map(lambda g, t=t: np.asarray(g[t]), grads), state, p)
    return p


def assert_close(ours, oracle, rtol=RTOL):
    """Per leaf, max |ours - oracle| / max |oracle| < rtol."""
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(ours)[0], jax.tree.leaves(oracle),
                            strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
        assert err < rtol, f"{jax.tree_util.keystr(path)}: relative error {err:.3g} >= {rtol}"


PARAMS = make_params()                     # the oracle comparisons' parameters,
GRADS = grad_sequence(PARAMS)              # gradients (global norms between about 5 and 13),
MASK = {"W": True, "conv": False, "seq": (True, False)}   # and a mask: a prefix tree of PARAMS


# ----------------------------------------------------------------- every rule, for the cross-cutting tests

RULES = {
    "sgd": lambda lr: fo.sgd(lr, momentum=0.9),
    "adagrad": lambda lr: fo.adagrad(lr),
    "rmsprop": lambda lr: fo.rmsprop(lr, centered=True, momentum=0.5),
    "adam": lambda lr: fo.adam(lr),
    "adamw": lambda lr: fo.adamw(lr, weight_decay=0.01, mask=fo.decay_mask),
    "nadam": lambda lr: fo.nadam(lr, momentum_decay=4e-3),
    "amsgrad": lambda lr: fo.amsgrad(lr),
    "adabelief": lambda lr: fo.adabelief(lr),
    "radam": lambda lr: fo.radam(lr),
    "lion": lambda lr: fo.lion(lr),
    "adafactor": lambda lr: fo.adafactor(lr, min_dim_size_to_factor=3, momentum=0.9, dtype_momentum=None),
    "lamb": lambda lr: fo.lamb(lr, weight_decay=0.01),
    "lars": lambda lr: fo.lars(lr, weight_decay=0.01),
}
