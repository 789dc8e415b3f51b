"""Train on 1, 2 and 8 simulated CPU devices in ONE process and print JSON lines.

Run by tests/test_distributed.py in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (so the rest of the suite keeps one
device). Each line compares the parameters and state after a few steps with a run
without any mesh (scanned loop): {"model", "grads", "loop", "devices", "shard", "rel"}.
XLA's optimisation passes are mostly off (the SPMD partitioner still runs): that halves
the compile time of the ~40 small programs and changes no result beyond rounding.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)
import numpy as np  # noqa: E402

from fnn import distributed, losses, models, optim  # noqa: E402
from fnn.train import fit, make_train_step  # noqa: E402

BATCH, STEPS = 16, 3
SHAPES = {"mlp": (8, 8, 1), "cnn": (8, 8, 1)}
MAKE = {"mlp": lambda: models.mlp(hidden=(32, 16)), "cnn": lambda: models.cnn(dropout=0.3)}


def emit(**row):
    print(json.dumps(row), flush=True)


def data(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS, *shape)).astype(np.float32)
    return x, rng.integers(0, 10, size=BATCH * STEPS).astype(np.int32)


def rel(a, b):
    """Largest over leaves of |a - b| / |b| (Frobenius norms)."""
    out = 0.0
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        out = max(out, float(np.linalg.norm(u - v) / max(np.linalg.norm(v), 1e-30)))
    return out


def train(name, grads, loop, mesh):
    model = MAKE[name]()
    _, params, state = model.init(jax.random.PRNGKey(0), SHAPES[name])
    params, state, _, _ = fit(model, params, state, optim.adam(1e-2), data(SHAPES[name]),
                              loss=losses.softmax_cross_entropy, epochs=1, batch_size=BATCH,
                              key=jax.random.PRNGKey(1), grads=grads, loop=loop, progress=False, mesh=mesh)
    return distributed.gather((params, state)), params


def equivalence(names):
    for name in names:
        for grads in ("manual", "autodiff"):
            reference, _ = train(name, grads, "scan", None)
            for loop in ("scan", "step"):
                for n, shard in ((1, False), (2, False), (8, False), (8, True)):   # 4 adds nothing 2 and 8 miss
                    if n == 1 and loop == "step":
                        continue                   # one device: the scanned loop covers the 1-device mesh
                    mesh = distributed.plan(distributed.data_mesh(jax.devices()[:n]), shard_params=shard)
                    got, params = train(name, grads, loop, mesh)
                    split = sum(not leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(params))
                    emit(model=name, grads=grads, loop=loop, devices=n, shard=shard, rel=rel(got, reference),
                         split_leaves=split)


def hlo_and_memory():
    """Collectives of the compiled step and bytes per device, replicated vs sharded, on 8 devices."""
    model = MAKE["mlp"]()
    _, params, state = model.init(jax.random.PRNGKey(0), SHAPES["mlp"])
    opt = optim.adam(1e-2)
    x, y = data(SHAPES["mlp"])
    for shard in (False, True):
        plan = distributed.plan(shard_params=shard)
        wrapped, (p, s, o), (xs, ys), _, _ = distributed.prepare(
            plan, model, (params, state, opt.init(params)), (x[:BATCH], y[:BATCH]), batch_size=BATCH)
        step = make_train_step(wrapped, losses.softmax_cross_entropy, opt)
        compiled = step.lower(p, s, o, (xs, ys), jax.random.PRNGKey(2)).compile()
        table = distributed.collective_table(compiled)
        emit(kind="hlo", shard=shard, table=table, memory=distributed.memory_per_device((p, o)),
             grad_bytes=sum(a.nbytes for a in jax.tree.leaves(params)))


def batch_error():
    try:
        train("mlp", "autodiff", "step", distributed.data_mesh())
        emit(kind="error", message=None)
    except ValueError as err:
        emit(kind="error", message=str(err))


if __name__ == "__main__":
    parts = sys.argv[1:] or ["mlp", "cnn", "hlo", "error"]
    equivalence([p for p in parts if p in MAKE])
    if "hlo" in parts:
        hlo_and_memory()
    if "error" in parts:
        BATCH = 12  # noqa: F811  (does not divide over 8 devices)
        batch_error()
