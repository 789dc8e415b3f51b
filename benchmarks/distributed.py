"""Data-parallel and sharded (ZeRO/FSDP) training steps on 1, 2, 4 and 8 simulated CPU devices.

For each model and device count, the jitted training step (`fnn.train.make_train_step` on a
model wrapped by `fnn.distributed.prepare`) is compiled with the batch split over the
devices and the params/optimizer state replicated or sharded. The table gives, from the
compiled step's HLO (`fnn.distributed.collective_table`), the collectives one step runs and
the bytes they move per device, the bytes of params + Adam state held by one device, and the
median step time with its ratio to one device.

The simulated devices (XLA_FLAGS=--xla_force_host_platform_device_count=8) are threads on
the SAME CPU cores: the time column shows the cost of partitioning and communication on
this machine, not a speed-up. The communication columns are what a real multi-GPU run moves.

    python benchmarks/distributed.py [--reps 20] [--models mlp,cnn] [--batch 64]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from fnn import distributed, losses, models, optim  # noqa: E402
from fnn.train import make_train_step  # noqa: E402

SHAPE = (28, 28, 1)
MODELS = {"mlp": models.mlp, "cnn": models.cnn}


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f}" if n else "-"


def measure(name: str, devices: int, shard: bool, batch: int, reps: int, grads: str) -> dict:
    model, opt, loss = MODELS[name](), optim.adam(1e-3), losses.softmax_cross_entropy
    _, params, state = model.init(jax.random.PRNGKey(0), SHAPE)
    rng = np.random.default_rng(0)
    xy = (rng.normal(size=(batch, *SHAPE)).astype(np.float32), rng.integers(0, 10, batch).astype(np.int32))
    plan = distributed.plan(distributed.data_mesh(jax.devices()[:devices]), shard_params=shard)
    wrapped, (p, s, o), batch_xy, _, _ = distributed.prepare(plan, model, (params, state, opt.init(params)), xy,
                                                             batch_size=batch)
    step = make_train_step(wrapped, loss, opt, grads=grads)
    key = jax.random.PRNGKey(1)
    compiled = step.lower(p, s, o, batch_xy, key).compile()
    memory = distributed.memory_per_device((p, o))
    times = []
    for i in range(reps + 3):
        t0 = time.perf_counter()
        p, s, o, m = jax.block_until_ready(compiled(p, s, o, batch_xy, key))
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return {"table": distributed.collective_table(compiled), "memory": memory,
            "grad_bytes": sum(a.nbytes for a in jax.tree.leaves(params)), "time": statistics.median(times)}


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--reps", type=int, default=20)
    a.add_argument("--models", default="mlp,cnn")
    a.add_argument("--batch", type=int, default=64)
    a.add_argument("--grads", choices=("manual", "autodiff"), default="manual")
    args = a.parse_args()
    print(f"{jax.device_count()} devices ({jax.devices()[0].platform}, simulated on {os.cpu_count()} cores), "
          f"batch {args.batch}, Adam, grads={args.grads}; bytes moved per device per step, MB = 2^20 bytes\n")
    print("| model | devices | params | all-reduce: n / MB | all-gather: n / MB | reduce-scatter: n / MB "
          "| params + Adam state per device, MB | step ms | time vs 1 device |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models.split(","):
        base = None
        for devices in (1, 2, 4, 8):
            for shard in (False, True) if devices > 1 else (False,):
                r = measure(name, devices, shard, args.batch, args.reps, args.grads)
                base = r["time"] if base is None else base
                cells = [f"{r['table'][op][0]} / {_mb(r['table'][op][1])}"
                         for op in ("all-reduce", "all-gather", "reduce-scatter")]
                print(f"| {name} ({_mb(r['grad_bytes'])} MB of params) | {devices} | "
                      f"{'sharded' if shard else 'replicated'} | {' | '.join(cells)} | {_mb(r['memory'])} | "
                      f"{r['time'] * 1e3:.1f} | {r['time'] / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
