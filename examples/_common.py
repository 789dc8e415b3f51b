"""The flags every example shares, and a budget check that refuses a run that cannot train.

    import _common                     # examples/ is on sys.path when a script there runs
    parser = _common.parser(__doc__, limit=60000, epochs=5, out="runs/mnist_mlp")
    parser.add_argument("--grads", ...)          # the script's own flags
    args = parser.parse_args()                   # before any work: --help does nothing else
    _common.check_budget(limit=args.limit, batch_size=128, epochs=args.epochs)
    ...
    _common.result(test_accuracy=0.8812)         # the last line: "result: test_accuracy=0.8812"
    _common.run(main)                            # a missing optional package: one line, exit 2

Same idea, same flag: `--limit N` (training examples, words, series length: each script says
which), `--epochs`, `--out DIR` (the only place a script writes; default under runs/), `--seed`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

SMALL = "small budget (under a minute on 2 cores)"


def parser(doc: str | None, *, out: str | None, limit: int | None | bool = False,
           limit_help: str = "training examples", epochs: int | None = None,
           seed: int = 0, small: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser with the shared flags; `limit=False` / `epochs=None` leave that flag out.

    `out=None`: the script writes nothing (it still accepts --out, so every example takes it).
    `limit=None` adds `--limit` defaulting to "all"; `small` is the small-budget command line
    shown at the end of --help.
    """
    epilog = f"{SMALL}: {small}" if small else None
    p = argparse.ArgumentParser(description=doc, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if limit is not False:
        p.add_argument("--limit", type=int, default=limit, metavar="N",
                       help=f"{limit_help} (default: {'all' if limit is None else limit})")
    if epochs is not None:
        p.add_argument("--epochs", type=int, default=epochs, help=f"(default: {epochs})")
    p.add_argument("--out", type=Path, default=None if out is None else Path(out), metavar="DIR",
                   help="this example writes no files" if out is None else
                   f"the one folder results are written to (default: {out})")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed (default: {seed})")
    return p


def refuse(reason: str) -> None:
    """End the script at once with one line giving the reason (exit code 2, as argparse)."""
    print(f"{Path(sys.argv[0]).name}: {reason}", file=sys.stderr)
    sys.exit(2)


def check_budget(*, limit: int | None = None, batch_size: int | None = None,
                 epochs: int | None = None, steps: int | None = None, minimum: int = 1) -> None:
    """Refuse, before any work, a `--limit` below the batch size (or `minimum`) or zero steps.

    `steps` is the number of optimizer steps the run will take, when the script knows it;
    otherwise it is `epochs * (limit // batch_size)` when those are given.
    """
    if epochs is not None and epochs < 1:
        refuse(f"--epochs {epochs}: at least 1 epoch is needed")
    if limit is not None and limit < minimum:
        refuse(f"--limit {limit}: at least {minimum} is needed")
    if limit is not None and batch_size is not None and limit < batch_size:
        refuse(f"--limit {limit} is smaller than the batch size {batch_size}: "
               f"pass --limit {batch_size} or more")
    if steps is None and None not in (limit, batch_size, epochs):
        steps = epochs * (limit // batch_size)
    if steps is not None and steps < 1:
        refuse(f"this budget gives {steps} training steps: raise --limit or --epochs")


def load_fashion_mnist(limit: int | None):
    """((x, y) of the first `limit` training images, (x, y) of the test set); a missing data set
    ends the script in one line saying how to install it."""
    import fnn
    try:
        x, y = fnn.data.load_dataset("fashion-mnist", "train")
        return (x[:limit], y[:limit]), fnn.data.load_dataset("fashion-mnist", "test")
    except FileNotFoundError as err:
        refuse(str(err))


def out_dir(args: argparse.Namespace) -> Path:
    """`args.out`, created if needed: call it just before writing the first file."""
    args.out.mkdir(parents=True, exist_ok=True)
    return args.out


def result(**metrics: float | int | str) -> None:
    """Print the run's result line, `result: name=value ...`, which tests and docs look for."""
    fields = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    print(f"result: {fields}", flush=True)


def run(main) -> None:
    """Run `main()`; a missing optional package ends the script with one line and exit code 2."""
    from fnn._optional import main_guard
    main_guard(main)


def require(module: str, *, purpose: str):
    """`fnn._optional.require`: import an optional package or fail with one line naming the extra."""
    from fnn._optional import require as _require
    return _require(module, extra="examples", purpose=purpose)
