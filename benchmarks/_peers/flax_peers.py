"""Flax with optax, the way the Flax docs write it: linen with a `TrainState` and a
jitted step (state donated), and nnx with `nnx.Optimizer` and an `nnx.jit` step."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen, nnx
from flax.training import train_state

from .common import LR, Runner, step_loop


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = linen.relu(linen.Dense(256)(x))
        x = linen.relu(linen.Dense(128)(x))
        return linen.Dense(10)(x)


class LinenCNN(linen.Module):
    @linen.compact
    def __call__(self, x):
        for features in (32, 64):
            x = linen.relu(linen.Conv(features, (3, 3), padding="SAME")(x))
            x = linen.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = linen.relu(linen.Dense(128)(x))
        return linen.Dense(10)(x)


@functools.partial(jax.jit, donate_argnums=0)
def _linen_step(state, x, y):
    def loss_fn(params):
        logits = state.apply_fn({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def linen_runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    module = LinenMLP() if kind == "mlp" else LinenCNN()
    params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, *x.shape[1:]), jnp.float32))["params"]
    box = [train_state.TrainState.create(apply_fn=module.apply, params=params, tx=optax.adam(LR))]

    def step(xb, yb):
        box[0], loss = _linen_step(box[0], xb, yb)
        return loss
    return Runner(step_loop(step, jnp.asarray(x), jnp.asarray(y)), "TrainState, jitted step")


class NnxMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.l1, self.l2 = nnx.Linear(784, 256, rngs=rngs), nnx.Linear(256, 128, rngs=rngs)
        self.l3 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        return self.l3(nnx.relu(self.l2(nnx.relu(self.l1(x)))))


class NnxCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(1, 32, (3, 3), padding="SAME", rngs=rngs)
        self.c2 = nnx.Conv(32, 64, (3, 3), padding="SAME", rngs=rngs)
        self.d1, self.d2 = nnx.Linear(7 * 7 * 64, 128, rngs=rngs), nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        for conv in (self.c1, self.c2):
            x = nnx.max_pool(nnx.relu(conv(x)), (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        return self.d2(nnx.relu(self.d1(x)))


@nnx.jit
def _nnx_step(model, optimizer, x, y):
    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def nnx_runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    model = (NnxMLP if kind == "mlp" else NnxCNN)(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(LR), wrt=nnx.Param)
    step = lambda xb, yb: _nnx_step(model, optimizer, xb, yb)
    return Runner(step_loop(step, jnp.asarray(x), jnp.asarray(y)), "nnx.Optimizer, nnx.jit step")
