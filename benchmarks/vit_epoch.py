"""Time per epoch of the ViT recipes (issue 24's "at no more time per epoch"): `fnn.models.vit` with
the earlier 4x4 patch stem and no stochastic depth, against the early-convolution stem with
drop_path 0.1 and MLP 256, and today's default (the same with MLP 192), each trained by
`fnn.train.fit` (scanned epoch, hand backward, AdamW, batch 128) on the first `--steps` x 128
Fashion-MNIST images.

    python benchmarks/vit_epoch.py [--steps 100] [--epochs 3] [--rounds 2] [--wait-idle]

Each round builds and trains every variant in turn for `--epochs` epochs and keeps the wall time
of each epoch (compiles happen before the first epoch ends; the first epoch is dropped); a cell is
the median over all kept epochs, the ratio is against the patch stem.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax

import fnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers.common import load_average, load_train, machine, wait_for_load  # noqa: E402

VARIANTS = {"patch stem, drop_path 0, MLP 256 (until 2026-12-07)": {"stem": "patch", "drop_path": 0.0, "mlp_dim": 256},
            "conv stem, drop_path 0.1, MLP 256 (2026-12-07)": {"stem": "conv", "drop_path": 0.1, "mlp_dim": 256},
            "conv stem, drop_path 0.1, MLP 192 (the default)": {"stem": "conv", "drop_path": 0.1, "mlp_dim": 192}}
BATCH = 128
EPOCH_STEPS = 60000 // BATCH


def epoch_seconds(build: dict, x, y, epochs: int) -> list[float]:
    """Wall seconds of epochs 2..epochs of one `fit` run of the variant."""
    model = fnn.models.vit(**build)
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    stamps = []
    fnn.train.fit(model, params, state, fnn.optim.adamw(1e-3, weight_decay=0.05), (x, y),
                  loss=fnn.losses.softmax_cross_entropy, epochs=epochs, batch_size=BATCH, key=jax.random.PRNGKey(1),
                  grads="manual", loop="scan", progress=False,
                  on_epoch=lambda *_: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100, help="steps of 128 in an epoch (default: 100)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run, the first not timed (default: 3)")
    p.add_argument("--rounds", type=int, default=2, help="runs of every variant, in turn (default: 2)")
    p.add_argument("--wait-idle", action="store_true", help="wait for a 1-minute load below 1 first")
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch, with its compiles, is not timed)")
    if args.wait_idle:
        wait_for_load()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average (1/5/15 min) at the start {load_average()}")
    print(machine())
    x, y, _ = load_train()
    x, y = x[:args.steps * BATCH], y[:args.steps * BATCH]
    times = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, build in VARIANTS.items():
            times[name] += epoch_seconds(build, x, y, args.epochs)
    base = statistics.median(times[next(iter(VARIANTS))])
    print(f"\nViT (width 64, 4 blocks), {args.steps} steps of {BATCH} an epoch, median of "
          f"{args.rounds * (args.epochs - 1)} epochs\n")
    print(f"| variant | s per epoch | s per {EPOCH_STEPS} steps (a full epoch) | time / patch stem |\n"
          "| --- | ---: | ---: | ---: |")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"| {name} | {median:.2f} | {median * EPOCH_STEPS / args.steps:.1f} | {median / base:.2f} |")
    print(f"\nload average (1/5/15 min) at the end {load_average()}")


if __name__ == "__main__":
    main()
