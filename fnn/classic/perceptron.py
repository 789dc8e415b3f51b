"""Rosenblatt's perceptron, one sample at a time in a lax.scan (it is an online rule)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ._common import Learner, check_x, encode_labels, labels


def _check_init(name, init, shape, dtype):
    W, b = jnp.asarray(init["W"], dtype), jnp.asarray(init["b"], dtype)
    if W.shape != shape or b.shape != shape[1:]:
        raise ValueError(f"{name}: expected init W of shape {shape} and b of shape {shape[1:]}, "
                         f"got {W.shape} and {b.shape}")
    return W, b


@jax.jit
def _affine(W, b, x):
    z = x @ W + b
    return z[:, 0] if z.shape[1] == 1 else z


def perceptron(learning_rate: float = 0.1, epochs: int = 10, shuffle: bool = False) -> Learner:
    """Rosenblatt's rule: ŷ = step(x·w + b), then w ← w + η (y − ŷ) x and b ← b + η (y − ŷ),
    sample after sample, with step(z) = 1 if z ≥ 0 else 0 and targets y in {0, 1}.

    Shapes: x (N, d), y (N,) labels; W (d, U), b (U,). Two classes: U = 1 unit whose target is
    "y is the larger class". K > 2 classes: one-vs-rest, U = K units trained side by side, and
    predict takes the unit with the largest x·w + b.
    fit(x, y, *, classes=None, key=None, init=None): `init` {"W", "b"} to start from (zeros if
    None); `key` orders the samples afresh each epoch and is required when shuffle=True.
    decision_function(params, x) = x·W + b, (N,) for two classes, (N, K) otherwise.
    """
    name = "perceptron"
    if not learning_rate > 0 or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"{name}: expected learning_rate > 0 and an int epochs >= 1, "
                         f"got learning_rate={learning_rate!r}, epochs={epochs!r}")

    @jax.jit
    def train(W, b, x, t, key):
        def sample(carry, xt):
            W, b = carry
            xi, ti = xt
            y_hat = (xi @ W + b >= 0).astype(W.dtype)
            update = learning_rate * (ti - y_hat)              # (U,): zero where right
            return (W + xi[:, None] * update, b + update), None

        def epoch(carry, e):
            order = jax.random.permutation(jax.random.fold_in(key, e), x.shape[0])
            xe, te = (x[order], t[order]) if shuffle else (x, t)
            return jax.lax.scan(sample, carry, (xe, te))[0], None
        return jax.lax.scan(epoch, (W, b), jnp.arange(epochs))[0]

    def fit(x, y, *, classes=None, key=None, init=None):
        x = check_x(name, x)
        classes, index = encode_labels(name, y, x.shape[0], classes)
        if shuffle and key is None:
            raise ValueError(f"{name}: shuffle=True needs a PRNG key, got key=None; pass fit(..., key=key)")
        units = 1 if classes.size == 2 else classes.size
        targets = jax.nn.one_hot(index - int(units == 1), units, dtype=x.dtype)   # (N, U) in {0, 1}
        shape = (x.shape[1], units)
        W, b = ((jnp.zeros(shape, x.dtype), jnp.zeros(units, x.dtype)) if init is None
                else _check_init(name, init, shape, x.dtype))
        key = jax.random.PRNGKey(0) if key is None else key
        W, b = train(W, b, x, targets, key)
        return {"W": W, "b": b, "classes": jnp.asarray(classes)}

    def decision_function(params, x):
        x = check_x(name, x, params["W"].shape[0]).astype(params["W"].dtype)
        return _affine(params["W"], params["b"], x)

    def predict(params, x):
        z = decision_function(params, x)
        index = (z >= 0).astype(jnp.int32) if z.ndim == 1 else jnp.argmax(z, axis=1)
        return labels(params, index)

    return Learner(fit, predict, name, decision_function=decision_function)
