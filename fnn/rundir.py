"""A run directory's files and set-up: numbering, the recipe in `config.json`, the data set, the model
and optimizer a recipe builds, and the checkpoints (checksum verified before anything is read).

A run directory holds `config.json` (the recipe), `checkpoint.safetensors` (params, state,
optimizer state, the epoch and the history, after every epoch), `best.safetensors` (the epoch
with the lowest validation loss, or training loss without a validation set), `history.json`
and `curves.png`. The commands that use them are `fnn.runs`.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax

from . import checkpoint, data, losses
from .models import ARCH_ARGS
from .run_config import (
    BEFORE_SETTING,
    SETTINGS,
    RunError,
    UsageError,
    build_model,
    build_optimizer,
    check_sizes,
    defaults_for,
    fill_val_size,
)

RUN_FILES = ("config.json", "checkpoint.safetensors", "best.safetensors", "history.json", "curves.png")
IMAGE_SHAPE = (28, 28, 1)


class Setup(NamedTuple):
    model: Any
    params: Any
    state: Any
    optimizer: Any
    key: jax.Array


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
        done = epochs_done(run_dir)
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


def make_run_dir(out: str | None, prefix: str, overwrite: bool) -> tuple[Path, bool]:
    """The run directory (the next free runs/<prefix>-NNN unless `out`), and whether this command
    created it; `overwrite` clears the run files already in `out`."""
    try:
        if out is None:
            return next_run_dir(Path("runs"), prefix), True
        path, created = Path(out), not Path(out).exists()
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the run directory: {err}") from None
    if overwrite:
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    return path, created


def discard_unfinished(run_dir: Path, created: bool, prog: str) -> int:
    """Ctrl-C before the first epoch finished: remove the run's files (and the directory this
    command created, if now empty), say so in one line; returns the exit code 130."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    if created and not any(run_dir.iterdir()):
        run_dir.rmdir()
    print(f"{prog} train: interrupted before the first epoch finished; nothing was kept", file=sys.stderr)
    return 130


def atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def raw_config(run_dir: Path) -> dict:
    """`config.json` as stored: UsageError (exit 2) when the run directory is not there."""
    if not (run_dir / "config.json").is_file():
        what = "no such directory" if not run_dir.is_dir() else "no config.json there (not a run directory)"
        raise UsageError(f"{run_dir}: {what}")
    try:
        return json.loads((run_dir / "config.json").read_text())
    except ValueError as err:
        raise RunError(f"{run_dir / 'config.json'} is not valid JSON ({err})") from None


def read_config(run_dir: Path) -> dict:
    """The run's recipe, every setting filled: runs written before a setting existed get the value they
    were trained with (`BEFORE_SETTING`), else the setting's default."""
    given = {k: v for k, v in raw_config(run_dir).items() if k != "task"}
    takes = ARCH_ARGS.get(given.get("model", SETTINGS["model"][0]), ())
    return defaults_for({**{k: v for k, v in BEFORE_SETTING.items() if k in takes}, **given})


def epochs_done(run_dir: Path) -> int:
    path = run_dir / "checkpoint.safetensors"
    if not path.exists():
        return 0
    try:
        return checkpoint.read_info(path).step or 0
    except (OSError, ValueError) as err:
        raise RunError(str(err).removeprefix("load: ")) from None


def load_data(cfg: dict, data_dir=None, download=False):
    """(train, test) of the run's data set, --limit applied and --val-size filled in `cfg`. Missing files
    are a UsageError (exit 2) that says how to install them; damaged ones a RunError."""
    try:
        train = data.load_dataset(cfg["dataset"], "train", data_dir=data_dir, download=download)
        test = data.load_dataset(cfg["dataset"], "test", data_dir=data_dir, download=download)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    except (ValueError, OSError) as err:
        raise RunError(str(err)) from None
    fill_val_size(cfg, train[0].shape[0])
    check_sizes(cfg, train[0].shape[0])
    if cfg["limit"]:
        train = (train[0][:cfg["limit"]], train[1][:cfg["limit"]])
    return train, test


def setup(cfg: dict, n_train: int, *, abstract: bool = False) -> Setup:
    """Model, initial params and state, and the optimizer for `n_train` examples per epoch.
    abstract=True: params and state as `jax.ShapeDtypeStruct`s (no compute), a template to load into."""
    try:
        model = build_model(cfg)
    except ValueError as err:
        raise UsageError(str(err)) from None
    key = jax.random.PRNGKey(cfg["seed"])
    init = lambda k: model.init(k, IMAGE_SHAPE)[1:]                     # noqa: E731
    params, state = (jax.eval_shape if abstract else lambda f, k: f(k))(init, jax.random.fold_in(key, 0))
    optimizer = build_optimizer(cfg, max(n_train // cfg["batch_size"], 1))
    return Setup(model, params, state, optimizer, key)


def split(cfg: dict, train, key):
    return data.train_val_split(train[0], train[1], cfg["val_size"], jax.random.fold_in(key, 1))


def load_weights(path: Path, run: Setup):
    """(params, state, opt_state, epoch, metadata) from a checkpoint; RunError names the damaged file."""
    like_opt = jax.eval_shape(run.optimizer.init, run.params)         # a template: shapes and dtypes only
    try:
        meta = checkpoint.read_info(path).metadata or {}          # verifies the checksum first
        params, state, opt_state, epoch = checkpoint.load_training(path, run.params, run.state, like_opt)
    except (OSError, ValueError) as err:
        raise RunError(str(err).removeprefix("load: ").removeprefix("load_training: ")) from None
    return params, state, opt_state, epoch, meta


def training_loss(cfg: dict):
    """Softmax cross-entropy with the run's label smoothing (a Loss record: its hand gradient comes along).
    The history and progress bar report plain cross-entropy on every split (`fit(report_loss=...)`)."""
    return losses.softmax_cross_entropy.partial(label_smoothing=cfg.get("label_smoothing", 0.0))


def checkpoint_path(run_dir: Path, which: str) -> Path:
    """The last, best or averaged (g2p's --average) checkpoint of a run: UsageError (exit 2) when the
    run or the file is not there."""
    path = run_dir / {"last": "checkpoint.safetensors", "best": "best.safetensors"}.get(which, f"{which}.safetensors")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such directory")
    if not path.exists():
        raise UsageError(f"{run_dir}: no {path.name} there (train first)")
    return path


def load_run(run_dir: str | os.PathLike, which: str = "last"):
    """`(config, model, params, state, epoch)` from a run directory's last or best checkpoint."""
    run_dir = Path(run_dir)
    path = checkpoint_path(run_dir, which)
    cfg = read_config(run_dir)
    run = setup(cfg, cfg["batch_size"], abstract=True)   # templates: the checkpoint gives the values
    params, state, _, epoch, _ = load_weights(path, run)
    return cfg, run.model, params, state, epoch
