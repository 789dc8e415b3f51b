"""XOR with a 2-4-1 sigmoid MLP trained by plain gradient descent on the MSE,
using the hand-derived backward pass (model.forward -> mse.grad -> model.backward).

    python examples/xor.py [--epochs 5001] [--seed 0]
"""
import _common
import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L
from fnn.losses import mse


def main():
    parser = _common.parser(__doc__, out=None, epochs=5001, small="python examples/xor.py")
    args = parser.parse_args()
    _common.check_budget(epochs=args.epochs)
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = jnp.array([[0.0], [1.0], [1.0], [0.0]])

    model = fnn.serial(L.Dense(4, W_init=fnn.initializers.normal(1.0)), L.Sigmoid(), L.Dense(1), L.Sigmoid())
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (2,))

    @jax.jit
    def step(params):       # one full-batch step: the 4 examples are the whole data set
        pred, _, cache = model.forward(params, state, x)
        grads, _ = model.backward(params, cache, mse.grad(pred, y))
        params = jax.tree.map(lambda p, g: p - 2.0 * g, params, grads)   # learning rate 2.0
        return params, mse(pred, y)

    for epoch in range(args.epochs):
        params, loss = step(params)
        if epoch % 1000 == 0:
            print(f"step {epoch:5d}  mse {float(loss):.5f}")

    pred = model.apply(params, state, x)[0]
    for xi, pi in zip(x.tolist(), pred[:, 0].tolist()):
        print(f"xor{tuple(int(v) for v in xi)} = {pi:.3f}")
    final = float(mse(pred, y))
    print(f"final mse {final:.5f} ({'reached' if final < 0.005 else 'NOT reached'} the target 0.005)")
    _common.result(mse=final, steps=args.epochs)


if __name__ == "__main__":
    main()
