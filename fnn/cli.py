"""`fnn train | evaluate | predict | inspect | gradcheck | summary | lr-find`: the command line (`python -m fnn ...`).

Nothing imports this module: the choices it offers come from the library (`fnn.run_config`,
`fnn.train.GRADS`/`LOOPS`, `fnn.models.MODELS` and their recipes), and the run directories are
`fnn.runs`. `--task g2p` (and any run whose config.json says `"task": "g2p"`) goes to `fnn.g2p`,
imported only then: `train(args)`, `evaluate_run(args)`, `predict_run(args)`, `inspect_run(args)`,
`summary(args)` and `add_train_arguments(parser)` for its own flags.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import jax

from . import lr_find as _lr_find
from ._optional import MissingDependency
from .run_config import CHOICES, SETTINGS, TYPES, RunError, UsageError, flag, shown_default

__all__ = ["main"]


DATA_DIR_HELP = "where the data set's files are (default: $FNN_DATA_DIR, ~/.cache/fnn, /usr/share/datasets)"
TASKS = ("classify", "g2p")
# the run settings a g2p run shares with image classification (fnn.g2p adds its own, such as --model)
G2P_SETTINGS = ("epochs", "optimizer", "lr", "schedule", "weight_decay", "label_smoothing", "batch_size",
                "grads", "loop", "seed", "limit")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument ends with ONE line (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message}\n")


def _g2p():
    """`fnn.g2p`, imported on first use; a UsageError when this fnn does not have it."""
    try:
        return importlib.import_module("fnn.g2p")
    except ModuleNotFoundError as err:
        if err.name != "fnn.g2p":
            raise
        raise UsageError("grapheme-to-phoneme runs need fnn.g2p, which this fnn does not have") from None


def _settings_arguments(t: argparse.ArgumentParser, settings) -> None:
    """One option per run setting, its help and per-model defaults from `run_config`. Options the user
    does not give stay absent (SUPPRESS), so `--resume` can tell a given flag from a default."""
    for setting in settings:
        text = SETTINGS[setting][1] + shown_default(setting)
        t.add_argument(flag(setting), type=TYPES.get(setting, str), choices=CHOICES.get(setting),
                       default=argparse.SUPPRESS, help=text)


def _train_arguments(t: argparse.ArgumentParser, task: str = "classify") -> None:
    t.add_argument("--task", choices=TASKS, default=task,      # task: --task, else the --resume run's
                   help="classify: Fashion-MNIST images; g2p: grapheme-to-phoneme (fnn.g2p; `--task g2p "
                        "--help` lists its options) (default: classify)")
    _settings_arguments(t, SETTINGS if task == "classify" else G2P_SETTINGS)
    t.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="training-time budget: stop after the epoch that uses it up, with its checkpoint "
                        "(continue with --resume) (default: none)")
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
    if task == "g2p":
        _g2p().add_train_arguments(t)


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `train`")
    p.add_argument("--checkpoint", choices=("last", "best", "averaged"), default="last",
                   help="last: the last epoch's; best: the lowest validation loss, or training loss "
                        "without a validation set (g2p: held-out subset WER); averaged: g2p's --average "
                        "(default: last)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)


def _g2p_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=None, metavar="K",
                   help="g2p runs: beam search with K hypotheses (default: 1, greedy)")
    p.add_argument("--ensemble", nargs="+", default=None, metavar="RUN_DIR",
                   help="g2p runs: decode with RUN_DIR and these runs together, by the mean of their "
                        "log-probabilities, e.g. the same recipe trained with other seeds (default: none)")


def _run_commands(sub) -> None:
    e = sub.add_parser("evaluate", help="reload a run's checkpoint: loss, accuracy, a per-class table "
                       "(precision, recall, F1) and confusion.png")
    _run_arguments(e)
    e.add_argument("--split", choices=("test", "train", "val"), default="test",
                   help="test set, the examples trained on, or the held-out validation examples (default: test)")
    _g2p_arguments(e)
    e.add_argument("--limit", type=int, default=None, metavar="N",   # g2p: decoding every word takes minutes
                   help="evaluate N examples of the split only: the first N images, or for g2p runs N words "
                        "spread over the split (default: all of them)")
    r = sub.add_parser("predict", help="classify your own images (PNG/JPEG or .npy) with a trained run, "
                                       "or spell words with a g2p run")
    _run_arguments(r)
    r.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files (resized to 28x28 grayscale), or words for a g2p run")
    r.add_argument("--top", type=int, choices=range(1, 11), default=3, metavar="K",
                   help="classes to show per image, 1-10 (default: 3)")
    _g2p_arguments(r)
    i = sub.add_parser("inspect", help="the pictures that fit a trained run's model (attributions, Grad-CAM, "
                                       "filters, first-layer weights, gates, attention maps and rollout, "
                                       "layer statistics), with an index.html")
    _run_arguments(i)
    i.add_argument("--images", type=int, default=8, metavar="N", help="test images to explain (default: 8)")
    i.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/inspect)")
    i.add_argument("--layer", default=None, metavar="PATH",
                   help="Grad-CAM layer path (default: the last convolutional feature map)")


def _parser(prog: str = "fnn", train_task: str = "classify") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="fnn: train, evaluate and check models")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _train_arguments(sub.add_parser("train", help="train a model, with a checkpoint after every epoch"), train_task)
    _run_commands(sub)
    g = sub.add_parser("gradcheck", help="check every layer, loss and activation against autodiff")
    g.add_argument("--only", default=None, help="substring filter on the case names")
    s = sub.add_parser("summary", help="print a model's layer table")
    s.add_argument("--task", choices=TASKS, default="classify", help="the task (default: classify)")
    s.add_argument("--model", default=None,
                   help=f"the model: {', '.join(CHOICES['model'])} for classify (default: mlp; for g2p: fnn.g2p's); "
                        f"or torchvision's ImageNet models (224x224x3): resnet18, resnet34, vgg11, vgg16, alexnet, "
                        f"efficientnet_b0, vit_b_16")
    _lr_find.add_arguments(sub.add_parser("lr-find", help=_lr_find.HELP))
    return p


def _train_task(argv: list[str]) -> str:
    """The task of a `train` command before parsing it: --task, else the task of the --resume run."""
    def value(name):
        for i, arg in enumerate(argv):
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return None
    if not argv or argv[0] != "train":
        return "classify"
    if value("--task") in TASKS:
        return value("--task")
    return _run_task(Path(value("--resume"))) if value("--resume") else "classify"


def _run_task(run_dir: Path) -> str:
    """A run's task as its config.json says ("classify" for runs written before tasks existed)."""
    try:
        return json.loads((run_dir / "config.json").read_text()).get("task", "classify")
    except (OSError, ValueError, AttributeError):
        return "classify"               # the command reports a missing or damaged run itself


def _prog(argv0: str) -> str:
    """'fnn' for the installed script, 'python -m fnn' for the module."""
    name = os.path.basename(argv0 or "fnn")
    return "python -m fnn" if name in ("__main__.py", "-m", "-c", "") else name


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    prog = prog or _prog(sys.argv[0] if sys.argv else "fnn")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser(prog, _train_task(argv)).parse_args(argv)
        args.prog = prog
        return _dispatch(args)
    except (UsageError, MissingDependency) as err:
        print(f"{prog} {argv[0] if argv else ''}: {err}", file=sys.stderr)
        return 2
    except RunError as err:
        print(f"{prog} {argv[0]}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog} {argv[0] if argv else ''}: interrupted", file=sys.stderr)
        return 130


def run(prog: str | None = None) -> None:
    """The `fnn` script's and `python -m fnn`'s entry: `main`, then exit with its status. After
    Ctrl-C (status 130) the process ends at once, its output flushed (`os._exit`): XLA's threads may
    still be compiling or running the interrupted program, and the interpreter's teardown beside
    them was seen to crash (SIGSEGV, 2 of 7 interrupts during a compile). Every file of a run is
    written whole before the interrupt is raised (`fnn.runs`), so nothing is lost by skipping the
    teardown."""
    code = main(prog=prog)
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


def _dispatch(args) -> int:
    if args.command == "lr-find":
        from .lr_find import lr_find_command
        return lr_find_command(args)
    if args.command == "gradcheck":
        return _gradcheck(args)
    if args.command == "summary":
        return _summary(args)
    if args.command != "train" and not Path(args.run_dir).is_dir():
        raise UsageError(f"{args.run_dir}: no such directory")          # exit 2 for every command, as --resume
    task = args.task if args.command == "train" else _run_task(Path(args.run_dir))
    if task == "g2p":
        g2p = _g2p()
        if args.command == "train":
            from .runs import device_line
            print(device_line(), flush=True)                        # as every `fnn train` does, first
        return {"train": g2p.train, "evaluate": g2p.evaluate_run, "predict": g2p.predict_run,
                "inspect": g2p.inspect_run}[args.command](args)
    for option in ("beam", "ensemble"):
        if getattr(args, option, None) is not None:
            raise UsageError(f"--{option} applies to g2p runs only; {args.run_dir} classifies images")
    if args.command == "inspect":
        from .inspect.report import inspect_run
        return inspect_run(args)
    from . import runs
    run = {"train": runs.train, "evaluate": runs.evaluate_run, "predict": runs.predict_run}
    return run[args.command](args)


def _summary(args) -> int:
    if args.task == "g2p":
        return _g2p().summary(args)
    from .interop.torchvision import BUILDERS, IMAGENET_SHAPE
    from .models import MODELS
    from .summary import summary
    model = args.model or "mlp"
    if model not in MODELS and model not in BUILDERS:
        raise UsageError(f"--model {model}: choose one of {', '.join([*MODELS, *BUILDERS])}")
    built, shape = (MODELS[model](), (28, 28, 1)) if model in MODELS else (BUILDERS[model](), IMAGENET_SHAPE)
    print(summary(built, shape))
    return 0


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
