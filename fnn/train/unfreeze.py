"""Progressive unfreezing: `fit(..., trainable=unfreeze_schedule({0: ["head"], 2: ["block_3"]}))`.

Stage e names the blocks (`fnn.select` patterns: layer names or paths) that train from epoch e
on; the blocks of earlier stages keep training, everything else is frozen. For each stage `fit`
trains `stage_at(...)`'s model and optimizer (compiled once per stage):
- the optimizer is `fnn.optim.partition` with one group per stage, each group the given
  optimizer with its own state from the epoch it unfreezes (fresh moments and step count, as
  PyTorch's per-parameter state; a rate schedule restarts there for that group). Frozen leaves
  get zero updates and hold no optimizer state, so params and state stay bit-identical.
- frozen layers that hold parameters or state run as `L.Frozen`, in evaluation mode: BatchNorm
  normalises with its running statistics and leaves them as they are. Layers without either
  (dropout, augmentation, activations) keep their training behaviour. Inside a combinator that
  `fnn.paths.replace` cannot rebuild, frozen children run in training mode (params still fixed).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax

from .. import optim
from ..core import Layer, tree_size
from ..layers.combinators import Frozen
from ..paths import child_segments, map_paths, remake_combinator, select, tree_by_path
from .loops import cached

FROZEN = "frozen"         # the optimizer group of the frozen leaves


class UnfreezeSchedule(NamedTuple):
    """Stages `((first epoch, names), ...)`, by epoch; `trainable(epoch)` -> every name trained then."""
    stages: tuple

    def trainable(self, epoch: int) -> tuple[str, ...]:
        return tuple(n for start, names in self.stages if start <= epoch for n in names)


def unfreeze_schedule(stages: Mapping[int, str | Sequence[str]]) -> UnfreezeSchedule:
    """`{epoch: names}`: the layers named (a name, path or list of them, as `fnn.select`) train
    from that epoch on, with the earlier stages'; the first stage starts at epoch 0."""
    if isinstance(stages, UnfreezeSchedule):
        return stages
    if not isinstance(stages, Mapping) or not stages:
        raise TypeError(f"unfreeze_schedule: expected a dict {{epoch: layer names}}, got {stages!r}")
    rows = []
    for start, names in sorted(stages.items()):
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"unfreeze_schedule: epochs must be ints >= 0, got {start!r}")
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"unfreeze_schedule: epoch {start} must name layers (strings), got {names!r}")
        rows.append((start, names))
    if rows[0][0] != 0:
        raise ValueError(f"unfreeze_schedule: the first stage must start at epoch 0 (nothing would train "
                         f"before it), got {rows[0][0]}")
    return UnfreezeSchedule(tuple(rows))


class Stage(NamedTuple):
    model: Layer              # the model with its frozen layers wrapped in L.Frozen
    optimizer: Any            # partition: one group per stage started, FROZEN for the rest
    started: tuple            # the first epochs of the stages started (tells stages apart)


def _labels(model: Layer, stages: tuple):
    """`params -> tree of labels`: the first epoch of the first stage naming a leaf, else FROZEN."""
    def labels(params):
        masks = [select(model, *names)(params) for _, names in stages]
        pick = lambda *hits: next((str(s) for (s, _), hit in zip(stages, hits) if hit), FROZEN)
        return jax.tree.map(pick, *masks)
    return labels


def _frozen_model(layer: Layer, path: str, kept: set) -> Layer:
    """`layer` with each largest subtree that `kept` has no path in wrapped in `Frozen`."""
    if not any(k == path or k.startswith(path + "/") for k in kept):
        return Frozen(layer)
    if not layer.children:
        return layer
    segments = child_segments(layer.children)
    children = tuple(_frozen_model(c, f"{path}/{s}", kept) for c, s in zip(layer.children, segments))
    if all(a is b for a, b in zip(children, layer.children)):
        return layer
    try:
        return remake_combinator(layer, children, path)
    except ValueError:                     # a combinator that cannot be rebuilt: left as it is
        return layer


def _kept(model: Layer, params, state, names: tuple) -> set:
    """Paths that do not freeze: the parameters a name selects, and the layers with neither params nor state."""
    trained = jax.tree.leaves(map_paths(model, lambda p: p)(params))
    hits = jax.tree.leaves(select(model, *names)(params))
    kept = {p for p, hit in zip(trained, hits) if hit}
    parts, states = tree_by_path(model, params), tree_by_path(model, state)
    return kept | {p for p in parts if tree_size(parts[p]) + tree_size(states.get(p, ())) == 0}


def stage_at(schedule: UnfreezeSchedule, model: Layer, optimizer, epoch: int, params, state) -> Stage:
    """The model and optimizer that train in `epoch` under `schedule` (one Stage per model,
    optimizer and stage, so fits that share them share their compiled loops)."""
    stages = tuple((s, names) for s, names in schedule.stages if s <= epoch)
    kept = _kept(model, params, state, schedule.trainable(epoch))

    def build():
        groups = {str(s): optimizer for s, _ in stages} | {FROZEN: optim.freeze(True)}
        return Stage(_frozen_model(model, model.name, kept), optim.partition(groups, _labels(model, stages)),
                     tuple(s for s, _ in stages))
    # the same stage of the same model and optimizer is the same Stage: its compiled loops are reused
    return cached(model, ("stage", optimizer, stages, frozenset(kept)), build)


def carry_over(stage: Stage, opt_state, params):
    """`stage.optimizer`'s state: the groups `opt_state` holds kept as they are, new groups fresh."""
    fresh = stage.optimizer.init(params)
    if opt_state is None:
        return fresh
    if not isinstance(opt_state, optim.PartitionState):
        raise TypeError(f"fit: with trainable=, opt_state must be the one such a fit returned (a "
                        f"PartitionState of one group per stage), got {type(opt_state).__name__}")
    old = opt_state.inner_states
    return optim.PartitionState({k: (old[k] if k in old and k != FROZEN else v)
                                 for k, v in fresh.inner_states.items()})
