"""`summary(model, in_shape)`: the table a user reads before training."""
from __future__ import annotations

import jax

from .core import Layer, tree_size
from .paths import _child_trees, child_segments


def _rows(layer, path, params, shapes, rows):
    """One row per layer, depth first: name path, output shape, parameter count."""
    rows.append((path, shapes.get(path, ""), tree_size(params)))
    for child, segment, sub in zip(layer.children, child_segments(layer.children), _child_trees(layer, params)):
        _rows(child, f"{path}/{segment}", sub, shapes, rows)


def _out_shapes(model, key, in_shape) -> dict:
    """Each layer's one-example output shape. A combinator's children are first walked as a chain
    (serial: each gets the previous one's output); when that fails or does not end at the
    combinator's output shape, each gets the combinator's input (parallel, residual)."""
    shapes: dict = {}

    def visit(layer, path, key, shape):
        out_shape, _, _ = layer.init(key, shape)
        shapes[path] = out_shape
        children = [(child, f"{path}/{segment}", jax.random.fold_in(key, i)) for i, (child, segment)
                    in enumerate(zip(layer.children, child_segments(layer.children)))]
        if len(children) > 1:
            try:
                chained = shape
                for child, child_path, child_key in children:
                    chained = visit(child, child_path, child_key, chained)
                if tuple(chained) == tuple(out_shape):
                    return out_shape
            except (ValueError, TypeError):
                pass
        for child, child_path, child_key in children:
            visit(child, child_path, child_key, shape)
        return out_shape
    _abstractly(lambda k: visit(model, model.name, k, tuple(in_shape)) and None, key)
    return shapes


def _abstractly(fn, key):
    """`jax.eval_shape(fn, key)`: shapes without arrays (VGG-16's 138M parameters in a second), or
    `fn(key)` itself when a layer's init needs concrete values."""
    try:
        return jax.eval_shape(fn, key)
    except jax.errors.JAXTypeError:
        return fn(key)


def summary(model: Layer, in_shape: tuple, *, key: jax.Array | None = None) -> str:
    """A table of every layer by its name path (`mlp/Dense_2`, the names `fnn.select` and the
    inspection tools take): output shape of one example, parameter count; then the total.
    Returns the text (print it)."""
    key = jax.random.PRNGKey(0) if key is None else key
    params = _abstractly(lambda k: model.init(k, tuple(in_shape))[1], key)
    rows: list = []
    _rows(model, model.name, params, _out_shapes(model, key, in_shape), rows)
    width = max(len(r[0]) for r in rows + [("Layer", 0, 0)])
    shape_width = max(len(str(r[1])) for r in rows + [("", "Output shape", 0)])
    line = "-" * (width + shape_width + 18)
    out = [f"{'Layer':<{width}}  {'Output shape':<{shape_width}}  {'Params':>12}", line]
    out += [f"{name:<{width}}  {str(shape):<{shape_width}}  {count:>12,}" for name, shape, count in rows]
    out += [line, f"Total params: {rows[0][2]:,}   input: {tuple(in_shape)}"]
    return "\n".join(out)
