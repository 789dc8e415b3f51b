"""Hand-derived backward passes against `jax.grad` of the same forward, and im2col against
lax.conv, jitted steps against `lax.scan`: time ratios measured in one run.

Table 1 (goal: at most 1.0): forward + hand-written backward, over `jax.vjp` of the same
forward (the same layer code; only the backward differs). Rows: Conv2D at the CNN's two
shapes for both impls, its Dense 3136->128, BatchNorm in training mode, MaxPool2D 2x2 at both
shapes, Relu, and a whole training step
(loss, gradients, SGD) of the CNN conv32-pool-conv64-pool-dense128-10, with and without
BatchNorm, `fnn.train.loss_and_grads(grads="manual")` over `grads="autodiff"`. Rows with
matmul work give their GFLOP/s and its share of the machine's 2048² matmul rate (printed at the
top): where the CNN's epoch loses against peers.py's FLOP limit; one more row times the second
convolution's three im2col matmuls alone ((25088, 288) x (288, 64) and its two gradients), the
ceiling of that layer's pass on XLA:CPU.

Table 2: the CNN step (no BatchNorm) in ms per step for impl im2col | lax, manual |
autodiff gradients, as one jitted call per step and inside one jitted `lax.scan`; the
last column is the ratio to the raw-JAX baseline (lax.conv, jax.grad, jitted steps), the
median of per-round ratios.

Table 3: the formulation choices inside the layers: col2im (the adjoint of im2col) as a
sum of zero-paddings against scatter-add, and MaxPool2D 2x2 as reshape + mask (tiled)
against the general window path and against jax.vjp of lax.reduce_window.

Batch 128, float32. Every variant is compiled and warmed up first; then each round times
one (warm) call of every variant, in a new random order each round (so load changes fall
on all alike), and the tables give medians over rounds (of per-round ratios in table 1).

    python benchmarks/conv_backward.py [--rounds 7] [--scan-steps 4] [--only 1|2|3]

About 10 minutes on 2 cores (the scanned lax.conv rows are the slow part).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import fnn.layers as L
from fnn.layers._patches import col2im, offsets
from fnn.layers.combinators import serial
from fnn.layers.pooling import _pool_backward, _pool_forward
from fnn.losses import softmax_cross_entropy
from fnn.train import loss_and_grads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers.common import CNN_PART_FLOPS, cnn_flops_per_example, matmul_rate  # noqa: E402

B = 128
RNG = np.random.default_rng(0)


def _normal(shape):
    return jnp.asarray(RNG.standard_normal(shape), jnp.float32)


def layer_pair(layer, in_shape):
    """(hand, autodiff, args): jitted forward+backward of one layer, two ways."""
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), in_shape)
    params = jax.tree.map(lambda p: p + 0.1 * _normal(p.shape), params)
    x, dy = _normal((B, *in_shape)), _normal((B, *out_shape))

    def hand(params, x, dy):
        _, _, cache = layer.forward(params, state, x, train=True)
        return layer.backward(params, cache, dy)

    def autodiff(params, x, dy):
        _, vjp = jax.vjp(lambda p, xx: layer.forward(p, state, xx, train=True)[0], params, x)
        return vjp(dy)
    return jax.jit(hand), jax.jit(autodiff), (params, x, dy)


def cnn(impl="auto", batch_norm=False):
    def block(features):
        norm = [L.BatchNorm()] if batch_norm else []
        return [L.Conv2D(features, 3, use_bias=not batch_norm, impl=impl), *norm, L.Relu(), L.MaxPool2D(2)]
    return serial(*block(32), *block(64), L.Flatten(), L.Dense(128), L.Relu(), L.Dense(10))


def cnn_step(model, grads):
    compute = loss_and_grads(model, softmax_cross_entropy, grads)

    def step(carry, batch):
        params, state = carry
        loss, _, dparams, state = compute(params, state, batch[0], batch[1], None)
        params = jax.tree.map(lambda p, g: p - 0.01 * g, params, dparams)
        return (params, state), loss
    return step


def cnn_variants(impl, batch_norm, scan_steps):
    """{(grads, loop): (fn, args)} for one CNN: jitted step and an n-step lax.scan."""
    model = cnn(impl, batch_norm)
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    xs = _normal((scan_steps, B, 28, 28, 1))
    ys = jnp.asarray(RNG.integers(0, 10, (scan_steps, B)), jnp.int32)
    out = {}
    for grads in ("manual", "autodiff"):
        step = cnn_step(model, grads)
        out[grads, "step"] = (jax.jit(step), ((params, state), (xs[0], ys[0])), 1)
        scanned = jax.jit(lambda carry, xs, ys, step=step: lax.scan(step, carry, (xs, ys)))
        out[grads, "scan"] = (scanned, ((params, state), xs, ys), scan_steps)
    return out


def _time(fn, args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def measure(variants: dict, rounds: int) -> dict:
    """name -> list of seconds per call, one per round. Variants are interleaved in a new
    random order each round, and each is called twice in a row with the second call timed
    (the first after another variant pays for cold caches and fresh buffers)."""
    for fn, args in variants.values():
        jax.block_until_ready(fn(*args))                   # compile and warm up
    times, names = {name: [] for name in variants}, list(variants)
    order = np.random.default_rng(1)
    for _ in range(rounds):
        for i in order.permutation(len(names)):
            fn, args = variants[names[i]]
            jax.block_until_ready(fn(*args))
            times[names[i]].append(_time(fn, args))
    return times


# one example's forward FLOPs (peers.py's count); forward + backward counts 3x, as peers.py does
CONV1_FLOPS, CONV2_FLOPS = CNN_PART_FLOPS["conv1"], CNN_PART_FLOPS["conv2"]
MATMULS = "the 3 matmuls of Conv2D 14x14x32->64 im2col alone"


def table1(rounds, scan_steps, rate):
    """Forward + backward of each part of the CNN step, hand against jax.vjp; where a part
    does matmul work, its GFLOP/s and share of `rate` (the 2048² matmul rate), so the rows
    show where the step's time goes against the FLOP limit."""
    rows = {
        "Conv2D 28x28x1->32 im2col": (L.Conv2D(32, 3, impl="im2col"), (28, 28, 1), CONV1_FLOPS),
        "Conv2D 14x14x32->64 im2col": (L.Conv2D(64, 3, impl="im2col"), (14, 14, 32), CONV2_FLOPS),
        "Conv2D 28x28x1->32 lax": (L.Conv2D(32, 3, impl="lax"), (28, 28, 1), CONV1_FLOPS),
        "Conv2D 14x14x32->64 lax": (L.Conv2D(64, 3, impl="lax"), (14, 14, 32), CONV2_FLOPS),
        "Dense 3136->128": (L.Dense(128), (3136,), 2 * 3136 * 128),
        "BatchNorm train 28x28x32": (L.BatchNorm(), (28, 28, 32), 0),
        "MaxPool2D 2x2 28x28x32": (L.MaxPool2D(2), (28, 28, 32), 0),
        "MaxPool2D 2x2 14x14x64": (L.MaxPool2D(2), (14, 14, 64), 0),
        "Relu 28x28x32": (L.Relu(), (28, 28, 32), 0),
    }
    variants = {}
    for name, (layer, shape, _) in rows.items():
        hand, auto, args = layer_pair(layer, shape)
        variants[name, "hand"], variants[name, "auto"] = (hand, args), (auto, args)
    for name, bn in (("CNN step", False), ("CNN+BatchNorm step", True)):
        cv = cnn_variants("auto", bn, scan_steps)
        variants[name, "hand"], variants[name, "auto"] = cv["manual", "step"][:2], cv["autodiff", "step"][:2]
    # the ceiling of conv2's im2col pass: its three matmuls alone (y = P W, dW = P^T dy, dP = dy W^T)
    patches, w, dy = _normal((B * 14 * 14, 288)), _normal((288, 64)), _normal((B * 14 * 14, 64))
    variants[MATMULS, "hand"] = (jax.jit(lambda p, w, g: (p @ w, p.T @ g, g @ w.T)), (patches, w, dy))
    times = measure(variants, rounds)
    flops = {name: flop for name, (_, _, flop) in rows.items()}
    flops |= {"CNN step": cnn_flops_per_example(), MATMULS: CONV2_FLOPS}
    lines = ["| layer / step | hand ms | autodiff ms | hand / autodiff | GFLOP (fwd + bwd) | GFLOP/s (hand) "
             "| of the matmul rate |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in list(rows) + [MATMULS, "CNN step", "CNN+BatchNorm step"]:
        h, a = times[name, "hand"], times.get((name, "auto"))
        ratio = f"{statistics.median(x / y for x, y in zip(h, a, strict=True)):.2f}" if a else ""
        work = 3 * B * flops.get(name, 0) / 1e9
        speed = f"{work / statistics.median(h):.0f} | {work / statistics.median(h) / rate:.0%}" if work else " | "
        auto_ms = f"{1e3 * statistics.median(a):.2f}" if a else ""
        lines.append(f"| {name} | {1e3 * statistics.median(h):.2f} | {auto_ms} | {ratio} "
                     f"| {f'{work:.2f}' if work else ''} | {speed} |")
    return "\n".join(lines)


def table2(rounds, scan_steps):
    variants = {}
    for impl in ("im2col", "lax"):
        for key, (fn, args, n) in cnn_variants(impl, False, scan_steps).items():
            variants[(impl, *key)] = (fn, args)
            variants[(impl, *key)] += (n,)
    times = measure({k: v[:2] for k, v in variants.items()}, rounds)
    per_step = {k: [t / variants[k][2] for t in times[k]] for k in variants}
    base = per_step["lax", "autodiff", "step"]
    lines = ["| conv impl | grads | loop | ms / step | vs raw JAX (lax, jax.grad, steps) |",
             "| --- | --- | --- | ---: | ---: |"]
    for (impl, grads, loop), t in per_step.items():
        ratio = statistics.median(a / b for a, b in zip(t, base, strict=True))
        lines.append(f"| {impl} | {grads} | {loop} | {1e3 * statistics.median(t):.1f} | {ratio:.2f} |")
    return "\n".join(lines)


def _col2im_scatter(pieces, padded, window, stride, dilation):
    """The alternative to `_patches.col2im`: scatter-add each piece into place with .at[].add."""
    total = jnp.zeros((pieces[0].shape[0], *padded, pieces[0].shape[-1]), pieces[0].dtype)
    for k, piece in zip(offsets(window), pieces, strict=True):
        index = tuple(slice(ki * d, ki * d + (o - 1) * s + 1, s)
                      for ki, d, s, o in zip(k, dilation, stride, piece.shape[1:-1], strict=True))
        total = total.at[(slice(None), *index)].add(piece)
    return total


def table3(rounds):
    variants = {}
    for h, c, s in ((14, 32, 1), (28, 16, 1), (28, 16, 2)):      # dx of conv2, and two ResNet-like
        o = (h - 1) // s + 1
        dp = _normal((B, o, o, 9, c))                            # dy W^T, as the backward has it
        for name, fn in (("pad-sum", col2im), ("scatter-add", _col2im_scatter)):
            f = jax.jit(lambda dp, fn=fn, h=h, s=s: fn([dp[..., i, :] for i in range(9)],
                                                      (h + 2, h + 2), (3, 3), (s, s), (1, 1)))
            variants[f"col2im {h}x{h}x{c}, 3x3, stride {s}", name] = (f, (dp,))
    x = _normal((B, 28, 28, 32))
    window = (2, 2)
    for name, tiled in (("tiled", True), ("general", False)):
        geometry = (((0, 0), (0, 0)), (28, 28), (14, 14), tiled)

        def fwd_bwd(x, dy, geometry=geometry):
            y = _pool_forward("max", x, window, window, geometry)
            return _pool_backward("max", x, y, dy, window, window, geometry)
        variants["MaxPool2D 2x2 28x28x32 fwd+bwd", name] = (jax.jit(fwd_bwd), (x, _normal((B, 14, 14, 32))))
    reduce = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    variants["MaxPool2D 2x2 28x28x32 fwd+bwd", "jax.vjp of reduce_window"] = (
        jax.jit(lambda x, dy: jax.vjp(reduce, x)[1](dy)), (x, _normal((B, 14, 14, 32))))
    times = measure(variants, rounds)
    lines = ["| operation | formulation | ms | vs first row of its group |", "| --- | --- | ---: | ---: |"]
    first = {}
    for (op, name), t in times.items():
        first.setdefault(op, t)
        ratio = statistics.median(a / b for a, b in zip(t, first[op], strict=True))
        lines.append(f"| {op} | {name} | {1e3 * statistics.median(t):.2f} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    p.add_argument("--scan-steps", type=int, default=4, help="CNN steps per scanned call (default 4)")
    p.add_argument("--only", choices=("1", "2", "3"), help="print one table only")
    args = p.parse_args(argv)
    rate = matmul_rate() / 1e9
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}; batch {B}, float32; "
          f"2048² float32 matmul rate {rate:.0f} GFLOP/s\n")
    if args.only in (None, "1"):
        print("### Hand-derived backward vs jax.grad of the same forward (forward + backward)\n")
        print(table1(args.rounds, args.scan_steps, rate) + "\n")
    if args.only in (None, "2"):
        print("### CNN training step: im2col vs lax.conv, jitted steps vs lax.scan\n")
        print(table2(args.rounds, args.scan_steps) + "\n")
    if args.only in (None, "3"):
        print("### Formulations: col2im as a sum of pads vs scatter-add; max-pool paths\n")
        print(table3(args.rounds))


if __name__ == "__main__":
    main()
