"""Shared pieces of the peer benchmark: data, timing protocol, FLOP counts, table."""
from __future__ import annotations

import functools
import gzip
import math
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

BATCH = 128
LR = 1e-3
TRAIN_EXAMPLES = 60000
EPOCH_STEPS = TRAIN_EXAMPLES // BATCH          # 468 full batches per epoch
MLP_SIZES = (784, 256, 128, 10)
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


class Runner(NamedTuple):
    """One peer, ready to train: `epoch()` runs one epoch over the data it was built
    with (shuffle + every full batch), waits for the result and returns the mean loss."""
    epoch: Callable[[], float]
    note: str | Callable[[], str] = ""       # a callable is read after the runs

    def describe(self) -> str:
        return self.note() if callable(self.note) else self.note


class Measurement(NamedTuple):
    seconds: list[float]   # wall seconds of each timed epoch (warm: compile excluded)
    loss: float            # mean training loss of the last timed epoch (a sanity check)
    note: str
    warmup: float = math.nan   # wall seconds of building the peer and its first epoch


def measure(runner: Runner, repeat: int) -> Measurement:
    """Warm up with one epoch (compiles, allocates; timed apart), then time `repeat` epochs."""
    t0 = time.perf_counter()
    runner.epoch()
    warmup = time.perf_counter() - t0
    seconds, loss = [], math.nan
    for _ in range(repeat):
        t0 = time.perf_counter()
        loss = runner.epoch()
        seconds.append(time.perf_counter() - t0)
    return Measurement(seconds, float(loss), runner.describe(), warmup)


STATS = {"median": statistics.median, "min": min}


# ------------------------------------------------------------------------ data

def read_idx(path: Path) -> np.ndarray:
    """A minimal IDX reader (gzip or raw), used only when `fnn.data` is not importable."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_train() -> tuple[np.ndarray, np.ndarray, str]:
    """Fashion-MNIST train: float32 images (N, 28, 28, 1) in [0, 1], int32 labels, and the source."""
    try:
        from fnn.data import load_dataset
    except ImportError:
        images = read_idx(DATA_DIR / "train-images-idx3-ubyte.gz")
        labels = read_idx(DATA_DIR / "train-labels-idx1-ubyte.gz")
        x = (images.astype(np.float32) / np.float32(255.0))[..., None]
        return x, labels.astype(np.int32), f"local IDX reader, {DATA_DIR}"
    x, y = load_dataset("fashion-mnist", "train")
    return x, y, "fnn.data.load_dataset"


def cpu_busy(window: float = 1.0) -> float:
    """Fraction of all cores busy over `window` seconds (read while this process idles,
    it is the load of the others); NaN where /proc/stat is absent."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]          # total, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except OSError:
        return math.nan
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_until_idle(max_wait: float, threshold: float = 0.2) -> float:
    """Wait (at most `max_wait` s) until other processes use under `threshold` of the CPU;
    returns the last busy fraction seen."""
    deadline, busy = time.monotonic() + max_wait, cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        time.sleep(4.0)
        busy = cpu_busy()
    return busy


# ----------------------------------------------------------------------- FLOPs

def mlp_flops_per_example(sizes=MLP_SIZES) -> int:
    """Forward FLOPs of the MLP's matmuls for one example (2 per multiply-add)."""
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# forward FLOPs (2 per multiply-add) of each part of conv32-pool-conv64-pool-dense128-dense10, one 28x28x1 image
CNN_PART_FLOPS = {"conv1": 2 * 28 * 28 * 32 * (3 * 3 * 1), "conv2": 2 * 14 * 14 * 64 * (3 * 3 * 32),
                  "dense": 2 * (7 * 7 * 64 * 128 + 128 * 10)}


def cnn_flops_per_example() -> int:
    """Forward FLOPs of conv32-pool-conv64-pool-dense128-dense10 on a 28x28x1 image."""
    return sum(CNN_PART_FLOPS.values())


def epoch_flops(per_example: int, examples: int = EPOCH_STEPS * BATCH) -> float:
    """Forward + backward of one epoch, backward counted as twice the forward."""
    return 3.0 * per_example * examples


def matmul_rate(n: int = 2048, repeat: int = 7) -> float:
    """Best measured float32 FLOP/s of an n x n jitted `jnp` matmul."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32)
    mm = jax.jit(jnp.matmul)
    mm(a, b).block_until_ready()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        mm(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best



def load_average() -> str:
    """The 1/5/15-minute load averages, as 'a/b/c'."""
    import os
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def machine() -> str:
    """The CPU model (from /proc/cpuinfo) and the float32 2048² matmul rate, measured now."""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, float32 matmul rate {matmul_rate() / 1e9:.0f} GFLOP/s"


def wait_for_load(limit: float = 1.0, poll: float = 15) -> None:
    """Block until the 1-minute load average is below `limit`."""
    import os
    while os.getloadavg()[0] >= limit:
        print(f"waiting for load < {limit}: {load_average()}", flush=True)
        time.sleep(poll)

# ------------------------------------------------------------------- JAX peers

@functools.lru_cache(maxsize=4)
def shuffled_batches(batch_size: int = BATCH):
    """Jitted `(key, x, y) -> (xs, ys)`: shuffle on the device and cut into (S, B, ...) batches."""
    import jax

    def cut(key, x, y):
        steps = x.shape[0] // batch_size
        idx = jax.random.permutation(key, x.shape[0])[:steps * batch_size].reshape(steps, batch_size)
        return x[idx], y[idx]
    return jax.jit(cut)


class EpochKeys:
    """A fresh PRNG key per epoch for the shuffles of the JAX peers."""

    def __init__(self, seed: int = 0):
        import jax
        self._base, self._count = jax.random.PRNGKey(seed), 0

    def next(self):
        import jax
        self._count += 1
        return jax.random.fold_in(self._base, self._count)


def step_loop(step_fn: Callable, x, y) -> Callable[[], float]:
    """An epoch as a Python loop: shuffle on the device, then `step_fn(xb, yb) -> loss`
    per batch; returns `run()` that waits for the epoch and gives its mean loss."""
    import jax

    cut, keys = shuffled_batches(BATCH), EpochKeys()

    def run() -> float:
        xs, ys = cut(keys.next(), x, y)
        losses = [step_fn(xs[i], ys[i]) for i in range(xs.shape[0])]
        return float(np.mean(jax.device_get(losses)))
    return run


# ----------------------------------------------------------------------- table

class Row(NamedTuple):
    name: str
    seconds: float | None     # per epoch of 468 steps (None: skipped)
    loss: float | None
    note: str
    busy: float = math.nan    # CPU share other processes used just before timing (mean of samples)
    fixed: float = math.nan   # fixed cost: first epoch (build, compile, fit's set-up) minus a timed epoch


def seconds_text(seconds: float) -> str:
    """0.683, 21.6, 430: three significant figures, no exponent."""
    return f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.3g}"


def format_table(rows: list[Row], reference: str, ratio_label: str) -> str:
    """Markdown table with s/epoch and the ratio to the row named `reference`."""
    ref = next((r.seconds for r in rows if r.name == reference and r.seconds), None)
    ref_fixed = next((r.fixed for r in rows if r.name == reference and r.seconds), math.nan)
    lines = [f"| peer | s/epoch | {ratio_label} | fixed cost s | fixed vs ref | train loss | notes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if r.seconds is None:
            lines.append(f"| {r.name} | — | — | — | — | — | {r.note} |")
            continue
        ratio = f"{r.seconds / ref:.2f}x" if ref else "—"
        fixed = "" if math.isnan(r.fixed) else f"{r.fixed:.2f}"
        fixed_ratio = "" if math.isnan(r.fixed) or not ref_fixed > 0 else f"{r.fixed / ref_fixed:.2f}x"
        loss = "" if r.loss is None or math.isnan(r.loss) else f"{r.loss:.3f}"
        lines.append(f"| {r.name} | {seconds_text(r.seconds)} | {ratio} | {fixed} | {fixed_ratio} | {loss} "
                     f"| {r.note} |")
    busy = [r.busy for r in rows if not math.isnan(r.busy)]
    if busy:
        spread = f"{100 * min(busy):.0f}%" if max(busy) - min(busy) < 0.01 else \
            f"{100 * min(busy):.0f}-{100 * max(busy):.0f}%"
        lines.append(f"\nCPU used by other processes, sampled just before timing: {spread} "
                     f"(0% on a quiet machine; above it the seconds are inflated).")
    return "\n".join(lines)
