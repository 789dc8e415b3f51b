"""Several processes (machines): join with `jax.distributed`, load a shard, gather, checkpoint once."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from .mesh import Mesh, Plan, as_plan, batch_sharding

PyTree = Any


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    try:
        return None if text in (None, "") else int(text)
    except ValueError:
        raise ValueError(f"fnn.distributed.initialize: expected an integer in ${name}, got {text!r}") from None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids: Sequence[int] | None = None) -> bool:
    """Join a multi-process run through `jax.distributed.initialize`; True if it spans several processes.

    Arguments, else the environment: JAX_COORDINATOR_ADDRESS ("host:port" of process 0, as JAX
    reads it), JAX_NUM_PROCESSES and JAX_PROCESS_ID. With no coordinator and at most one process
    it does nothing (one process). On CPU the collectives run over gloo. Call it before any
    other JAX work, in every process, with the same coordinator and process count.
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    num_processes = _env_int("JAX_NUM_PROCESSES") if num_processes is None else num_processes
    process_id = _env_int("JAX_PROCESS_ID") if process_id is None else process_id
    if coordinator is None and num_processes in (None, 1):
        return False
    if coordinator is None or num_processes is None or process_id is None:
        raise ValueError(f"fnn.distributed.initialize: expected a coordinator, a process count and a process "
                         f"id, got coordinator={coordinator!r}, num_processes={num_processes!r}, "
                         f"process_id={process_id!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"fnn.distributed.initialize: expected 0 <= process_id < {num_processes}, "
                         f"got {process_id}")
    if not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator, num_processes, process_id, local_device_ids=local_device_ids)
    return jax.process_count() > 1


def is_main() -> bool:
    """True in process 0, the one that writes checkpoints, prints progress and keeps history."""
    return jax.process_index() == 0


def local_rows(n: int, mesh: Mesh | Plan) -> slice:
    """The rows of an n-row data set that this process's devices hold when it is split on the
    data axis: load only `data[local_rows(n, mesh)]` and pass it to `global_batch`."""
    p = as_plan(mesh)
    devices = p.mesh.shape[p.axis]
    if n % devices:
        raise ValueError(f"fnn.distributed.local_rows: expected a row count divisible by the {devices} "
                         f"devices, got {n}")
    index = batch_sharding(p.mesh, p.axis).addressable_devices_indices_map((n,)).values()
    starts = sorted({(s[0].start or 0, s[0].stop if s[0].stop is not None else n) for s in index})
    if any(a[1] != b[0] for a, b in zip(starts, starts[1:], strict=False)):
        raise ValueError(f"fnn.distributed.local_rows: this process's devices hold non-contiguous rows "
                         f"{starts}; order the mesh's devices by process")
    return slice(starts[0][0], starts[-1][1])


def global_batch(local: PyTree, mesh: Mesh | Plan) -> PyTree:
    """One global array per leaf from each process's rows (`data[local_rows(n, mesh)]`),
    split on the data axis; every process passes its own rows, in the same tree."""
    p = as_plan(mesh)
    sharding = batch_sharding(p.mesh, p.axis)
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), local)


def _to_host(leaf):
    if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
        return np.asarray(leaf)
    if leaf.is_fully_replicated:
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))


def gather(tree: PyTree) -> PyTree:
    """The whole value of every leaf as a NumPy array in every process (a collective when a
    leaf is split across processes: every process must call it, in the same order)."""
    return jax.tree.map(_to_host, tree)


def save_checkpoint(path: str | os.PathLike, params: PyTree, state: PyTree, opt_state: PyTree, step: int,
                    **kwargs) -> None:
    """`checkpoint.save_training` written by process 0 only, after gathering sharded leaves;
    every process waits until the file is written, so each can resume from it."""
    from .. import checkpoint
    trees = gather((params, state, opt_state))
    if is_main():
        checkpoint.save_training(path, *trees, step, **kwargs)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"fnn.distributed.save_checkpoint {os.fspath(path)}")


def memory_per_device(tree: PyTree) -> int:
    """Bytes of `tree` held on this process's first device (a replicated leaf counts whole,
    a sharded leaf counts its slice)."""
    def nbytes(leaf):
        if isinstance(leaf, jax.Array):
            return leaf.addressable_shards[0].data.nbytes
        return np.asarray(leaf).nbytes
    return int(sum(nbytes(leaf) for leaf in jax.tree.leaves(tree)))
