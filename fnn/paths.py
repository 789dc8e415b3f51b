"""Name paths: every layer in a model has one, unique in the model (docs/design.md §2).

A path joins names from the root down: `"mlp/Dense_2"`. A child's segment is its
`name`; siblings that share a name are numbered `Dense_1, Dense_2, ...` in order.
A combinator's params (and state, and grads) hold its children's in `children`
order: a tuple by position, a dict by the child's segment (`Bidirectional`'s
`{"forward": ..., "backward": ...}`). A parameter's path adds its keys inside the
layer's own tree: `"mlp/Dense_2/W"`.

    layer_paths(model)                 -> {path: Layer}, root first, depth first
    tree_by_path(model, params)        -> {path of each leaf layer: its subtree}
    find_layer(model, path)            -> the Layer (an error lists the paths and the closest)
    map_paths(model, fn)(params)       -> params-shaped tree of fn(parameter path)
    select(model, *patterns)(params)   -> params-shaped tree of bools, for masks (freeze, ...)
    replace(model, path, new_layer, params, state, in_shape=, key=) -> (model, params, state)
"""
from __future__ import annotations

import difflib
from collections.abc import Callable

import jax

from .core import Layer, PyTree, manual


def child_segments(children: tuple[Layer, ...]) -> tuple[str, ...]:
    """The path segments of a combinator's children: names, numbered from 1 where siblings share one."""
    names = [child.name for child in children]
    counts: dict[str, int] = {}
    segments = []
    for n in names:
        counts[n] = counts.get(n, 0) + 1
        segments.append(f"{n}_{counts[n]}" if names.count(n) > 1 else n)
    return tuple(segments)


def _child_trees(layer: Layer, tree) -> list:
    """The children's parts of a combinator's `tree` (params, state or grads), in children order."""
    segments = child_segments(layer.children)
    if isinstance(tree, dict):
        return [tree.get(s, ()) for s in segments]
    if isinstance(tree, (tuple, list)) and len(tree) >= len(segments):
        return list(tree[:len(segments)])
    return [() for _ in segments]


def _walk(layer: Layer, path: str, tree, out: dict, leaves_only: bool) -> None:
    if not layer.children or not leaves_only:
        out[path] = (layer, tree)
    for child, segment, sub in zip(layer.children, child_segments(layer.children), _child_trees(layer, tree)):
        _walk(child, f"{path}/{segment}", sub, out, leaves_only)


def layer_paths(model: Layer) -> dict[str, Layer]:
    """Every layer of `model` by its path, the root (path = its name) first, then depth first."""
    out: dict = {}
    _walk(model, model.name, (), out, leaves_only=False)
    return {path: layer for path, (layer, _) in out.items()}


def tree_by_path(model: Layer, tree: PyTree) -> dict[str, PyTree]:
    """Each leaf layer's part of `tree` (params, state or their gradients) by the layer's path."""
    out: dict = {}
    _walk(model, model.name, tree, out, leaves_only=True)
    return {path: sub for path, (_, sub) in out.items()}


def find_layer(model: Layer, path: str) -> Layer:
    """The layer at `path` (the root's name may be left off); a ValueError lists the paths."""
    paths = layer_paths(model)
    for candidate in (path, f"{model.name}/{path}"):
        if candidate in paths:
            return paths[candidate]
    close = difflib.get_close_matches(path, list(paths), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{model.name}: no layer at path {path!r}{hint} The paths are: {', '.join(paths)}")


def _key_name(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def map_paths(model: Layer, fn: Callable[[str], object]) -> Callable[[PyTree], PyTree]:
    """`f(params)`: a tree shaped like `params` whose every leaf is `fn(path of that parameter)`,
    e.g. `"mlp/Dense_2/W"`. Use it for masks and labels (`fnn.optim.freeze`, `partition`)."""
    def label(params):
        parts = tree_by_path(model, params)
        labelled = {path: _label_leaves(path, sub, fn) for path, sub in parts.items()}
        return _rebuild(model, params, labelled, model.name, fn)
    return label


def _label_leaves(path: str, tree, fn):
    return jax.tree_util.tree_map_with_path(lambda keys, _: fn("/".join([path, *map(_key_name, keys)])), tree)


def _rebuild(layer: Layer, tree, parts: dict, path: str, fn):
    """`tree` again, each leaf layer's part replaced by `parts[its path]`; a combinator's own
    leaves beyond its children's parts (if any) get `fn` of their path."""
    if not layer.children:
        return parts[path]
    segments = child_segments(layer.children)
    subs = [_rebuild(child, sub, parts, f"{path}/{segment}", fn) for child, segment, sub
            in zip(layer.children, segments, _child_trees(layer, tree))]
    if isinstance(tree, dict):
        own = {k: v for k, v in tree.items() if k not in segments}
        return {**_label_leaves(path, own, fn), **dict(zip(segments, subs))}
    rest = tuple(tree[len(subs):]) if isinstance(tree, (tuple, list)) else ()
    own = _label_leaves(path, {str(len(subs) + i): r for i, r in enumerate(rest)}, fn)
    return (*subs, *own.values())


def _matches(path: str, pattern: str) -> bool:
    """True when `pattern`'s segments appear as a contiguous run of `path`'s segments."""
    have, want = path.split("/"), pattern.strip("/").split("/")
    return any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1))


def select(model: Layer, *patterns: str | Callable[[str], bool]) -> Callable[[PyTree], PyTree]:
    """A mask function `params -> tree of bools`: True for every parameter whose path contains
    one of `patterns` as a run of whole segments (`"trunk"`, `"Dense_2/W"`, `"W"`), or for which
    a callable pattern returns True. A name found nowhere raises, listing the model's paths."""
    if not patterns:
        raise ValueError(f"select: give at least one layer name or path of {model.name!r}")
    hit = lambda path: any(p(path) if callable(p) else _matches(path, p) for p in patterns)

    def mask(params):
        names = list(layer_paths(model)) + jax.tree.leaves(map_paths(model, lambda path: path)(params))
        for pattern in patterns:
            if isinstance(pattern, str) and not any(_matches(n, pattern) for n in names):
                find_layer(model, pattern)      # raises, listing the paths and the closest
        return map_paths(model, hit)(params)
    return mask


# ----------------------------------------------------------------- replace

def _full_path(model: Layer, path: str) -> str:
    """`path` as a key of `layer_paths(model)` (the root's name may be left off)."""
    find_layer(model, path)                     # raises, listing the paths and the closest
    return path if path in layer_paths(model) else f"{model.name}/{path}"


def remake_combinator(layer: Layer, children: tuple, path: str) -> Layer:
    """The combinator `layer` built again around `children`. Layers hold their children in
    closures, so this calls the factory that made `layer`, read from its `init` (`serial`,
    `parallel`, `residual`), and wraps the result as `layer` was (`Frozen`, `manual`)."""
    # paths sits under the layers (they import it), so the combinators are imported on use
    from .layers import combinators
    made_by = layer.init.__qualname__.split(".")[0] if layer.init.__module__ == combinators.__name__ else ""
    if made_by in ("serial", "parallel"):
        made = getattr(combinators, made_by)(*children, name=layer.name)
    elif made_by == "residual":
        made = combinators.residual(children[0], children[1] if len(children) > 1 else None, name=layer.name)
    else:
        raise ValueError(f"replace: cannot rebuild {path} around a new child: replace works inside "
                         f"serial, parallel and residual (and Frozen of them), and {path} is none of them")
    wrapper = layer.forward.__qualname__.split(".")[0]
    if wrapper == "Frozen":
        return combinators.Frozen(made, name=layer.name)
    return manual(made) if wrapper == "manual" else made


def _rebuilt(layer: Layer, segments: list, new: Layer, path: str) -> Layer:
    """`layer` with its descendant at `segments` (child segments from `layer` down) set to `new`."""
    if not segments:
        return new
    i = child_segments(layer.children).index(segments[0])
    children = list(layer.children)
    children[i] = _rebuilt(children[i], segments[1:], new, f"{path}/{segments[0]}")
    return remake_combinator(layer, tuple(children), path)


def _put(layer: Layer, tree, segments: list, sub):
    """`tree` (params or state of `layer`) with the part of the descendant at `segments` set to `sub`;
    every other part is kept as it is (the same arrays)."""
    if not segments:
        return sub
    i = child_segments(layer.children).index(segments[0])
    if isinstance(tree, dict):
        return {**tree, segments[0]: _put(layer.children[i], tree[segments[0]], segments[1:], sub)}
    items = list(tree)
    items[i] = _put(layer.children[i], items[i], segments[1:], sub)
    return tuple(items)


def _shapes_around(model: Layer, segments: list, path: str, in_shape, key) -> tuple:
    """(input shape, output shape) of the layer at `path` inside `model` fed examples of `in_shape`."""
    seen: dict = {}
    old = find_layer(model, path)

    def init(k, shape):
        seen["in"] = shape
        out = old.init(k, shape)
        seen["out"] = out[0]
        return out
    probe = _rebuilt(model, segments, old._replace(init=init), model.name)
    jax.eval_shape(lambda k: probe.init(k, in_shape), key)
    return seen["in"], seen["out"]


def _check_fits(model: Layer, params, state, in_shape, key, what: str) -> None:
    """Raise when `params`/`state` are not what `model.init` makes for `in_shape`, naming the first
    parameter that differs (a layer after the replaced one that no longer fits its input)."""
    try:
        _, want_params, want_state = jax.eval_shape(lambda k: model.init(k, in_shape), key)
    except (ValueError, TypeError) as err:
        raise ValueError(f"replace: {what}, and the layers after it do not accept that: {err}") from err
    names = jax.tree.leaves(map_paths(model, lambda p: p)(want_params))
    for tree, want, kind in ((params, want_params, "parameter"), (state, want_state, "state")):
        have = [jax.ShapeDtypeStruct(jax.numpy.shape(a), a.dtype) for a in jax.tree.leaves(tree)]
        need = jax.tree.leaves(want)
        for i, (h, n) in enumerate(zip(have, need)):
            if h.shape != n.shape:
                where = names[i] if kind == "parameter" and i < len(names) else f"{kind} leaf {i}"
                raise ValueError(f"replace: {what}, so the layers after it no longer fit: {where} is "
                                 f"{h.shape} but the new model needs {n.shape}; replace that layer too")
        if jax.tree.structure(tree) != jax.tree.structure(want):
            raise ValueError(f"replace: {what}, and the {kind} tree no longer fits the new model")


def replace(model: Layer, path: str, new_layer: Layer, params: PyTree, state: PyTree, *,
            in_shape, key: jax.Array) -> tuple[Layer, PyTree, PyTree]:
    """`(new_model, new_params, new_state)`: `model` with the layer at `path` (`"head"`,
    `"cnn/Dense_2"`; the root's name may be left off) replaced by `new_layer`.

    `in_shape` is the shape of ONE example of the model's input (as for `model.init`);
    `new_layer` is initialised with `key` on the shape the old layer received there. Every
    other layer keeps its params and state (the same arrays). Unknown paths raise, listing
    the model's paths; so does a new layer whose output no longer fits the layers after it.
    Works inside `serial`, `parallel` and `residual` (and `Frozen` of them), which it rebuilds.
        model, params, state = fnn.paths.replace(model, "head", L.Dense(10), params, state,
                                                 in_shape=(28, 28, 1), key=key)
    """
    if not isinstance(new_layer, Layer):
        raise TypeError(f"replace: new_layer must be a Layer, got {type(new_layer).__name__}")
    full = _full_path(model, path)
    segments = full.split("/")[1:]
    if not segments:
        raise ValueError(f"replace: {path!r} is the whole model; give the path of a layer inside it, "
                         f"one of {', '.join(list(layer_paths(model))[1:])}")
    before, old_out = _shapes_around(model, segments, full, in_shape, key)
    new_out, new_params, new_state = new_layer.init(key, before)
    new_model = _rebuilt(model, segments, new_layer, model.name)
    params = _put(model, params, segments, new_params)
    state = _put(model, state, segments, new_state)
    what = (f"{full} now outputs {tuple(new_out)} instead of {tuple(old_out)}" if tuple(new_out) != tuple(old_out)
            else f"{full} was replaced")
    _check_fits(new_model, params, state, in_shape, key, what)
    return new_model, params, state
