"""Training: one pure jitted step, a whole epoch as one compiled `lax.scan`, `fit`.

    step(params, state, opt_state, (x, y), key) -> (params, state, opt_state, metrics)

`grads="autodiff"` differentiates the loss with `jax.value_and_grad`;
`grads="manual"` runs `model.forward`, the loss's hand-derived gradient and
`model.backward` instead (no autodiff anywhere in the step).
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import losses as _losses
from .core import Layer
from .data import epoch_batches
from .optim import apply_updates

GRADS = ("autodiff", "manual")
LOOPS = ("auto", "scan", "step")


def _metrics(loss, pred, target):
    m = {"loss": loss}
    if pred.ndim == 2 and target.ndim == 1 and jnp.issubdtype(target.dtype, jnp.integer):
        m["accuracy"] = jnp.mean((jnp.argmax(pred, -1).astype(target.dtype) == target).astype(loss.dtype))
    return m


def loss_and_grads(model: Layer, loss: Callable, grads: str = "autodiff") -> Callable:
    """`f(params, state, x, y, key) -> (loss, metrics, dparams, new_state)` for one batch in training mode."""
    if grads not in GRADS:
        raise ValueError(f"loss_and_grads: grads must be one of {GRADS}, got {grads!r}")
    if grads == "manual":
        if not isinstance(loss, _losses.Loss):
            raise TypeError(f"loss_and_grads: grads='manual' needs a fnn.losses.Loss (a value with its hand "
                            f"gradient), got {loss!r}; build one with fnn.losses.Loss(value_fn, grad_fn, name)")
        loss_grad = loss.grad

        def manual(params, state, x, y, key):
            pred, new_state, cache = model.forward(params, state, x, key=key, train=True)
            value = loss(pred, y)
            dparams, _ = model.backward(params, cache, loss_grad(pred, y))
            return value, _metrics(value, pred, y), dparams, new_state
        return manual

    def objective(params, state, x, y, key):
        pred, new_state = model.apply(params, state, x, key=key, train=True)
        value = loss(pred, y)
        return value, (_metrics(value, pred, y), new_state)

    def autodiff(params, state, x, y, key):
        (value, (metrics, new_state)), dparams = jax.value_and_grad(objective, has_aux=True)(
            params, state, x, y, key)
        return value, metrics, dparams, new_state
    return autodiff


def _optimizer_step(optimizer, params, opt_state, dparams, value):
    """One optimizer update applied: (params, opt_state) -> (new params, new opt_state)."""
    updates, opt_state = optimizer.update(dparams, opt_state, params, value=value)
    return apply_updates(params, updates), opt_state


def _step_fn(model, loss, optimizer, grads):
    """The un-jitted guarded step on a carry (params, state, opt_state, bad_step, val_loss).

    Once a loss is non-finite the carry freezes at the last finite values and
    `bad_step` records where it happened (-1 while all is well). The optimizer gets
    `value=` the last validation loss, or the batch loss before there is one."""
    compute = loss_and_grads(model, loss, grads)

    def step(carry, batch, key, index):
        params, state, opt_state, bad, value = carry
        loss_value, metrics, dparams, new_state = compute(params, state, batch[0], batch[1], key)
        plateau_value = jnp.where(jnp.isfinite(value), value, loss_value.astype(value.dtype))
        new_params, new_opt = _optimizer_step(optimizer, params, opt_state, dparams, plateau_value)
        fine = jnp.isfinite(loss_value) & (bad < 0)
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(fine, n, o), new, old)
        bad = jnp.where((bad < 0) & ~fine, index, bad)
        carry = (keep(new_params, params), keep(new_state, state), keep(new_opt, opt_state), bad, value)
        return carry, metrics
    return step


def make_train_step(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff") -> Callable:
    """One jitted training step with donated buffers:
    `step(params, state, opt_state, (x, y), key) -> (params, state, opt_state, metrics)`."""
    compute = loss_and_grads(model, loss, grads)

    def step(params, state, opt_state, batch, key):
        loss_value, metrics, dparams, new_state = compute(params, state, batch[0], batch[1], key)
        params, opt_state = _optimizer_step(optimizer, params, opt_state, dparams, loss_value)
        return params, new_state, opt_state, metrics
    return jax.jit(step, donate_argnums=(0, 1, 2))


@functools.lru_cache(maxsize=32)
def make_epoch(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff",
               batch_size: int) -> Callable:
    """A whole epoch as ONE compiled call: shuffle with `key`, then `lax.scan` the
    guarded step over all full batches. `epoch(carry, x, y, key) -> (carry, metrics)`
    with metrics stacked per step."""
    step = _step_fn(model, loss, optimizer, grads)

    def epoch(carry, x, y, key):
        k_shuffle, k_steps = jax.random.split(key)
        xs, ys = epoch_batches(k_shuffle, x, y, batch_size)
        keys = jax.random.split(k_steps, xs.shape[0])
        body = lambda c, inp: step(c, (inp[0], inp[1]), inp[2], inp[3])
        return jax.lax.scan(body, carry, (xs, ys, keys, jnp.arange(xs.shape[0], dtype=jnp.int32)))
    return jax.jit(epoch, donate_argnums=(0,))


@functools.lru_cache(maxsize=32)
def make_step_loop(model: Layer, loss: Callable, optimizer, *, grads: str = "autodiff",
                   batch_size: int) -> Callable:
    """The same epoch as `make_epoch`, as a Python loop over one jitted guarded step
    (faster where the backend runs a loop body slower than a lone step). The step
    slices its batch out of the device-resident epoch itself, so Python pays one
    dispatch per step."""
    guarded = _step_fn(model, loss, optimizer, grads)

    def indexed_step(carry, xs, ys, keys, i):
        take = lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False)
        return guarded(carry, (take(xs), take(ys)), take(keys), i)

    step = jax.jit(indexed_step, donate_argnums=(0,))
    shuffle = jax.jit(lambda key, x, y: epoch_batches(key, x, y, batch_size))

    def epoch(carry, x, y, key):
        k_shuffle, k_steps = jax.random.split(key)
        xs, ys = shuffle(k_shuffle, x, y)
        keys = jax.random.split(k_steps, xs.shape[0])
        metrics = []
        for i in range(xs.shape[0]):
            carry, m = step(carry, xs, ys, keys, np.int32(i))
            metrics.append(m)
        return carry, jax.tree.map(lambda *a: jnp.stack(a), *metrics)
    return epoch


def _time_call(fn, *args, repeat: int = 2) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


_LOOP_CHOICES: dict = {}     # (model, loss, optimizer, grads, batch, shapes) -> "scan" | "step"


def choose_loop(model: Layer, loss: Callable, optimizer, carry, x, y, *, grads: str, batch_size: int,
                trial_steps: int = 8) -> str:
    """Measure `trial_steps` steps as a scanned loop and as jitted single steps, on
    copies of the training carry (results discarded), and name the faster. The
    choice is remembered per model, optimizer and shapes, so it is measured once."""
    signature = (model, loss, optimizer, grads, batch_size, x.shape[1:], str(x.dtype))
    if signature not in _LOOP_CHOICES:
        _LOOP_CHOICES[signature] = _measure_loops(model, loss, optimizer, carry, x, y, grads=grads,
                                                  batch_size=batch_size, trial_steps=trial_steps)
    return _LOOP_CHOICES[signature]


def _measure_loops(model, loss, optimizer, carry, x, y, *, grads, batch_size, trial_steps):
    n = trial_steps * batch_size
    xs, ys = x[:n], y[:n]
    copy = lambda: jax.tree.map(jnp.copy, carry)
    scan = make_epoch(model, loss, optimizer, grads=grads, batch_size=batch_size)
    loop = make_step_loop(model, loss, optimizer, grads=grads, batch_size=batch_size)
    key = jax.random.PRNGKey(0)
    jax.block_until_ready(scan(copy(), xs, ys, key))           # compile both first
    jax.block_until_ready(loop(copy(), xs, ys, key))
    t_scan = _time_call(lambda: scan(copy(), xs, ys, key))
    t_loop = _time_call(lambda: loop(copy(), xs, ys, key))
    return "scan" if t_scan <= t_loop else "step"


def _batched(fn, x, batch_size):
    outs = [fn(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


def predict(model: Layer, params, state, x, *, batch_size: int = 1000) -> jax.Array:
    """Model outputs in evaluation mode for every example of `x`, in jitted batches."""
    fn = _jitted_apply(model)
    return _batched(lambda xb: fn(params, state, xb), x, batch_size)


@functools.lru_cache(maxsize=64)
def _jitted_apply(model):
    """One jitted evaluation-mode apply per model: repeated calls do not recompile."""
    return jax.jit(lambda p, s, xb: model.apply(p, s, xb, train=False)[0])


def evaluate(model: Layer, params, state, data, *, loss: Callable, batch_size: int = 1000) -> dict:
    """Mean loss (and accuracy for integer labels) over every example of `data = (x, y)`."""
    x, y = data
    pred = predict(model, params, state, x, batch_size=batch_size)
    return {k: float(v) for k, v in _metrics(loss(pred, y), pred, y).items()}


def _empty_history() -> dict[str, list]:
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds", "learning_rate")
    return {k: [] for k in keys}

def _check_data(name, data, batch_size):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"fit: {name} must be an (inputs, labels) pair of arrays, got {type(data).__name__}")
    x, y = data
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"fit: {name} inputs and labels differ in length: {x.shape[0]} vs {y.shape[0]}")
    if name == "train" and x.shape[0] < batch_size:
        raise ValueError(f"fit: batch_size {batch_size} exceeds the {x.shape[0]} training examples")


def _check_fit_args(grads, loop, epochs, batch_size):
    if grads not in GRADS:
        raise ValueError(f"fit: grads must be one of {GRADS}, got {grads!r}")
    if loop not in LOOPS:
        raise ValueError(f"fit: loop must be one of {LOOPS}, got {loop!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")


def _learning_rate(opt_state):
    from .optim import current_learning_rate
    try:
        rate = current_learning_rate(opt_state)
    except ValueError:                       # a hand-made optimizer that keeps no rate
        return None
    return {k: float(v) for k, v in rate.items()} if isinstance(rate, dict) else float(rate)


class _Stopper:
    """Early stopping on the monitored loss; remembers the best carry."""

    def __init__(self, patience):
        self.patience, self.best, self.best_carry, self.wait = patience, math.inf, None, 0

    def should_stop(self, value, carry) -> bool:
        if self.patience is None:
            return False
        if value < self.best:
            self.best, self.best_carry, self.wait = value, jax.tree.map(jnp.copy, carry), 0
            return False
        self.wait += 1
        return self.wait >= self.patience


def _record(history, metrics, val, seconds, opt_state):
    history["train_loss"].append(float(jnp.mean(metrics["loss"])))
    history["train_accuracy"].append(float(jnp.mean(metrics["accuracy"])) if "accuracy" in metrics else None)
    history["val_loss"].append(val.get("loss") if val else None)
    history["val_accuracy"].append(val.get("accuracy") if val else None)
    history["epoch_seconds"].append(seconds)
    history["learning_rate"].append(_learning_rate(opt_state))


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="epoch", dynamic_ncols=True)


def _postfix(history):
    out = {"loss": f"{history['train_loss'][-1]:.4f}"}
    for key, label in (("train_accuracy", "acc"), ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):
        if history[key][-1] is not None:
            out[label] = f"{history[key][-1]:.4f}"
    return out


def _start(model, loss, optimizer, params, state, opt_state, train, *, grads, loop, batch_size):
    x, y = jnp.asarray(train[0]), jnp.asarray(train[1])
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    carry = (params, state, opt_state, jnp.asarray(-1, jnp.int32), jnp.asarray(jnp.inf, jnp.float32))
    carry = jax.tree.map(jnp.copy, carry)       # the epoch donates its carry; the caller's arrays stay valid
    if loop == "auto":
        loop = choose_loop(model, loss, optimizer, carry, x, y, grads=grads, batch_size=batch_size)
    run = (make_epoch if loop == "scan" else make_step_loop)(
        model, loss, optimizer, grads=grads, batch_size=batch_size)
    return x, y, carry, loop, run


def _after_epoch(epoch, carry, history, val_metrics, stopper):
    """Decide whether to stop after `epoch`; returns (carry, stop)."""
    bad = int(carry[3])
    if bad >= 0:
        history["stopped"] = (f"non-finite loss at epoch {epoch + 1}, step {bad + 1}; "
                              f"kept the last finite parameters")
        print(f"fit: {history['stopped']}")
        return carry, True
    if val_metrics is not None:
        carry = (*carry[:4], jnp.asarray(val_metrics["loss"], jnp.float32))
    monitored = val_metrics["loss"] if val_metrics else history["train_loss"][-1]
    if stopper.should_stop(monitored, carry):
        history["stopped"] = f"early stopping after epoch {epoch + 1}; restored the best epoch"
        return stopper.best_carry, True
    return carry, False


def fit(model: Layer, params, state, optimizer, train, *, loss: Callable, epochs: int,
        batch_size: int, key: jax.Array, val=None, grads: str = "autodiff", loop: str = "auto",
        early_stopping: int | None = None, progress: bool = True, opt_state=None,
        initial_epoch: int = 0, history: dict | None = None,
        on_epoch: Callable | None = None) -> tuple[Any, Any, Any, dict]:
    """Train `model` on `train = (x, y)` for `epochs` epochs of shuffled full batches.

    Each epoch is ONE compiled `lax.scan` (loop="scan") or a loop of one jitted step
    (loop="step"); loop="auto" measures both on the first batches and keeps the faster.
    `val = (x, y)` is evaluated after each epoch; its loss is passed to the optimizer as
    `value=` (for reduce_on_plateau). `early_stopping=k` stops after k epochs without a
    better validation loss and returns the best parameters. A non-finite loss stops with
    a message naming the epoch and step, keeping the last finite values. Epoch e shuffles
    with `fold_in(key, e)`, so `initial_epoch`/`opt_state`/`history` resume a run exactly.
    `on_epoch(epoch, params, state, opt_state, history)` runs after each epoch.
    Returns `(params, state, opt_state, history)`.
    """
    _check_fit_args(grads, loop, epochs, batch_size)
    _check_data("train", train, batch_size)
    if val is not None:
        _check_data("val", val, 1)
    x, y, carry, loop, run = _start(model, loss, optimizer, params, state, opt_state, train,
                                    grads=grads, loop=loop, batch_size=batch_size)
    history = {**_empty_history(), **(history or {}), "loop": loop}
    stopper, bar = _Stopper(early_stopping), _progress(epochs - initial_epoch, progress)
    for epoch in range(initial_epoch, epochs):
        t0 = time.perf_counter()
        carry, metrics = jax.block_until_ready(run(carry, x, y, jax.random.fold_in(key, epoch)))
        val_metrics = evaluate(model, carry[0], carry[1], val, loss=loss) if val is not None else None
        _record(history, metrics, val_metrics, time.perf_counter() - t0, carry[2])
        if bar is not None:
            bar.set_postfix(_postfix(history), refresh=False)
            bar.update(1)
        carry, stop = _after_epoch(epoch, carry, history, val_metrics, stopper)
        if on_epoch is not None and not stop:
            on_epoch(epoch, carry[0], carry[1], carry[2], history)
        if stop:
            break
    if bar is not None:
        bar.close()
    return carry[0], carry[1], carry[2], history
