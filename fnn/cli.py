"""`python -m fnn train | evaluate | gradcheck | summary`: the command line."""
from __future__ import annotations

import argparse
import sys

import jax

DATASETS = ("fashion-mnist", "mnist")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam", "amsgrad",
              "adabelief", "radam", "lion", "lamb", "lars", "adafactor")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "one_cycle")


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends with ONE line (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message}\n")


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    from .models import MODELS
    p = _Parser(prog="python -m fnn", description="fnn: train, evaluate and check models")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_arguments(sub.add_parser("train", help="train a model, with a checkpoint after every epoch"))
    e = sub.add_parser("evaluate", help="reload a run's checkpoint and report test accuracy")
    e.add_argument("run_dir")
    e.add_argument("--data-dir", default=None)
    g = sub.add_parser("gradcheck", help="check every layer, loss and activation against autodiff")
    g.add_argument("--only", default=None, help="substring filter on the case names")
    s = sub.add_parser("summary", help="print a model's layer table")
    s.add_argument("--model", choices=sorted(MODELS), default="mlp")
    return p


def _train_arguments(t: argparse.ArgumentParser) -> None:
    from .models import MODELS
    t.add_argument("--model", choices=sorted(MODELS), default="mlp")
    t.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    t.add_argument("--epochs", type=_positive(int), default=10)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument("--lr", type=_positive(float), default=1e-3)
    t.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--dropout", type=float, default=None, help="override the model's dropout rate")
    t.add_argument("--label-smoothing", type=float, default=0.1)
    t.add_argument("--batch-size", type=_positive(int), default=64)
    t.add_argument("--grads", choices=("autodiff", "manual"), default="autodiff")
    t.add_argument("--loop", choices=("auto", "scan", "step"), default="auto")
    t.add_argument("--val-size", type=int, default=None,
                   help="examples held out of train for validation (default: 5000 for mlp, 0 for cnn)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=_positive(int), default=None, help="use only the first N training examples")
    t.add_argument("--data-dir", default=None)
    t.add_argument("--download", action="store_true", help="download the data set if it is not found")
    t.add_argument("--out", default=None, help="run directory (default runs/<model>-<dataset>)")
    t.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    t.add_argument("--no-progress", action="store_true")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "gradcheck":
            return _gradcheck(args)
        if args.command == "summary":
            from .models import MODELS
            from .summary import summary
            print(summary(MODELS[args.model](), (28, 28, 1)))
            return 0
        from . import runs
        return runs.train(args) if args.command == "train" else runs.evaluate_run(args)
    except UsageError as err:
        print(f"python -m fnn {args.command}: {err}", file=sys.stderr)
        return 2


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

