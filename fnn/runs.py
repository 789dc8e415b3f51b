"""Run directories: train with a checkpoint per epoch, resume, survive Ctrl-C, evaluate, predict.

A run directory holds `config.json` (the recipe), `checkpoint.safetensors` (params, state,
optimizer state, the epoch and the history, after every epoch), `best.safetensors` (the epoch
with the lowest validation loss, or training loss without a validation set), `history.json`
and `curves.png`. Nothing is written before every argument has been checked.
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
from typing import Any, NamedTuple

import jax
import numpy as np

from . import checkpoint, data, distributed, losses
from .run_config import (
    CHANGEABLE_ON_RESUME,
    SETTINGS,
    RunError,
    UsageError,
    build_model,
    build_optimizer,
    check_config,
    check_sizes,
    defaults_for,
    flag,
)
from .train import evaluate, fit

RUN_FILES = ("config.json", "checkpoint.safetensors", "best.safetensors", "history.json", "curves.png")
IMAGE_SHAPE = (28, 28, 1)


class Setup(NamedTuple):
    model: Any
    params: Any
    state: Any
    optimizer: Any
    key: jax.Array


# ------------------------------------------------------------------ run directories

def next_run_dir(root: Path, model: str) -> Path:
    """Claim `root/<model>-NNN` with the next free number (mkdir is atomic, so two runs never share)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [p.name[len(model) + 1:] for p in root.glob(f"{model}-*")]
    number = max([int(t) for t in taken if t.isdigit()], default=0) + 1
    while True:
        try:
            path = root / f"{model}-{number:03d}"
            path.mkdir()
            return path
        except FileExistsError:
            number += 1


def describe(run_dir: Path) -> str:
    """'mlp on fashion-mnist, 3 of 10 epochs done' (or what is known of it)."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        done = _epochs_done(run_dir)
        return f"{cfg['model']} on {cfg['dataset']}, {done} of {cfg['epochs']} epochs done"
    except (OSError, ValueError, KeyError, RunError):
        return "an unreadable run"


def check_out(out: Path, overwrite: bool, prog: str) -> None:
    """Refuse an `--out` that is a file, or a non-empty directory without --overwrite."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if overwrite or not out.exists() or not any(out.iterdir()):
        return
    if (out / "config.json").exists():
        raise UsageError(f"--out {out} already holds a run ({describe(out)}); continue it with "
                         f"`{prog} train --resume {out} [--epochs N]`, or add --overwrite to replace it")
    raise UsageError(f"--out {out} is a directory with other files in it; choose a new directory, "
                     f"or add --overwrite to write the run there")


def _make_run_dir(out: str | None, cfg: dict, overwrite: bool) -> tuple[Path, bool]:
    """The run directory, and whether this command created it."""
    if out is None:
        return next_run_dir(Path("runs"), cfg["model"]), True
    path, created = Path(out), not Path(out).exists()
    path.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    return path, created


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _read_config(run_dir: Path) -> dict:
    if not (run_dir / "config.json").is_file():
        raise UsageError(f"{run_dir}: no config.json there (not a run directory)")
    try:
        return defaults_for(json.loads((run_dir / "config.json").read_text()))
    except ValueError as err:
        raise RunError(f"{run_dir / 'config.json'} is not valid JSON ({err})") from None


def _epochs_done(run_dir: Path) -> int:
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        return 0
    try:
        return checkpoint.read_info(path).step or 0
    except (OSError, ValueError) as err:
        raise RunError(str(err).removeprefix("load: ")) from None


# ----------------------------------------------------------------------- set-up

def _load(cfg: dict, data_dir=None, download=False):
    try:
        train = data.load_dataset(cfg["dataset"], "train", data_dir=data_dir, download=download)
        test = data.load_dataset(cfg["dataset"], "test", data_dir=data_dir, download=download)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise RunError(str(err)) from None
    check_sizes(cfg, train[0].shape[0])
    if cfg["limit"]:
        train = (train[0][:cfg["limit"]], train[1][:cfg["limit"]])
    return train, test


def _setup(cfg: dict, n_train: int) -> Setup:
    """Model, initial params and state, and the optimizer for `n_train` examples per epoch."""
    model = build_model(cfg)
    key = jax.random.PRNGKey(cfg["seed"])
    _, params, state = model.init(jax.random.fold_in(key, 0), IMAGE_SHAPE)
    optimizer = build_optimizer(cfg, max(n_train // cfg["batch_size"], 1))
    return Setup(model, params, state, optimizer, key)


def _split(cfg: dict, train, key):
    return data.train_val_split(train[0], train[1], cfg["val_size"], jax.random.fold_in(key, 1))


def _load_weights(path: Path, setup: Setup):
    """(params, state, opt_state, epoch, metadata) from a checkpoint; RunError names what is wrong."""
    like_opt = setup.optimizer.init(setup.params)
    try:
        params, state, opt_state, epoch = checkpoint.load_training(path, setup.params, setup.state, like_opt)
        meta = checkpoint.read_info(path).metadata or {}
    except (OSError, ValueError) as err:
        raise RunError(str(err).removeprefix("load: ").removeprefix("load_training: ")) from None
    return params, state, opt_state, epoch, meta


def training_loss(cfg: dict):
    """Softmax cross-entropy with the run's label smoothing (a Loss record: its hand gradient comes along).
    The history and progress bar report plain cross-entropy on every split (`fit(report_loss=...)`)."""
    return losses.softmax_cross_entropy.partial(label_smoothing=cfg.get("label_smoothing", 0.0))


# ------------------------------------------------------------------------ train

def train(args) -> int:
    """`train`: a new run, or `--resume` one; every argument is checked before anything is written."""
    distributed.initialize(getattr(args, "coordinator", None), getattr(args, "processes", None),
                           getattr(args, "process_id", None))     # before any other JAX work
    given = {k: getattr(args, k) for k in SETTINGS if hasattr(args, k)}
    if args.resume:
        return _resume(args, given)
    cfg = defaults_for(given)
    check_config(cfg)
    if jax.process_count() > 1 and args.out is None:
        raise UsageError("--processes: give every process the same --out (a directory all of them can read)")
    if args.out is not None and distributed.is_main():
        check_out(Path(args.out), args.overwrite, args.prog)
    train_set, test_set = _load(cfg, args.data_dir, args.download)
    setup = _setup(cfg, train_set[0].shape[0] - cfg["val_size"])
    if not distributed.is_main():                                   # process 0 writes the run directory
        return _train_run(cfg, Path(args.out), setup, (train_set, test_set), None, args, False)
    try:
        run_dir, created = _make_run_dir(args.out, cfg, args.overwrite)
    except OSError as err:
        raise UsageError(f"cannot create the run directory: {err}") from None
    _atomic_json(run_dir / "config.json", cfg)
    return _train_run(cfg, run_dir, setup, (train_set, test_set), None, args, created)


def _resume(args, given: dict) -> int:
    run_dir = Path(args.resume)
    if args.out is not None or args.overwrite:
        raise UsageError(f"{'--out' if args.out is not None else '--overwrite'} cannot be combined with --resume")
    cfg = _read_config(run_dir)
    for k, v in given.items():
        if k not in CHANGEABLE_ON_RESUME and v != cfg[k]:
            raise UsageError(f"{flag(k)} cannot change on resume ({run_dir} was trained with {flag(k)} "
                             f"{cfg[k]}); start a new run to change it")
    cfg_new, done = {**cfg, **{k: given[k] for k in CHANGEABLE_ON_RESUME if k in given}}, _epochs_done(run_dir)
    check_config(cfg_new)
    if cfg_new["epochs"] < done:
        raise UsageError(f"--epochs {cfg_new['epochs']} is below the {done} epochs {run_dir} has finished")
    if done == cfg_new["epochs"]:
        print(f"{run_dir}: all {done} epochs are done{_stored_test(run_dir)}; nothing to train "
              f"(pass --epochs N above {done} to train longer)")
        return 0
    train_set, test_set = _load(cfg_new, args.data_dir, args.download)
    setup = _setup(cfg_new, train_set[0].shape[0] - cfg["val_size"])
    resumed = _load_weights(run_dir / "checkpoint.safetensors", setup) if done else None
    if cfg_new["epochs"] != cfg["epochs"] and cfg["schedule"] != "constant":
        print(f"the {cfg['schedule']} schedule now spans {cfg_new['epochs']} epochs instead of {cfg['epochs']}")
    if distributed.is_main():
        _atomic_json(run_dir / "config.json", cfg_new)
    return _train_run(cfg_new, run_dir, setup, (train_set, test_set), resumed, args, False)


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


def _on_epoch(run_dir: Path, seconds: float, has_val: bool, t0: float):
    """After each epoch: the checkpoint (with the history), best.safetensors when better, history.json."""
    best = {"value": _best_so_far(run_dir)}
    criterion = "validation loss" if has_val else "training loss"

    def on_epoch(epoch, params, state, opt_state, history):
        with _deferred_interrupt():
            record = {**history, "wall_seconds": seconds + time.perf_counter() - t0}
            _save_epoch(epoch, params, state, opt_state, record)

    def _save_epoch(epoch, params, state, opt_state, record):
        checkpoint.save_training(run_dir / "checkpoint.safetensors", params, state, opt_state, epoch + 1,
                                 metadata={"history": record})
        value = record["val_loss" if has_val else "train_loss"][-1]
        if value is not None and value < best["value"]:
            best["value"] = value
            checkpoint.save_training(run_dir / "best.safetensors", params, state, opt_state, epoch + 1,
                                     metadata={"criterion": criterion, "value": value, "epoch": epoch + 1})
        _atomic_json(run_dir / "history.json", record)
    return on_epoch


@contextlib.contextmanager
def _deferred_interrupt():
    """Hold Ctrl-C until the block is done (an epoch's files are written together), then raise it."""
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    except ValueError:                                  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def _train_run(cfg, run_dir, setup: Setup, sets, resumed, args, created) -> int:
    """Fit (from `resumed` = load_weights' tuple, if given), then test, save and report."""
    (train_set, test_set), model = sets, setup.model
    fit_set, val_set = _split(cfg, train_set, setup.key)
    params, state, opt_state, start, history = setup.params, setup.state, None, 0, {}
    if resumed is not None:
        params, state, opt_state, start, meta = resumed
        history = _history_of(run_dir, meta)
        print(f"resuming {run_dir} after epoch {start}, training to epoch {cfg['epochs']}")
    print(f"training {cfg['model']} on {cfg['dataset']}: {fit_set[0].shape[0]} train / "
          f"{0 if val_set is None else val_set[0].shape[0]} val examples, grads={cfg['grads']}; run: {run_dir}")
    t0, seconds = time.perf_counter(), history.get("wall_seconds", 0.0)
    try:
        params, state, _, history = fit(
            model, params, state, setup.optimizer, fit_set, loss=training_loss(cfg), epochs=cfg["epochs"],
            batch_size=cfg["batch_size"], key=jax.random.fold_in(setup.key, 2), val=val_set,
            grads=cfg["grads"], loop=cfg["loop"], progress=not args.no_progress and distributed.is_main(),
            opt_state=opt_state, initial_epoch=start, history=history,
            on_epoch=_on_epoch(run_dir, seconds, val_set is not None, t0) if distributed.is_main() else None,
            report_loss=losses.softmax_cross_entropy, mesh=distributed.data_mesh() if jax.device_count() > 1 else None)
        params, state = distributed.gather((params, state))         # whole, on every process
        result = evaluate(model, params, state, test_set, loss=losses.softmax_cross_entropy)
    except KeyboardInterrupt:
        return interrupted(run_dir, args.prog, created)
    history = {**history, "test": result, "wall_seconds": seconds + time.perf_counter() - t0}
    if distributed.is_main():                                       # one process writes the run's files
        _atomic_json(run_dir / "history.json", history)
        _plot(run_dir, history)
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"({history['wall_seconds']:.1f} s, loop={history['loop']})  run: {run_dir}")
    return 0


def interrupted(run_dir: Path, prog: str, created: bool) -> int:
    """Ctrl-C: one line saying which epoch is safe and how to go on; curves of the finished epochs."""
    done = _epochs_done(run_dir)
    if done == 0:
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()
        print(f"{prog} train: interrupted before the first epoch finished; nothing was kept", file=sys.stderr)
        return 130
    try:
        history = _history_of(run_dir, checkpoint.read_info(run_dir / "checkpoint.safetensors").metadata or {})
        _atomic_json(run_dir / "history.json", history)
        _plot(run_dir, history)
    except (OSError, ValueError):
        pass
    print(f"{prog} train: interrupted; epoch {done} was the last to finish and its checkpoint is safe in "
          f"{run_dir}; continue with: {prog} train --resume {run_dir}", file=sys.stderr)
    return 130


def _plot(run_dir, history) -> None:
    with contextlib.suppress(ImportError):          # matplotlib is optional (the plot extra)
        from .viz import plot_history
        plot_history(history, run_dir / "curves.png")


# ------------------------------------------------------------ evaluate and predict

def _checkpoint_path(run_dir: Path, which: str) -> Path:
    path = run_dir / ("checkpoint.safetensors" if which == "last" else "best.safetensors")
    if not path.exists():
        raise UsageError(f"{run_dir}: no {path.name} there (train first)")
    return path


def evaluate_run(args) -> int:
    """`evaluate RUN [--checkpoint last|best] [--split test|train|val]`: accuracy and loss."""
    run_dir = Path(args.run_dir)
    path = _checkpoint_path(run_dir, args.checkpoint)
    cfg = _read_config(run_dir)
    setup = _setup(cfg, cfg["batch_size"])          # the optimizer only as a template: any schedule length
    params, state, _, epoch, meta = _load_weights(path, setup)
    train_set, test_set = _load(cfg, args.data_dir, False)
    fit_set, val_set = _split(cfg, train_set, setup.key)
    split = {"test": test_set, "train": fit_set, "val": val_set}[args.split]
    if split is None:
        raise UsageError(f"--split val: {run_dir} held out no validation examples (--val-size 0)")
    result = evaluate(setup.model, params, state, split, loss=losses.softmax_cross_entropy)
    which = (f"best checkpoint (epoch {epoch}, lowest {meta.get('criterion', 'loss')})"
             if args.checkpoint == "best" else f"last checkpoint (epoch {epoch})")
    print(f"{run_dir}: {which}: {args.split} accuracy {result['accuracy']:.4f}, "
          f"{args.split} loss {result['loss']:.4f} (cross-entropy, no smoothing)")
    return 0 if math.isfinite(result["loss"]) else 1


def load_run(run_dir: str | os.PathLike, which: str = "last"):
    """`(config, model, params, state, epoch)` from a run directory's last or best checkpoint."""
    run_dir = Path(run_dir)
    path = _checkpoint_path(run_dir, which)
    cfg = _read_config(run_dir)
    setup = _setup(cfg, cfg["batch_size"])              # the optimizer only as a template
    params, state, _, epoch, _ = _load_weights(path, setup)
    return cfg, setup.model, params, state, epoch


def predict_run(args) -> int:
    """`predict RUN IMAGE...`: the top classes of each image with their probabilities."""
    _checkpoint_path(Path(args.run_dir), args.checkpoint)
    try:
        images = np.stack([data.load_image(p, IMAGE_SHAPE) for p in args.images])
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    cfg, model, params, state, _ = load_run(args.run_dir, args.checkpoint)
    logits, _ = model.apply(params, state, images, train=False)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    names = data.CLASS_NAMES[cfg["dataset"]]
    for image, p in zip(args.images, probs):
        top = np.argsort(-p)[:args.top]
        print(f"{image}: " + ", ".join(f"{names[i]} {p[i]:.3f}" for i in top))
    return 0
