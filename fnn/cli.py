"""`fnn train | evaluate | predict | gradcheck | summary`: the command line (`python -m fnn ...`).

Nothing imports this module: the choices it offers come from the library (`fnn.run_config`,
`fnn.train.GRADS`/`LOOPS`, `fnn.models.MODELS`), and the run directories are `fnn.runs`.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax

from .run_config import CHOICES, SETTINGS, TYPES, RunError, UsageError, flag

__all__ = ["main"]


DATA_DIR_HELP = "where the data set's IDX files are (default: $FNN_DATA_DIR, ~/.cache/fnn, /usr/share/datasets)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends with ONE line (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message}\n")


def _train_arguments(t: argparse.ArgumentParser) -> None:
    """One option per run setting, its help and default from `run_config.SETTINGS`. Options the user
    does not give stay absent (SUPPRESS), so `--resume` can tell a given flag from a default."""
    for setting, (default, text) in SETTINGS.items():
        shown = "" if default is None else f" (default: {default})"
        t.add_argument(flag(setting), type=TYPES.get(setting, str), choices=CHOICES.get(setting),
                       default=argparse.SUPPRESS, help=text + shown)
    t.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default: the next free runs/<model>-NNN, e.g. runs/mlp-001)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    t.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue a run from its last checkpoint (only --epochs and --loop may change)")
    t.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    t.add_argument("--download", action="store_true", help="download the data set if it is not found")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--processes", type=int, default=None, metavar="N",
                   help="processes (machines) of a multi-process run (default: $JAX_NUM_PROCESSES, else 1)")
    t.add_argument("--process-id", type=int, default=None, metavar="I",
                   help="this process's id, 0..N-1 (default: $JAX_PROCESS_ID)")
    t.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="address of process 0 (default: $JAX_COORDINATOR_ADDRESS)")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    p.add_argument("--checkpoint", choices=("last", "best"), default="last",
                   help="last: the last epoch's; best: the lowest validation loss, or training loss "
                        "without a validation set (default: last)")


def _parser(prog: str = "fnn") -> argparse.ArgumentParser:
    from .models import MODELS
    p = _Parser(prog=prog, description="fnn: train, evaluate and check models")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_arguments(sub.add_parser("train", help="train a model, with a checkpoint after every epoch"))
    e = sub.add_parser("evaluate", help="reload a run's checkpoint and report accuracy and loss")
    _run_arguments(e)
    e.add_argument("--split", choices=("test", "train", "val"), default="test",
                   help="test set, the examples trained on, or the held-out validation examples (default: test)")
    e.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    r = sub.add_parser("predict", help="classify your own images (PNG/JPEG or .npy) with a trained run")
    _run_arguments(r)
    r.add_argument("images", nargs="+", metavar="IMAGE", help="image files, resized to 28x28 grayscale")
    r.add_argument("--top", type=int, choices=range(1, 11), default=3, metavar="K",
                   help="classes to show per image, 1-10 (default: 3)")
    g = sub.add_parser("gradcheck", help="check every layer, loss and activation against autodiff")
    g.add_argument("--only", default=None, help="substring filter on the case names")
    s = sub.add_parser("summary", help="print a model's layer table")
    s.add_argument("--model", choices=sorted(MODELS), default="mlp", help="the model (default: mlp)")
    i = sub.add_parser("inspect", help="Grad-CAM, saliency, integrated gradients, occlusion, filters and "
                                       "feature maps of a trained run, with an index.html")
    _run_arguments(i)
    i.add_argument("--images", type=int, default=8, metavar="N", help="test images to explain (default: 8)")
    i.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/inspect)")
    i.add_argument("--layer", default=None, metavar="PATH",
                   help="Grad-CAM layer path (default: the last convolutional feature map)")
    i.add_argument("--data-dir", default=None, help="where the data set's IDX files are")
    return p


def _prog(argv0: str) -> str:
    """'fnn' for the installed script, 'python -m fnn' for the module."""
    name = os.path.basename(argv0 or "fnn")
    return "python -m fnn" if name in ("__main__.py", "-m", "-c", "") else name


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    prog = prog or _prog(sys.argv[0] if sys.argv else "fnn")
    args = _parser(prog).parse_args(argv)
    args.prog = prog
    try:
        return _dispatch(args)
    except UsageError as err:
        print(f"{prog} {args.command}: {err}", file=sys.stderr)
        return 2
    except RunError as err:
        print(f"{prog} {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.command == "gradcheck":
        return _gradcheck(args)
    if args.command == "summary":
        from .models import MODELS
        from .summary import summary
        print(summary(MODELS[args.model](), (28, 28, 1)))
        return 0
    if args.command == "inspect":
        from .inspect.report import inspect_run
        return inspect_run(args)
    from . import runs
    run = {"train": runs.train, "evaluate": runs.evaluate_run, "predict": runs.predict_run}
    return run[args.command](args)


def _gradcheck(args) -> int:
    jax.config.update("jax_enable_x64", True)
    from .gradcheck import check_case, format_table, select_cases
    try:
        cases = select_cases(args.only)
    except ValueError as err:
        raise UsageError(err) from None
    key = jax.random.PRNGKey(0)
    reports = [check_case(c, jax.random.fold_in(key, i)) for i, c in enumerate(cases)]
    print(format_table(reports))
    failed = [r.name for r in reports if not r.passed]
    print(f"{len(reports) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0

