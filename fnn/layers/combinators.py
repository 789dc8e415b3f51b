"""Combinators: serial, parallel, residual, ensemble, and the joins Concat, Add and MeanLogSoftmax.

A combinator's params, state and cache are tuples of its children's; its
`backward` composes the children's hand-derived `backward`s (no autodiff).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, add_trees, is_multi_shape
from ..gradcheck import Case
from ..paths import child_segments


def _child_keys(key, n):
    return [None if key is None else jax.random.fold_in(key, i) for i in range(n)]


def _repath(error: Exception, child: Layer, path: str) -> Exception:
    """The child's error with its name replaced by its path in the parent (`mlp/Dense_2: ...`)."""
    message = str(error)
    if type(error) not in (ValueError, TypeError) or not message.startswith(child.name):
        return error
    rest = message[len(child.name):]
    return type(error)(path + rest) if rest[:1] in (":", "/") else error


def _named_calls(name: str, layers) -> list:
    """For each child, `call(method, *args, **kw)` running `child.method` so that its shape and
    type errors name its path inside this combinator."""
    def bind(child, segment):
        def call(method, *args, **kwargs):
            try:
                return getattr(child, method)(*args, **kwargs)
            except (ValueError, TypeError) as error:
                renamed = _repath(error, child, f"{name}/{segment}")
                if renamed is error:
                    raise
                raise renamed from error
        return call
    return [bind(child, segment) for child, segment in
            zip(layers, child_segments(tuple(layers)))]


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Composition y = f_n(...f_2(f_1(x))).

    Shapes: x (B, *in_shape) -> y (B, *out_shape of f_n); params, state: tuples of the children's.
    Backward: dparams_i, dx_i = f_i.backward(cache_i, dy_i), walking i = n..1 with dy_{i-1} = dx_i.
    """
    if not layers or not all(isinstance(f, Layer) for f in layers):
        raise TypeError(f"{name}: expected one or more Layers, got {layers!r}")
    calls = _named_calls(name, layers)

    def init(key, in_shape):
        params, state, shape = [], [], in_shape
        for call, k in zip(calls, jax.random.split(key, len(layers))):
            shape, p, s = call("init", k, shape)
            params.append(p)
            state.append(s)
        return shape, tuple(params), tuple(state)

    def forward(params, state, x, *, key=None, train=False):
        new_state, caches = [], []
        for call, p, s, k in zip(calls, params, state, _child_keys(key, len(layers))):
            x, s, c = call("forward", p, s, x, key=k, train=train)
            new_state.append(s)
            caches.append(c)
        return x, tuple(new_state), tuple(caches)

    def backward(params, cache, dy):
        grads = [None] * len(layers)
        for i in reversed(range(len(layers))):
            grads[i], dy = layers[i].backward(params[i], cache[i], dy)
        return tuple(grads), dy

    return Layer(init, forward, backward, name, tuple(layers))


def parallel(*layers: Layer, name: str = "parallel") -> Layer:
    """Fan-out: one input to every branch, y = (f_1(x), ..., f_n(x)).

    Shapes: x (B, *in_shape) -> tuple of (B, *out_shape_i); join with Concat() or Add().
    Backward: dx = sum_i dx_i, where dparams_i, dx_i = f_i.backward(cache_i, dy_i).
    """
    if not layers or not all(isinstance(f, Layer) for f in layers):
        raise TypeError(f"{name}: expected one or more Layers, got {layers!r}")
    calls = _named_calls(name, layers)

    def init(key, in_shape):
        outs = [call("init", k, in_shape) for call, k in zip(calls, jax.random.split(key, len(layers)))]
        return tuple(o[0] for o in outs), tuple(o[1] for o in outs), tuple(o[2] for o in outs)

    def forward(params, state, x, *, key=None, train=False):
        outs = [call("forward", p, s, x, key=k, train=train)
                for call, p, s, k in zip(calls, params, state, _child_keys(key, len(layers)))]
        return tuple(o[0] for o in outs), tuple(o[1] for o in outs), tuple(o[2] for o in outs)

    def backward(params, cache, dy):
        outs = [f.backward(p, c, g) for f, p, c, g in zip(layers, params, cache, dy)]
        dx = outs[0][1]
        for _, dxi in outs[1:]:
            dx = add_trees(dx, dxi)
        return tuple(o[0] for o in outs), dx

    return Layer(init, forward, backward, name, tuple(layers))


def residual(layer: Layer, shortcut: Layer | None = None, *, name: str = "residual") -> Layer:
    """Skip connection y = s(x) + f(x), with s the identity or a `shortcut` layer
    (a 1x1 projection, say, when f changes the shape).

    Shapes: x (B, *in_shape) -> y (B, *out_shape of f); params, state: (f's, s's or ()).
    Backward: dx = dx_f + dx_s  (dx_s = dy for the identity).
    """
    children = (layer,) if shortcut is None else (layer, shortcut)
    calls = _named_calls(name, children)

    def init(key, in_shape):
        k1, k2 = jax.random.split(key)
        out_shape, p, s = calls[0]("init", k1, in_shape)
        sc_shape, sp, ss = (in_shape, (), ()) if shortcut is None else calls[1]("init", k2, in_shape)
        if tuple(sc_shape) != tuple(out_shape):
            raise ValueError(f"{name}: the branch maps {in_shape} to {out_shape} but the shortcut "
                             f"gives {sc_shape}; pass a shortcut layer (a 1x1 projection) that fits")
        return out_shape, (p, sp), (s, ss)

    def forward(params, state, x, *, key=None, train=False):
        k1, k2 = _child_keys(key, 2)
        fy, fs, fc = calls[0]("forward", params[0], state[0], x, key=k1, train=train)
        if shortcut is None:
            return x + fy, (fs, ()), (fc, None)
        sy, ss, sc = calls[1]("forward", params[1], state[1], x, key=k2, train=train)
        return sy + fy, (fs, ss), (fc, sc)

    def backward(params, cache, dy):
        dpf, dx = layer.backward(params[0], cache[0], dy)
        if shortcut is None:
            return (dpf, ()), dx + dy
        dps, dxs = shortcut.backward(params[1], cache[1], dy)
        return (dpf, dps), dx + dxs

    return Layer(init, forward, backward, name, children)


def Frozen(layer: Layer, *, name: str | None = None) -> Layer:
    """Run `layer` always in evaluation mode: y = f(x; train=False), whatever mode the
    caller asks for, so a frozen trunk's BatchNorm statistics stay as they are and its
    dropout is off (pair with `fnn.optim.freeze` so its parameters stay too).

    Shapes: those of `layer`; params and state are `layer`'s, and so are its children: in a
    model's name paths the frozen layer keeps its own name unless `name=` is given.
    Backward: `layer.backward` of the evaluation-mode forward (dparams as usual).
    """
    def forward(params, state, x, *, key=None, train=False):
        del train
        return layer.forward(params, state, x, key=key, train=False)

    return layer._replace(forward=forward, name=name or layer.name)


def _join(name, combine, split, out_shape_of):
    def init(key, in_shape):
        del key
        if not is_multi_shape(in_shape):
            raise ValueError(f"{name}: expected a tuple of input shapes (after parallel), got {in_shape}")
        return out_shape_of(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        if not isinstance(x, (tuple, list)):
            raise TypeError(f"{name}: expected a tuple of arrays, got {type(x).__name__}")
        return combine(x), state, tuple(x)        # backward reads only their (static) shapes

    def backward(params, cache, dy):
        return (), split(cache, dy)

    return Layer(init, forward, backward, name)


def Concat(axis: int = -1, *, name: str = "Concat") -> Layer:
    """Concatenate a tuple of inputs: y = [x_1, ..., x_n] along `axis` (of the batch array).

    Shapes: tuple of (B, ..., d_i) -> (B, ..., sum d_i) for axis=-1; no params.
    Backward: dx_i = the slice of dy that x_i filled.
    """
    if axis == 0:
        raise ValueError(f"{name}: axis 0 is the batch axis; pick a feature axis")

    def example_axis(shapes):                      # axis counts the batch axis; shapes do not
        return axis - 1 if axis > 0 else len(shapes[0]) + axis

    def out_shape_of(shapes):
        ax = example_axis(shapes)
        if len({tuple(s[:ax]) + tuple(s[ax + 1:]) for s in shapes}) != 1:
            raise ValueError(f"{name}: inputs must agree off axis {axis}, got {shapes}")
        return (*shapes[0][:ax], sum(s[ax] for s in shapes), *shapes[0][ax + 1:])

    def split(xs, dy):
        cuts = [0]
        for xi in xs:
            cuts.append(cuts[-1] + xi.shape[axis])
        return tuple(jax.lax.slice_in_dim(dy, a, b, axis=axis % dy.ndim) for a, b in zip(cuts, cuts[1:]))

    return _join(name, lambda xs: jnp.concatenate(xs, axis=axis), split, out_shape_of)


def Add(*, name: str = "Add") -> Layer:
    """Sum a tuple of inputs of one shape: y = x_1 + ... + x_n.

    Shapes: tuple of (B, *s) -> (B, *s); no params.   Backward: dx_i = dy.
    """
    def out_shape_of(shapes):
        if len({tuple(s) for s in shapes}) != 1:
            raise ValueError(f"{name}: inputs must share one shape, got {shapes}")
        return tuple(shapes[0])

    def combine(xs):
        y = xs[0]
        for xi in xs[1:]:
            y = y + xi
        return y

    return _join(name, combine, lambda xs, dy: tuple(dy for _ in xs), out_shape_of)


def MeanLogSoftmax(*, name: str = "MeanLogSoftmax") -> Layer:
    """Average the log-probabilities of a tuple of logits (a log-linear, product-of-experts mean):
    y = (1/n) sum_i log_softmax(x_i), the softmax over the last axis.

    Shapes: tuple of (B, ..., V) -> (B, ..., V); no params. softmax(y) is the ensemble's distribution.
    Backward: dx_i = (dy - softmax(x_i) * sum_v dy) / n.
    """
    def out_shape_of(shapes):
        if len({tuple(s) for s in shapes}) != 1:
            raise ValueError(f"{name}: inputs must share one shape (B, ..., classes), got {shapes}")
        return tuple(shapes[0])

    def combine(xs):
        return sum(jax.nn.log_softmax(xi, axis=-1) for xi in xs) / len(xs)

    def split(xs, dy):
        total = jnp.sum(dy, axis=-1, keepdims=True)
        return tuple((dy - jax.nn.softmax(xi, axis=-1) * total) / len(xs) for xi in xs)

    return _join(name, combine, split, out_shape_of)


def ensemble(*models: Layer, name: str = "ensemble") -> Layer:
    """The models, each given the same input, combined by the mean of their log-probabilities:
    serial(parallel(*models), MeanLogSoftmax()). Its argmax (greedy decoding, classification) is the
    ensemble's vote; params are ((params_1, ..., params_n), ()), the models' own, as trained apart."""
    if len(models) < 2:
        raise ValueError(f"{name}: expected two or more models to combine, got {len(models)}")
    return serial(parallel(*models, name="members"), MeanLogSoftmax(), name=name)


def _mlp():
    from .activation import Tanh
    from .dense import Dense
    return serial(Dense(4), Tanh(), Dense(3))


CASES = (
    Case("serial", _mlp, (5,)),
    Case("parallel+Concat", lambda: serial(parallel(_mlp(), _mlp()), Concat()), (5,)),
    Case("parallel+Add", lambda: serial(parallel(_mlp(), _mlp()), Add()), (5,)),
    Case("residual", lambda: residual(_mlp(), shortcut=_mlp()), (5,)),
    Case("Frozen", lambda: Frozen(serial(_mlp(), _dropped())), (5,), train=True),
    Case("residual-identity", lambda: residual(serial(_mlp(), _mlp_back())), (5,)),
    Case("ensemble", lambda: ensemble(_mlp(), _mlp(), _mlp()), (5,)),
)


def _dropped():
    from .dropout import Dropout
    return Dropout(0.5)


def _mlp_back():
    from .dense import Dense
    return Dense(5)
