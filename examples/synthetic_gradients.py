"""Decoupled neural interfaces (Jaderberg et al. 2017): an MLP trained with synthetic gradients.

The 784-256-256-10 MLP on Fashion-MNIST is split into three blocks (fnn.serial). After each block
but the last, a module M_i (a Dense layer initialised at zero, as in the paper, or with --hidden H a
Dense-ReLU-Dense whose last layer is zero; its input is h_i concatenated with the label one-hot, the
paper's cDNI) predicts the per-example gradient B dL/dh_i. Each block updates at once from its own
hand-written `backward` fed with M_i's prediction, without waiting for the layers above. M_i
regresses, by MSE (`fnn.losses.mse.grad` into its own backward), the gradient arriving from above:
the next block's backward of what that block received (M_{i+1}'s prediction, or the true loss
gradient for the last block). No autodiff anywhere; one jitted step for all blocks and modules,
one epoch per compiled lax.scan.

Prints the test accuracy per epoch of (a) ordinary backprop and (b) synthetic gradients, from the
same initial blocks, and the cosine similarity between the synthetic and the true gradient at each
interface on the test set; writes accuracy.png (needs matplotlib).

    python examples/synthetic_gradients.py [--limit 60000] [--epochs 10] [--hidden 0] [--out runs/synthetic_gradients]
"""
import importlib.util
import time

import _common
import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L
from fnn.initializers import zeros
from fnn.losses import mse, softmax_cross_entropy

BATCH, CLASSES = 128, 10


def mlp_blocks(widths=(256, 256)):
    """The MLP as blocks: Dense+ReLU per hidden width, then the Dense(10) head."""
    return [fnn.serial(L.Dense(w), L.Relu(), name=f"block{i + 1}") for i, w in enumerate(widths)] + \
        [fnn.serial(L.Dense(CLASSES), name=f"block{len(widths) + 1}")]


def synthetic_module(width, hidden=0, name="M"):
    """M_i: (h_i, one-hot label) -> predicted B dL/dh_i; the zero last layer predicts 0 at first.

    hidden=0: a single zero-initialised Dense, the paper's linear module."""
    if hidden == 0:
        return fnn.serial(L.Dense(width, W_init=zeros), name=name)
    return fnn.serial(L.Dense(hidden), L.Relu(), L.Dense(width, W_init=zeros), name=name)


def init(blocks, modules, key, in_shape):
    """Params and states, each {"blocks": (...), "modules": (...)}; M_i sees h_i ++ one-hot."""
    shape, out = in_shape, {"params": {"blocks": [], "modules": []}, "states": {"blocks": [], "modules": []}}
    for i, block in enumerate(blocks):
        shape, p, s = block.init(jax.random.fold_in(key, i), shape)
        out["params"]["blocks"].append(p)
        out["states"]["blocks"].append(s)
        if i < len(modules):
            _, p, s = modules[i].init(jax.random.fold_in(key, 100 + i), (shape[-1] + CLASSES,))
            out["params"]["modules"].append(p)
            out["states"]["modules"].append(s)
    return tuple({k: tuple(v) for k, v in out[part].items()} for part in ("params", "states"))


def _forward(layers, params, states, x):
    """Every block's output h_i and cache (the blocks are stateless: their states stay as they are)."""
    hs, caches = [], []
    for layer, p, s in zip(layers, params, states):
        x, _, cache = layer.forward(p, s, x)
        hs.append(x)
        caches.append(cache)
    return hs, caches


def synthetic_grads(blocks, modules, params, states, x, y):
    """One decoupled step's gradients, {"blocks", "modules"}, and (predictions, targets) per interface.

    Block i < n backpropagates delta_i / B, delta_i = M_i(h_i ++ onehot(y)); block n the loss gradient.
    M_i's target is B dx_{i+1}, dx_{i+1} = block_{i+1}.backward(its incoming gradient); its gradient
    is M_i.backward(mse.grad(delta_i, target_i)).
    """
    hs, caches = _forward(blocks, params["blocks"], states["blocks"], x)
    onehot = jax.nn.one_hot(y, CLASSES, dtype=x.dtype)
    preds, module_caches = [], []
    for module, p, s, h in zip(modules, params["modules"], states["modules"], hs):
        delta, _, cache = module.forward(p, s, jnp.concatenate([h, onehot], axis=-1))
        preds.append(delta)
        module_caches.append(cache)
    incoming = [d / x.shape[0] for d in preds] + [softmax_cross_entropy.grad(hs[-1], y)]
    block_grads, arriving = [], []
    for block, p, cache, g in zip(blocks, params["blocks"], caches, incoming):
        dp, dx = block.backward(p, cache, g)
        block_grads.append(dp)
        arriving.append(dx * x.shape[0])
    targets = arriving[1:]
    module_grads = tuple(module.backward(p, cache, mse.grad(delta, target))[0] for module, p, cache, delta, target
                         in zip(modules, params["modules"], module_caches, preds, targets))
    return {"blocks": tuple(block_grads), "modules": module_grads}, (preds, targets)


def backprop_grads(blocks, params, states, x, y):
    """Ordinary backprop of the same blocks: the loss gradient walked down through every backward."""
    hs, caches = _forward(blocks, params["blocks"], states["blocks"], x)
    grads, dy = [None] * len(blocks), softmax_cross_entropy.grad(hs[-1], y)
    for i in reversed(range(len(blocks))):
        grads[i], dy = blocks[i].backward(params["blocks"][i], caches[i], dy)
    return {"blocks": tuple(grads), "modules": ()}


def true_interface_grads(blocks, params, states, x, y):
    """B dL/dh_i at every interface i < n, from the true loss gradient walked down."""
    hs, caches = _forward(blocks, params, states, x)
    dy, out = softmax_cross_entropy.grad(hs[-1], y), []
    for i in reversed(range(1, len(blocks))):
        dy = blocks[i].backward(params[i], caches[i], dy)[1]
        out.insert(0, dy * x.shape[0])
    return out


def make_epoch(grads_fn, optimizer, n):
    """One compiled call: a shuffled pass of n // BATCH steps of grads_fn + the optimizer, in lax.scan."""
    steps = n // BATCH

    @jax.jit
    def epoch(params, opt_state, x, y, key):
        order = jax.random.permutation(key, n)[:steps * BATCH].reshape(steps, BATCH)

        def body(carry, idx):
            params, opt_state = carry
            grads = grads_fn(params, x[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (fnn.optim.apply_updates(params, updates), opt_state), None
        return jax.lax.scan(body, (params, opt_state), order)[0]
    return epoch


def accuracy(blocks, params, states, x, y):
    logits = _forward(blocks, params["blocks"], states["blocks"], x)[0][-1]
    return float(jnp.mean(jnp.argmax(logits, -1) == y))


def cosines(blocks, modules, params, states, x, y):
    """Per interface: cosine between M_i's prediction and the true gradient, over the whole (N, d) arrays."""
    true = true_interface_grads(blocks, params["blocks"], states["blocks"], x, y)
    preds = synthetic_grads(blocks, modules, params, states, x, y)[1][0]
    return [float(jnp.vdot(p, t) / (jnp.linalg.norm(p) * jnp.linalg.norm(t))) for p, t in zip(preds, true)]


def train(grads_fn, blocks, params, states, data, test, epochs, seed, rates):
    """Adam (rates: blocks', modules') in one step; test accuracy after each epoch and the final params."""
    optimizer = fnn.optim.partition({"blocks": fnn.optim.adam(rates[0]), "modules": fnn.optim.adam(rates[1])},
                                    {"blocks": "blocks", "modules": "modules"})
    opt_state, epoch = optimizer.init(params), make_epoch(grads_fn, optimizer, len(data[0]))
    curve = []
    for e in range(epochs):
        params, opt_state = epoch(params, opt_state, *data, jax.random.PRNGKey(seed * 1000 + e))
        curve.append(accuracy(blocks, params, states, *test))
    return params, curve


def plot(curves, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=label)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="Fashion-MNIST MLP: backprop vs synthetic gradients")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)


def main():
    parser = _common.parser(__doc__, out="runs/synthetic_gradients", limit=60000, epochs=10,
                            small="python examples/synthetic_gradients.py --limit 10000 --epochs 2")
    parser.add_argument("--lr", type=float, default=1e-3, help="the blocks' Adam rate (default: 1e-3)")
    parser.add_argument("--synthetic-lr", type=float, default=1e-3,
                        help="the synthetic-gradient modules' Adam rate (default: 1e-3)")
    parser.add_argument("--hidden", type=int, default=0,
                        help="hidden width of each synthetic-gradient module; 0: linear, as the paper (default: 0)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    (x, y), (x_test, y_test) = _common.load_fashion_mnist(args.limit)
    data = jnp.asarray(x.reshape(len(x), -1)), jnp.asarray(y)
    test = jnp.asarray(x_test.reshape(len(x_test), -1)), jnp.asarray(y_test)
    blocks = mlp_blocks()
    modules = [synthetic_module(256, args.hidden, name=f"M{i + 1}") for i in range(len(blocks) - 1)]
    params, states = init(blocks, modules, jax.random.PRNGKey(args.seed), data[0].shape[1:])
    start, curves, run = time.perf_counter(), {}, (data, test, args.epochs, args.seed, (args.lr, args.synthetic_lr))
    _, curves["backprop"] = train(lambda p, xb, yb: backprop_grads(blocks, p, states, xb, yb), blocks,
                                  {"blocks": params["blocks"], "modules": ()}, states, *run)
    final, curves["synthetic"] = train(lambda p, xb, yb: synthetic_grads(blocks, modules, p, states, xb, yb)[0],
                                       blocks, params, states, *run)
    cos = cosines(blocks, modules, final, states, *test)
    print(f"{'epoch':>5}  {'backprop':>9}  {'synthetic':>9}   (test accuracy)")
    for e, (a, b) in enumerate(zip(curves["backprop"], curves["synthetic"]), 1):
        print(f"{e:>5}  {a:>9.4f}  {b:>9.4f}")
    for i, c in enumerate(cos, 1):
        print(f"interface h{i}: cosine(synthetic, true gradient) on the test set = {c:.3f}")
    print(f"{time.perf_counter() - start:.1f} s of training and evaluation")
    if importlib.util.find_spec("matplotlib"):       # the figure is optional
        plot(curves, _common.out_dir(args))
    _common.result(backprop_accuracy=curves["backprop"][-1], synthetic_accuracy=curves["synthetic"][-1],
                   **{f"cosine_h{i}": c for i, c in enumerate(cos, 1)})


if __name__ == "__main__":
    _common.run(main)
