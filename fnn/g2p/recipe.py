"""The g2p task's recipe: its options, their defaults and checks, the model, the optimizer, the
data (`fnn.datasets.cmudict`) and decoding words to phonemes (`transcribe`)."""
from __future__ import annotations

import argparse
import math
from typing import NamedTuple

import jax
import numpy as np

from .. import losses, optim
from ..datasets import cmudict as D
from ..metrics import wer_per
from ..models import seq2seq as S
from ..run_config import OPTIMIZERS, SCHEDULES, SETTINGS, UsageError
from ..train import Buckets, steps_per_epoch

ARCHITECTURES = ("lstm", "transformer")
# the shared settings the task uses, with its defaults; None = the architecture's (ARCHITECTURE_DEFAULTS);
# schedule None = the g2p recipe's: warm-up over min(500, steps / 10) steps, then cosine to 5% of --lr
RECIPE = {"epochs": None, "lr": None, "batch_size": 256, "dropout": None, "seed": 0, "limit": None,
          "minutes": None, "grads": "manual", "loop": "scan", "optimizer": "adam", "schedule": None,
          "weight_decay": None, "label_smoothing": 0.1}
# buckets: None = every batch padded to 20 letters (the LSTM's figures were trained so); [] = --buckets none
ARCHITECTURE_DEFAULTS = {"lstm": {"size": 256, "lr": 3e-3, "dropout": 0.3, "epochs": 30, "buckets": None},
                         "transformer": {"size": 128, "layers": 3, "lr": 2e-3, "dropout": 0.1, "epochs": 34,
                                         "buckets": [8, 12]}}
OWN = {"model": "lstm", "size": None, "layers": None, "curve_words": 500, "test_words": None,   # the task's own
       "average": 1, "buckets": None}
CHANGEABLE_ON_RESUME = ("epochs", "minutes", "loop")
EXAMPLE_WORDS = ("photosynthesis", "knight", "through", "quixotic", "brainstorming", "colonel", "queue",
                 "xylophone")
CLIP = 1.0                 # gradients clipped at this global norm, always
HIDDEN = argparse.SUPPRESS
SHARED_HELP = {    # the shared options' help with g2p's defaults (the command line shows the classifier's)
    "--epochs": "epochs to train (with --resume: train on up to this many) (default: 30 lstm, 34 transformer)",
    "--lr": "peak learning rate (default: 3e-3 lstm, 2e-3 transformer)",
    "--batch-size": "pronunciations per step (default: 256)",
    "--optimizer": "the update rule, after clipping the gradients at global norm 1 (default: adam)",
    "--schedule": "learning-rate schedule (default: warm-up over min(500, steps/10) steps, then cosine to 5%% "
                  "of --lr)",
    "--weight-decay": "weight decay: decoupled for adamw, lion, lamb, lars, L2 added to the gradient for the "
                      "others (default: 1e-4 for adamw, 0 otherwise)",
    "--label-smoothing": "label smoothing of the training loss, in [0, 1) (default: 0.1)",
    "--loop": "scan: an epoch is one compiled loop (lax.fori_loop); step: a jitted step per batch; auto: time both "
              "(default: scan)",
    "--seed": "random seed (initialisation, shuffling, dropout) (default: 0)",
    "--limit": "train on the first N training words of the fixed split (default: all)",
    "--out": "run directory (default: the next free runs/g2p-NNN)",
    "--resume": "continue a run from its last checkpoint (only --epochs, --minutes and --loop may change)",
    "--data-dir": HIDDEN, "--download": HIDDEN, "--processes": HIDDEN, "--process-id": HIDDEN,
    "--coordinator": HIDDEN,
}


class Task(NamedTuple):
    lexicon: dict          # every word -> its pronunciations
    train: dict            # the training words (the first --limit of them)
    test: dict             # the held-out words (the fixed split)
    letters: list
    phonemes: list


# ------------------------------------------------------------------ arguments and recipe

def _add(parser: argparse.ArgumentParser, flag: str, **kwargs) -> None:
    """Add an option unless the shared command line already defines it."""
    if flag not in parser._option_string_actions:
        parser.add_argument(flag, **kwargs)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `fnn train --task g2p` adds to the shared ones (absent unless given: SUPPRESS)."""
    sup = argparse.SUPPRESS
    _add(parser, "--model", choices=ARCHITECTURES, default=sup,
         help="lstm: BiLSTM encoder, additive-attention LSTM decoder; transformer: encoder-decoder (default: lstm)")
    _add(parser, "--epochs", type=int, default=sup, metavar="N", help=SHARED_HELP["--epochs"])
    _add(parser, "--lr", type=float, default=sup, metavar="LR", help=SHARED_HELP["--lr"])
    _add(parser, "--size", type=int, default=sup, metavar="N",
         help="LSTM hidden size / transformer width (default: 256 lstm, 128 transformer)")
    _add(parser, "--layers", type=int, default=sup, metavar="N",
         help="transformer blocks on each side, --model transformer only (default: 3)")
    _add(parser, "--dropout", type=float, default=sup, metavar="P",
         help="dropout rate, the probability of dropping (default: 0.3 lstm, 0.1 transformer)")
    _add(parser, "--curve-words", type=int, default=sup, metavar="N",
         help="held-out words decoded after every epoch for the WER/PER curve (default: 500)")
    _add(parser, "--test-words", type=int, default=sup, metavar="N",
         help="held-out words decoded (greedy) at the end of training for the WER/PER (default: all)")
    _add(parser, "--average", type=int, default=sup, metavar="N",
         help="the final model is the mean of the parameters after each of the last N epochs "
              "(averaged.safetensors; default: 1, the last epoch's)")
    _add(parser, "--buckets", type=bucket_lengths, default=sup, metavar="L1,L2",
         help="train on batches of words of similar length: a part padded to each length L (up to L letters "
              "and L phonemes), then the rest to 20; an epoch about twice as fast with 8,12; none: every "
              "batch padded to 20 (default: none lstm, 8,12 transformer)")
    _add(parser, "--label-smoothing", type=float, default=sup, metavar="E", help=SHARED_HELP["--label-smoothing"])
    budget = ("training budget in minutes: after epoch 2 the schedule is re-planned to span the epochs that "
              "fit, an epoch's time being the median of the last 5 (default: none)")
    _add(parser, "--minutes", type=float, default=sup, metavar="M", help=budget)
    for flag, text in {**SHARED_HELP, "--minutes": budget}.items():      # the shared flags, as g2p reads them
        if flag in parser._option_string_actions:
            parser._option_string_actions[flag].help = text


def bucket_lengths(text: str) -> list[int]:
    """--buckets: "8,12" -> [8, 12]; "none" -> [] (one part, every word padded to 20)."""
    if text.strip().lower() == "none":
        return []
    try:
        lengths = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected increasing lengths like 8,12 or none, got {text!r}") from None
    if not _increasing_lengths(lengths):
        raise argparse.ArgumentTypeError(f"expected increasing lengths in [1, {D.MAX_LETTERS - 1}], got {text!r}")
    return lengths


def _increasing_lengths(b) -> bool:
    """--buckets' rule: a list of increasing integers in [1, MAX_LETTERS - 1]."""
    return isinstance(b, list) and b == sorted(set(b)) and all(isinstance(L, int) and 1 <= L < D.MAX_LETTERS
                                                               for L in b)


def training_data(cfg: dict, task: Task):
    """fit's training data: every (word, pronunciation) pair padded to 20, or in --buckets parts
    (`fnn.train.Buckets`). Returns (data, pairs, steps an epoch)."""
    data = D.encode_pairs(task.train, task.letters, task.phonemes)
    pairs, batch = len(data[1][0]), cfg["batch_size"]
    if cfg.get("buckets"):
        data = Buckets(D.bucket_pairs(data, cfg["buckets"], min_size=batch))
    return data, pairs, steps_per_epoch(data, batch)


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if hasattr(args, k) and getattr(args, k) is not None}


def _refuse_foreign(args) -> None:
    """Options of the classification task have no meaning here: one line instead of silence."""
    foreign = [k for k in SETTINGS if k not in RECIPE and k not in OWN and k != "task" and hasattr(args, k)]
    foreign += [k for k in ("data_dir", "download", "processes", "process_id", "coordinator") if getattr(args, k, None)]
    if foreign:
        raise UsageError(f"--{foreign[0].replace('_', '-')} does not apply to --task g2p "
                         f"(its options: {', '.join(_flags((*OWN, *RECIPE)))})")


def _flags(names) -> list[str]:
    return ["--" + k.replace("_", "-") for k in names]


def config_from(args) -> dict:
    """The run's recipe: the given options, else the task's and the architecture's defaults; checked."""
    _refuse_foreign(args)
    cfg = {"task": "g2p", "dataset": "cmudict", **OWN, **RECIPE, **_given(args, (*RECIPE, *OWN))}
    _require(cfg["model"] in ARCHITECTURES, "model", f"one of {', '.join(ARCHITECTURES)}", cfg["model"])
    _require(cfg["model"] == "transformer" or cfg["layers"] is None, "layers", "given only with --model "
             "transformer (the LSTM recipe has one encoder and one decoder layer)", cfg["layers"])
    for k, v in ARCHITECTURE_DEFAULTS[cfg["model"]].items():
        cfg[k] = (list(v) if isinstance(v, list) else v) if cfg[k] is None else cfg[k]
    check(cfg)
    return cfg


def _require(ok: bool, name: str, rule: str, value) -> None:
    if not ok:
        raise UsageError(f"--{name.replace('_', '-')} must be {rule}, got {value}")


def check(cfg: dict) -> None:
    """Each setting on its own (UsageError: one line naming the flag)."""
    for k in ("epochs", "batch_size", "size", "layers", "curve_words", "test_words", "average"):
        _require(cfg[k] is None or cfg[k] >= 1, k, "a positive integer", cfg[k])
    _require(math.isfinite(cfg["lr"]) and cfg["lr"] > 0, "lr", "a positive number", cfg["lr"])
    for k in ("dropout", "label_smoothing"):
        _require(0.0 <= cfg[k] < 1.0, k, "in [0, 1)", cfg[k])
    wd = cfg["weight_decay"]
    _require(wd is None or (math.isfinite(wd) and wd >= 0), "weight_decay", ">= 0", wd)
    _require(cfg["optimizer"] in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}", cfg["optimizer"])
    _require(cfg["schedule"] in (None, *SCHEDULES), "schedule", f"one of {', '.join(SCHEDULES)}", cfg["schedule"])
    _require(0 <= cfg["seed"] < 2**32, "seed", "in [0, 2**32)", cfg["seed"])
    _require(cfg["limit"] is None or cfg["limit"] >= 1, "limit", "a positive integer (training words)", cfg["limit"])
    b = cfg.get("buckets")
    _require(b is None or _increasing_lengths(b), "buckets", f"increasing lengths in [1, {D.MAX_LETTERS - 1}]", b)
    m = cfg["minutes"]
    _require(m is None or (math.isfinite(m) and m > 0), "minutes", "a positive number", m)
    _require(cfg["model"] == "lstm" or cfg["size"] % 4 == 0, "size", "a multiple of the 4 heads for the "
             "transformer", cfg["size"])


def build_model(cfg: dict):
    """The run's encoder-decoder for its vocabularies."""
    n_letters, n_phonemes, size = len(cfg["letters"]), len(cfg["phonemes"]), cfg["size"]
    if cfg["model"] == "lstm":
        return S.Seq2SeqLSTM(n_letters, n_phonemes, embed=64, hidden=size, attn=min(size, 128), dropout=cfg["dropout"])
    return S.Seq2SeqTransformer(n_letters, n_phonemes, embed=size, heads=4, mlp=4 * size, layers=cfg["layers"],
                                dropout=cfg["dropout"])


def init_model(cfg: dict):
    """(model, params, state) initialised from the run's seed."""
    model = build_model(cfg)
    shapes = ((D.MAX_LETTERS,), (), (D.TARGET_LENGTH,))
    _, params, state = model.init(jax.random.fold_in(jax.random.PRNGKey(cfg["seed"]), 0), shapes)
    return model, params, state


def build_optimizer(cfg: dict, steps: int) -> optim.Optimizer:
    """Gradients clipped at global norm 1, then --optimizer (adam) on --schedule over `steps` steps; the
    default schedule warms up over min(500, steps / 10) steps, then decays by a cosine to 5% of --lr."""
    lr, steps = cfg["lr"], max(steps, 1)
    schedule = (optim.warmup_cosine(0.0, lr, min(500, steps // 10), steps, end_value=0.05 * lr)
                if cfg["schedule"] is None else SCHEDULES[cfg["schedule"]](lr, steps))
    return optim.chain(optim.clip_by_global_norm(CLIP), OPTIMIZERS[cfg["optimizer"]](schedule, cfg["weight_decay"]))


def training_loss(cfg: dict):
    """Softmax cross-entropy over the phoneme positions, with --label-smoothing (a Loss record)."""
    if not cfg["label_smoothing"]:
        return losses.softmax_cross_entropy
    return losses.softmax_cross_entropy.partial(label_smoothing=cfg["label_smoothing"])


def load_task(cfg: dict) -> Task:
    """The lexicon, the split (the first --limit training words), the vocabularies; checks --limit
    and --batch-size against the data."""
    lexicon = D.load_lexicon()
    train, test = D.split(lexicon)
    if cfg["limit"] is not None and cfg["limit"] > len(train):
        raise UsageError(f"--limit {cfg['limit']} exceeds the {len(train)} training words")
    if cfg["limit"]:
        train = dict(list(train.items())[:cfg["limit"]])
    pairs = sum(len(p) for p in train.values())
    if cfg["batch_size"] > pairs:
        raise UsageError(f"--batch-size {cfg['batch_size']} exceeds the {pairs} training pronunciations")
    letters, phonemes = D.vocabularies(lexicon)
    return Task(lexicon, train, test, letters, phonemes)


def spread(words, n: int | None) -> list:
    """n words evenly spread over the sorted `words` (all of them for n None or >= len)."""
    words = sorted(words)
    if n is None or n >= len(words):
        return words
    return words[::max(1, len(words) // n)][:n]


# ------------------------------------------------------------------ decoding

def transcribe(model, params, state, words, letters, phonemes, *, beam: int = 1, batch: int = 500) -> dict:
    """word -> predicted phoneme tuple (greedy for beam=1, else beam search), in fixed-size batches
    (one compilation per batch size)."""
    src, src_len = D.encode_words(words, letters)
    batch, out = min(batch, len(words)), {}
    for i in range(0, len(words), batch):
        s, n = src[i:i + batch], src_len[i:i + batch]
        pad = batch - len(s)
        s, n = np.pad(s, ((0, pad), (0, 0))), np.pad(n, (0, pad), constant_values=1)
        ids = (S.greedy(model, params, state, (s, n), D.TARGET_LENGTH) if beam == 1
               else S.beam_search(model, params, state, (s, n), D.TARGET_LENGTH, beam))
        for w, row in zip(words[i:i + batch], np.asarray(ids)):
            out[w] = D.decode_ids(row, phonemes)
    return out


def score_words(model, params, state, cfg, words, references, beam: int = 1) -> tuple[float, float]:
    """(WER, PER) of the decoded `words` against `references` (word -> pronunciations)."""
    return wer_per(transcribe(model, params, state, list(words), cfg["letters"], cfg["phonemes"], beam=beam),
                   references)

