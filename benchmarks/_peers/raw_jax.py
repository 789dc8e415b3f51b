"""Raw JAX: hand-written models, `jax.grad`, a hand-written Adam; an epoch either as
ONE jitted `lax.scan` or as a Python loop over a jitted step with donated buffers."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .common import BATCH, LR, MLP_SIZES, EpochKeys, Runner, shuffled_batches, step_loop

_CONV_DIMS = ("NHWC", "HWIO", "NHWC")


def _dense_init(key, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return {"W": jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit),
            "b": jnp.zeros((fan_out,), jnp.float32)}


def _conv_init(key, cin, cout):
    limit = math.sqrt(6.0 / (9 * cin + 9 * cout))
    return {"W": jax.random.uniform(key, (3, 3, cin, cout), jnp.float32, -limit, limit),
            "b": jnp.zeros((cout,), jnp.float32)}


def mlp_init(key):
    keys = jax.random.split(key, len(MLP_SIZES) - 1)
    return [_dense_init(k, a, b) for k, a, b in zip(keys, MLP_SIZES[:-1], MLP_SIZES[1:], strict=True)]


def mlp_apply(params, x):
    h = x.reshape(x.shape[0], -1)
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["W"] + layer["b"])
    return h @ params[-1]["W"] + params[-1]["b"]


def cnn_init(key):
    k = jax.random.split(key, 4)
    return [_conv_init(k[0], 1, 32), _conv_init(k[1], 32, 64),
            _dense_init(k[2], 7 * 7 * 64, 128), _dense_init(k[3], 128, 10)]


def _conv_relu_pool(layer, x):
    y = lax.conv_general_dilated(x, layer["W"], (1, 1), "SAME", dimension_numbers=_CONV_DIMS)
    y = jax.nn.relu(y + layer["b"])
    return lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def cnn_apply(params, x):
    h = _conv_relu_pool(params[1], _conv_relu_pool(params[0], x))
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ params[2]["W"] + params[2]["b"])
    return h @ params[3]["W"] + params[3]["b"]


def cross_entropy(logits, labels):
    picked = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)


def adam_init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)       # two trees: both are donated
    return {"m": zeros(), "v": zeros(), "t": jnp.zeros((), jnp.int32)}


def adam_update(params, grads, state, lr=LR, b1=0.9, b2=0.999, eps=1e-8):
    t = state["t"] + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
    c1, c2 = 1 - b1 ** t.astype(jnp.float32), 1 - b2 ** t.astype(jnp.float32)
    params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v)
    return params, {"m": m, "v": v, "t": t}


def _train_step(apply):
    def step(params, opt, x, y):
        loss, grads = jax.value_and_grad(lambda p: cross_entropy(apply(p, x), y))(params)
        params, opt = adam_update(params, grads, opt)
        return params, opt, loss
    return step


def _scan_runner(apply, params, x, y) -> Runner:
    step = _train_step(apply)
    cut = shuffled_batches(BATCH)

    def epoch(params, opt, x, y, key):
        xs, ys = cut(key, x, y)

        def body(carry, batch):
            p, o, loss = step(*carry, *batch)
            return (p, o), loss
        (params, opt), losses = lax.scan(body, (params, opt), (xs, ys))
        return params, opt, jnp.mean(losses)
    epoch = jax.jit(epoch, donate_argnums=(0, 1))
    carry, keys = [params, adam_init(params)], EpochKeys()

    def run() -> float:
        carry[0], carry[1], loss = epoch(carry[0], carry[1], x, y, keys.next())
        return float(loss)
    return Runner(run, "one jitted lax.scan per epoch")


def _step_runner(apply, params, x, y) -> Runner:
    step = jax.jit(_train_step(apply), donate_argnums=(0, 1))
    carry = [params, adam_init(params)]

    def train_batch(xb, yb):
        carry[0], carry[1], loss = step(carry[0], carry[1], xb, yb)
        return loss
    return Runner(step_loop(train_batch, x, y), "Python loop of a jitted step, donated buffers")


def _models(kind):
    return (mlp_init, mlp_apply) if kind == "mlp" else (cnn_init, cnn_apply)


def scan_runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    init, apply = _models(kind)
    return _scan_runner(apply, init(jax.random.PRNGKey(0)), jnp.asarray(x), jnp.asarray(y))


def step_runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    init, apply = _models(kind)
    return _step_runner(apply, init(jax.random.PRNGKey(0)), jnp.asarray(x), jnp.asarray(y))
