"""The reparameterisation trick: a Gaussian sample that gradients flow through (a VAE's sampler)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, check_example_shape, check_input, require_key
from ..gradcheck import Case


def Reparameterize(*, name: str = "Reparameterize") -> Layer:
    """A sample of N(mu, exp(log_var)): z = mu + exp(log_var / 2) * eps, eps ~ N(0, I) drawn from `key`.

    x holds [mu | log_var] on its last axis (an encoder's Dense(2 L)), so the layer sits in `serial`.
    It samples when given a key (training needs one); evaluation without a key returns z = mu.
    Shapes: x (B, ..., 2 L) -> z (B, ..., L); no params.
    Backward: with s = exp(log_var / 2) * eps = z - mu (the cache),
        dmu = dz      dlog_var = dz * eps * exp(log_var / 2) / 2 = dz * s / 2   (0 for z = mu)
    """
    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(..., 2 L)")
        if in_shape[-1] % 2:
            raise ValueError(f"{name}: expected an even last axis [mu | log_var], got in_shape {tuple(in_shape)}")
        return (*in_shape[:-1], in_shape[-1] // 2), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params
        check_input(name, x)
        if x.shape[-1] % 2:
            raise ValueError(f"{name}: expected x of shape (B, ..., 2 L) holding [mu | log_var], got {x.shape}")
        mu, log_var = jnp.split(x, 2, axis=-1)
        if train:
            require_key(name, key)
        if key is None:
            return mu, state, None
        spread = jnp.exp(log_var / 2) * jax.random.normal(key, mu.shape, x.dtype)
        return mu + spread, state, spread

    def backward(params, cache, dy):
        spread = cache
        dlog_var = jnp.zeros_like(dy) if spread is None else dy * spread / 2
        return (), jnp.concatenate([dy, dlog_var], axis=-1)

    return Layer(init, forward, backward, name)


CASES = (
    Case("Reparameterize-train", lambda: Reparameterize(), (8,), train=True),
    Case("Reparameterize-eval", lambda: Reparameterize(), (3, 4)),
)
