"""Scaled dot-product attention, forward + backward, as T grows: fnn's hand-derived backward
against jax.vjp of the same forward, jax.nn.dot_product_attention under jax.vjp, and PyTorch's
F.scaled_dot_product_attention (if installed), and fnn's blockwise (FlashAttention-style) pass.
PyTorch gets (B, H, T, D) tensors; so does the "hand heads-first" column (`heads_first=True`), the
layout-matched comparison; the other fnn and jax columns take jax.nn's (B, T, H, D) and pay the
transposes in and out.
One run, repeats interleaved; ratios against fnn's hand pass.

    python benchmarks/attention.py [--lengths 64 128 256 512 1024] [--batch 32] [--heads 8] [--dim 64]

Peak memory is XLA's own account of the compiled pass (arguments + outputs + temporaries), the
T x T weights included; PyTorch's is not measured.
"""
import argparse
import functools
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from fnn.layers import blockwise_attention
from fnn.layers import scaled_dot_product_attention as attention


def hand(q, k, v, g):
    out, p = attention(q, k, v)
    return out, attention.backward(q, k, v, p, g, out=out)


HEADS_FIRST = attention._replace(heads_first=True)


def hand_heads_first(q, k, v, g):
    """The hand pass on (B, H, T, D) arrays, PyTorch's layout: no transposes in or out."""
    out, p = HEADS_FIRST(q, k, v)
    return out, HEADS_FIRST.backward(q, k, v, p, g, out=out)


def blockwise(q, k, v, g):
    out, lse = blockwise_attention(q, k, v)
    return out, blockwise_attention.backward(q, k, v, lse, g, out)


def autodiff(q, k, v, g):
    out, vjp = jax.vjp(lambda *a: attention(*a)[0], q, k, v)
    return out, vjp(g)


def jax_nn(q, k, v, g):
    out, vjp = jax.vjp(jax.nn.dot_product_attention, q, k, v)
    return out, vjp(g)


def matmuls_alone(q, k, v, g):
    """The six matmuls of the pass (QK^T, PV; dV, dP, dQ, dK) on (B, H, T, D) arrays, with no
    softmax, scaling or transposes between them: what any pass built on XLA's dot can at best reach."""
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k)
    out = jnp.einsum("bhqk,bhkd->bhqd", s, v)
    dv, dp = jnp.einsum("bhqk,bhqd->bhkd", s, g), jnp.einsum("bhqd,bhkd->bhqk", g, v)
    return out, dv, jnp.einsum("bhqk,bhkd->bhqd", dp, k), jnp.einsum("bhqk,bhqd->bhkd", dp, q)


def _interleaved(runs, repeat):
    """{name: (median wall s, median CPU s)}; each repeat runs every implementation once, in turn,
    so a change in the machine's load falls on all of them alike."""
    wall, cpu = {n: [] for n in runs}, {n: [] for n in runs}
    for run in runs.values():
        run()                                                   # compile / warm up
    for _ in range(repeat):
        for name, run in runs.items():
            w, c = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {n: (float(np.median(wall[n])), float(np.median(cpu[n]))) for n in runs}


def _torch_run(q, k, v, g):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    tq, tk, tv = (torch.tensor(np.asarray(a).transpose(0, 2, 1, 3), requires_grad=True) for a in (q, k, v))
    tg = torch.tensor(np.asarray(g).transpose(0, 2, 1, 3))

    def run():
        for t in (tq, tk, tv):
            t.grad = None
        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).backward(tg)
    return run


def _peak_bytes(fn, *args):
    stats = jax.jit(fn).lower(*args).compile().memory_analysis()
    if stats is None:
        return float("nan")
    return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true",
                        help="leave PyTorch out of the process (its presence slows the JAX cells)")
    args = parser.parse_args()
    print(f"Machine: {platform.machine()}, jax {jax.__version__} ({jax.default_backend()}), "
          f"B={args.batch} H={args.heads} D={args.dim}, float32, median of {args.repeat} interleaved repeats, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("\n| T | fnn hand ms | jax.vjp(fnn) / hand | jax.nn / hand | torch / hand | hand heads-first / hand |"
          " torch / hand heads-first | blockwise / hand |"
          " CPU time: jax.vjp / hand | hand MiB | jax.vjp MiB | jax.nn MiB | blockwise MiB | GFLOP/s (hand) |"
          " GFLOP/s (hand heads-first) | GFLOP/s (the 6 matmuls alone) |")
    print("| ---: " * 16 + "|")
    for t in args.lengths:
        print(_row(t, args), flush=True)


def _row(t, args):
    keys = jax.random.split(jax.random.PRNGKey(t), 4)
    q, k, v, g = (jax.random.normal(key, (args.batch, t, args.heads, args.dim), jnp.float32) for key in keys)
    fns = {name: jax.jit(fn) for name, fn in (("hand", hand), ("autodiff", autodiff), ("jax_nn", jax_nn),
                                                 ("blockwise", blockwise))}
    runs = {name: functools.partial(lambda fn: jax.block_until_ready(fn(q, k, v, g)), fn) for name, fn in fns.items()}
    heads_first = jax.jit(hand_heads_first)
    qh, kh, vh, gh = (jnp.swapaxes(a, 1, 2) for a in (q, k, v, g))      # laid out as PyTorch's inputs
    runs["hand_heads_first"] = lambda: jax.block_until_ready(heads_first(qh, kh, vh, gh))
    matmuls = jax.jit(matmuls_alone)
    runs["matmuls"] = lambda: jax.block_until_ready(matmuls(qh, kh, vh, gh))
    torch_run = None if args.no_torch else _torch_run(q, k, v, g)
    if torch_run is not None:
        runs["torch"] = torch_run
    times = _interleaved(runs, args.repeat)
    mib = {name: _peak_bytes(fn, q, k, v, g) / 2**20 for name, fn in fns.items()}
    flops = 6 * 2 * args.batch * args.heads * t * t * args.dim      # QK^T, PV; dV, dP, dQ, dK
    hand_s, hand_cpu = times["hand"]
    ratio = {name: f"{wall / hand_s:.2f}" for name, (wall, _) in times.items()}
    first_s = times["hand_heads_first"][0]
    torch_first = f"{times['torch'][0] / first_s:.2f}" if "torch" in times else "n/a"
    return (f"| {t} | {1e3 * hand_s:.1f} | {ratio['autodiff']} | {ratio['jax_nn']} | {ratio.get('torch', 'n/a')} | "
            f"{ratio['hand_heads_first']} | {torch_first} | {ratio['blockwise']} | "
            f"{times['autodiff'][1] / hand_cpu:.2f} | {mib['hand']:.0f} | "
            f"{mib['autodiff']:.0f} | {mib['jax_nn']:.0f} | {mib['blockwise']:.0f} | {flops / hand_s / 1e9:.1f} | "
            f"{flops / first_s / 1e9:.1f} | {flops / times['matmuls'][0] / 1e9:.1f} |")


if __name__ == "__main__":
    main()
