"""A training call's fixed cost in a FRESH process: first epoch - second epoch.

    python benchmarks/_peers/fixed_cost.py fnn-autodiff|fnn-manual|jax-scan

prints one JSON line {"peer", "first", "second", "fixed"}. Imports, data loading and the
model's parameter init are not timed: for fnn the clock runs from the call of
`fit(epochs=2)` to the end of each epoch (its `on_epoch`; optimizer init, checks, data
to the device, compilation and the loop race fall in the first), for raw JAX from
building its runner (data to the device, Adam init) to the end of each `lax.scan` epoch
(compilation in the first). A fresh process per run means no peer inherits another's
one-off compilations.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _fnn(grads: str, x, y) -> list[float]:
    import jax

    import fnn
    from _peers.common import BATCH, LR
    from _peers.fnn_peer import model

    net = model("mlp")
    _, params, state = jax.block_until_ready(net.init(jax.random.PRNGKey(0), x.shape[1:]))
    marks = [time.perf_counter()]
    fnn.train.fit(net, params, state, fnn.optim.adam(LR), (x, y), loss=fnn.losses.softmax_cross_entropy,
                  epochs=2, batch_size=BATCH, key=jax.random.PRNGKey(1), grads=grads, progress=False,
                  on_epoch=lambda *a: marks.append(time.perf_counter()))
    return marks


def _raw(x, y) -> list[float]:
    import jax

    from _peers.raw_jax import mlp_init, scan_runner

    jax.block_until_ready(mlp_init(jax.random.PRNGKey(0)))      # the init's kernels, compiled untimed
    marks = [time.perf_counter()]
    runner = scan_runner("mlp", x, y)
    for _ in range(2):
        runner.epoch()
        marks.append(time.perf_counter())
    return marks


def main(peer: str) -> None:
    import fnn  # noqa: F401  (imported, not timed)
    from _peers.common import load_train

    x, y, _ = load_train()
    marks = _raw(x, y) if peer == "jax-scan" else _fnn(peer.removeprefix("fnn-"), x, y)
    first, second = marks[1] - marks[0], marks[2] - marks[1]
    print(json.dumps({"peer": peer, "first": first, "second": second, "fixed": first - second}))


if __name__ == "__main__":
    main(sys.argv[1])
