"""Check a hand derivation the way a user would: an MLP's gradients from the
hand-derived backward pass, side by side with jax.grad, in float64.

    python examples/mlp_gradients.py [--seed 0]
"""
import _common
import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L
from fnn.losses import softmax_cross_entropy


def main():
    args = _common.parser(__doc__, out=None, small="python examples/mlp_gradients.py").parse_args()
    jax.config.update("jax_enable_x64", True)
    model = fnn.serial(L.Dense(32), L.Tanh(), L.Dense(16), L.Relu(), L.Dense(5))
    key_params, key_x = jax.random.split(jax.random.PRNGKey(args.seed))
    _, params, state = model.init(key_params, (10,))
    params = fnn.cast(params, jnp.float64)
    x = jax.random.normal(key_x, (8, 10), jnp.float64)
    labels = jnp.arange(8) % 5

    # 1. by hand: forward with a cache, the loss's own gradient, then backward
    logits, _, cache = model.forward(params, state, x)
    hand, _ = model.backward(params, cache, softmax_cross_entropy.grad(logits, labels))

    # 2. by autodiff, through the plain model and through fnn.manual(model)
    auto = jax.grad(lambda p: softmax_cross_entropy(model.apply(p, state, x)[0], labels))(params)
    via_manual = jax.grad(lambda p: softmax_cross_entropy(fnn.manual(model).apply(p, state, x)[0], labels))(params)

    print(f"{'parameter':<12}{'shape':<12}{'max |hand - autodiff|':>24}{'relative':>12}")
    paths = jax.tree_util.tree_flatten_with_path(hand)[0]
    worst = 0.0
    for (path, h), a, m in zip(paths, jax.tree.leaves(auto), jax.tree.leaves(via_manual)):
        rel = float(jnp.linalg.norm(h - a) / jnp.linalg.norm(a))
        worst = max(worst, rel)
        if not jnp.allclose(h, m):
            raise SystemExit("fnn.manual(model) did not run the same hand-derived pass")
        print(f"{jax.tree_util.keystr(path):<12}{str(h.shape):<12}{float(jnp.max(jnp.abs(h - a))):>24.2e}{rel:>12.2e}")
    match = all(float(jnp.max(jnp.abs(h - a))) < 1e-12 for h, a in zip(jax.tree.leaves(hand), jax.tree.leaves(auto)))
    print("hand-derived gradients match autodiff" if match else "MISMATCH")
    _common.result(max_relative_error=worst, match=match)
    return 0 if match else 1


if __name__ == "__main__":
    _common.run(main)
