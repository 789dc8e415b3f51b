"""Parameter initializers: `init(key, shape, dtype=float32) -> array`.

Fans follow the convention of jax.nn.initializers and PyTorch for weights laid
out as (..., fan_in, fan_out): a Dense W is (d_in, d_out), a conv kernel
(kh, kw, C_in, C_out) has fan_in = kh*kw*C_in and fan_out = kh*kw*C_out.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]


def _fans(shape) -> tuple[int, int]:
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def zeros(key, shape, dtype=jnp.float32) -> jax.Array:
    """All zeros."""
    del key
    return jnp.zeros(shape, dtype)


def ones(key, shape, dtype=jnp.float32) -> jax.Array:
    """All ones."""
    del key
    return jnp.ones(shape, dtype)


def constant(value: float) -> Initializer:
    """All entries equal to `value`."""
    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.full(shape, value, dtype)
    return init


def normal(stddev: float = 1e-2) -> Initializer:
    """N(0, stddev^2)."""
    def init(key, shape, dtype=jnp.float32):
        return stddev * jax.random.normal(key, shape, dtype)
    return init


def uniform(scale: float = 1e-2) -> Initializer:
    """U(-scale, scale)."""
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)
    return init


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """Var(W) = scale / n, n = fan_in, fan_out or their mean (`mode`);
    `distribution` is "uniform" (U(-sqrt(3 var), sqrt(3 var))), "normal", or
    "truncated_normal" (cut at two standard deviations, rescaled as in JAX)."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("uniform", "normal", "truncated_normal"):
        raise ValueError(f"variance_scaling: unknown distribution {distribution!r}")

    def init(key, shape, dtype=jnp.float32):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        var = scale / max(n, 1)
        if distribution == "uniform":
            lim = math.sqrt(3 * var)
            return jax.random.uniform(key, shape, dtype, -lim, lim)
        if distribution == "normal":
            return math.sqrt(var) * jax.random.normal(key, shape, dtype)
        std = math.sqrt(var) / 0.87962566103423978   # std of N(0,1) truncated to [-2, 2]
        return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
    return init


glorot_uniform = variance_scaling(1.0, "fan_avg", "uniform")
glorot_normal = variance_scaling(1.0, "fan_avg", "truncated_normal")
xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
he_uniform = variance_scaling(2.0, "fan_in", "uniform")
he_normal = variance_scaling(2.0, "fan_in", "truncated_normal")
kaiming_uniform, kaiming_normal = he_uniform, he_normal
lecun_uniform = variance_scaling(1.0, "fan_in", "uniform")
lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal")


def orthogonal(scale: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix from the QR of a Gaussian, reshaped to
    `shape` with the last axis as columns: W^T W = scale^2 I when rows >= cols."""
    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError(f"orthogonal: expected a shape of at least 2 axes, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diag(r))            # make the decomposition unique
        q = q if rows >= cols else q.T
        return (scale * q).reshape(shape).astype(dtype)
    return init
