"""`summary(model, in_shape)`: the table a user reads before training."""
from __future__ import annotations

import jax

from .core import Layer, tree_size

_CHILD_NAMES = ("layers", "layer", "shortcut")   # the closure cells combinators keep children in


def children(layer: Layer) -> tuple[Layer, ...]:
    """The child layers a combinator closes over (empty for a leaf layer)."""
    found = []
    code, cells = layer.init.__code__, layer.init.__closure__ or ()
    for var, cell in zip(code.co_freevars, cells):
        if var not in _CHILD_NAMES:
            continue
        value = cell.cell_contents
        values = (value,) if isinstance(value, Layer) else value if isinstance(value, tuple) else ()
        found.extend(v for v in values if isinstance(v, Layer))
    return tuple(found)


def _rows(layer, key, in_shape, depth, rows):
    out_shape, params, _ = layer.init(key, in_shape)
    rows.append(("  " * depth + layer.name, out_shape, tree_size(params)))
    kids = children(layer)
    shape = in_shape
    for i, child in enumerate(kids):
        child_out = _rows(child, jax.random.fold_in(key, i), shape, depth + 1, rows)
        if _is_serial(layer):
            shape = child_out
    return out_shape


def _is_serial(layer):
    return "layers" in layer.init.__code__.co_freevars and "serial" in layer.init.__qualname__


def summary(model: Layer, in_shape: tuple, *, key: jax.Array | None = None) -> str:
    """A table of every layer (nested under its combinator): name, output shape of one
    example, parameter count; then the total. Returns the text (print it)."""
    rows: list = []
    _rows(model, jax.random.PRNGKey(0) if key is None else key, tuple(in_shape), 0, rows)
    width = max(len(r[0]) for r in rows + [("Layer", 0, 0)])
    shape_width = max(len(str(r[1])) for r in rows + [("", "Output shape", 0)])
    line = "-" * (width + shape_width + 18)
    out = [f"{'Layer':<{width}}  {'Output shape':<{shape_width}}  {'Params':>12}", line]
    out += [f"{name:<{width}}  {str(shape):<{shape_width}}  {count:>12,}" for name, shape, count in rows]
    out += [line, f"Total params: {rows[0][2]:,}   input: {tuple(in_shape)}"]
    return "\n".join(out)
