"""examples/synthetic_gradients.py's plumbing, in float64: with an oracle for M_i the decoupled update
is ordinary backprop's, and each M_i's regression gradient is jax.grad of its MSE."""
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.losses import mse, softmax_cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import synthetic_gradients as sg  # noqa: E402

B, D_IN = 8, 5                     # B a power of two: dividing by B and multiplying back is exact


def setup(seed=0, random_modules=False, hidden=9):
    blocks = sg.mlp_blocks((7, 6))
    modules = [sg.synthetic_module(w, hidden=hidden) for w in (7, 6)]
    params, states = sg.init(blocks, modules, jax.random.PRNGKey(seed), (D_IN,))
    params = fnn.cast(params, jnp.float64)
    if random_modules:             # the zero last layers would make every prediction 0
        leaves, tree = jax.tree.flatten(params["modules"])
        keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
        params["modules"] = tree.unflatten([0.5 * jax.random.normal(k, v.shape, v.dtype) for k, v in zip(keys, leaves)])
    x = jax.random.normal(jax.random.PRNGKey(seed + 2), (B, D_IN), jnp.float64)
    y = jnp.arange(B) % sg.CLASSES
    return blocks, modules, params, states, x, y


def oracle(value):
    """A stand-in for M_i that returns `value` (the true B dL/dh_i) whatever it is given."""
    return fnn.Layer(lambda key, shape: (value.shape[1:], (), ()),
                     lambda params, state, z, key=None, train=False: (value, state, None),
                     lambda params, cache, dy: ((), None), "oracle")


def upper_loss(blocks, params, states, i, h, y):
    """The loss as a function of h_i, through blocks i+1..n (autodiff's view)."""
    for block, p, s in zip(blocks[i + 1:], params[i + 1:], states[i + 1:]):
        h = block.apply(p, s, h)[0]
    return softmax_cross_entropy(h, y)


def interfaces(blocks, params, states, x):
    hs = []
    for block, p, s in zip(blocks, params, states):
        x = block.apply(p, s, x)[0]
        hs.append(x)
    return hs


def test_true_interface_grads_equal_autodiff():
    blocks, _, params, states, x, y = setup()
    hand = sg.true_interface_grads(blocks, params["blocks"], states["blocks"], x, y)
    hs = interfaces(blocks, params["blocks"], states["blocks"], x)
    for i, g in enumerate(hand):
        auto = B * jax.grad(lambda h, i=i: upper_loss(blocks, params["blocks"], states["blocks"], i, h, y))(hs[i])
        np.testing.assert_allclose(g, auto, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_synthetic_update_equals_backprop(seed):
    blocks, _, params, states, x, y = setup(seed)
    true = sg.true_interface_grads(blocks, params["blocks"], states["blocks"], x, y)
    modules = [oracle(g) for g in true]
    params = {"blocks": params["blocks"], "modules": ((), ())}
    mstates = {"blocks": states["blocks"], "modules": ((), ())}
    grads, (preds, targets) = sg.synthetic_grads(blocks, modules, params, mstates, x, y)
    model = fnn.serial(*blocks)
    logits, _, cache = model.forward(params["blocks"], states["blocks"], x)
    backprop, _ = model.backward(params["blocks"], cache, softmax_cross_entropy.grad(logits, y))
    jax.tree.map(np.testing.assert_array_equal, grads["blocks"], backprop)
    for p, t in zip(preds, targets):       # M_i's target is then its own prediction: nothing to regress
        np.testing.assert_array_equal(p, t)
    optimizer = fnn.optim.adam(1e-2)
    step = lambda g: fnn.optim.apply_updates(params["blocks"], optimizer.update(g, optimizer.init(g))[0])
    jax.tree.map(np.testing.assert_array_equal, step(grads["blocks"]), step(backprop))
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(backprop))


@pytest.mark.parametrize("hidden", [0, 9])               # the linear module, and Dense-ReLU-Dense
def test_regression_and_block_gradients_equal_autodiff(hidden):
    blocks, modules, params, states, x, y = setup(random_modules=True, hidden=hidden)
    grads, (preds, targets) = sg.synthetic_grads(blocks, modules, params, states, x, y)
    hs = interfaces(blocks, params["blocks"], states["blocks"], x)
    onehot = jax.nn.one_hot(y, sg.CLASSES, dtype=x.dtype)
    z = [jnp.concatenate([h, onehot], -1) for h in hs[:-1]]
    delta = [m.apply(p, s, zi)[0] for m, p, s, zi in zip(modules, params["modules"], states["modules"], z)]
    # the targets, by autodiff: block_{i+1}'s vjp of what it received, times B
    cotangents = [d / B for d in delta[1:]] + [jax.grad(lambda o: softmax_cross_entropy(o, y))(hs[-1])]
    for i, ct in enumerate(cotangents):
        _, vjp = jax.vjp(lambda h, i=i: blocks[i + 1].apply(params["blocks"][i + 1], states["blocks"][i + 1], h)[0],
                         hs[i])
        np.testing.assert_allclose(targets[i], B * vjp(ct)[0], rtol=1e-10, atol=1e-14)
    for i, (m, p, s) in enumerate(zip(modules, params["modules"], states["modules"])):
        auto = jax.grad(lambda p, i=i, m=m, s=s: mse(m.apply(p, s, z[i])[0], jax.lax.stop_gradient(targets[i])))(p)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14), grads["modules"][i], auto)
    for i, d in enumerate(delta):          # each block's gradient: its vjp of delta_i / B
        _, vjp = jax.vjp(lambda p, i=i: blocks[i].apply(p, states["blocks"][i], x if i == 0 else hs[i - 1])[0],
                         params["blocks"][i])
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14), grads["blocks"][i],
                     vjp(d / B)[0])
    assert all(float(jnp.abs(d).max()) > 0 for d in delta)
