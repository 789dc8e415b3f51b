"""Time one jitted optimizer step of every fnn.optim optimizer against optax's same optimizer.

Both libraries build them the same way, as chains of small transforms, so the table shows the
cost of fnn's hand-written transforms and of its chain against optax's.

A step is `update` then `apply_updates`, jitted with the params and optimizer state donated
(the same on both sides), on a float32 pytree of about 10M parameters shaped like a small
network. The two libraries are timed interleaved, call by call, and the table gives the ratio
of fnn to optax: the median over rounds of (fnn time / optax time) in the same round (below 1
means fnn is faster), next to each side's median time and the ratio of the bytes XLA's cost
analysis says one step reads and writes (the step is memory-bound, and this does not vary
with the load of the machine).

    python benchmarks/optim_updates.py [--reps 41] [--rules adam,lion]
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnn.optim as fo

PAIRS = {  # rule: (fnn optimizer, optax optimizer), the same hyperparameters on both sides
    "sgd": (fo.sgd(0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
    "adagrad": (fo.adagrad(0.1), optax.adagrad(0.1)),
    "rmsprop": (fo.rmsprop(1e-3), optax.rmsprop(1e-3)),
    "adam": (fo.adam(1e-3), optax.adam(1e-3)),
    "adamw": (fo.adamw(1e-3), optax.adamw(1e-3)),
    "nadam": (fo.nadam(1e-3), optax.nadam(1e-3)),
    "amsgrad": (fo.amsgrad(1e-3), optax.amsgrad(1e-3)),
    "adabelief": (fo.adabelief(1e-3), optax.adabelief(1e-3)),
    "radam": (fo.radam(1e-3), optax.radam(1e-3)),
    "lion": (fo.lion(1e-4), optax.lion(1e-4)),
    "adafactor": (fo.adafactor(1e-2), optax.adafactor(1e-2)),
    "lamb": (fo.lamb(1e-3), optax.lamb(1e-3)),
    "lars": (fo.lars(0.1), optax.lars(0.1)),
    "clip+adamw": (fo.chain(fo.clip_by_global_norm(1.0), fo.adamw(1e-3)),
                   optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))),
    "adam+sched": (fo.adam(fo.warmup_cosine(0.0, 1e-3, 100, 10_000)),
                   optax.adam(optax.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 10_000))),
    "masked+sgd": (fo.chain(fo.masked(fo.add_decayed_weights(1e-4), fo.decay_mask), fo.sgd(0.1, momentum=0.9)),
                   optax.chain(optax.masked(optax.add_decayed_weights(1e-4),
                                            lambda p: jax.tree.map(lambda x: x.ndim >= 2, p)),
                               optax.sgd(0.1, momentum=0.9))),
}


def network_params(seed: int = 0) -> dict:
    """About 10M float32 parameters: an embedding, two wide dense layers, a norm and a head."""
    rng = np.random.default_rng(seed)
    shapes = {"embed": (8192, 512), "dense1": {"W": (512, 4096), "b": (4096,)},
              "dense2": {"W": (4096, 512), "b": (512,)}, "norm": {"gamma": (512,), "beta": (512,)},
              "head": {"W": (512, 3000), "b": (3000,)}}
    is_shape = lambda s: isinstance(s, tuple)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s), jnp.float32) * 0.02, shapes,
                        is_leaf=is_shape)


def compiled_step(opt, apply, params, grads):
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return apply(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1)).lower(params, opt.init(params), grads).compile()


def bytes_accessed(compiled) -> float:
    """XLA's count of the bytes one call reads and writes (a load-independent cost measure)."""
    cost = compiled.cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["bytes accessed"]


def time_pair(ours, theirs, params, grads, reps: int) -> tuple[float, float, float, float]:
    """Median seconds per step of fnn and optax, the median of the per-round ratios, and the ratio
    of XLA's bytes accessed. The two alternate step by step (who goes first alternates too), so a
    change of machine load hits both."""
    sides = []
    for opt, apply in ((ours, fo.apply_updates), (theirs, optax.apply_updates)):
        p = jax.tree.map(jnp.copy, params)
        sides.append([compiled_step(opt, apply, p, grads), p, opt.init(p), []])
    for rep in range(reps + 3):                 # 3 warm-up rounds
        for side in (sides if rep % 2 else sides[::-1]):
            step, p, s, times = side
            start = time.perf_counter()
            side[1], side[2] = jax.block_until_ready(step(p, s, grads))
            if rep >= 3:
                times.append(time.perf_counter() - start)
    ours_t, theirs_t = sides[0][3], sides[1][3]
    paired = statistics.median(a / b for a, b in zip(ours_t, theirs_t, strict=True))
    traffic = bytes_accessed(sides[0][0]) / bytes_accessed(sides[1][0])
    return statistics.median(ours_t), statistics.median(theirs_t), paired, traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=41, help="timed steps per side and rule")
    parser.add_argument("--rules", default=",".join(PAIRS),
                        help="comma-separated subset of: " + ", ".join(PAIRS))
    args = parser.parse_args()
    params = network_params()
    grads = jax.tree.map(lambda p: p * 0.5 + 0.01, params)
    size = sum(x.size for x in jax.tree.leaves(params))
    print(f"{size / 1e6:.1f}M float32 parameters in {len(jax.tree.leaves(params))} leaves; "
          f"{jax.devices()[0].platform}, jax {jax.__version__}, optax {optax.__version__}; "
          f"median of {args.reps} interleaved steps, params and state donated")
    print(f"{'rule':<12} {'fnn ms':>8} {'optax ms':>9} {'time fnn/optax':>15} {'bytes fnn/optax':>16}")
    ratios = []
    for name in args.rules.split(","):
        ours, theirs, ratio, traffic = time_pair(*PAIRS[name], params, grads, args.reps)
        ratios.append(ratio)
        print(f"{name:<12} {ours * 1e3:8.2f} {theirs * 1e3:9.2f} {ratio:15.3f} {traffic:16.3f}", flush=True)
    print(f"{'geomean':<12} {'':8} {'':9} {float(np.exp(np.mean(np.log(ratios)))):15.3f}")


if __name__ == "__main__":
    main()
