"""Does XLA:CPU use both cores for the LSTM's small matmuls, and does a batch split in two
independent recurrences inside one scan body run faster? A forward-only probe (issue 25).

Prints, for each case, the wall time per call and process CPU time / wall time (2.0: both
cores busy all the time). Run it on an idle machine: under load the ratio means nothing.

    python benchmarks/lstm_threads.py [--repeats 20]
"""
import argparse
import os
import time

import jax
import jax.numpy as jnp
from jax import lax

B, F, T = 128, 28, 28


def measure(f, *args, repeats=20):
    """(ms per call, process CPU / wall) over `repeats` calls after one warm-up."""
    jax.block_until_ready(f(*args))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        jax.block_until_ready(f(*args))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / repeats * 1e3, cpu / wall


def recurrences(H, parts):
    """The LSTM forward over x (T, B, F), the batch run as `parts` independent recurrences."""
    W = jax.random.normal(jax.random.PRNGKey(0), (F + H, 4 * H)) * 0.05

    def cell(h, c, x_t):
        i, f, g, o = jnp.split(jnp.concatenate([x_t, h], -1) @ W, 4, -1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c

    def body(carry, x_t):
        xs = jnp.split(x_t, parts)
        carry = tuple(cell(h, c, xp) for (h, c), xp in zip(carry, xs))
        return carry, tuple(h for h, _ in carry)

    def run(x):
        zeros = jnp.zeros((B // parts, H))
        return lax.scan(body, ((zeros, zeros),) * parts, x)[1]
    return jax.jit(run)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    key = jax.random.PRNGKey(1)
    for m, k, n in ((128, 156, 512), (128, 540, 2048), (1024, 1024, 1024)):
        a, b = jax.random.normal(key, (m, k)), jax.random.normal(key, (k, n))
        ms, ratio = measure(jax.jit(jnp.matmul), a, b, repeats=args.repeats)
        print(f"matmul {m}x{k}x{n}: {ms:.3f} ms, {2 * m * k * n / ms / 1e6:.0f} GFLOP/s, cpu/wall {ratio:.2f}")
    x = jax.random.normal(key, (T, B, F))
    for H in (128, 512):
        for parts in (1, 2):
            ms, ratio = measure(recurrences(H, parts), x, repeats=args.repeats)
            print(f"LSTM forward H={H}, T={T}, batch as {parts} recurrence(s): {ms:.2f} ms, cpu/wall {ratio:.2f}")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
