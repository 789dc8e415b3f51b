"""A variational autoencoder on Fashion-MNIST, trained with fnn's hand-derived backward passes only.

Bernoulli likelihood on the pixel intensities (the decoder gives logits, as PyTorch's reference VAE),
a diagonal Gaussian posterior sampled by fnn.layers.Reparameterize, and the KL term of
fnn.losses.gaussian_kl. Prints the test negative ELBO in nats per image after each epoch (one z
per test image), and writes samples.png (decoded z ~ N(0, I)) and interpolation.png (decoded
straight lines between the posterior means of pairs of test images). --model mlp is the reference
784-400-20 recipe, for the side-by-side with PyTorch in benchmarks/vae_reference.py.

    python examples/vae.py [--model conv|mlp] [--epochs 3] [--limit 20000] [--latent 16] [--out runs/vae]
"""
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.models import generative

BATCH = 128


def train_step(vae, optimizer):
    """One jitted step: hand -ELBO gradients (generative.elbo_grads), then the optimizer."""
    @jax.jit
    def step(params, state, opt_state, images, key):
        values, grads, state = generative.elbo_grads(vae, params, state, images, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), state, opt_state, values["loss"]
    return step


def test_negative_elbo(vae, params, state, images, seed, batch=1000):
    """-ELBO in nats per image over `images`, one z per image (fixed keys: comparable across epochs)."""
    evaluate = jax.jit(lambda x, key: generative.negative_elbo(vae, params, state, x, key)["loss"])
    total = sum(float(evaluate(images[i:i + batch], jax.random.PRNGKey(seed + i))) * len(images[i:i + batch])
                for i in range(0, len(images), batch))
    return total / len(images)


def train(vae, x_train, x_test, epochs, seed):
    """Adam(1e-3), batch 128, reshuffled each epoch; returns params, state and the per-epoch test -ELBO."""
    optimizer = fnn.optim.adam(1e-3)
    _, params, state = vae.init(jax.random.PRNGKey(seed), generative.IMAGE)
    step, opt_state, curve = train_step(vae, optimizer), optimizer.init(params), []
    key = jax.random.PRNGKey(seed + 1)
    for epoch in range(epochs):
        start, order = time.perf_counter(), np.random.default_rng(seed + epoch).permutation(len(x_train))
        for i in range(0, len(x_train) - BATCH + 1, BATCH):
            batch = jnp.asarray(x_train[order[i:i + BATCH]])
            params, state, opt_state, _ = step(params, state, opt_state, batch,
                                               jax.random.fold_in(jax.random.fold_in(key, epoch), i))
        curve.append(test_negative_elbo(vae, params, state, x_test, seed + 2))
        print(f"epoch {epoch + 1:2d}: test -ELBO {curve[-1]:.2f} nats/image ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return params, state, curve


def decode(vae, params, state, z):
    decoder = vae.children[2]
    return jax.nn.sigmoid(decoder.apply(params[2], state[2], z)[0])


def write_images(vae, params, state, x_test, latent, out, seed):
    """samples.png: 8 rows of 10 decoded z ~ N(0, I); interpolation.png: 6 pairs, 10 steps each."""
    from fnn.inspect import plot_images
    z = jax.random.normal(jax.random.PRNGKey(seed + 3), (80, latent))
    samples = np.asarray(decode(vae, params, state, z))
    plot_images({f"{r + 1}": samples[10 * r:10 * r + 10] for r in range(8)}, out / "samples.png",
                title="VAE samples: decoder(z), z ~ N(0, I)")
    stats = vae.children[0].apply(params[0], state[0], jnp.asarray(x_test[:12]))[0]
    mu = stats[:, :latent]
    t = jnp.linspace(0, 1, 10)[:, None]
    rows = {f"{2 * r}->{2 * r + 1}": np.asarray(decode(vae, params, state, (1 - t) * mu[2 * r] + t * mu[2 * r + 1]))
            for r in range(6)}
    plot_images(rows, out / "interpolation.png", title="VAE: decoded lines between two test images' posterior means")


def main():
    parser = _common.parser(__doc__, out="runs/vae", limit=20000, epochs=3,
                            small="python examples/vae.py --limit 6000 --epochs 1 --test 2000")
    parser.add_argument("--model", default="conv", choices=["conv", "mlp"],
                        help="conv: fnn.models.generative.conv_vae; mlp: the 784-400-20 reference (default: conv)")
    parser.add_argument("--latent", type=int, default=None, help="latent size (default: 16 conv, 20 mlp)")
    parser.add_argument("--test", type=int, default=10000, help="test images scored each epoch (default: 10000)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    (x_train, _), (x_test, _) = _common.load_fashion_mnist(args.limit)
    x_test = x_test[:args.test]
    latent = args.latent or (16 if args.model == "conv" else 20)
    vae = generative.conv_vae(latent) if args.model == "conv" else generative.mlp_vae(latent)
    start = time.perf_counter()
    params, state, curve = train(vae, x_train, x_test, args.epochs, args.seed)
    out = _common.out_dir(args)
    write_images(vae, params, state, x_test, latent, out, args.seed)
    print(f"{args.model} VAE, latent {latent}, {len(x_train)} training images: -ELBO on {len(x_test)} test images "
          f"{curve[-1]:.2f} nats/image (Bernoulli likelihood) in {time.perf_counter() - start:.0f} s; "
          f"wrote {out / 'samples.png'} and {out / 'interpolation.png'}")
    _common.result(test_negative_elbo=curve[-1], epochs=args.epochs, model=args.model)


if __name__ == "__main__":
    _common.run(main)
