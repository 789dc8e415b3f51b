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
"""
from __future__ import annotations

import difflib
from collections.abc import Callable

import jax

from .core import Layer, PyTree


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
