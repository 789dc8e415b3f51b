"""One process of a real multi-process run (or the one-process reference), over jax.distributed.

    python multiprocess.py OUT_DIR [--processes N --process-id I --coordinator HOST:PORT]

Each process loads only its rows of a fixed synthetic data set, trains the MLP for two
epochs (process 0 writes the checkpoint after epoch 1), then every process resumes from
that checkpoint and trains epoch 2 again. Process 0 writes OUT_DIR/result.npz with the
parameters of both runs, and every process prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_disable_most_optimizations", True)     # compiles faster; the partitioner still runs

from fnn import checkpoint, distributed, losses, models, optim  # noqa: E402
from fnn.train import fit  # noqa: E402

ROWS, BATCH, SHAPE = 64, 16, (8, 8, 1)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("out")
    a.add_argument("--processes", type=int, default=None)
    a.add_argument("--process-id", type=int, default=None)
    a.add_argument("--coordinator", default=None)
    a.add_argument("--loop", default="scan")
    args = a.parse_args()
    distributed.initialize(args.coordinator, args.processes, args.process_id)
    out, mesh = Path(args.out), distributed.data_mesh()
    rng = np.random.default_rng(0)                     # the "files": every process could read any row
    x_all = rng.normal(size=(ROWS, *SHAPE)).astype(np.float32)
    y_all = rng.integers(0, 10, size=ROWS).astype(np.int32)
    rows = distributed.local_rows(ROWS, mesh)
    data = distributed.global_batch((x_all[rows], y_all[rows]), mesh)   # only this process's rows

    model = models.mlp(hidden=(32, 16))
    _, params0, state0 = model.init(jax.random.PRNGKey(0), SHAPE)
    opt, path = optim.adam(1e-2), out / "checkpoint.safetensors"
    common = dict(loss=losses.softmax_cross_entropy, batch_size=BATCH, key=jax.random.PRNGKey(1),
                  loop=args.loop, progress=distributed.is_main(), mesh=mesh)

    def save(epoch, params, state, opt_state, history):
        if epoch == 0:
            distributed.save_checkpoint(path, params, state, opt_state, epoch + 1)

    params, state, _, history = fit(model, params0, state0, opt, data, epochs=2, on_epoch=save, **common)
    full = distributed.gather(params)
    like = (params0, state0, opt.init(params0))
    p1, s1, o1, epoch = checkpoint.load_training(path, *like)          # every process reads the file
    resumed, _, _, _ = fit(model, p1, s1, opt, data, epochs=2, initial_epoch=epoch, opt_state=o1, **common)
    resumed = distributed.gather(resumed)
    if distributed.is_main():
        leaves = {f"full{i}": v for i, v in enumerate(jax.tree.leaves(full))}
        leaves.update({f"resumed{i}": v for i, v in enumerate(jax.tree.leaves(resumed))})
        np.savez(out / "result.npz", **leaves)
    print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                      "devices": jax.device_count(), "local_devices": jax.local_device_count(),
                      "rows": [rows.start, rows.stop], "epoch": epoch,
                      "train_loss": history["train_loss"]}), flush=True)


if __name__ == "__main__":
    main()
