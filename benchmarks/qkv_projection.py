"""MultiHeadAttention's Q/K/V projection, fused (self-attention: one x [W_q W_k W_v] matmul forward and
one matmul each for dW and dx backward, `fnn.layers.attention._qkv`) against three separate
projections (the cross-attention path, which self-attention took before 2026-12-07): forward +
backward in one jit, interleaved calls, the median; same numbers to float32 rounding.

    python benchmarks/qkv_projection.py [--batch 128] [--tokens 49] [--width 64] [--heads 4] [--calls 40]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from fnn.layers.attention import _qkv, _qkv_backward

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers.common import load_average, machine  # noqa: E402


def projection_pass(fused: bool, heads: int):
    """jit(params, x, dq, dk, dv) -> (q, k, v, grads, dx), fused or as three projections."""
    def run(p, x, dq, dk, dv):
        q, k, v = _qkv(p, x, x, not fused, heads)
        grads, dx, dx_kv = _qkv_backward(p, x, x, dq, dk, dv, not fused)
        return q, k, v, grads, dx if dx_kv is None else dx + dx_kv
    return jax.jit(run)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--tokens", type=int, default=49)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--calls", type=int, default=40)
    args = p.parse_args()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average (1/5/15 min) at the start {load_average()}")
    print(machine())
    head_dim = args.width // args.heads
    keys = jax.random.split(jax.random.PRNGKey(0), 7)
    params = {f"W_{n}": jax.random.normal(k, (args.width, args.width)) for n, k in zip("qkv", keys)}
    params |= {f"b_{n}": jnp.zeros((args.width,)) for n in "qkv"}
    x = jax.random.normal(keys[3], (args.batch, args.tokens, args.width))
    grads_in = [jax.random.normal(k, (args.batch, args.tokens, args.heads, head_dim)) for k in keys[4:]]
    runs = {"fused": projection_pass(True, args.heads), "separate": projection_pass(False, args.heads)}
    outs = {name: run(params, x, *grads_in) for name, run in runs.items()}
    diff = max(float(jnp.abs(a - b).max()) for a, b in zip(*(jax.tree.leaves(o) for o in outs.values())))
    times = {name: [] for name in runs}
    for _ in range(args.calls):
        for name, run in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(run(params, x, *grads_in))
            times[name].append(time.perf_counter() - start)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"\nx ({args.batch}, {args.tokens}, {args.width}), {args.heads} heads, median of {args.calls} "
          "interleaved calls"
          f" (largest difference between the two: {diff:.1e})\n")
    print("| projection | fwd + bwd ms | time / separate |\n| --- | ---: | ---: |")
    for name, value in ms.items():
        print(f"| {name} | {value:.3f} | {value / ms['separate']:.2f} |")
    print(f"\nload average (1/5/15 min) at the end {load_average()}")


if __name__ == "__main__":
    main()
