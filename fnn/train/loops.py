"""The two epoch loops over the one step, the carry they share, and the loop race.

    run(carry, data, plan, start, stop) -> carry       # steps start..stop-1 of an epoch

`plan = (order, key, epoch)`: `order` (S, B) holds the shuffled example indices of each
of the epoch's S steps (for `Buckets`, `order = (rows, which)`: step i takes the examples
`rows[i]` of part `which[i]`); step i draws its randomness from `fold_in(fold_in(key, epoch), i)`. A step
gathers its batch from the device-resident `data` by index, so no permuted copy of
the data set is made. `make_epoch` is ONE compiled `lax.fori_loop` over the step;
its bounds are traced values, so the same program runs a whole epoch, a race chunk
or the non-finite guard's replay. `make_step_loop` calls one jitted step per batch.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer
from .step import train_step

LOOPS = ("auto", "scan", "step")
SUMS = ("loss", "objective", "accuracy", "steps")   # loss: the reported loss


class Buckets(NamedTuple):
    """Training data in parts of different shapes, for `fit(..., Buckets(parts))`: `parts` is a
    tuple of `(x, y)` pairs, e.g. sequences padded to each part's own length. Every batch comes
    from one part; an epoch takes each part's full batches once, in one random order over all
    parts. The step is compiled once per part (one `lax.switch` branch each); a batch padded
    less costs less, and a model whose padding is masked computes the same loss on either."""
    parts: tuple


class Carry(NamedTuple):
    """What an epoch threads from step to step."""
    params: Any
    state: Any
    opt_state: Any
    plateau: jax.Array    # float32: the last validation loss (inf before one), the optimizer's value=
    bad: jax.Array        # int32: the first step of the epoch with a non-finite loss, -1 while none
    sums: dict            # float32 running sums over the epoch's steps of SUMS (accuracy NaN if none)


def new_carry(params, state, opt_state, plateau: float = math.inf, extra: tuple = ()) -> Carry:
    """A carry at the start of training (sums at zero, no bad step); `extra` names more metrics to sum."""
    sums = dict.fromkeys((*SUMS, *extra))
    return restart(Carry(params, state, opt_state, jnp.asarray(plateau, jnp.float32), None, sums))


def restart(carry: Carry) -> Carry:
    """The carry at the start of an epoch: sums (of the metrics it already sums, else SUMS) at zero, no bad step."""
    zero = np.zeros((), np.float32)
    return carry._replace(bad=jax.device_put(np.int32(-1)),
                          sums={k: jax.device_put(zero) for k in (carry.sums or SUMS)})


def copy(tree):
    """A copy of every array of `tree` in new buffers (a donated carry leaves the original intact)."""
    return jax.tree.map(lambda a: jax.device_put(a, a.sharding, may_alias=False)   # arrays that span
                        if isinstance(a, jax.Array) and not a.is_fully_addressable   # processes
                        else jax.device_put(a, may_alias=False), tree)


def means(carry: Carry) -> dict:
    """Per-step means of the carry's sums, as floats (None for a metric the loss has not)."""
    sums = jax.device_get(carry.sums)
    steps = float(sums["steps"])              # 0 after a replay that stopped before the first step
    return {k: (None if steps == 0 or math.isnan(float(sums[k])) else float(sums[k]) / steps)
            for k in sums if k != "steps"}


def cached(model: Layer, key: tuple, build: Callable) -> Any:
    """`build()` once per model and equal `key`. The table lives on the model's forward
    function, so it dies with the model (no global cache keeps models alive); at most 8
    configurations are kept per model."""
    table = getattr(model.forward, "__dict__", {}).setdefault("_fnn_train_cache", {})
    try:
        found = table.get(key)
    except TypeError:                        # an unhashable loss or optimizer: no caching
        return build()
    if found is None:
        if len(table) >= 8:
            table.pop(next(iter(table)))
        found = table[key] = build()
    return found


def plan(key, epoch: int, n: int | tuple, batch_size: int) -> tuple:
    """`(order, key, epoch)` of an epoch: a random order of the n examples cut into n // B
    full batches (the left-out examples change with the epoch), drawn on the host by
    NumPy's PCG64 seeded with the key's data and the epoch (no device work, no compile).
    For `Buckets`, n is each part's size: each part is cut so, and all the batches are
    shuffled together, `order = (rows, which)`."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    rng = np.random.default_rng([*np.asarray(data, np.uint32).ravel().tolist(), epoch])
    if isinstance(n, tuple):
        rows = [_cut(rng, size, batch_size) for size in n]
        which = np.concatenate([np.full(len(r), b, np.int32) for b, r in enumerate(rows)])
        shuffle = rng.permutation(len(which))
        return jax.device_put((np.concatenate(rows)[shuffle], which[shuffle])), key, np.int32(epoch)
    return jax.device_put(_cut(rng, n, batch_size)), key, np.int32(epoch)


def _cut(rng, n: int, batch_size: int) -> np.ndarray:
    """A random order of n examples as n // batch_size full batches (steps, batch_size)."""
    steps = n // batch_size
    return rng.permutation(n)[:steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def _take(tree, index):
    return jax.tree.map(lambda a: a[index], tree)


def _body(step: Callable, data, order, key, epoch) -> Callable:
    """`body(i, carry) -> carry`: step i of the epoch, its metrics added to the sums."""
    key = jax.random.fold_in(key, epoch)

    def body(i, carry: Carry) -> Carry:
        def on(part, rows):
            return lambda c: step(c.params, c.state, c.opt_state, _take(part, rows[i]),
                                  jax.random.fold_in(key, i), c.plateau)
        if isinstance(data, Buckets):
            rows, which = order
            params, state, opt_state, m = jax.lax.switch(which[i], [on(p, rows) for p in data.parts], carry)
        else:
            params, state, opt_state, m = on(data, order)(carry)
        loss = m["loss"].astype(jnp.float32)
        found = {**m, "loss": m.get("report_loss", m["loss"]), "objective": m["loss"],
                 "accuracy": m.get("accuracy", jnp.nan), "steps": 1.0}
        sums = {k: carry.sums[k] + jnp.asarray(found[k]).astype(jnp.float32) for k in carry.sums}
        bad = jnp.where((carry.bad < 0) & ~jnp.isfinite(loss), i, carry.bad).astype(jnp.int32)
        return Carry(params, state, opt_state, carry.plateau, bad, sums)
    return body


def _remember_seconds(compile_: Callable) -> Callable:
    """`compile_(carry, data, plan)` returning the seconds its FIRST compile for these shapes
    took (a later call hits JAX's cache and would time nothing)."""
    seconds: dict = {}

    def timed(carry, data, plan):
        leaves, tree = jax.tree.flatten((carry, data, plan))
        key = (tree, tuple((np.shape(a), str(getattr(a, "dtype", type(a).__name__))) for a in leaves))
        if key not in seconds:
            t0 = time.perf_counter()
            compile_(carry, data, plan)
            seconds[key] = time.perf_counter() - t0
        return seconds[key]
    return timed


def make_epoch(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff",
               report_loss: Callable | None = None, extra: tuple = ()) -> Callable:
    """The epoch as ONE compiled call: `run(carry, data, plan, start, stop) -> carry`, a
    `lax.fori_loop` of `train_step` over steps start..stop-1 (carry donated)."""
    def build():
        step = train_step(model, loss, optimizer, grads=grads, report_loss=report_loss, extra=extra)

        def epoch(carry, data, plan, start, stop):
            return jax.lax.fori_loop(start, stop, _body(step, data, *plan), carry)
        jitted = jax.jit(epoch, donate_argnums=(0,))

        def run(carry, data, plan, start, stop):
            return jitted(carry, data, plan, start, stop)
        run.compile = _remember_seconds(lambda carry, data, plan: jitted.lower(carry, data, plan, 0, 1).compile())
        return run
    return cached(model, ("epoch", loss, optimizer, grads, report_loss, extra), build)


def make_step_loop(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff",
                   report_loss: Callable | None = None, extra: tuple = ()) -> Callable:
    """The same `run(carry, data, plan, start, stop) -> carry` as a Python loop over one
    jitted step (carry donated): faster where a backend runs a loop body slower than a
    lone step (XLA:CPU with convolutions, jax-ml/jax#12868)."""
    def build():
        step = train_step(model, loss, optimizer, grads=grads, report_loss=report_loss, extra=extra)
        one = jax.jit(lambda carry, data, plan, i: _body(step, data, *plan)(i, carry), donate_argnums=(0,))

        def run(carry, data, plan, start, stop):
            for i in range(start, stop):
                carry = one(carry, data, plan, np.int32(i))
            return carry
        run.compile = _remember_seconds(lambda carry, data, plan: one.lower(carry, data, plan, np.int32(0)).compile())
        return run
    return cached(model, ("steps", loss, optimizer, grads, report_loss, extra), build)


RACE_PAYBACK = 10.0    # race only if the training left is worth this many compiles of the step
RACE_MARGIN = 0.15     # the step loop must be this much faster than the scan to be chosen


def _timed(run: Callable, carry: Carry, data, epoch_plan, start: int, stop: int) -> tuple[Carry, float]:
    t0 = time.perf_counter()
    carry = jax.block_until_ready(run(carry, data, epoch_plan, start, stop))
    return carry, time.perf_counter() - t0


def race(loops: dict[str, Callable], carry: Carry, data, epoch_plan, steps: int, *, total_steps: int,
         chunk: int = 32, rounds: int = 4) -> tuple[Carry, str, int]:
    """Pick the scan or the step loop on the first steps of an epoch (every chunk is a real
    training step). The scan is compiled and timed first; when the `total_steps` left would
    take under RACE_PAYBACK times its compile, the scan is kept without compiling the step
    loop. Otherwise chunks alternate and the step loop wins only if its best chunk beats
    the scan's by RACE_MARGIN (so noise cannot flip the choice). Returns (carry, loop, next step)."""
    (first, scan), (other, step) = loops.items()
    chunk = max(1, min(chunk, steps // (2 * (rounds + 1))))
    if steps < 3 * chunk:
        return carry, first, 0
    compile_seconds = scan.compile(carry, data, epoch_plan)
    carry, _ = _timed(scan, carry, data, epoch_plan, 0, chunk)                  # warm
    carry, seconds = _timed(scan, carry, data, epoch_plan, chunk, 2 * chunk)
    if seconds / chunk * total_steps < RACE_PAYBACK * compile_seconds:
        return carry, first, 2 * chunk
    carry, _ = _timed(step, carry, data, epoch_plan, 2 * chunk, 3 * chunk)      # compiles
    best, i = {first: seconds, other: math.inf}, 3 * chunk
    for _ in range(rounds):
        for name, run in loops.items():
            if i + chunk <= steps:
                carry, seconds = _timed(run, carry, data, epoch_plan, i, i + chunk)
                best[name], i = min(best[name], seconds), i + chunk
    return carry, (other if best[other] < (1 - RACE_MARGIN) * best[first] else first), i
