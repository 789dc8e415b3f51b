"""What networks learn to represent, on Fashion-MNIST:

1. a convolutional autoencoder (Conv2D down to a 7x7x8 code, half as many numbers as
   the 28x28 image, ConvTranspose2D back up), trained with
   MSE; a grid of test inputs over their reconstructions;
2. an embedding trained with the triplet loss (its hand gradient for anchor, positive and
   negative), projected to 2-D by PCA computed in JAX and drawn coloured by class, with the
   nearest-neighbour accuracy in the embedding space.

Both train with fnn's hand-derived backward passes only.

    python examples/representations.py [--limit 12000] [--epochs 2] [--steps 1500] [--out runs/representations]
"""
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import inspect as fi
from fnn import layers as L
from fnn import optim

LOSSES = fnn.losses


def autoencoder():
    return fnn.serial(
        L.Conv2D(16, 3, 2), L.Relu(), L.Conv2D(8, 3, 2), L.Relu(),   # 28 -> 14 -> 7x7x8: half the pixels
        L.ConvTranspose2D(16, 3, 2), L.Relu(), L.ConvTranspose2D(1, 3, 2), L.Sigmoid(),  # 7 -> 14 -> 28
        name="autoencoder")


def embedder(dim=16):
    return fnn.serial(L.Conv2D(16, 3, 2), L.Relu(), L.Conv2D(32, 3, 2), L.Relu(), L.Flatten(),
                      L.Dense(64), L.Relu(), L.Dense(dim), name="embedder")


def adam_step(model, optimizer, batch_grads):
    """A jitted step: `batch_grads(params, state, batch) -> (loss, dparams)` by hand, then Adam."""
    @jax.jit
    def step(params, state, opt_state, batch):
        value, grads = batch_grads(params, state, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, value
    return step


def train_autoencoder(x, epochs=2, batch=64, seed=0):
    model, optimizer = autoencoder(), optim.adam(2e-3)
    _, params, state = model.init(jax.random.PRNGKey(seed), x.shape[1:])

    def grads(params, state, images):
        out, _, cache = model.forward(params, state, images, train=True)
        return LOSSES.mse(out, images), model.backward(params, cache, LOSSES.mse.grad(out, images))[0]

    step, opt_state = adam_step(model, optimizer, grads), optimizer.init(params)
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            params, opt_state, value = step(params, state, opt_state, x[order[i:i + batch]])
        print(f"  autoencoder epoch {epoch + 1}: batch MSE {float(value):.4f}")
    return model, params, state


def triplets(labels, rng, n):
    """n (anchor, positive, negative) index triples: positive of the anchor's class, negative not."""
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    anchor = rng.integers(0, len(labels), n)
    positive = np.array([rng.choice(by_class[labels[a]]) for a in anchor])
    negative_class = (labels[anchor] + rng.integers(1, 10, n)) % 10
    negative = np.array([rng.choice(by_class[c]) for c in negative_class])
    return anchor, positive, negative


def train_embedding(x, y, steps=1500, batch=64, seed=0):
    model, optimizer = embedder(), optim.adam(1e-3)
    _, params, state = model.init(jax.random.PRNGKey(seed + 1), x.shape[1:])

    def grads(params, state, images):               # images: anchors, positives, negatives stacked
        z, _, cache = model.forward(params, state, images, train=True)
        a, p, n = jnp.split(z, 3)
        dz = jnp.concatenate(LOSSES.triplet.grad(a, p, n))
        return LOSSES.triplet(a, p, n), model.backward(params, cache, dz)[0]

    step, opt_state, rng = adam_step(model, optimizer, grads), optimizer.init(params), np.random.default_rng(seed)
    for s in range(steps):
        idx = np.concatenate(triplets(y, rng, batch))
        params, opt_state, value = step(params, state, opt_state, x[idx])
        if (s + 1) % 500 == 0 or s + 1 == steps:
            print(f"  embedding step {s + 1}: triplet loss {float(value):.4f}")
    return model, params, state


def pca_2d(z):
    """Project onto the two leading principal components (eigenvectors of the covariance)."""
    centred = z - z.mean(axis=0)
    _, vectors = jnp.linalg.eigh(centred.T @ centred / len(z))
    return centred @ vectors[:, ::-1][:, :2]


def nearest_neighbour_accuracy(query, query_y, gallery, gallery_y):
    d = (query ** 2).sum(1)[:, None] - 2 * query @ gallery.T + (gallery ** 2).sum(1)[None, :]
    return float(np.mean(np.asarray(gallery_y)[np.asarray(jnp.argmin(d, axis=1))] == np.asarray(query_y)))


def main():
    parser = _common.parser(__doc__, out="runs/representations", limit=12000, epochs=2,
                            limit_help="training images of the autoencoder and the 1-NN gallery (at most 10000)",
                            small="python examples/representations.py --limit 1000 --epochs 1 --steps 200")
    parser.add_argument("--steps", type=int, default=1500, help="triplet-loss steps (default: 1500)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=64, epochs=args.epochs, steps=args.steps)
    train_x, train_y = fnn.data.load_dataset("fashion-mnist", "train")
    test_x, test_y = fnn.data.load_dataset("fashion-mnist", "test")
    names = fnn.data.CLASS_NAMES["fashion-mnist"]
    t0 = time.perf_counter()
    out = _common.out_dir(args)
    model, params, state = train_autoencoder(jnp.asarray(train_x[:args.limit]), args.epochs, seed=args.seed)
    shown = jnp.asarray(test_x[:12])
    recon, _ = model.apply(params, state, shown)
    test_mse = float(LOSSES.mse(model.apply(params, state, jnp.asarray(test_x[:2000]))[0], test_x[:2000]))
    fi.plot_images({"input": shown, "reconstruction": recon}, out / "reconstructions.png",
                   title=f"conv autoencoder (7x7x8 code), test MSE {test_mse:.4f}")
    print(f"autoencoder: test MSE {test_mse:.4f} ({time.perf_counter() - t0:.0f} s)")

    t0 = time.perf_counter()
    model, params, state = train_embedding(jnp.asarray(train_x), train_y, args.steps, seed=args.seed)
    embed = jax.jit(lambda x: model.apply(params, state, x)[0])
    shown_to = min(args.limit, 10000)            # the gallery: the first training images
    gallery, query = embed(jnp.asarray(train_x[:shown_to])), embed(jnp.asarray(test_x[:2000]))
    accuracy = nearest_neighbour_accuracy(query, test_y[:2000], gallery, train_y[:shown_to])
    fi.plot_embedding(pca_2d(query), test_y[:2000], out / "embedding_pca.png", class_names=names,
                      title=f"triplet embedding (16-d), PCA to 2-D; 1-NN accuracy {accuracy:.1%}")
    print(f"embedding: 1-nearest-neighbour accuracy {accuracy:.4f} on 2000 test images against {shown_to} "
          f"training images ({time.perf_counter() - t0:.0f} s)")
    print(f"wrote {out / 'reconstructions.png'} and {out / 'embedding_pca.png'}")
    _common.result(autoencoder_test_mse=test_mse, embedding_1nn_accuracy=accuracy)


if __name__ == "__main__":
    _common.run(main)
