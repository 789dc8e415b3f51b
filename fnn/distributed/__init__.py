"""Data-parallel and sharded training on JAX's own machinery: `jax.sharding` and `jax.distributed`.

A `Mesh` names the devices along one data axis. A batch is sharded on that axis;
params, state and optimizer state are replicated (data parallel) or, with
`shard_params=True`, split along their largest divisible axis (ZeRO/FSDP style).
fnn adds no communication of its own: the step stays plain `jnp`, jitted, and XLA's
SPMD partitioner inserts the collectives (the gradient all-reduce; all-gathers and
reduce-scatters for sharded params). BatchNorm's batch mean and variance are then
reductions over the sharded batch axis, so they are over the GLOBAL batch
(synchronised BatchNorm) with no extra code, and a run on N devices gives the
parameters of a run on one. Several processes (machines) join with `initialize`.
"""
from .hlo import Collective as Collective
from .hlo import collective_table as collective_table
from .hlo import collectives as collectives
from .mesh import Plan as Plan
from .mesh import as_plan as as_plan
from .mesh import batch_sharding as batch_sharding
from .mesh import check_batch_size as check_batch_size
from .mesh import data_mesh as data_mesh
from .mesh import data_parallel as data_parallel
from .mesh import param_shardings as param_shardings
from .mesh import place as place
from .mesh import place_data as place_data
from .mesh import plan as plan
from .mesh import prepare as prepare
from .mesh import replicated as replicated
from .runtime import gather as gather
from .runtime import global_batch as global_batch
from .runtime import initialize as initialize
from .runtime import is_main as is_main
from .runtime import local_rows as local_rows
from .runtime import memory_per_device as memory_per_device
from .runtime import save_checkpoint as save_checkpoint

__all__ = ["Collective", "Plan", "as_plan", "batch_sharding", "check_batch_size", "collective_table",
           "collectives", "data_mesh", "data_parallel", "gather", "global_batch", "initialize", "is_main",
           "local_rows", "memory_per_device", "param_shardings", "place", "place_data", "plan", "prepare",
           "replicated", "save_checkpoint"]
