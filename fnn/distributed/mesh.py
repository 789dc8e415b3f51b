"""Meshes, shardings and placement: the single-program part of `fnn.distributed`."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..core import Layer

PyTree = Any


class Plan(NamedTuple):
    """How `fit(..., mesh=plan)` places a run: the mesh, its data axis, and whether
    params and optimizer state are sharded (True) or replicated (False)."""
    mesh: Mesh
    axis: str = "data"
    shard_params: bool = False


def data_mesh(devices: Sequence[jax.Device] | None = None, axis: str = "data") -> Mesh:
    """A one-axis `Mesh` over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh: expected at least one device, got none")
    return Mesh(np.array(devices), (axis,))


def plan(mesh: Mesh | None = None, *, shard_params: bool = False, axis: str | None = None) -> Plan:
    """A `Plan` on `mesh` (default `data_mesh()`); `shard_params=True` is the ZeRO/FSDP option."""
    mesh = data_mesh() if mesh is None else mesh
    axis = mesh.axis_names[0] if axis is None else axis
    if axis not in mesh.axis_names:
        raise ValueError(f"plan: expected an axis of the mesh {mesh.axis_names}, got {axis!r}")
    return Plan(mesh, axis, bool(shard_params))


def as_plan(mesh: Mesh | Plan) -> Plan:
    """A `Plan` from a `Plan` (unchanged) or a `Mesh` (data parallel on its first axis)."""
    if isinstance(mesh, Plan):
        return mesh
    if isinstance(mesh, Mesh):
        return plan(mesh)
    raise TypeError(f"fnn.distributed: expected a jax.sharding.Mesh or a distributed.Plan, "
                    f"got {type(mesh).__name__}")


def batch_sharding(mesh: Mesh, axis: str | None = None) -> NamedSharding:
    """Leading (batch) axis split over the mesh's data axis; other axes whole."""
    return NamedSharding(mesh, P(axis or mesh.axis_names[0]))


def replicated(mesh: Mesh) -> NamedSharding:
    """A whole copy on every device of the mesh."""
    return NamedSharding(mesh, P())


def _leaf_spec(shape, n: int, axis: str) -> P:
    """Shard the largest axis whose length divides by n (the first such if tied); else replicate."""
    sizes = [(d, -i) for i, d in enumerate(shape) if d % n == 0 and d >= n]
    if n == 1 or not sizes:
        return P()
    dim = -max(sizes)[1]
    return P(*([None] * dim), axis)


def param_shardings(tree: PyTree, mesh: Mesh | Plan, *, shard_params: bool | None = None) -> PyTree:
    """One `NamedSharding` per leaf of `tree`: replicated, or (sharded option) split along
    the leaf's largest axis divisible by the device count (scalars and odd shapes replicate)."""
    p = as_plan(mesh)
    shard = p.shard_params if shard_params is None else shard_params
    n = p.mesh.shape[p.axis]
    spec = lambda leaf: _leaf_spec(np.shape(leaf), n, p.axis) if shard else P()
    return jax.tree.map(lambda leaf: NamedSharding(p.mesh, spec(leaf)), tree)


def check_batch_size(batch_size: int, mesh: Mesh | Plan) -> int:
    """The examples per device; a ValueError when `batch_size` does not divide over the devices."""
    p = as_plan(mesh)
    n = p.mesh.shape[p.axis]
    if batch_size % n:
        lower, upper = batch_size - batch_size % n, batch_size + n - batch_size % n
        raise ValueError(f"fnn.distributed: batch_size {batch_size} does not divide over the {n} devices "
                         f"of mesh axis {p.axis!r}; use a multiple of {n} (e.g. {lower or upper} or {upper})")
    return batch_size // n


def _put(leaf, sharding: NamedSharding):
    """`leaf` as a global array with `sharding`; every process reads only its devices' slices."""
    if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
        return leaf
    if isinstance(leaf, jax.Array) and leaf.is_fully_addressable and sharding.is_fully_addressable:
        return jax.device_put(leaf, sharding)
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:   # already global: XLA reshards
        return jax.jit(lambda a: a, out_shardings=sharding)(leaf)
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place(tree: PyTree, mesh: Mesh | Plan, *, shard_params: bool | None = None) -> PyTree:
    """Put params, state or optimizer state on the mesh per `param_shardings`."""
    return jax.tree.map(_put, tree, param_shardings(tree, mesh, shard_params=shard_params))


def place_data(tree: PyTree, mesh: Mesh | Plan) -> PyTree:
    """A data set on the mesh, whole on every device: each step gathers its shuffled batch by
    index, and the constrained batch (`data_parallel`) makes each device gather only its own
    rows, with no communication. A global array (`global_batch`, several processes) passes
    through: its rows stay where they were loaded and XLA moves each batch's rows."""
    p = as_plan(mesh)

    def put(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return leaf
        return _put(leaf, replicated(p.mesh))
    return jax.tree.map(put, tree)


def data_parallel(model: Layer, mesh: Mesh | Plan) -> Layer:
    """`model` with its input batch constrained to be split over the data axis, so the
    SPMD partitioner runs every layer on each device's slice of the batch. With sharded
    params (ZeRO-3/FSDP) the params are constrained whole where forward and backward use
    them (XLA all-gathers them there), and the hand-derived backward's gradients are
    constrained back to the params' split (a reduce-scatter; XLA:CPU writes it as an
    all-reduce and a slice). Same params, state, paths and backward. Kept on the model
    (as fit's compiled loops are), so a second fit reuses it and its compiled steps."""
    p = as_plan(mesh)
    table = getattr(model.forward, "__dict__", {}).setdefault("_fnn_data_parallel", {})
    if p not in table:
        table[p] = _wrapped(model, p)
    return table[p]


def _wrapped(model: Layer, p: Plan) -> Layer:
    n, split, whole = p.mesh.shape[p.axis], batch_sharding(p.mesh, p.axis), replicated(p.mesh)

    def batch(x):      # a batch that does not divide (the last one in `predict`) stays unconstrained
        return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, split)
                            if a.ndim and a.shape[0] % n == 0 else a, x)

    def gathered(params):
        if not p.shard_params:
            return params
        return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, whole), params)

    def scattered(dparams):     # each device keeps the summed slice of the gradient it updates
        if not p.shard_params:
            return dparams
        return jax.lax.with_sharding_constraint(dparams, param_shardings(dparams, p))

    def forward(params, state, x, *, key=None, train=False):
        return model.forward(gathered(params), state, batch(x), key=key, train=train)

    def backward(params, cache, dy):
        dparams, dx = model.backward(gathered(params), cache, dy)
        return scattered(dparams), dx
    return Layer(model.init, forward, backward, model.name, model.children)


def prepare(mesh: Mesh | Plan, model: Layer, carry: PyTree, train: PyTree, val: PyTree = None, *,
            batch_size: int, loop: str = "scan") -> tuple[Layer, PyTree, PyTree, PyTree, str]:
    """The one call `fit(..., mesh=)` makes: check the batch size, wrap the model
    (`data_parallel`), place the carry (params, state, optimizer state, ...) and the data.
    With several processes loop="auto" becomes "scan" (each process would time its own race
    and might pick another loop). Returns (model, carry, train, val, loop)."""
    p = as_plan(mesh)
    check_batch_size(batch_size, p)
    if loop == "auto" and jax.process_count() > 1:
        loop = "scan"
    return data_parallel(model, p), place(carry, p), place_data(train, p), place_data(val, p), loop
