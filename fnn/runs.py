"""The run commands: `train` with a checkpoint per epoch (resume, a time budget, Ctrl-C), `evaluate`
and `predict`. Run directories and their files are `fnn.rundir`; nothing is written before every
argument has been checked.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import jax
import numpy as np

from . import checkpoint, data, distributed, losses, report
from ._optional import MissingDependency, require
from .run_config import CHANGEABLE_ON_RESUME, SETTINGS, UsageError, check_config, defaults_for, flag
from .rundir import (  # noqa: F401  (next_run_dir, describe, load_run: the public names of fnn.runs)
    IMAGE_SHAPE,
    RUN_FILES,
    Setup,
    atomic_json,
    check_out,
    checkpoint_path,
    describe,
    discard_unfinished,
    epochs_done,
    load_data,
    load_run,
    load_weights,
    make_run_dir,
    next_run_dir,
    read_config,
    setup,
    split,
    training_loss,
)
from .train import evaluate, fit, predict


class BudgetSpent(Exception):
    """Raised by the epoch callback when --minutes is used up: the epoch's checkpoint is written."""

    def __init__(self, epoch: int, params, state, history: dict):
        super().__init__(f"budget spent after epoch {epoch + 1}")
        self.epoch, self.params, self.state, self.history = epoch, params, state, history


def device_line() -> str:
    """'device: cpu (2 cores)', 'device: gpu (NVIDIA A100-SXM4-40GB) x 4': what JAX trains on."""
    devices = jax.devices()
    kind = devices[0].device_kind
    what = f"{os.cpu_count()} cores" if devices[0].platform == "cpu" and kind.lower() == "cpu" else kind
    count = f" x {len(devices)}" if len(devices) > 1 else ""
    return f"device: {devices[0].platform} ({what}){count}"


# ------------------------------------------------------------------------ train

def train(args) -> int:
    """`train`: a new run, or `--resume` one; every argument is checked before anything is written."""
    distributed.initialize(getattr(args, "coordinator", None), getattr(args, "processes", None),
                           getattr(args, "process_id", None))     # before any other JAX work
    _check_budget(args)
    given = {k: getattr(args, k) for k in SETTINGS if hasattr(args, k)}
    if args.resume:
        return _resume(args, given)
    cfg = defaults_for(given)
    check_config(cfg)
    if jax.process_count() > 1 and args.out is None:
        raise UsageError("--processes: give every process the same --out (a directory all of them can read)")
    if args.out is not None and distributed.is_main():
        check_out(Path(args.out), args.overwrite, args.prog)
    train_set, test_set = load_data(cfg, args.data_dir, args.download)
    run = setup(cfg, train_set[0].shape[0] - cfg["val_size"])
    if not distributed.is_main():                                   # process 0 writes the run directory
        return _train_run(cfg, Path(args.out), run, (train_set, test_set), None, args, False)
    run_dir, created = make_run_dir(args.out, cfg["model"], args.overwrite)
    atomic_json(run_dir / "config.json", cfg)
    return _train_run(cfg, run_dir, run, (train_set, test_set), None, args, created)


def _check_budget(args) -> None:
    minutes = getattr(args, "minutes", None)
    if minutes is None:
        return
    if not (math.isfinite(minutes) and minutes > 0):
        raise UsageError(f"--minutes must be a positive number, got {minutes}")
    if jax.process_count() > 1:
        raise UsageError("--minutes cannot be combined with --processes (each process would stop on its own clock)")


def _resume(args, given: dict) -> int:
    run_dir = Path(args.resume)
    if args.out is not None or args.overwrite:
        raise UsageError(f"{'--out' if args.out is not None else '--overwrite'} cannot be combined with --resume")
    cfg = read_config(run_dir)
    for k, v in given.items():
        if k not in CHANGEABLE_ON_RESUME and v != cfg[k]:
            raise UsageError(f"{flag(k)} cannot change on resume ({run_dir} was trained with {flag(k)} "
                             f"{cfg[k]}); start a new run to change it")
    cfg_new, done = {**cfg, **{k: given[k] for k in CHANGEABLE_ON_RESUME if k in given}}, epochs_done(run_dir)
    check_config(cfg_new)
    if cfg_new["epochs"] < done:
        raise UsageError(f"--epochs {cfg_new['epochs']} is below the {done} epochs {run_dir} has finished")
    if done == cfg_new["epochs"]:
        print(f"{run_dir}: all {done} epochs are done{_stored_test(run_dir)}; nothing to train "
              f"(pass --epochs N above {done} to train longer)")
        return 0
    train_set, test_set = load_data(cfg_new, args.data_dir, args.download)
    run = setup(cfg_new, train_set[0].shape[0] - cfg_new["val_size"])
    resumed = load_weights(run_dir / "checkpoint.safetensors", run) if done else None
    if cfg_new["epochs"] != cfg["epochs"] and cfg["schedule"] != "constant":
        print(f"the {cfg['schedule']} schedule now spans {cfg_new['epochs']} epochs instead of {cfg['epochs']}")
    if distributed.is_main():
        atomic_json(run_dir / "config.json", cfg_new)
    return _train_run(cfg_new, run_dir, run, (train_set, test_set), resumed, args, False)


def _stored_test(run_dir: Path) -> str:
    try:
        test = json.loads((run_dir / "history.json").read_text())["test"]
        return f" (test accuracy {test['accuracy']:.4f})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _history_of(run_dir: Path, meta: dict) -> dict:
    if "history" in meta:
        return meta["history"]
    return json.loads((run_dir / "history.json").read_text())   # runs written before histories were stored


def _best_so_far(run_dir: Path) -> float:
    try:
        return float((checkpoint.read_info(run_dir / "best.safetensors").metadata or {})["value"])
    except (OSError, ValueError, KeyError, TypeError):
        return math.inf


def _on_epoch(run_dir: Path, seconds: float, has_val: bool, t0: float, deadline: float | None, epochs: int):
    """After each epoch: the checkpoint (with the history), best.safetensors when better, history.json;
    then BudgetSpent when the --minutes `deadline` has passed and epochs remain."""
    best = {"value": _best_so_far(run_dir)}
    criterion = "validation loss" if has_val else "training loss"

    def on_epoch(epoch, params, state, opt_state, history):
        with _deferred_interrupt():
            record = {**history, "wall_seconds": seconds + time.perf_counter() - t0}
            _save_epoch(epoch, params, state, opt_state, record)
        if deadline is not None and time.perf_counter() >= deadline and epoch + 1 < epochs:
            raise BudgetSpent(epoch, params, state, history)

    def _save_epoch(epoch, params, state, opt_state, record):
        checkpoint.save_training(run_dir / "checkpoint.safetensors", params, state, opt_state, epoch + 1,
                                 metadata={"history": record})
        value = record["val_loss" if has_val else "train_loss"][-1]
        if value is not None and value < best["value"]:
            best["value"] = value
            checkpoint.save_training(run_dir / "best.safetensors", params, state, opt_state, epoch + 1,
                                     metadata={"criterion": criterion, "value": value, "epoch": epoch + 1})
        atomic_json(run_dir / "history.json", record)
    return on_epoch


@contextlib.contextmanager
def _deferred_interrupt():
    """Hold Ctrl-C until the block is done (an epoch's files are written together), then raise it.
    A process that ignores SIGINT (started in the background, or under nohup) keeps ignoring it."""
    received = []
    try:
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            raise ValueError("SIGINT is ignored")
        previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    except ValueError:                                  # not the main thread, or SIGINT ignored: nothing to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _announce(cfg, run_dir, fit_set, val_set, start, args) -> None:
    print(device_line())
    if start:
        print(f"resuming {run_dir} after epoch {start}, training to epoch {cfg['epochs']}")
    budget = f", budget {args.minutes:g} min" if getattr(args, "minutes", None) else ""
    print(f"training {cfg['model']} on {cfg['dataset']}: {fit_set[0].shape[0]} train / "
          f"{0 if val_set is None else val_set[0].shape[0]} val examples, grads={cfg['grads']}{budget}; "
          f"run: {run_dir}", flush=True)


def _fit(cfg, run_dir, run: Setup, fit_set, val_set, begun, args):
    """`fit` from `begun` = (params, state, opt_state, start epoch, history); (params, state, history,
    the epoch it stopped after when --minutes ran out, else None)."""
    params, state, opt_state, start, history = begun
    t0, seconds = time.perf_counter(), history.get("wall_seconds", 0.0)
    deadline = t0 + 60 * args.minutes if getattr(args, "minutes", None) else None
    on_epoch = _on_epoch(run_dir, seconds, val_set is not None, t0, deadline, cfg["epochs"])
    try:
        params, state, _, history = fit(
            run.model, params, state, run.optimizer, fit_set, loss=training_loss(cfg), epochs=cfg["epochs"],
            batch_size=cfg["batch_size"], key=jax.random.fold_in(run.key, 2), val=val_set,
            grads=cfg["grads"], loop=cfg["loop"], progress=not args.no_progress and distributed.is_main(),
            opt_state=opt_state, initial_epoch=start, history=history,
            on_epoch=on_epoch if distributed.is_main() else None, report_loss=losses.softmax_cross_entropy,
            mesh=distributed.data_mesh() if jax.device_count() > 1 else None)
    except BudgetSpent as spent:
        return spent.params, spent.state, {**spent.history}, spent.epoch + 1
    return params, state, history, None


def _train_run(cfg, run_dir, run: Setup, sets, resumed, args, created) -> int:
    """Fit (from `resumed` = load_weights' tuple, if given), then test, save and report."""
    train_set, test_set = sets
    fit_set, val_set = split(cfg, train_set, run.key)
    begun = (run.params, run.state, None, 0, {})
    if resumed is not None:
        begun = (*resumed[:4], _history_of(run_dir, resumed[4]))
    _announce(cfg, run_dir, fit_set, val_set, begun[3], args)
    t0, seconds = time.perf_counter(), begun[4].get("wall_seconds", 0.0)
    try:
        params, state, history, stopped = _fit(cfg, run_dir, run, fit_set, val_set, begun, args)
        params, state = distributed.gather((params, state))         # whole, on every process
        result = evaluate(run.model, params, state, test_set, loss=losses.softmax_cross_entropy)
    except KeyboardInterrupt:
        return interrupted(run_dir, args.prog, created)
    history = {**history, "test": result, "wall_seconds": seconds + time.perf_counter() - t0}
    if distributed.is_main():                                       # one process writes the run's files
        atomic_json(run_dir / "history.json", history)
        _plot(run_dir, history)
    if stopped is not None:
        print(f"stopped after epoch {stopped} of {cfg['epochs']}: the --minutes {args.minutes:g} budget is spent; "
              f"its checkpoint is safe; continue with: {args.prog} train --resume {run_dir}")
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"({history['wall_seconds']:.1f} s, loop={history.get('loop')})  run: {run_dir}")
    return 0


def interrupted(run_dir: Path, prog: str, created: bool) -> int:
    """Ctrl-C: one line saying which epoch is safe and how to go on; curves of the finished epochs."""
    done = epochs_done(run_dir)
    if done == 0:
        return discard_unfinished(run_dir, created, prog)
    try:
        history = _history_of(run_dir, checkpoint.read_info(run_dir / "checkpoint.safetensors").metadata or {})
        atomic_json(run_dir / "history.json", history)
        _plot(run_dir, history, quiet=True)
    except (OSError, ValueError):
        pass
    print(f"{prog} train: interrupted; epoch {done} was the last to finish and its checkpoint is safe in "
          f"{run_dir}; continue with: {prog} train --resume {run_dir}", file=sys.stderr)
    return 130


def _plot(run_dir: Path, history: dict, quiet: bool = False) -> None:
    """curves.png, or one line saying it was skipped and which extra installs matplotlib."""
    try:
        require("matplotlib", extra="plot", purpose="curves.png")
    except MissingDependency as err:
        if not quiet:
            print(f"skipped {run_dir / 'curves.png'}: {err}")
        return
    from .viz import plot_history
    plot_history(history, run_dir / "curves.png")


# ------------------------------------------------------------ evaluate and predict

def evaluate_run(args) -> int:
    """`evaluate RUN [--checkpoint last|best] [--split test|train|val] [--limit N]`: accuracy and loss,
    then precision, recall, F1 and support per class, and confusion.png in the run directory."""
    run_dir = Path(args.run_dir)
    path = checkpoint_path(run_dir, args.checkpoint)
    cfg = read_config(run_dir)
    run = setup(cfg, cfg["batch_size"], abstract=True)   # templates: the checkpoint gives the values
    params, state, _, epoch, meta = load_weights(path, run)
    x, labels = _evaluated_split(cfg, run, args)
    found = report.scores(predict(run.model, params, state, x), np.asarray(labels))
    loss, accuracy = float(found["loss"]), float(found["accuracy"])
    which = (f"best checkpoint (epoch {epoch}, lowest {meta.get('criterion', 'loss')})"
             if args.checkpoint == "best" else f"last checkpoint (epoch {epoch})")
    of = f" ({len(labels)} examples)" if getattr(args, "limit", None) else ""
    print(f"{run_dir}: {which}: {args.split} accuracy {accuracy:.4f}, "
          f"{args.split} loss {loss:.4f} (cross-entropy, no smoothing){of}")
    names = data.CLASS_NAMES[cfg["dataset"]]
    print(report.class_table(found, names))
    _confusion_png(run_dir / "confusion.png", found["confusion"], names, f"{args.split} split, {which}{of}")
    return 0 if math.isfinite(loss) else 1


def _evaluated_split(cfg: dict, run: Setup, args) -> tuple:
    """(images, labels) of `--split`, the first `--limit` of them when given."""
    train_set, test_set = load_data(cfg, args.data_dir, False)
    fit_set, val_set = split(cfg, train_set, run.key)
    chosen = {"test": test_set, "train": fit_set, "val": val_set}[args.split]
    if chosen is None:
        raise UsageError(f"--split val: {args.run_dir} held out no validation examples (--val-size 0)")
    if getattr(args, "limit", None) is not None:
        if args.limit < 1:
            raise UsageError(f"--limit must be a positive integer, got {args.limit}")
        chosen = (chosen[0][:args.limit], chosen[1][:args.limit])
    return chosen


def _confusion_png(path: Path, matrix, names, title: str) -> None:
    """confusion.png, or one line saying it was skipped and which extra installs matplotlib."""
    try:
        report.plot_confusion(np.asarray(matrix), names, path, title)
    except MissingDependency as err:
        print(f"skipped {path}: {err}")
        return
    print(f"confusion matrix: {path}")


def _read_inputs(paths: list[str]) -> tuple[np.ndarray, list[str]]:
    """The images as one (N, 28, 28, 1) batch, and a note per image that had to be resized."""
    examples, notes = [], []
    try:
        for path in paths:
            raw = data.read_image(path)
            examples.append(data.to_example(raw, str(path), IMAGE_SHAPE))
            size = raw.shape[:2]
            notes.append("" if size == IMAGE_SHAPE[:2] else f" (resized from {size[0]}x{size[1]} to 28x28)")
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    return np.stack(examples), notes


def predict_run(args) -> int:
    """`predict RUN IMAGE...`: the top classes of each image with their probabilities."""
    checkpoint_path(Path(args.run_dir), args.checkpoint)
    images, notes = _read_inputs(args.inputs)
    cfg, model, params, state, _ = load_run(args.run_dir, args.checkpoint)
    logits, _ = model.apply(params, state, images, train=False)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    names = data.CLASS_NAMES[cfg["dataset"]]
    for image, note, p in zip(args.inputs, notes, probs):
        top = np.argsort(-p)[:args.top]
        print(f"{image}{note}: " + ", ".join(f"{names[i]} {p[i]:.3f}" for i in top))
    return 0
