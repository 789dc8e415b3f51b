"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates", §3.3; fastai's lr_find).

Train from a copy of the parameters while the rate grows exponentially from `min_lr` to
`max_lr` over `steps` steps, one random batch each; smooth the batch losses with a
bias-corrected moving average, and stop once the smoothed loss exceeds `diverge` times its
minimum (or is not finite). The suggestion is the rate of the steepest descent of the smoothed
loss against log(rate), looked for between the first steps and the minimum; `minimum / 10`, the
other usual choice, comes too. The caller's params and state are never changed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from .. import optim
from ..core import Layer
from .evaluation import check_pair, length
from .loops import plan
from .step import train_step


class LrFindResult(NamedTuple):
    rates: np.ndarray         # (S,) the rate of each step taken
    losses: np.ndarray        # (S,) its batch loss
    smoothed: np.ndarray      # (S,) the bias-corrected moving average of the losses
    suggestion: float         # the steepest descent of `smoothed` against log(rate)
    minimum_over_10: float    # the rate at the minimum of `smoothed`, divided by 10
    stopped: str              # why the sweep ended


def _check(min_lr, max_lr, steps, smoothing, diverge) -> None:
    if not (0 < min_lr < max_lr and math.isfinite(max_lr)):
        raise ValueError(f"lr_find: expected 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"lr_find: steps must be an int >= 2, got {steps!r}")
    if not 0 <= smoothing < 1 or not diverge > 1:
        raise ValueError(f"lr_find: expected smoothing in [0, 1) and diverge > 1, got {smoothing}, {diverge}")


def suggest(rates: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(steepest descent, minimum / 10) of a smoothed loss curve; the steepest descent is looked for
    between step min(10, S // 10) and the minimum (the minimum / 10 when that leaves < 3 steps)."""
    low = int(np.argmin(smoothed))
    at_minimum = float(rates[low]) / 10
    start = min(10, len(rates) // 10)
    if low - start < 2:
        return at_minimum, at_minimum
    slope = np.gradient(smoothed[start:low + 1], np.log(rates[start:low + 1]))
    return float(rates[start + int(np.argmin(slope))]), at_minimum


def _sweep_step(model, loss, optimizer, grads) -> Callable:
    step = train_step(model, loss, optimizer, grads=grads)

    def one(params, state, opt_state, data, index, key):
        batch = jax.tree.map(lambda a: a[index], data)
        params, state, opt_state, m = step(params, state, opt_state, batch, key)
        return params, state, opt_state, m["loss"]
    return jax.jit(one)            # no donation: the caller's arrays stay valid


def _smooth(losses: list, smoothing: float) -> np.ndarray:
    average, out = 0.0, []
    for i, value in enumerate(losses):
        average = smoothing * average + (1 - smoothing) * value
        out.append(average / (1 - smoothing ** (i + 1)))
    return np.asarray(out)


def lr_find(model: Layer, params, state, optimizer_factory: Callable, data, loss: Callable, key: jax.Array, *,
            min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100, batch_size: int = 64,
            smoothing: float = 0.98, diverge: float = 4.0, grads: str = "autodiff") -> LrFindResult:
    """Sweep the rate from `min_lr` to `max_lr` over `steps` steps on random batches of `data = (x, y)`.

    `optimizer_factory(learning_rate)` builds the optimizer from a rate or schedule (`fnn.optim.adam`,
    `lambda lr: fnn.optim.sgd(lr, momentum=0.9)`); it gets the exponential schedule. Returns an
    `LrFindResult` (rates, losses, smoothed losses, suggestion, minimum / 10, why it stopped)."""
    _check(min_lr, max_lr, steps, smoothing, diverge)
    x, y = check_pair("lr_find", "data", data)
    n = length("lr_find", "data", x)
    if batch_size > n:
        raise ValueError(f"lr_find: batch_size {batch_size} exceeds the {n} examples")
    schedule = optim.exponential_decay(min_lr, steps - 1, max_lr / min_lr)    # min_lr (max/min)^(t/(S-1))
    optimizer = optimizer_factory(schedule)
    one, data = _sweep_step(model, loss, optimizer, grads), jax.device_put((x, y))
    carry, per_epoch = (params, state, optimizer.init(params)), n // batch_size
    losses, stopped, smoothed = [], f"reached max_lr after {steps} steps", np.zeros(0)
    for i in range(steps):
        if i % per_epoch == 0:                  # a new random order of the examples each epoch
            order = plan(key, i // per_epoch, n, batch_size)[0]
        *carry, value = one(*carry, data, order[i % per_epoch], jax.random.fold_in(key, i))
        losses.append(float(value))
        smoothed = _smooth(losses, smoothing)
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > diverge * np.nanmin(smoothed):
            stopped = f"diverged at step {i + 1}: smoothed loss {smoothed[-1]:.4g} > {diverge} x its minimum"
            break
    rates = np.asarray([float(schedule(i)) for i in range(len(losses))])
    finite = np.where(np.isfinite(smoothed), smoothed, np.inf)
    return LrFindResult(rates, np.asarray(losses), smoothed, *suggest(rates, finite), stopped)
