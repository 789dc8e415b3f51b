"""LSTM training step (forward, backward, SGD update; batch 128, 28 input features,
L = mean(h_T)): fnn's hand BPTT (its default: per-step input projection, weight gradients
as single matmuls after the loop) vs the same BPTT in cuDNN's "fused" layout (input
projection and dx as one matmul outside the loop), vs the batch as two independent
recurrences in one scan step ("blocks 2", LSTM(batch_blocks=2)), vs jax.grad of the same forward, vs
PyTorch's nn.LSTM on the CPU (2 threads, and 1: "torch 1T") and Flax's
nn.RNN(nn.OptimizedLSTMCell).

Every repeat runs one step of each peer in turn (interleaved, so a change of load on a
shared machine falls on all of them alike); a cell is the median over repeats of the
peer's time / fnn's time in the same repeat. The load average is printed with each row.

    python benchmarks/recurrent.py [--rows 128x28,512x200] [--repeats 5] [--growth-repeats 7] [--no-growth]
    python benchmarks/recurrent.py --unroll 2,4,7,28 --rows 128x28   # the variants table only
"""
import argparse
import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from fnn.layers import _bptt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers.common import load_average, machine, wait_for_load  # noqa: E402

B, F, LR = 128, 28, 1e-3
PEERS = ("blocks 2", "fused", "jax.grad", "torch", "torch 1T", "flax")


def _params(H):
    k = 1 / np.sqrt(H)
    shapes = {"W_x": (F, 4 * H), "W_h": (H, 4 * H), "b_x": (4 * H,), "b_h": (4 * H,)}
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    return {n: jax.random.uniform(kk, s, jnp.float32, -k, k) for (n, s), kk in zip(shapes.items(), keys)}


def _forward(params, x, fused, unroll=1, cell=_bptt.LSTM_CELL, parts=1):
    zeros = jnp.zeros((x.shape[0], params["W_h"].shape[0]), x.dtype)
    ys, final, cache = _bptt.run_forward(cell, params, jnp.swapaxes(x, 0, 1), None,
                                         (zeros, zeros), fused, unroll, parts)
    return final, cache


def _one_sigmoid_step(a_t, _, carry):
    """The LSTM step with one sigmoid over all 4H gates: tanh(a) = 2 sigmoid(2a) - 1 for g."""
    H = carry[1].shape[-1]
    scale = jnp.ones((4 * H,), a_t.dtype).at[2 * H:3 * H].set(2)
    i, f, g, o = jnp.split(jax.nn.sigmoid(a_t * scale), 4, axis=-1)
    g = 2 * g - 1
    c_new = f * carry[1] + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)


ONE_SIGMOID_CELL = _bptt.LSTM_CELL._replace(step=_one_sigmoid_step)


def hand_step(params, x, fused=False, unroll=1, cell=_bptt.LSTM_CELL, parts=1):
    final, cache = _forward(params, x, fused, unroll, cell, parts)
    dfinal = (jnp.full_like(final[0], 1.0 / final[0].size), jnp.zeros_like(final[1]))   # L = mean(h_T)
    (grads, _), _ = _bptt.run_backward(cell, params, cache, None, dfinal, unroll)
    return jax.tree.map(lambda p, g: p - LR * g, params, grads)


def autodiff_step(params, x):
    grads = jax.grad(lambda p: jnp.mean(_forward(p, x, False)[0][0]))(params)
    return jax.tree.map(lambda p, g: p - LR * g, params, grads)


def _jax_runner(step, H, T):
    params, x = _params(H), jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    jitted = jax.jit(step)
    return lambda: jax.block_until_ready(jitted(params, x))


def _torch_runner(H, T, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(F, H, batch_first=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=LR)
    x = torch.randn(B, T, F)

    def run():
        torch.set_num_threads(threads)
        opt.zero_grad(set_to_none=True)
        _, (h, _) = lstm(x)
        h.mean().backward()
        opt.step()
    return run


def _flax_runner(H, T):
    try:
        import flax.linen as nn
    except ImportError:
        return None
    model = nn.RNN(nn.OptimizedLSTMCell(H))
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    params = model.init(jax.random.PRNGKey(0), x)

    @jax.jit
    def step(p):
        grads = jax.grad(lambda q: jnp.mean(model.apply(q, x)[:, -1]))(p)     # L = mean(h_T)
        return jax.tree.map(lambda a, g: a - LR * g, p, grads)
    return lambda: jax.block_until_ready(step(params))


def _runners(H, T, peers):
    make = {"fnn": functools.partial(_jax_runner, hand_step),
            "blocks 2": functools.partial(_jax_runner, functools.partial(hand_step, parts=2)),
            "fused": functools.partial(_jax_runner, functools.partial(hand_step, fused=True)),
            "jax.grad": functools.partial(_jax_runner, autodiff_step),
            "torch": functools.partial(_torch_runner, threads=2),
            "torch 1T": functools.partial(_torch_runner, threads=1), "flax": _flax_runner}
    return {name: make[name](H, T) for name in ("fnn", *peers)}


def interleaved(runners, repeats):
    """{name: (median seconds, median ratio to runners["fnn"] within a repeat)}; None if absent."""
    live = {n: r for n, r in runners.items() if r is not None}
    for run in live.values():
        run()                                                      # compile / warm up
    times = {n: [] for n in live}
    for _ in range(repeats):
        for name, run in live.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {n: None if n not in live else (statistics.median(times[n]),
            statistics.median(t / b for t, b in zip(times[n], times["fnn"]))) for n in runners}


WAIT_IDLE = [False]


def _wait_idle(limit=1.0, poll=15):
    """With --wait-idle: block until the 1-minute load average is below `limit`, once (this
    process's own load counts in it afterwards)."""
    if WAIT_IDLE[0]:
        wait_for_load(limit, poll)
    WAIT_IDLE[0] = False


def table(configs, repeats, skip=()):
    print("LSTM training step, batch 128, 28 features: time / fnn hand BPTT in the same repeat "
          f"(median of {repeats}; above 1.00x: slower than fnn)")
    print(f"{'H':>4} {'T':>4} {'fnn ms':>8} {'blocks 2':>9} {'fused':>7} {'jax.grad':>9} {'torch':>7} {'torch 1T':>9} "
          f"{'flax':>7}   load 1/5/15 min")
    for H, T in configs:
        _wait_idle()
        before = load_average()
        cells = interleaved(_runners(H, T, [p for p in PEERS if p not in skip]), repeats)
        text = " ".join(f"{'-' if cells.get(n) is None else f'{cells[n][1]:.2f}x':>{w}}"
                        for n, w in zip(PEERS, (9, 7, 9, 7, 9, 7)))
        print(f"{H:>4} {T:>4} {cells['fnn'][0] * 1e3:8.1f} {text}   {before} -> {load_average()}", flush=True)


def variants(configs, repeats, unrolls):
    """fnn's hand step with lax.scan's unroll=u in both scans, and with one sigmoid over the
    four gates, each over the unroll=1 step in the same repeat (jax.grad beside them)."""
    names = [f"unroll {u}" for u in unrolls] + ["1 sigmoid", "jax.grad"]
    print(f"\nVariants of the hand step: time / unroll=1 in the same repeat (median of {repeats})")
    print(f"{'H':>4} {'T':>4} {'fnn ms':>8} " + " ".join(f"{n:>10}" for n in names) + "   load 1/5/15 min")
    for H, T in configs:
        _wait_idle()
        before = load_average()
        runners = {"fnn": _jax_runner(hand_step, H, T)}
        for u in unrolls:
            step = functools.partial(hand_step, unroll=True if u == T else u)
            runners[f"unroll {u}"] = _jax_runner(step, H, T)
        runners["1 sigmoid"] = _jax_runner(functools.partial(hand_step, cell=ONE_SIGMOID_CELL), H, T)
        runners["jax.grad"] = _jax_runner(autodiff_step, H, T)
        cells = interleaved(runners, repeats)
        text = " ".join(f"{cells[n][1]:>9.2f}x" for n in names)
        print(f"{H:>4} {T:>4} {cells['fnn'][0] * 1e3:8.1f} {text}   {before} -> {load_average()}", flush=True)


def growth(repeats):
    """fnn's time at each (H, T) over its time at (128, 28), all interleaved in one loop."""
    configs = [(128, T) for T in (28, 56, 112, 224)] + [(H, 28) for H in (256, 512)]
    runners = {"fnn": _jax_runner(hand_step, 128, 28)}
    runners.update({f"{H}x{T}": _jax_runner(hand_step, H, T) for H, T in configs[1:]})
    cells = interleaved(runners, repeats)
    print(f"\nGrowth of fnn's step: time(H, T) / time(128, 28), median of {repeats}, load {load_average()}")
    print("  ".join(f"H={H},T={T}: {1.0 if (H, T) == (128, 28) else cells[f'{H}x{T}'][1]:.2f}"
                    for H, T in configs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="128x28,128x200,512x28,512x200", help="HxT,HxT,...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--growth-repeats", type=int, default=7)
    parser.add_argument("--no-growth", action="store_true")
    parser.add_argument("--wait-idle", action="store_true", help="start at 1-min load < 1.0")
    parser.add_argument("--unroll", default="", help="variants table only, e.g. 2,4,7,28 (T = full)")
    parser.add_argument("--skip", default="", help="peers to leave out, comma-separated: " + ",".join(PEERS))
    args = parser.parse_args()
    configs = [tuple(int(v) for v in r.split("x")) for r in args.rows.split(",") if r]
    WAIT_IDLE[0] = args.wait_idle
    _wait_idle()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average (1/5/15 min) at start {load_average()}")
    print(machine(), flush=True)
    if args.unroll:
        variants(configs, args.repeats, [int(u) for u in args.unroll.split(",")])
        return
    table(configs, args.repeats, args.skip.split(","))
    if not args.no_growth:
        growth(args.growth_repeats)


if __name__ == "__main__":
    main()
