"""A run's recipe: its settings with their defaults and help, their checks, and the optimizer and
schedule tables the command line offers.

`check_config(cfg)` checks each setting alone, `check_sizes(cfg, n)` the ones that depend on
the data set's size (--limit, --val-size, --batch-size); both raise `UsageError` with one line
naming the flag, so a bad command is refused before anything is written.
"""
from __future__ import annotations

import math

from . import optim
from .data import SOURCES
from .models import MODELS, VAL_SIZE
from .train import GRADS, LOOPS


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


class RunError(Exception):
    """A run directory or file that cannot be used (corrupt, missing): one line, exit code 1."""


def _with_decay(rule, weight_decay):
    """Coupled L2 (weight_decay * p added to the gradient) in front of a rule without its own decay."""
    return optim.chain(optim.add_decayed_weights(weight_decay), rule) if weight_decay else rule


# name -> (factory(learning rate, weight decay or None), how it uses --weight-decay)
OPTIMIZERS = {
    "sgd": lambda lr, wd: _with_decay(optim.sgd(lr), wd or 0.0),
    "momentum": lambda lr, wd: _with_decay(optim.sgd(lr, momentum=0.9), wd or 0.0),
    "nesterov": lambda lr, wd: _with_decay(optim.sgd(lr, momentum=0.9, nesterov=True), wd or 0.0),
    "adagrad": lambda lr, wd: _with_decay(optim.adagrad(lr), wd or 0.0),
    "rmsprop": lambda lr, wd: _with_decay(optim.rmsprop(lr), wd or 0.0),
    "adam": lambda lr, wd: _with_decay(optim.adam(lr), wd or 0.0),
    "nadam": lambda lr, wd: _with_decay(optim.nadam(lr), wd or 0.0),
    "amsgrad": lambda lr, wd: _with_decay(optim.amsgrad(lr), wd or 0.0),
    "adabelief": lambda lr, wd: _with_decay(optim.adabelief(lr), wd or 0.0),
    "radam": lambda lr, wd: _with_decay(optim.radam(lr), wd or 0.0),
    "adafactor": lambda lr, wd: _with_decay(optim.adafactor(lr), wd or 0.0),
    "adamw": lambda lr, wd: optim.adamw(lr, weight_decay=1e-4 if wd is None else wd),
    "lion": lambda lr, wd: optim.lion(lr, weight_decay=wd or 0.0),
    "lamb": lambda lr, wd: optim.lamb(lr, weight_decay=wd or 0.0),
    "lars": lambda lr, wd: optim.lars(lr, weight_decay=wd or 0.0),
}
DECOUPLED = ("adamw", "lion", "lamb", "lars")   # their own (decoupled) weight decay

# name -> schedule(peak learning rate, total steps); positional, so optax's argument names fit too
SCHEDULES = {
    "constant": lambda lr, total: lr,
    "cosine": lambda lr, total: optim.cosine_decay(lr, total),
    "warmup_cosine": lambda lr, total: optim.warmup_cosine(0.0, lr, max(total // 20, 1), total),
    "one_cycle": lambda lr, total: optim.one_cycle(total, lr),
}

# setting -> (default, help). None defaults are filled per model (see `defaults_for`).
SETTINGS = {
    "model": ("mlp", "mlp: Flatten-[Dense-BatchNorm-ReLU-Dropout]x(256, 128)-Dense10; "
                     "cnn: [Conv3x3-BatchNorm-ReLU-MaxPool]x(32, 64)-Dense128-ReLU-Dropout-Dense10"),
    "dataset": ("fashion-mnist", "the data set (28x28 grayscale, 10 classes)"),
    "epochs": (10, "epochs to train (with --resume: train on up to this many)"),
    "optimizer": ("adam", "the update rule"),
    "lr": (1e-3, "peak learning rate"),
    "schedule": ("cosine", "learning-rate schedule over all steps (cosine: decays to 0)"),
    "weight_decay": (None, f"weight decay: decoupled for {', '.join(DECOUPLED)}, L2 added to the gradient "
                           f"for the others (default: 1e-4 for adamw, 0 otherwise)"),
    "dropout": (None, "dropout rate, the probability of dropping (default: the model's, 0.2 mlp, 0.3 cnn)"),
    "batch_norm": ("on", "BatchNorm after each hidden Dense/Conv"),
    "label_smoothing": (0.1, "label smoothing of the training loss, in [0, 1)"),
    "batch_size": (64, "examples per step"),
    "grads": ("manual", "manual: the hand-derived backward passes; autodiff: JAX autodiff (same numbers)"),
    "loop": ("auto", "scan: an epoch is one compiled lax.scan; step: a jitted step per batch; "
                     "auto: time both and keep the faster"),
    "val_size": (None, "training examples held out for validation (default: 5000 for mlp, 0 for cnn)"),
    "seed": (0, "random seed (initialisation, shuffling, dropout, validation split)"),
    "limit": (None, "use only the first N training examples (default: all)"),
}
CHOICES = {"model": sorted(MODELS), "dataset": sorted(SOURCES), "optimizer": sorted(OPTIMIZERS),
           "schedule": sorted(SCHEDULES), "batch_norm": ["on", "off"], "grads": list(GRADS),
           "loop": list(LOOPS)}
TYPES = {"epochs": int, "lr": float, "weight_decay": float, "dropout": float, "label_smoothing": float,
         "batch_size": int, "val_size": int, "seed": int, "limit": int}
CHANGEABLE_ON_RESUME = ("epochs", "loop")


def flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def defaults_for(given: dict) -> dict:
    """Every setting: the given ones, else the defaults (the model's --val-size and --dropout)."""
    cfg = {k: given.get(k, default) for k, (default, _) in SETTINGS.items()}
    if cfg["val_size"] is None:
        cfg["val_size"] = VAL_SIZE[cfg["model"]]
    return cfg


def _require(ok: bool, setting: str, rule: str, value) -> None:
    if not ok:
        raise UsageError(f"{flag(setting)} must be {rule}, got {value}")


def check_config(cfg: dict) -> None:
    """Each setting on its own: ranges and finiteness (a float flag also parses 'nan')."""
    for k in ("epochs", "batch_size"):
        _require(cfg[k] >= 1, k, "a positive integer", cfg[k])
    _require(math.isfinite(cfg["lr"]) and cfg["lr"] > 0, "lr", "a positive number", cfg["lr"])
    wd = cfg["weight_decay"]
    _require(wd is None or (math.isfinite(wd) and wd >= 0), "weight_decay", ">= 0", wd)
    for k in ("dropout", "label_smoothing"):
        _require(cfg[k] is None or 0.0 <= cfg[k] < 1.0, k, "in [0, 1)", cfg[k])
    _require(cfg["val_size"] >= 0, "val_size", ">= 0", cfg["val_size"])
    _require(0 <= cfg["seed"] < 2**32, "seed", "in [0, 2**32)", cfg["seed"])
    _require(cfg["limit"] is None or cfg["limit"] >= 1, "limit", "a positive integer", cfg["limit"])


def check_sizes(cfg: dict, available: int) -> None:
    """--limit, --val-size and --batch-size against the `available` training examples."""
    if cfg["limit"] is not None and cfg["limit"] > available:
        raise UsageError(f"--limit {cfg['limit']} exceeds the {available} training examples of {cfg['dataset']}")
    n = cfg["limit"] or available
    source = f"--limit {n}" if cfg["limit"] else f"the {n} training examples"
    if cfg["val_size"] >= n:
        raise UsageError(f"--val-size {cfg['val_size']} leaves no training examples out of {source} "
                         f"(lower --val-size or raise --limit)")
    left = n - cfg["val_size"]
    if cfg["batch_size"] > left:
        raise UsageError(f"--batch-size {cfg['batch_size']} exceeds the {left} training examples left "
                         f"from {source} after --val-size {cfg['val_size']}")


def build_optimizer(cfg: dict, steps_per_epoch: int) -> optim.Optimizer:
    """The run's optimizer, its schedule spread over `cfg["epochs"] * steps_per_epoch` steps."""
    total = max(cfg["epochs"] * steps_per_epoch, 1)
    schedule = SCHEDULES[cfg["schedule"]](cfg["lr"], total)
    return OPTIMIZERS[cfg["optimizer"]](schedule, cfg["weight_decay"])


def build_model(cfg: dict):
    kwargs = {} if cfg["dropout"] is None else {"dropout": cfg["dropout"]}
    return MODELS[cfg["model"]](batch_norm=cfg.get("batch_norm", "on") == "on", **kwargs)
