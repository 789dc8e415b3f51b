"""`trace`: every layer's output and its loss gradients from one forward and one hand backward.

fnn owns every backward pass, so it needs no hooks: `trace` walks the model's tree,
running each leaf layer's own `forward` (recording its output and cache) and then
each leaf's own `backward` in reverse (recording dL/d(output) and dL/d(params)).
`serial`, `parallel` and `residual` are opened up and composed exactly as the
combinators compose them (same child keys, same state and cache trees); any other
combinator (a `Frozen` block, say) is run as one unit and recorded at its own path.
No autodiff anywhere: the numbers are those of `model.backward`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..core import Layer, PyTree, add_trees
from ..paths import child_segments, layer_paths


class Trace(NamedTuple):
    """What `trace` returns; the dicts are keyed by layer path, root first, depth first.

    outputs:      path -> the layer's output y (B, ...)
    output_grads: path -> dL/dy, same shape ({} when no loss and no seed was given)
    param_grads:  path -> dL/d(the layer's params), shaped like its params
    input_grad:   dL/dx for the model's input x
    grads:        dL/dparams for the whole model, shaped like params
    loss:         the loss value (None without a loss);  state: the new state
    """
    outputs: dict
    output_grads: dict
    param_grads: dict
    input_grad: Any
    grads: PyTree
    loss: Any
    state: PyTree


@functools.cache
def _combinator_codes() -> dict:
    """Code object of each open-able combinator's forward -> its kind. Every layer a factory
    builds shares its closures' code, so identity of `forward.__code__` tells a `serial` from
    anything else without a marker on the Layer record (a `Frozen` or `manual` wrapper has
    another forward, and is then traced as one unit)."""
    from ..layers.combinators import parallel, residual, serial
    probe = Layer(lambda k, s: (s, (), ()), lambda p, s, x, **kw: (x, s, None), lambda p, c, dy: ((), dy),
                  "probe")
    return {serial(probe).forward.__code__: "serial", parallel(probe).forward.__code__: "parallel",
            residual(probe).forward.__code__: "residual"}


def combinator_kind(layer: Layer) -> str | None:
    """"serial", "parallel" or "residual" for a layer `trace` opens up; None for a unit."""
    code = getattr(layer.forward, "__code__", None)
    return _combinator_codes().get(code) if layer.children else None


def _child_keys(key, n):
    return [None if key is None else jax.random.fold_in(key, i) for i in range(n)]


def _call(layer: Layer, path: str, method: str, *args, **kwargs):
    """`layer.method(...)`, its shape/type error renamed to name the layer's path."""
    try:
        return getattr(layer, method)(*args, **kwargs)
    except (ValueError, TypeError) as error:
        message, name = str(error), layer.name
        if type(error) in (ValueError, TypeError) and message.startswith(name) \
                and message[len(name):][:1] in (":", "/") and path != name:
            raise type(error)(path + message[len(name):]) from error
        raise


def _forward(layer, path, params, state, x, key, train, outputs, caches=None):
    """(y, new_state, cache) as `layer.forward`, recording every traced layer's output (and
    its cache, when `caches` is a dict)."""
    kind = combinator_kind(layer)
    if kind is None:
        y, new_state, cache = _call(layer, path, "forward", params, state, x, key=key, train=train)
    else:
        paths = [f"{path}/{s}" for s in child_segments(layer.children)]
        keys = _child_keys(key, len(layer.children))
        if kind == "serial":
            states, kept = [], []
            for child, p, pa, st, k in zip(layer.children, paths, params, state, keys):
                x, st, c = _forward(child, p, pa, st, x, k, train, outputs, caches)
                states.append(st)
                kept.append(c)
            y, new_state, cache = x, tuple(states), tuple(kept)
        elif kind == "parallel":
            outs = [_forward(*args, x, k, train, outputs, caches) for *args, k in
                    zip(layer.children, paths, params, state, keys)]
            y, new_state, cache = (tuple(o[i] for o in outs) for i in range(3))
        else:
            y, new_state, cache = _residual_forward(layer, paths, params, state, x, keys, train, outputs, caches)
    outputs[path] = y
    if caches is not None:
        caches[path] = cache
    return y, new_state, cache


def _residual_forward(layer, paths, params, state, x, keys, train, outputs, caches):
    fy, fs, fc = _forward(layer.children[0], paths[0], params[0], state[0], x, keys[0], train, outputs, caches)
    if len(layer.children) == 1:
        return x + fy, (fs, ()), (fc, None)
    sy, ss, sc = _forward(layer.children[1], paths[1], params[1], state[1], x, keys[1], train, outputs, caches)
    return sy + fy, (fs, ss), (fc, sc)


def _backward(layer, path, params, cache, dy, inject, record):
    """(dparams, dx) as `layer.backward`; `inject[path]` is added to the gradient arriving at
    that layer's output; `record = (output_grads, param_grads)` collects every traced layer's."""
    if path in inject:
        dy = add_trees(dy, inject[path])
    kind = combinator_kind(layer)
    paths = [f"{path}/{s}" for s in child_segments(layer.children)]
    if kind is None:
        dparams, dx = _call(layer, path, "backward", params, cache, dy)
    elif kind == "serial":
        grads, dx = [None] * len(paths), dy
        for i in reversed(range(len(paths))):
            grads[i], dx = _backward(layer.children[i], paths[i], params[i], cache[i], dx, inject, record)
        dparams = tuple(grads)
    elif kind == "parallel":
        outs = [_backward(*args, inject, record) for args in zip(layer.children, paths, params, cache, dy)]
        dparams, dx = tuple(o[0] for o in outs), functools.reduce(add_trees, [o[1] for o in outs])
    else:
        dpf, dx = _backward(layer.children[0], paths[0], params[0], cache[0], dy, inject, record)
        dps, dxs = ((), dy) if len(paths) == 1 else \
            _backward(layer.children[1], paths[1], params[1], cache[1], dy, inject, record)
        dparams, dx = (dpf, dps), add_trees(dx, dxs)
    record[0][path], record[1][path] = dy, dparams
    return dparams, dx


def forward_caches(model: Layer, params, state, x) -> tuple[dict, dict]:
    """(outputs, caches) by traced path, from one evaluation-mode forward: the caches are what
    each layer's `forward` keeps for its backward (the weights of an attention, the gates of
    an LSTM), so looking at them costs no extra pass."""
    outputs: dict = {}
    caches: dict = {}
    _forward(model, model.name, params, state, x, None, False, outputs, caches)
    return outputs, caches


def loss_gradient(loss: Callable) -> Callable:
    """`loss.grad` of a Loss record (fnn.losses.Loss); TypeError for a loss without one."""
    if hasattr(loss, "grad"):
        return loss.grad
    raise TypeError(f"loss_gradient: {loss!r} has no hand gradient; build a fnn.losses.Loss(value_fn, grad_fn, name)")


def run(model: Layer, params, state, x, *, key=None, train: bool = False, seed: Callable | None = None,
        inject: dict | None = None) -> Trace:
    """One forward and one hand backward. `seed(y) -> (loss value or None, dL/dy)` starts the
    backward at the model's output; `inject` adds gradients at inner layers' outputs. With
    neither, only the forward runs."""
    outputs: dict = {}
    y, new_state, cache = _forward(model, model.name, params, state, x, key, train, outputs)
    if seed is None and not inject:
        order = [p for p in layer_paths(model) if p in outputs]
        return Trace({p: outputs[p] for p in order}, {}, {}, None, None, None, new_state)
    value, dy = seed(y) if seed is not None else (None, jax.tree.map(jnp.zeros_like, y))
    record: tuple = ({}, {})
    grads, dx = _backward(model, model.name, params, cache, dy, inject or {}, record)
    order = [p for p in layer_paths(model) if p in outputs]     # root first, depth first
    return Trace(outputs={p: outputs[p] for p in order}, output_grads={p: record[0][p] for p in order},
                 param_grads={p: record[1][p] for p in order}, input_grad=dx, grads=grads, loss=value,
                 state=new_state)


def trace(model: Layer, params: PyTree, state: PyTree, x, y=None, loss: Callable | None = None, *,
          train: bool = False, key: jax.Array | None = None) -> Trace:
    """Every layer's output and, with a `loss`, dL/d(output) and dL/d(params), from one
    `forward` and one hand-derived `backward` (no autodiff): L = loss(model(x), y).

    Shapes: x (B, *in_shape); outputs[path] (B, *that layer's out_shape); grads as params.
    Backward: dL/dy_root = loss.grad(y_root, y), then each layer's own backward in reverse.
    """
    seed = None
    if loss is not None:
        grad = loss_gradient(loss)
        seed = lambda pred: (loss(pred, y), grad(pred, y))      # noqa: E731
    return run(model, params, state, x, key=key, train=train, seed=seed)
