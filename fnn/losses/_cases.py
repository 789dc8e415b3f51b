"""Gradient-check rows for the losses: float64 inputs drawn from a key, and `case`,
which turns a `Loss` record into a `FunctionCase` (the CASES tables sit beside the losses)."""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .. import activations
from ..gradcheck import FunctionCase

SHAPE = (3, 5)


def normal(key, shape=SHAPE):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, shape, jnp.float64), jax.random.normal(k2, shape, jnp.float64)


def probabilities(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.uniform(k1, SHAPE, jnp.float64, 0.05, 0.95),
            jax.random.uniform(k2, SHAPE, jnp.float64))


def logits_and_bits(key):
    logits, noise = normal(key)
    return 3 * logits, (noise > 0).astype(jnp.float64)


def signs(key):
    pred, noise = normal(key)
    return 2 * pred, jnp.sign(noise)


def logits_and_labels(key, shape=SHAPE):
    logits, _ = normal(key, shape)
    return 3 * logits, jax.random.randint(key, shape[:-1], 0, shape[-1])


def sequence_logits_and_labels(key):
    """(B, T, K) = (2, 4, 5) logits and (B, T) labels, as a recurrent model's output."""
    return logits_and_labels(key, (2, 4, 5))


def distributions(key, log_first=False):
    first, second = normal(key)           # mild logits: no tiny probabilities
    first, second = 0.5 * first, 0.5 * second
    first = activations.log_softmax(first) if log_first else activations.softmax(first)
    return first, activations.softmax(second)


def log_distributions(key):
    return distributions(key, log_first=True)


def distances(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.uniform(k1, SHAPE[:1], jnp.float64, 0.1, 2.0),
            jax.random.bernoulli(k2, 0.5, SHAPE[:1]).astype(jnp.int32))


def triplets(key):
    k1, k2 = jax.random.split(key)
    return (*normal(k1), jax.random.normal(k2, SHAPE, jnp.float64))


def random_weights(key, shape):
    """Weights in [0.5, 2) with about a third of them 0 (padded positions), the first always."""
    k1, k2 = jax.random.split(key)
    weights = jax.random.uniform(k1, shape, jnp.float64, 0.5, 2.0)
    weights = jnp.where(jax.random.uniform(k2, shape) < 0.35, 0.0, weights)
    return weights.reshape(-1).at[0].set(0.0).reshape(shape)


def case(name: str, loss, inputs: Callable, *, weighted: bool = False) -> FunctionCase:
    """A gradient-check row for `loss` ("mean" reduction) on `inputs(key)`; the hand
    gradient covers pred (all three arrays for triplet), not the target. `weighted`
    adds random per-item weights, some of them 0."""

    def make(key):
        primals = inputs(key)
        items = jnp.shape(loss(*primals, reduction="none"))
        weights = random_weights(jax.random.fold_in(key, 3), items) if weighted else None

        def f(*arrays):
            return loss(*arrays, weights=weights)

        def hand_vjp(primals, cotangent):
            grads = loss.grad(*primals, weights=weights)
            if isinstance(grads, tuple):
                return tuple(cotangent * g for g in grads)
            return (cotangent * grads,) + (None,) * (len(primals) - 1)

        return f, hand_vjp, primals

    return FunctionCase(name, make)
