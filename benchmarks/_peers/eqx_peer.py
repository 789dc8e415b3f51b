"""Equinox with optax, as the Equinox docs write it: a module called per example under
`jax.vmap`, `eqx.filter_value_and_grad` and an `eqx.filter_jit` step."""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .common import LR, Runner, step_loop


class MLP(eqx.Module):
    layers: list

    def __init__(self, key):
        k = jax.random.split(key, 3)
        self.layers = [eqx.nn.Linear(784, 256, key=k[0]), eqx.nn.Linear(256, 128, key=k[1]),
                       eqx.nn.Linear(128, 10, key=k[2])]

    def __call__(self, x):
        x = jnp.ravel(x)
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


class CNN(eqx.Module):
    convs: list
    dense: list
    pool: eqx.nn.MaxPool2d

    def __init__(self, key):
        k = jax.random.split(key, 4)
        self.convs = [eqx.nn.Conv2d(1, 32, 3, padding="SAME", key=k[0]),
                      eqx.nn.Conv2d(32, 64, 3, padding="SAME", key=k[1])]
        self.dense = [eqx.nn.Linear(7 * 7 * 64, 128, key=k[2]), eqx.nn.Linear(128, 10, key=k[3])]
        self.pool = eqx.nn.MaxPool2d(2, 2)

    def __call__(self, x):                      # x: (C, H, W), Equinox's convention
        for conv in self.convs:
            x = self.pool(jax.nn.relu(conv(x)))
        return self.dense[1](jax.nn.relu(self.dense[0](jnp.ravel(x))))


def _loss(model, x, y):
    logits = jax.vmap(model)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _make_step(optim):
    @eqx.filter_jit(donate="all")
    def step(model, opt_state, x, y):
        loss, grads = eqx.filter_value_and_grad(_loss)(model, x, y)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss
    return step


def runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    if kind == "cnn":
        model, x = CNN(jax.random.PRNGKey(0)), np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    else:
        model = MLP(jax.random.PRNGKey(0))
    optim = optax.adam(LR)
    step = _make_step(optim)
    box = [model, optim.init(eqx.filter(model, eqx.is_array))]

    def train_batch(xb, yb):
        box[0], box[1], loss = step(box[0], box[1], xb, yb)
        return loss
    note = "filter_jit step, vmap over examples" + (", NCHW" if kind == "cnn" else "")
    return Runner(step_loop(train_batch, jnp.asarray(x), jnp.asarray(y)), note)
