"""Grapheme to phoneme as a task of the command line: `fnn train --task g2p`, then `fnn evaluate`,
`predict`, `inspect` and `summary` on its run directory (`runs/g2p-NNN`).

A run directory holds `config.json` (the recipe and both vocabularies), `checkpoint.safetensors`
(after every epoch, with the history and the planned epochs), `best.safetensors` (the lowest
held-out subset WER) and `history.json` (per epoch: loss, subset WER/PER, minutes; at the end the
greedy WER/PER on the held-out words). `evaluate` and `predict` take `--ensemble RUN...`: several
runs decode as one (`load_runs`, `fnn.ensemble`). Data: `fnn.datasets.cmudict` (its fixed crc32 split);
models and decoders: `fnn.models.seq2seq`; metrics: `fnn.metrics`. Each run function takes the
parsed argparse namespace; a bad argument raises `UsageError` (exit 2), a broken run `RunError`.
"""
from .commands import evaluate_run as evaluate_run
from .commands import inspect_run as inspect_run
from .commands import predict_run as predict_run
from .commands import summary as summary
from .recipe import add_train_arguments as add_train_arguments
from .recipe import build_model as build_model
from .recipe import config_from as config_from
from .recipe import transcribe as transcribe
from .run import load_run as load_run
from .run import load_runs as load_runs
from .run import planned_epochs as planned_epochs
from .run import train as train

__all__ = ["add_train_arguments", "build_model", "config_from", "evaluate_run", "inspect_run", "load_run",
           "load_runs", "planned_epochs", "predict_run", "summary", "train", "transcribe"]
