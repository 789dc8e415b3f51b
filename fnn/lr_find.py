"""`fnn lr-find RUN_DIR | MODEL`: the learning-rate range test of `fnn.train.lr_find` on the command line.

On a run directory it starts from the run's checkpoint (read only: the run is never written to)
and uses the run's model, optimizer, batch size, loss and training examples; on a model name
(`fnn lr-find cnn`, or `--model cnn`) it starts from a fresh initialisation with the model's
recipe. It prints the suggested rate (the steepest descent of the smoothed loss) and the
minimum / 10, and saves `lr_find.png` (the run directory, or --out) when matplotlib is there.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ._optional import MissingDependency, require
from .models import MODELS
from .run_config import OPTIMIZERS, UsageError, check_config, defaults_for
from .rundir import checkpoint_path, load_data, load_weights, read_config, setup, split, training_loss
from .train import lr_find

HELP = "learning-rate range test: sweep the rate up from a run's checkpoint or a fresh model, print the " \
       "suggested rate, save lr_find.png"


def add_arguments(p) -> None:
    """The options of `fnn lr-find` (cli.py makes its subparser)."""
    p.add_argument("target", nargs="?", default=None, metavar="RUN_OR_MODEL",
                   help=f"a run directory, or a model: {', '.join(MODELS)}")
    p.add_argument("--model", default=None, help="the model, when no RUN_OR_MODEL is given")
    p.add_argument("--checkpoint", choices=("last", "best"), default="last", help="a run's checkpoint (default: last)")
    p.add_argument("--steps", type=int, default=100, help="steps of the sweep (default: 100)")
    p.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default: 1e-7)")
    p.add_argument("--max-lr", type=float, default=10.0, help="last rate (default: 10)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None,
                   help="the optimizer (default: the run's, or the model's recipe)")
    p.add_argument("--batch-size", type=int, default=None, help="(default: the run's, or the model's recipe)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N training examples")
    p.add_argument("--seed", type=int, default=0, help="the batches' order (default: 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where lr_find.png goes (default: the run directory, else the current directory)")
    p.add_argument("--data-dir", default=None, help="where the data set's files are")


def _start(args) -> tuple[dict, object, object, object, Path, str]:
    """(config, model, params, state, output folder, what the sweep starts from)."""
    name = args.model or args.target
    if args.target and Path(args.target).is_dir():
        run_dir = Path(args.target)
        path = checkpoint_path(run_dir, args.checkpoint)
        cfg = read_config(run_dir)
        run = setup(cfg, cfg["batch_size"])
        params, state, _, epoch, _ = load_weights(path, run)
        return cfg, run.model, params, state, run_dir, f"{run_dir} ({args.checkpoint} checkpoint, epoch {epoch})"
    if name not in MODELS:
        raise UsageError(f"{name!r} is neither a run directory nor a model ({', '.join(MODELS)})" if name
                         else "give a run directory or a model (RUN_OR_MODEL, or --model)")
    cfg = defaults_for({"model": name})
    check_config(cfg)
    run = setup(cfg, cfg["batch_size"])
    return cfg, run.model, run.params, run.state, Path("."), f"{name} (fresh initialisation, seed {cfg['seed']})"


def _settings(cfg: dict, args) -> dict:
    """The run's or recipe's settings with the flags given on top."""
    given = {"optimizer": args.optimizer, "batch_size": args.batch_size, "limit": args.limit}
    cfg = {**cfg, **{k: v for k, v in given.items() if v is not None}}
    if cfg["batch_size"] < 1 or args.steps < 2:
        raise UsageError(f"--batch-size must be >= 1 and --steps >= 2, got {cfg['batch_size']} and {args.steps}")
    if not 0 < args.min_lr < args.max_lr:
        raise UsageError(f"expected 0 < --min-lr < --max-lr, got {args.min_lr} and {args.max_lr}")
    return cfg


def lr_find_command(args) -> int:
    cfg, model, params, state, folder, source = _start(args)
    cfg = _settings(cfg, args)
    train, _ = load_data(cfg, args.data_dir, False)
    fit_set, _ = split(cfg, train, jax.random.PRNGKey(cfg["seed"]))
    factory = lambda lr: OPTIMIZERS[cfg["optimizer"]](lr, cfg["weight_decay"])
    print(f"lr-find from {source}: {cfg['optimizer']}, batch {cfg['batch_size']}, {len(fit_set[1])} training "
          f"examples, rate {args.min_lr:g} to {args.max_lr:g} over {args.steps} steps", flush=True)
    result = lr_find(model, params, state, factory, fit_set, training_loss(cfg), jax.random.PRNGKey(args.seed),
                     min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps, batch_size=cfg["batch_size"])
    print(f"{result.stopped}")
    print(f"suggested learning rate: {result.suggestion:.3g} (steepest descent of the smoothed loss); "
          f"minimum / 10: {result.minimum_over_10:.3g}")
    _plot(result, Path(args.out) if args.out else folder, source)
    return 0


def _plot(result, folder: Path, title: str) -> None:
    """lr_find.png: batch and smoothed losses against the rate (log axis), the two suggestions marked."""
    try:
        matplotlib = require("matplotlib", extra="plot", purpose="lr_find.png")
    except MissingDependency as err:
        print(f"skipped {folder / 'lr_find.png'}: {err}")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.rates, result.losses, alpha=0.3, label="batch loss")
    ax.plot(result.rates, result.smoothed, label="smoothed")
    for rate, label, style in ((result.suggestion, "steepest", "--"), (result.minimum_over_10, "minimum / 10", ":")):
        ax.axvline(rate, color="k", linestyle=style, label=f"{label}: {rate:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss", title=f"lr-find: {title}")
    finite = np.concatenate([result.losses, result.smoothed])
    finite = finite[np.isfinite(finite)]
    if finite.size:                         # the divergence at the end would squash the rest
        ax.set_ylim(0.9 * finite.min(), 1.2 * result.smoothed[np.isfinite(result.smoothed)].max())
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "lr_find.png", dpi=100)
    plt.close(fig)
    print(f"wrote {folder / 'lr_find.png'}")


__all__ = ["HELP", "add_arguments", "lr_find_command"]
