"""G2P decoding as `fnn.models.seq2seq` does it (the source encoded once per word; the LSTM
decoder stepped from its carried (h, c), one position a step; the transformer's decoder stepped
from its cached keys and values, `fnn.layers.attention.decode_step`) against re-running the whole
encoder-decoder on every prefix (what `greedy` and `beam_search` did until 2026-12-07, and still
do for an encoder-decoder Layer they do not know).
Both G2P recipes' models at their default sizes (`fnn.g2p.build_model`: BiLSTM(256) + LSTM(256)
decoder; transformer 3+3 blocks of width 128), randomly initialised (the work per word does not
depend on the weights), one batch of `--batch` words of 4-12 letters decoded to the task's 21
steps, greedy and beam 5: interleaved calls, the median, and a check that both ways give the same
ids.

    python benchmarks/g2p_decode.py [--batch 500] [--calls 5] [--beam 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np

from fnn.core import Layer
from fnn.datasets import cmudict as D
from fnn.g2p import recipe
from fnn.models import seq2seq as S

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers.common import load_average, machine  # noqa: E402

LETTERS, PHONEMES = 26, 69           # CMUdict's alphabet and ARPAbet with stress marks, as the task has them


def whole(model: Layer) -> Layer:
    """The same model without its children: the decoders re-run all of it on every prefix."""
    return Layer(model.init, model.forward, model.backward, model.name + " (whole)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=500, help="words decoded per call (default: 500, as fnn.g2p)")
    p.add_argument("--calls", type=int, default=5, help="timed calls of each variant (default: 5)")
    p.add_argument("--beam", type=int, default=5, help="beam width of the beam-search rows (default: 5)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 13, args.batch)
    src = np.zeros((args.batch, D.MAX_LETTERS), np.int32)
    for i, n in enumerate(lengths):
        src[i, :n] = rng.integers(len(D.SPECIALS), len(D.SPECIALS) + LETTERS, n)
    words = (src, lengths.astype(np.int32))
    print(f"jax {jax.__version__}, {machine()}, {os.cpu_count()} CPUs, load average {load_average()}; "
          f"{args.batch} words, {D.TARGET_LENGTH} steps, median of {args.calls} interleaved calls\n")
    print("| model | decoding | fnn.models.seq2seq ms | whole model ms | whole / seq2seq | same ids |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    letters = [*D.SPECIALS, *(chr(ord("a") + i) for i in range(LETTERS))]
    phonemes = [*D.SPECIALS, *(f"P{i}" for i in range(PHONEMES))]
    for kind in ("lstm", "transformer"):
        cfg = {**recipe.config_from(argparse.Namespace(model=kind)), "letters": letters, "phonemes": phonemes}
        model = recipe.build_model(cfg)
        _, params, state = model.init(jax.random.PRNGKey(0), ((D.MAX_LETTERS,), (), (D.TARGET_LENGTH,)))
        for beam in (1, args.beam):
            def decode(m, params=params, state=state, beam=beam):
                if beam == 1:
                    return S.greedy(m, params, state, words, D.TARGET_LENGTH)
                return S.beam_search(m, params, state, words, D.TARGET_LENGTH, beam)
            name = "greedy" if beam == 1 else f"beam {beam}"
            models = {"once": model, "whole": whole(model)}
            ids = {k: np.asarray(decode(m)) for k, m in models.items()}       # compile, warm up
            times = {k: [] for k in models}
            for _ in range(args.calls):
                for k, m in models.items():
                    t0 = time.perf_counter()
                    jax.block_until_ready(decode(m))
                    times[k].append(time.perf_counter() - t0)
            once, full = (1e3 * statistics.median(times[k]) for k in ("once", "whole"))
            same = "yes" if np.array_equal(ids["once"], ids["whole"]) else "NO"
            print(f"| {kind} | {name} | {once:.0f} | {full:.0f} | {full / once:.2f} | {same} |")
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
