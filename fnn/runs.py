"""Run directories for the CLI: train with a checkpoint per epoch, resume, evaluate.

A run directory holds `config.json`, `checkpoint.safetensors` (params, state,
optimizer state and the epoch), `history.json` and `curves.png`.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import jax

from . import checkpoint, data, losses, optim
from .cli import UsageError
from .models import MODELS, VAL_SIZE
from .train import evaluate, fit

CONFIG_KEYS = ("model", "dataset", "epochs", "optimizer", "lr", "schedule", "weight_decay", "dropout",
               "batch_size", "grads", "loop", "val_size", "seed", "limit", "label_smoothing")


def _schedule(name, lr, total_steps):
    if name == "constant":
        return lr
    if name == "cosine":
        return optim.cosine_decay(lr, total_steps, 0.0)
    if name == "warmup_cosine":
        return optim.warmup_cosine(0.0, lr, max(total_steps // 20, 1), total_steps, 0.0)
    return optim.one_cycle(total_steps, lr)


def build_optimizer(name: str, lr, weight_decay: float) -> optim.Optimizer:
    """The CLI's optimizers by name; weight decay is decoupled (AdamW style) except for SGD's."""
    rules = {
        "sgd": lambda: optim.sgd(lr, weight_decay=weight_decay),
        "momentum": lambda: optim.sgd(lr, momentum=0.9, weight_decay=weight_decay),
        "nesterov": lambda: optim.sgd(lr, momentum=0.9, nesterov=True, weight_decay=weight_decay),
        "adamw": lambda: optim.adamw(lr, weight_decay=weight_decay or 1e-4),
        "lion": lambda: optim.lion(lr, weight_decay=weight_decay),
        "lamb": lambda: optim.lamb(lr, weight_decay=weight_decay),
        "lars": lambda: optim.lars(lr, weight_decay=weight_decay),
        "adafactor": lambda: optim.adafactor(lr),
    }
    if name in rules:
        return rules[name]()
    rule = getattr(optim, name)(lr)
    if weight_decay:
        return optim.chain(optim.add_decayed_weights(weight_decay), rule)
    return rule


def _config(args) -> dict:
    cfg = {k: getattr(args, k) for k in CONFIG_KEYS}
    if cfg["val_size"] is None:
        cfg["val_size"] = VAL_SIZE[cfg["model"]]
    if cfg["dropout"] is not None and not 0.0 <= cfg["dropout"] < 1.0:
        raise UsageError(f"--dropout must lie in [0, 1), got {cfg['dropout']}")
    if not 0.0 <= cfg["label_smoothing"] < 1.0:
        raise UsageError(f"--label-smoothing must lie in [0, 1), got {cfg['label_smoothing']}")
    if cfg["val_size"] < 0:
        raise UsageError(f"--val-size must be >= 0, got {cfg['val_size']}")
    return cfg


def _load(cfg, data_dir, download):
    try:
        train = data.load_dataset(cfg["dataset"], "train", data_dir=data_dir, download=download)
        test = data.load_dataset(cfg["dataset"], "test", data_dir=data_dir, download=download)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if cfg["limit"]:
        train = (train[0][:cfg["limit"]], train[1][:cfg["limit"]])
    return train, test


def _setup(cfg, train):
    kwargs = {} if cfg["dropout"] is None else {"dropout": cfg["dropout"]}
    model = MODELS[cfg["model"]](**kwargs)
    key = jax.random.PRNGKey(cfg["seed"])
    _, params, state = model.init(jax.random.fold_in(key, 0), tuple(train[0].shape[1:]))
    n_train = train[0].shape[0] - cfg["val_size"]
    steps = cfg["epochs"] * (n_train // cfg["batch_size"])
    opt = build_optimizer(cfg["optimizer"], _schedule(cfg["schedule"], cfg["lr"], max(steps, 1)),
                          cfg["weight_decay"])
    return model, params, state, opt, key


def _save_epoch(run_dir):
    def on_epoch(epoch, params, state, opt_state, history):
        checkpoint.save_training(run_dir / "checkpoint.safetensors", params, state, opt_state, epoch + 1)
        _atomic_json(run_dir / "history.json", history)
    return on_epoch


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _resume(run_dir, model, params, state, opt):
    like_opt = opt.init(params)
    params, state, opt_state, epoch = checkpoint.load_training(
        run_dir / "checkpoint.safetensors", params, state, like_opt)
    history = json.loads((run_dir / "history.json").read_text())
    return params, state, opt_state, int(epoch), history


def train(args) -> int:
    """`python -m fnn train ...`: train, checkpoint each epoch, report test accuracy."""
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.json").exists():
            raise UsageError(f"--resume {run_dir}: no config.json there (not a run directory)")
        cfg = json.loads((run_dir / "config.json").read_text())
    else:
        cfg = _config(args)
        run_dir = Path(args.out or f"runs/{cfg['model']}-{cfg['dataset']}")
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_json(run_dir / "config.json", cfg)
    train_set, test_set = _load(cfg, args.data_dir, args.download)
    return _train_run(cfg, run_dir, train_set, test_set, resume=bool(args.resume),
                      progress=not args.no_progress)


def training_loss(cfg: dict):
    """Softmax cross-entropy, with the run's label smoothing (hand gradient included)."""
    return losses.softmax_cross_entropy.partial(label_smoothing=cfg.get("label_smoothing", 0.0))


def _train_run(cfg, run_dir, train_set, test_set, *, resume, progress) -> int:
    model, params, state, opt, key = _setup(cfg, train_set)
    fit_set, val_set = data.train_val_split(train_set[0], train_set[1], cfg["val_size"],
                                            jax.random.fold_in(key, 1))
    start, opt_state, history = 0, None, None
    if resume:
        params, state, opt_state, start, history = _resume(run_dir, model, params, state, opt)
        print(f"resuming {run_dir} after epoch {start}")
    print(f"training {cfg['model']} on {cfg['dataset']}: {fit_set[0].shape[0]} train / "
          f"{0 if val_set is None else val_set[0].shape[0]} val examples, grads={cfg['grads']}")
    t0 = time.perf_counter()
    params, state, opt_state, history = fit(
        model, params, state, opt, fit_set, loss=training_loss(cfg), epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], key=jax.random.fold_in(key, 2), val=val_set, grads=cfg["grads"],
        loop=cfg["loop"], progress=progress, opt_state=opt_state, initial_epoch=start,
        history=history, on_epoch=_save_epoch(run_dir))
    result = evaluate(model, params, state, test_set, loss=losses.softmax_cross_entropy)
    history["test"] = result
    history["wall_seconds"] = history.get("wall_seconds", 0.0) + time.perf_counter() - t0
    _atomic_json(run_dir / "history.json", history)
    _plot(run_dir, history)
    print(f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
          f"({history['wall_seconds']:.1f} s, loop={history['loop']})  run: {run_dir}")
    return 0


def _plot(run_dir, history) -> None:
    try:
        from .viz import plot_history
    except ImportError:
        return
    plot_history(history, run_dir / "curves.png")


def evaluate_run(args) -> int:
    """`python -m fnn evaluate RUN_DIR`: reload the checkpoint, report test accuracy."""
    run_dir = Path(args.run_dir)
    if not (run_dir / "checkpoint.safetensors").exists():
        raise UsageError(f"{run_dir}: no checkpoint.safetensors there (train first)")
    cfg = json.loads((run_dir / "config.json").read_text())
    _, test_set = _load({**cfg, "limit": None}, args.data_dir, False)
    model, params, state, opt, _ = _setup(cfg, test_set)
    params, state, _, epoch, _ = _resume(run_dir, model, params, state, opt)
    result = evaluate(model, params, state, test_set, loss=losses.softmax_cross_entropy)
    print(f"{run_dir}: epoch {epoch}, test accuracy {result['accuracy']:.4f}, "
          f"test loss {result['loss']:.4f}")
    return 0 if math.isfinite(result["loss"]) else 1

