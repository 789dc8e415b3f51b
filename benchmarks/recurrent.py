"""LSTM training step (forward, backward, SGD update; batch 128, 28 input features):
fnn's hand BPTT (cuDNN-style: input projection and weight gradients as single matmuls
outside the loop) vs the same BPTT with the projections inside the loop ("per-step"), vs
jax.grad of the same forward, vs PyTorch's nn.LSTM on the CPU, and Flax if installed.
Prints ratios to fnn's hand BPTT, measured in one run (median of repeats).

    python benchmarks/recurrent.py [--rows 128x28,512x200] [--repeats 3] [--no-growth]
"""
import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from fnn.layers import _bptt

B, F, LR = 128, 28, 1e-3


def _params(H):
    k = 1 / np.sqrt(H)
    shapes = {"W_x": (F, 4 * H), "W_h": (H, 4 * H), "b_x": (4 * H,), "b_h": (4 * H,)}
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    return {n: jax.random.uniform(kk, s, jnp.float32, -k, k) for (n, s), kk in zip(shapes.items(), keys)}


def _forward(params, x, fused=True):
    zeros = jnp.zeros((x.shape[0], params["W_h"].shape[0]), x.dtype)
    ys, final, cache = _bptt.run_forward(_bptt.LSTM_CELL, params, jnp.swapaxes(x, 0, 1), None,
                                         (zeros, zeros), fused)
    return final, cache


def _loss_grad(final):
    """L = mean(h_T): dL/dh_T = 1 / (B H)."""
    return jnp.full_like(final[0], 1.0 / final[0].size)


def hand_step(params, x, fused=True):
    final, cache = _forward(params, x, fused)
    dfinal = (_loss_grad(final), jnp.zeros_like(final[1]))
    (grads, _), _ = _bptt.run_backward(_bptt.LSTM_CELL, params, cache, None, dfinal, fused)
    return jax.tree.map(lambda p, g: p - LR * g, params, grads)


def autodiff_step(params, x):
    grads = jax.grad(lambda p: jnp.mean(_forward(p, x)[0][0]))(params)
    return jax.tree.map(lambda p, g: p - LR * g, params, grads)


def _time(fn, repeats):
    fn()                                                           # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _jax_runner(step, params, x):
    jitted = jax.jit(step)
    return lambda: jax.block_until_ready(jitted(params, x))


def _torch_runner(H, T):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(F, H, batch_first=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=LR)
    x = torch.randn(B, T, F)

    def run():
        opt.zero_grad()
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
    x = jnp.ones((B, T, F))
    params = model.init(jax.random.PRNGKey(0), x)

    @jax.jit
    def step(p):
        grads = jax.grad(lambda q: jnp.mean(model.apply(q, x)[:, -1]))(p)
        return jax.tree.map(lambda a, g: a - LR * g, p, grads)
    return lambda: jax.block_until_ready(step(params))


def row(H, T, repeats):
    params = _params(H)
    x = jax.random.normal(jax.random.PRNGKey(1), (B, T, F))
    base = _time(_jax_runner(hand_step, params, x), repeats)
    cells = {"per-step": _time(_jax_runner(functools.partial(hand_step, fused=False), params, x), repeats),
             "jax.grad": _time(_jax_runner(autodiff_step, params, x), repeats)}
    for name, make in (("torch", _torch_runner), ("flax", _flax_runner)):
        runner = make(H, T)
        cells[name] = None if runner is None else _time(runner, repeats)
    return base, cells


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="128x28,128x200,512x28,512x200", help="HxT,HxT,...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-growth", action="store_true")
    args = parser.parse_args()
    configs = [tuple(int(v) for v in r.split("x")) for r in args.rows.split(",") if r]
    print("LSTM training step, batch 128, 28 features: time / fnn hand BPTT (lower is faster for the column)")
    print(f"{'H':>4} {'T':>4} {'fnn ms':>8} {'per-step':>9} {'jax.grad':>9} {'torch':>7} {'flax':>7}")
    for H, T in configs:
        base, cells = row(H, T, args.repeats)
        text = " ".join(f"{'-' if v is None else f'{v / base:.2f}x':>{w}}" for v, w in
                        zip(cells.values(), (9, 9, 7, 7)))
        print(f"{H:>4} {T:>4} {base * 1e3:8.1f} {text}", flush=True)
    if args.no_growth:
        return
    print("\nGrowth (hand BPTT): time(H, T) / time(128, 28)")
    times = {(H, T): _time(_jax_runner(hand_step, _params(H), jax.random.normal(jax.random.PRNGKey(1), (B, T, F))),
                           args.repeats) for H in (128, 256) for T in (28, 56, 112, 224)}
    print("  ".join(f"H={H},T={T}: {t / times[128, 28]:.2f}" for (H, T), t in times.items()))


if __name__ == "__main__":
    main()
