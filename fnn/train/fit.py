"""`fit`: a short loop over named parts — epoch (with the non-finite guard), evaluate,
report, stop, and the `on_epoch` callback where checkpoints are written.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import distributed, optim
from ..core import Layer
from .evaluation import check_labels, check_pair, length, score, warn_nonfinite
from .loops import LOOPS, Buckets, Carry, copy, make_epoch, make_step_loop, means, new_carry, plan, race, restart
from .step import GRADS
from .unfreeze import UnfreezeSchedule, carry_over, stage_at, unfreeze_schedule

HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds", "learning_rate")


class _Run(NamedTuple):
    """What stays fixed during a fit (model, optimizer and loops: during a stage of `schedule`)."""
    model: Layer
    optimizer: Any
    report: Callable          # the loss reported for every split
    loops: dict               # loop name -> run(carry, data, plan, start, stop)
    data: tuple               # the training (x, y), on the device
    val: tuple | None
    key: jax.Array
    batch_size: int
    examples: int | tuple     # training examples (each part's, for Buckets)
    steps: int                # full batches per epoch
    epochs: int               # the epoch fit stops at
    extra: tuple              # (name, fn) of fit's `metrics`, summed by the loops, run on `val`
    make_loops: Callable      # (model, optimizer, loop) -> loops, for a new stage
    schedule: UnfreezeSchedule | None   # progressive unfreezing (fnn/train/unfreeze.py)
    base: tuple               # (model, optimizer) as given, which each stage derives from
    started: tuple            # the stages of `schedule` the current model and optimizer train


def _check_arguments(grads, loop, epochs, batch_size, early_stopping, val) -> None:
    if grads not in GRADS:
        raise ValueError(f"fit: grads must be one of {GRADS}, got {grads!r}")
    if loop not in LOOPS:
        raise ValueError(f"fit: loop must be one of {LOOPS}, got {loop!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size must be a positive int, got {batch_size!r}")
    if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
        raise ValueError(f"fit: early_stopping must be a positive int (epochs of patience), got {early_stopping!r}")
    if early_stopping is not None and val is None:
        raise ValueError(f"fit: early_stopping={early_stopping} monitors the validation loss, so it needs "
                         f"val=(x, y); got val=None")


def _checked_data(model, params, state, train, val, batch_size):
    """Both splits as checked (x, y) pairs (`Buckets` of them for train): lengths, labels, NaN in
    the validation inputs."""
    if isinstance(train, Buckets):
        if not isinstance(train.parts, (tuple, list)) or not train.parts:
            raise ValueError(f"fit: Buckets needs a non-empty tuple of (x, y) parts, got {train.parts!r}")
        train = Buckets(tuple(_checked_train(model, params, state, part, batch_size, f"train bucket {b}")
                              for b, part in enumerate(train.parts)))
    else:
        train = _checked_train(model, params, state, train, batch_size, "train")
    if val is not None:
        val = check_pair("fit", "val", val)
        check_labels("fit", "val", model, params, state, val)
        warn_nonfinite("fit", "val", val[0])
    return train, val


def _checked_train(model, params, state, train, batch_size, name):
    train = check_pair("fit", name, train)
    n = length("fit", f"{name} inputs", train[0])
    if n < batch_size:
        raise ValueError(f"fit: batch_size {batch_size} exceeds the {n} training examples"
                         + ("" if name == "train" else f" of {name} (merge it into another bucket)"))
    check_labels("fit", name, model, params, state, train)
    return train


def _sizes(train) -> int | tuple:
    """The number of training examples: a tuple of the parts' for `Buckets`."""
    if isinstance(train, Buckets):
        return tuple(length("fit", "train", part[0]) for part in train.parts)
    return length("fit", "train", train[0])


def steps_per_epoch(train, batch_size: int) -> int:
    """The full batches fit takes an epoch from `train` ((x, y), or `Buckets`: each part's)."""
    n = _sizes(train)
    return sum(size // batch_size for size in n) if isinstance(n, tuple) else n // batch_size


def _place(model, carry: Carry, train, val, mesh, batch_size, loop):
    """Put the carry and the data on the device(s); under a `mesh`, `fnn.distributed.prepare`
    splits each batch over it (and wraps the model to say so). Returns (model, carry, train, val, loop)."""
    if mesh is None:
        return (model, *jax.device_put((carry, train, val)), loop)
    if isinstance(train, Buckets):
        raise ValueError("fit: Buckets (training data in parts) does not run under mesh= yet; give one of them")
    return distributed.prepare(mesh, model, carry, train, val, batch_size=batch_size, loop=loop)


def _check_metrics(metrics) -> tuple:
    """fit's `metrics` dict as `(name, fn)` pairs (hashable: the loops are cached by them)."""
    if metrics is None:
        return ()
    if not isinstance(metrics, dict) or not all(isinstance(k, str) and callable(f) for k, f in metrics.items()):
        raise TypeError(f"fit: metrics must be a dict {{name: fn(logits, labels) -> scalar}}, got {metrics!r}")
    taken = [k for k in metrics if k in ("loss", "accuracy", "objective", "steps", "report_loss") or not k]
    if taken:
        raise ValueError(f"fit: metric names {taken} are taken by fit's own history; rename them")
    return tuple(metrics.items())


def _restage(run: _Run, carry: Carry, loop: str, epoch: int) -> tuple[_Run, Carry]:
    """Under progressive unfreezing, the stage of `epoch`: when it starts new blocks, its model
    (frozen layers wrapped), optimizer (one group per stage, states carried over) and loops."""
    if run.schedule is None:
        return run, carry
    stage = stage_at(run.schedule, *run.base, epoch, carry.params, carry.state)
    if stage.started == run.started:
        return run, carry
    carry = carry._replace(opt_state=carry_over(stage, carry.opt_state, carry.params))
    run = run._replace(model=stage.model, optimizer=stage.optimizer, started=stage.started,
                       loops=run.make_loops(stage.model, stage.optimizer, loop))
    return run, carry


def _loops(model, loss, optimizer, grads, report_loss, loop, extra=()) -> dict:
    kw = {"grads": grads, "report_loss": report_loss, "extra": extra}
    made = {"scan": lambda: make_epoch(model, loss, optimizer, **kw),
            "step": lambda: make_step_loop(model, loss, optimizer, **kw)}
    return {name: build() for name, build in made.items() if loop in ("auto", name)}


def _train_epoch(run: _Run, carry: Carry, loop: str, epoch: int) -> tuple[Carry, str, int]:
    """One epoch of shuffled full batches; under loop="auto" its first steps race the loops.

    The guard: the step loss is checked as it goes (`carry.bad`, no per-step selects);
    after an epoch with a non-finite loss at step k, the epoch is replayed from its
    start up to step k, so the carry holds the last finite values. Returns (carry, loop, k or -1)."""
    epoch_plan = plan(run.key, epoch, run.examples, run.batch_size)
    carry = restart(carry)
    start = copy(carry)
    done = 0
    if loop == "auto":
        carry, loop, done = race(run.loops, carry, run.data, epoch_plan, run.steps,
                                 total_steps=run.steps * (run.epochs - epoch))
    carry = run.loops[loop](carry, run.data, epoch_plan, done, run.steps)
    bad = int(carry.bad)
    if bad >= 0:
        carry = run.loops[loop](start, run.data, epoch_plan, 0, bad)
    return carry, loop, bad


def _learning_rate(optimizer, steps_done: int):
    """The rate of the epoch's last update, read from the optimizer's schedule."""
    rate_at = getattr(optim, "learning_rate_at", None)
    if rate_at is None or not isinstance(optimizer, optim.Optimizer):
        return None
    return rate_at(optimizer, max(steps_done - 1, 0))


def _new_history(given: dict | None, objective: bool, extra: tuple = (), staged: bool = False) -> dict:
    """A fresh history, continuing the lists of `given` (copied, never changed in place)."""
    keys = (*HISTORY_KEYS, "train_objective") if objective else HISTORY_KEYS
    keys += tuple(f"{split}_{name}" for name, _ in extra for split in ("train", "val"))
    keys += ("trainable",) if staged else ()
    history = {k: [] for k in keys}
    for k, v in (given or {}).items():
        history[k] = list(v) if isinstance(v, list) else v
    return history


def _record(run: _Run, history: dict, carry: Carry, val: dict | None, seconds: float, epoch: int) -> None:
    m = means(carry)
    history["train_loss"].append(m["loss"])
    history["train_accuracy"].append(m["accuracy"])
    if "train_objective" in history:
        history["train_objective"].append(m["objective"])
    history["val_loss"].append(val["loss"] if val else None)
    history["val_accuracy"].append(val.get("accuracy") if val else None)
    history["epoch_seconds"].append(seconds)
    history["learning_rate"].append(_learning_rate(run.optimizer, (epoch + 1) * run.steps))
    for name, _ in run.extra:
        history[f"train_{name}"].append(m.get(name))
        history[f"val_{name}"].append(val.get(name) if val else None)
    if run.schedule is not None:
        history["trainable"].append(list(run.schedule.trainable(epoch)))


class _Stopper:
    """Early stopping on the validation loss; remembers the best carry."""

    def __init__(self, patience):
        self.patience, self.best, self.best_carry, self.wait = patience, math.inf, None, 0

    def should_stop(self, value, carry) -> bool:
        if self.patience is None:
            return False
        if value < self.best:
            self.best, self.best_carry, self.wait = value, copy(carry), 0
            return False
        self.wait += 1
        return self.wait >= self.patience


def _after_epoch(epoch, bad, carry, history, val, stopper) -> tuple[Carry, bool]:
    """Decide whether to stop after `epoch`; returns (carry, stop)."""
    if bad >= 0:
        history["stopped"] = (f"non-finite loss at epoch {epoch + 1}, step {bad + 1}; "
                              f"kept the last finite parameters")
        print(f"fit: {history['stopped']}")
        return carry, True
    if val is None:
        return carry, False
    carry = carry._replace(plateau=jnp.asarray(val["loss"], jnp.float32))
    if stopper.should_stop(val["loss"], carry):
        history["stopped"] = f"early stopping after epoch {epoch + 1}; restored the best epoch"
        return stopper.best_carry, True
    return carry, False


class _Lines(NamedTuple):
    """Progress for a log file: one plain line per epoch, never a `\r` update."""
    epochs: int               # the epoch fit stops at
    stream: Any

    def close(self) -> None:
        self.stream.flush()


def _progress(first: int, epochs: int, enabled: bool):
    """A live tqdm bar on a terminal (or in a notebook); plain lines when stderr is a file or pipe."""
    if not enabled:
        return None
    stream = sys.stderr
    if getattr(stream, "isatty", lambda: False)() or "ipykernel" in sys.modules:
        from tqdm.auto import tqdm
        return tqdm(total=epochs, initial=first, unit="epoch", dynamic_ncols=True)
    return _Lines(epochs, stream)


def _show(bar, history, epoch: int) -> None:
    if bar is None:
        return
    out = {}
    for key, label in (("train_loss", "loss"), ("train_accuracy", "acc"), ("val_loss", "val_loss"),
                       ("val_accuracy", "val_acc")):
        if history[key][-1] is not None:
            out[label] = f"{history[key][-1]:.4f}"
    if isinstance(bar, _Lines):
        values = "  ".join(f"{k} {v}" for k, v in out.items())
        print(f"epoch {epoch + 1}/{bar.epochs}  {values}  ({history['epoch_seconds'][-1]:.1f} s)",
              file=bar.stream, flush=True)
        return
    bar.set_postfix(out, refresh=False)
    bar.update(1)


def _epoch_and_report(run: _Run, carry: Carry, loop: str, epoch: int, history: dict, stopper, bar):
    """Train, evaluate and report one epoch; returns (carry, loop, stop)."""
    t0 = time.perf_counter()
    carry, loop, bad = _train_epoch(run, carry, loop, epoch)
    val = score(run.model, carry.params, carry.state, run.val, run.report, 1000, run.extra) if run.val else None
    _record(run, history, carry, val, time.perf_counter() - t0, epoch)
    history["loop"] = loop
    _show(bar, history, epoch)
    carry, stop = _after_epoch(epoch, bad, carry, history, val, stopper)
    return carry, loop, stop


def _setup(model, params, state, optimizer, train, val, *, loss, grads, report_loss, loop, mesh, key,
           batch_size, epochs, opt_state, extra, schedule) -> tuple[_Run, Carry, str]:
    """Checked data and the carry on the device(s), and what stays fixed: (run, carry, loop)."""
    train, val = _checked_data(model, params, state, train, val, batch_size)
    if opt_state is None and schedule is None:        # with a schedule, the first stage makes it
        opt_state = optimizer.init(params)
    base = (model, optimizer)
    carry = new_carry(params, state, opt_state, extra=tuple(name for name, _ in extra))
    model, carry, train, val, loop = _place(model, carry, train, val, mesh, batch_size, loop)
    carry = copy(carry)                        # the loops donate the carry; the caller's arrays stay valid
    n, steps = _sizes(train), steps_per_epoch(train, batch_size)
    make_loops = lambda m, o, lp: _loops(m, loss, o, grads, report_loss, lp, extra)
    run = _Run(model, optimizer, report_loss or loss, make_loops(model, optimizer, loop), train, val, key,
               batch_size, n, steps, epochs, extra, make_loops, schedule, base, ())
    return run, carry, loop


def fit(model: Layer, params, state, optimizer, train, *, loss: Callable, epochs: int,
        batch_size: int, key: jax.Array, val=None, grads: str = "autodiff", loop: str = "auto",
        early_stopping: int | None = None, progress: bool = True, opt_state=None,
        initial_epoch: int = 0, history: dict | None = None, on_epoch: Callable | None = None,
        report_loss: Callable | None = None, mesh=None, metrics: dict | None = None,
        trainable=None) -> tuple[Any, Any, Any, dict]:
    """Train `model` on `train = (x, y)` for `epochs` epochs of shuffled full batches.
    `train = Buckets(((x1, y1), (x2, y2), ...))` trains on parts of different shapes (sequences
    padded to each part's length): every batch comes from one part (fnn.train.Buckets).

    x, y: arrays or pytrees of arrays, examples first; `y = (labels, weights)` weighs the
    loss and accuracy. loop="scan" runs each epoch as ONE compiled loop of docs/design.md §5's step,
    "step" as one jitted step per batch, "auto" races both on epoch 1's first steps. `val`'s
    loss is the optimizer's `value=`; `early_stopping=k` (needs `val`) stops after k epochs
    without a better one and restores the best. A non-finite loss stops, keeping the last
    finite values. `report_loss` (default `loss`) is the loss history reports for both splits
    (plain cross-entropy when `loss` smooths labels; `train_objective` then holds `loss`).
    `metrics={"top3": fn}`: history gets `train_top3` (the mean of fn(logits, labels) over the
    epoch's batches, in the loop) and `val_top3` (fn over the whole val split). `trainable`:
    progressive unfreezing, `{epoch: layer names}` or `unfreeze_schedule(...)` (fnn/train/unfreeze.py).
    Epoch e shuffles with `fold_in(key, e)`: `initial_epoch`, `opt_state`, `history` (copied)
    resume exactly. `on_epoch(epoch, params, state, opt_state, history)` runs after each epoch.
    `mesh` (a `jax.sharding.Mesh` or `fnn.distributed.plan(...)`) trains data-parallel over its
    devices, and across processes after `fnn.distributed.initialize` (see fnn.distributed).
    """
    _check_arguments(grads, loop, epochs, batch_size, early_stopping, val)
    extra, schedule = _check_metrics(metrics), None if trainable is None else unfreeze_schedule(trainable)
    if schedule is not None and mesh is not None:
        raise ValueError("fit: trainable= (progressive unfreezing) does not run under mesh= yet; give one of them")
    run, carry, loop = _setup(model, params, state, optimizer, train, val, loss=loss, grads=grads,
                              report_loss=report_loss, loop=loop, mesh=mesh, key=key, batch_size=batch_size,
                              epochs=epochs, opt_state=opt_state, extra=extra, schedule=schedule)
    history = _new_history(history, report_loss is not None, extra, schedule is not None)
    stopper, bar = _Stopper(early_stopping), _progress(initial_epoch, epochs, progress)
    try:
        for epoch in range(initial_epoch, epochs):
            run, carry = _restage(run, carry, loop, epoch)
            carry, loop, stop = _epoch_and_report(run, carry, loop, epoch, history, stopper, bar)
            if on_epoch is not None and not stop:
                on_epoch(epoch, carry.params, carry.state, carry.opt_state, history)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return carry.params, carry.state, carry.opt_state, history
