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
from .models import ARCH_ARGS, MODELS, RECIPES, VIT_STEMS, default_val_size
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
    "warmup_cosine": lambda lr, total: (optim.warmup_cosine(0.0, lr, max(total // 20, 1), total)
                                        if total > 1 else optim.cosine_decay(lr, 1)),  # one step: lr
    "one_cycle": lambda lr, total: optim.one_cycle(total, lr),
}

# setting -> (default, help). A model's recipe (`fnn.models.RECIPES`) replaces these defaults;
# None defaults are filled per model (see `defaults_for`), or when the data set's size is known.
SETTINGS = {
    "model": ("mlp", "mlp: Flatten-[Dense-BatchNorm-ReLU-Dropout]x(256, 128)-Dense10; "
                     "cnn: [Conv3x3-BatchNorm-ReLU-MaxPool]x(32, 64)-Conv3x3(64)-BatchNorm-ReLU-Dense128-ReLU-"
                     "Dropout-Dense10; "
                     "resnet: conv16-BN-ReLU, residual blocks 16, 32/2, 64/2, GlobalAvgPool, Dense10; "
                     "vit: flips + 1px shifts, a conv stem to 7x7 tokens, learned positions, pre-LN encoder "
                     "blocks with stochastic depth, mean over tokens, Dense10; lstm, gru: the image's 28 rows "
                     "as 28 steps, the last state, Dense10. Each model brings its own recipe (the defaults below)"),
    "dataset": ("fashion-mnist", "the data set (28x28 grayscale, 10 classes)"),
    "epochs": (10, "epochs to train (with --resume: train on up to this many)"),
    "optimizer": ("adam", "the update rule"),
    "lr": (1e-3, "peak learning rate"),
    "schedule": ("cosine", "learning-rate schedule over all steps (cosine: decays to 0; warmup_cosine: "
                           "5%% linear warmup, then cosine)"),
    "weight_decay": (None, f"weight decay: decoupled for {', '.join(DECOUPLED)}, L2 added to the gradient "
                           f"for the others (unless a recipe says: 1e-4 for adamw, 0 otherwise)"),
    "dropout": (None, "dropout rate, the probability of dropping (mlp, cnn, vit)"),
    "batch_norm": (None, "BatchNorm after each hidden Dense/Conv (mlp, cnn, resnet)"),
    "width": (None, "resnet: the first block's channels; vit: the token width; lstm, gru: the hidden size"),
    "depth": (None, "vit: encoder blocks"),
    "heads": (None, "vit: attention heads per block"),
    "mlp_dim": (None, "vit: the blocks' MLP width"),
    "drop_path": (None, "vit: stochastic depth, the last block's probability of skipping a branch "
                        "(growing linearly from 0 at the first block)"),
    "stem": (None, "vit: patch: one strided 4x4 Conv2D; conv: two 3x3 stride-2 Conv-BatchNorm-ReLU, then 1x1"),
    "label_smoothing": (0.1, "label smoothing of the training loss, in [0, 1)"),
    "batch_size": (64, "examples per step"),
    "grads": ("manual", "manual: the hand-derived backward passes; autodiff: JAX autodiff (same numbers)"),
    "loop": ("auto", "scan: an epoch is one compiled loop (lax.fori_loop); step: a jitted step per batch; "
                     "auto: time both and keep the faster"),
    "val_size": (None, "training examples held out for validation (default: for mlp 5000 of every 60000 "
                       "used, so 125 of --limit 1500; 0 for the others)"),
    "seed": (0, "random seed (initialisation, shuffling, dropout, validation split)"),
    "limit": (None, "use only the first N training examples (default: all)"),
}
ARCH_SETTINGS = ("dropout", "batch_norm", "width", "depth", "heads", "mlp_dim", "drop_path", "stem")
CHOICES = {"model": list(MODELS), "dataset": sorted(SOURCES), "optimizer": sorted(OPTIMIZERS),
           "schedule": sorted(SCHEDULES), "batch_norm": ["on", "off"], "grads": list(GRADS),
           "loop": list(LOOPS), "stem": list(VIT_STEMS)}
TYPES = {"epochs": int, "lr": float, "weight_decay": float, "dropout": float, "label_smoothing": float,
         "batch_size": int, "val_size": int, "seed": int, "limit": int, "width": int, "depth": int,
         "heads": int, "mlp_dim": int, "drop_path": float}
CHANGEABLE_ON_RESUME = ("epochs", "loop")
# settings added after runs were written: the value those runs were trained with (not today's recipe)
BEFORE_SETTING = {"drop_path": 0.0, "stem": "patch"}


def flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def shown_default(setting: str) -> str:
    """' (default: 64 for mlp, cnn; 128 for resnet, vit, lstm, gru)': each model's value, grouped."""
    generic = SETTINGS[setting][0]
    values: dict = {}
    for model, recipe in RECIPES.items():
        if setting in ARCH_SETTINGS and setting not in ARCH_ARGS[model]:
            continue
        values.setdefault(recipe.get(setting, generic), []).append(model)
    values = {v: ms for v, ms in values.items() if v is not None}
    if not values or setting in ("val_size", "limit"):
        return "" if generic is None else f" (default: {generic})"
    if len(values) == 1 and len(next(iter(values.values()))) == len(RECIPES):
        return f" (default: {next(iter(values))})"
    return " (default: " + "; ".join(f"{v} for {', '.join(ms)}" for v, ms in values.items()) + ")"


def defaults_for(given: dict) -> dict:
    """Every setting: the given ones, else the model's recipe, else the defaults. Architecture settings
    the model does not take are None (and refused when given); --val-size waits for the data (None)."""
    model = given.get("model", SETTINGS["model"][0])
    recipe = RECIPES.get(model, {})
    cfg = {k: given.get(k, recipe.get(k, default)) for k, (default, _) in SETTINGS.items()}
    for k in ARCH_SETTINGS:
        if k not in ARCH_ARGS.get(model, ()):
            if given.get(k) is not None:
                takes = ", ".join(m for m, args in ARCH_ARGS.items() if k in args)
                raise UsageError(f"{flag(k)} does not apply to --model {model} (only to {takes})")
            cfg[k] = None
    return {**cfg, "task": "classify"}


def fill_val_size(cfg: dict, available: int) -> None:
    """The recipe's --val-size for the examples used (--limit, else `available`), unless given."""
    if cfg["val_size"] is None:
        cfg["val_size"] = default_val_size(cfg["model"], min(cfg["limit"] or available, available))


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
    for k in ("dropout", "label_smoothing", "drop_path"):
        _require(cfg[k] is None or 0.0 <= cfg[k] < 1.0, k, "in [0, 1)", cfg[k])
    _require(cfg["val_size"] is None or cfg["val_size"] >= 0, "val_size", ">= 0", cfg["val_size"])
    for k in ("width", "depth", "heads", "mlp_dim"):
        _require(cfg[k] is None or cfg[k] >= 1, k, "a positive integer", cfg[k])
    if cfg["model"] == "vit" and cfg["width"] % cfg["heads"]:
        raise UsageError(f"--width {cfg['width']} must be a multiple of --heads {cfg['heads']}")
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
    """The run's model: `fnn.models.MODELS[model]` with the architecture settings it takes."""
    arch = ARCH_ARGS[cfg["model"]]
    kwargs = {arch[k]: cfg[k] for k in arch if cfg.get(k) is not None}
    if "batch_norm" in kwargs:
        kwargs["batch_norm"] = kwargs["batch_norm"] == "on"
    return MODELS[cfg["model"]](**kwargs)
