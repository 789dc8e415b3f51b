"""Vanishing and exploding gradients, measured: 20-layer MLPs at initialisation on one real
Fashion-MNIST batch, the gradient norm of every layer from ONE forward and ONE hand-derived
backward pass (`fnn.inspect.gradient_norms`), as a table and a log-scale plot. Then one
exploding network (a too-large init) and how `clip_by_global_norm` bounds its update.

    python examples/gradient_flow.py [--limit 256] [--out runs/gradient_flow]
"""
import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import initializers as I
from fnn import inspect as fi
from fnn import layers as L
from fnn import optim

DEPTH, WIDTH = 20, 128
LOSS = fnn.losses.softmax_cross_entropy


def block(kind):
    """One hidden layer of each network (Dense's default init is Glorot uniform)."""
    return {
        "sigmoid": lambda: [L.Dense(WIDTH), L.Sigmoid()],
        "tanh": lambda: [L.Dense(WIDTH), L.Tanh()],
        "relu": lambda: [L.Dense(WIDTH), L.Relu()],
        "relu + He": lambda: [L.Dense(WIDTH, W_init=I.he_uniform), L.Relu()],
        # pre-activation residual block; the branch starts small (He scaled by 1/depth)
        "relu + residual": lambda: [fnn.residual(fnn.serial(L.Relu(), L.Dense(
            WIDTH, W_init=I.variance_scaling(2.0 / DEPTH, "fan_in", "uniform"))))],
        "relu + BatchNorm": lambda: [L.Dense(WIDTH, W_init=I.he_uniform, use_bias=False), L.BatchNorm(),
                                     L.Relu()],
        "relu, init N(0, 0.2^2)": lambda: [L.Dense(WIDTH, W_init=I.normal(0.2)), L.Relu()],
    }[kind]()


def deep_mlp(kind):
    first = [L.Dense(WIDTH, W_init=I.he_uniform)] if "residual" in kind else []
    hidden = [layer for _ in range(DEPTH - len(first)) for layer in block(kind)]
    return fnn.serial(L.Flatten(), *first, *hidden, L.Dense(10), name="mlp")


def profile(kind, x, y, seed=0):
    """||dL/dW|| of the 20 hidden Dense layers (input side first), and the activation stats."""
    model = deep_mlp(kind)
    _, params, state = model.init(jax.random.PRNGKey(seed), x.shape[1:])
    norms = fi.gradient_norms(model, params, state, x, y, LOSS, train=True)
    weights = [n.params for p, n in norms.items() if p.rsplit("/", 1)[-1].startswith("Dense")][:-1]
    stats = fi.activation_stats(model, params, state, x, train=True)
    zeros = np.mean([s.zeros for p, s in stats.items() if "Relu" in p]) if "relu" in kind else None
    saturated = np.mean([s.saturated for s in stats.values() if s.saturated is not None]) \
        if kind in ("sigmoid", "tanh") else None
    return model, params, state, np.array(weights), zeros, saturated


def clipping(model, params, state, x, y):
    """One SGD step (lr 0.01) with and without clip_by_global_norm(1.0): the update's norm."""
    grads = fi.trace(model, params, state, x, y, LOSS, train=True).grads
    rows = []
    for name, rule in (("sgd", optim.sgd(0.01)),
                       ("clip 1.0 + sgd", optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.01)))):
        updates, _ = rule.update(grads, rule.init(params), params)
        rows.append((name, float(optim.global_norm(updates))))
    return float(optim.global_norm(grads)), rows


def main():
    parser = _common.parser(__doc__, out="runs/gradient_flow", limit=256, limit_help="images in the one batch",
                            small="python examples/gradient_flow.py --limit 64")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, minimum=2)     # BatchNorm needs two examples
    images, labels = fnn.data.load_dataset("fashion-mnist", "train")
    x, y = jnp.asarray(images[:args.limit]), jnp.asarray(labels[:args.limit])
    out = _common.out_dir(args)
    kinds = ["sigmoid", "tanh", "relu", "relu + He", "relu + residual", "relu + BatchNorm"]
    print(f"{DEPTH} hidden layers of {WIDTH}, one Fashion-MNIST batch of {len(x)}, at initialisation")
    print("||dL/dW|| per hidden Dense layer (1 = next to the input)")
    print(f"{'network':<24}{'layer 1':>10}{'layer 5':>10}{'layer 10':>10}{'layer 20':>10}"
          f"{'1 / 20':>10}{'dead ReLU':>11}{'saturated':>11}")
    profiles = {}
    for kind in kinds + ["relu, init N(0, 0.2^2)"]:
        model, params, state, w, zeros, saturated = profile(kind, x, y, args.seed)
        profiles[kind] = w
        extra = "".join(f"{'-' if v is None else f'{v:.1%}':>11}" for v in (zeros, saturated))
        print(f"{kind:<24}" + "".join(f"{w[i]:>10.2e}" for i in (0, 4, 9, 19)) + f"{w[0] / w[-1]:>10.1e}" + extra)
    fi.plot_gradient_norms(profiles, out / "gradient_norms.png",
                           title=f"gradient norm by depth at init ({DEPTH} layers, Fashion-MNIST batch)")
    fi.plot_activation_functions(out / "activations.png")
    total, rows = clipping(model, params, state, x, y)       # the last network: the exploding one
    print(f"\nexploding case (relu, init N(0, 0.2^2)): global gradient norm {total:.2e}")
    for name, norm in rows:
        print(f"  one step of {name:<16} moves the parameters by {norm:.2e}")
    print(f"\nwrote {out / 'gradient_norms.png'} and {out / 'activations.png'}")
    w = profiles["sigmoid"]
    _common.result(sigmoid_first_over_last=float(w[0] / w[-1]), exploding_grad_norm=total)


if __name__ == "__main__":
    _common.run(main)
