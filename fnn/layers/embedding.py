"""Embedding: a lookup table of learned vectors, indexed by integer ids."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, is_multi_shape
from ..gradcheck import FunctionCase
from ..initializers import Initializer, normal
from ._bptt import zero_cotangent

_NORMAL = normal(1.0)                                     # PyTorch's N(0, 1)


def _check_ids(name, ids, vocab_size):
    if not hasattr(ids, "dtype") or not jnp.issubdtype(ids.dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer ids, got dtype {getattr(ids, 'dtype', type(ids).__name__)}")
    try:
        values = np.asarray(ids)
    except jax.errors.TracerArrayConversionError:        # under jit: not checkable, see docstring
        return
    if values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(f"{name}: expected ids in [0, {vocab_size}), got {values.min()}..{values.max()}")


def Embedding(vocab_size: int, dim: int, *, W_init: Initializer = _NORMAL,
              name: str = "Embedding") -> Layer:
    """Row lookup y[..., :] = W[ids[...], :] (PyTorch nn.Embedding; its weight is W as is).

    Shapes: ids (B, ...) integers in [0, vocab_size) -> y (B, ..., dim);  W (vocab_size, dim);
        (ids, lengths) -> (y, lengths), so serial(Embedding, LSTM) takes padded batches.
    Backward: dW = zeros.at[ids].add(dy), a scatter-add into the rows that were read;
        the ids get a float0 zero cotangent (they are not differentiable).
    Out-of-range ids raise a ValueError on concrete arrays; under jit they cannot be
    checked: ids >= vocab_size read a row of NaN and get no gradient, negative ids wrap.
    """
    if not (isinstance(vocab_size, int) and isinstance(dim, int) and vocab_size >= 1 and dim >= 1):
        raise ValueError(f"{name}: vocab_size and dim must be positive ints, got {vocab_size!r}, {dim!r}")

    def init(key, in_shape):
        params = {"W": W_init(key, (vocab_size, dim), jnp.float32)}
        if is_multi_shape(in_shape):                      # (ids, lengths, ...)
            return ((*in_shape[0], dim), *in_shape[1:]), params, ()
        return (*in_shape, dim), params, ()

    def forward(params, state, ids, *, key=None, train=False):
        del key, train
        ids, rest = (ids[0], tuple(ids[1:])) if isinstance(ids, (tuple, list)) else (ids, None)
        _check_ids(name, ids, vocab_size)
        y = jnp.take(params["W"], ids, axis=0, mode="fill", fill_value=jnp.nan)
        return (y if rest is None else (y, *rest)), state, (ids, rest)

    def backward(params, cache, dy):
        ids, rest = cache
        dy = dy[0] if isinstance(dy, tuple) else dy
        dW = jnp.zeros_like(params["W"]).at[ids].add(dy.astype(params["W"].dtype), mode="drop")
        dx = zero_cotangent(ids)
        return {"W": dW}, (dx if rest is None else (dx, *jax.tree.map(zero_cotangent, rest)))

    return Layer(init, forward, backward, name)


def _embedding_case(key):
    layer = Embedding(7, 3)
    ids = jax.random.randint(key, (4, 5), 0, 7)        # 20 ids over 7 rows: repeats are certain
    _, params, _ = layer.init(key, (5,))

    def f(W):
        return layer.forward({"W": W}, (), ids)[0]

    def hand_vjp(primals, cotangent):
        return (layer.backward({"W": primals[0]}, (ids, None), cotangent)[0]["W"],)

    return f, hand_vjp, (params["W"],)


CASES = (FunctionCase("Embedding", _embedding_case),)
