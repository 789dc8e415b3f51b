"""A DCGAN on Fashion-MNIST (28x28, pixels scaled to [-1, 1]), trained with fnn's hand-derived passes only.

Both networks and both Adam states advance in ONE compiled step: the discriminator on real and
generated images (BCE), then the generator on the non-saturating loss -log D(G(z)), whose gradient
is the discriminator's hand backward fed into the generator's (fnn.models.generative). After each
epoch: samples_epoch<N>.png (a fixed 8x8 grid of z) and a Frechet distance between Gaussians fitted
to the penultimate (64-d) features of a small CNN trained by fnn here, on real test images vs
generated ones. It is NOT the Inception FID (other features, other scale): compare it with the
real-vs-real distance printed beside it (training images against test images).

    python examples/dcgan.py [--epochs 3] [--limit 20000] [--width 16] [--out runs/dcgan]
"""
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.models import generative

BATCH, LATENT = 128, 64


def gan_step(generator, discriminator, optimizer):
    """(g, d, batch, key) -> (g, d, losses), g and d each (params, state, opt_state): one jitted call."""
    def advance(params, grads, opt_state):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state

    @jax.jit
    def step(g, d, real, key):
        (g_params, g_state, g_opt), (d_params, d_state, d_opt) = g, d
        noise = jax.random.normal(key, (real.shape[0], LATENT))
        fake, g_state, g_cache = generator.forward(g_params, g_state, noise, train=True)
        d_loss, d_grads, d_state = generative.discriminator_grads(discriminator, d_params, d_state, real, fake)
        d_params, d_opt = advance(d_params, d_grads, d_opt)
        g_loss, g_grads, d_state = generative.generator_grads(generator, discriminator, g_params, g_cache,
                                                              d_params, d_state, fake)
        g_params, g_opt = advance(g_params, g_grads, g_opt)
        return (g_params, g_state, g_opt), (d_params, d_state, d_opt), (d_loss, g_loss)
    return step


def train_features(x, y, x_test, y_test, seed):
    """The Frechet distance's feature network: fnn's small CNN, 1 epoch; returns features(images in [0, 1])."""
    model = generative.feature_classifier()
    _, params, state = model.init(jax.random.PRNGKey(seed + 10), generative.IMAGE)
    loss = fnn.losses.softmax_cross_entropy
    params, state, _, _ = fnn.train.fit(model, params, state, fnn.optim.adam(1e-3), (x, y), loss=loss, epochs=1,
                                        batch_size=BATCH, key=jax.random.PRNGKey(seed + 11), progress=False,
                                        grads="manual")
    accuracy = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=loss)["accuracy"]
    print(f"feature CNN: test accuracy {accuracy:.4f}", flush=True)
    body = jax.jit(lambda images: model.children[0].apply(params[0], state[0], images)[0])
    return lambda images: np.concatenate([np.asarray(body(images[i:i + 1000])) for i in range(0, len(images), 1000)])


def generate(generator, g, noise):
    """Images in [0, 1] from noise (evaluation mode: BatchNorm's running statistics)."""
    return (generator.apply(g[0], g[1], noise)[0] + 1) / 2


def evaluate(generator, g, features, real, floor, epoch, out):
    """The Frechet distance of len(real) generated images, and the epoch's grid of 64 fixed z as a PNG."""
    from fnn.inspect import plot_images
    noise = jax.random.normal(jax.random.PRNGKey(1000), (len(real), LATENT))
    fake = np.concatenate([np.asarray(generate(generator, g, noise[i:i + 1000])) for i in range(0, len(noise), 1000)])
    distance = fnn.metrics.frechet_distance(features(fake), real)
    grid = np.asarray(generate(generator, g, jax.random.normal(jax.random.PRNGKey(1), (64, LATENT))))
    plot_images({f"{r + 1}": grid[8 * r:8 * r + 8] for r in range(8)}, out / f"samples_epoch{epoch + 1}.png",
                title=f"DCGAN, epoch {epoch + 1}: Frechet distance {distance:.2f} (real vs real: {floor:.2f})")
    return distance


def main():
    parser = _common.parser(__doc__, out="runs/dcgan", limit=20000, epochs=3,
                            small="python examples/dcgan.py --limit 6400 --epochs 1 --samples 1000")
    parser.add_argument("--width", type=int, default=16, help="channels of the first conv (default: 16)")
    parser.add_argument("--samples", type=int, default=2000,
                        help="real test and generated images per Frechet distance (default: 2000)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs, minimum=2)
    (x_train, y_train), (x_test, y_test) = _common.load_fashion_mnist(args.limit)
    features = train_features(x_train, y_train, x_test, y_test, args.seed)
    real = features(x_test[:args.samples])
    floor = fnn.metrics.frechet_distance(features(x_train[:args.samples]), real)
    print(f"Frechet distance, real training vs real test images: {floor:.3f}", flush=True)

    generator = generative.dcgan_generator(LATENT, width=args.width)
    discriminator = generative.dcgan_discriminator(width=args.width)
    optimizer = fnn.optim.adam(2e-4, b1=0.5)               # DCGAN's (Radford et al. 2015)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    _, g_params, g_state = generator.init(keys[0], (LATENT,))
    _, d_params, d_state = discriminator.init(keys[1], generative.IMAGE)
    g, d = (g_params, g_state, optimizer.init(g_params)), (d_params, d_state, optimizer.init(d_params))
    step, out, distances, x_scaled = gan_step(generator, discriminator, optimizer), _common.out_dir(args), [], \
        x_train * 2 - 1
    for epoch in range(args.epochs):
        start, order = time.perf_counter(), np.random.default_rng(args.seed + epoch).permutation(len(x_train))
        for i in range(0, len(x_train) - BATCH + 1, BATCH):
            g, d, (d_loss, g_loss) = step(g, d, jnp.asarray(x_scaled[order[i:i + BATCH]]),
                                          jax.random.fold_in(jax.random.fold_in(keys[2], epoch), i))
        distances.append(evaluate(generator, g, features, real, floor, epoch, out))
        print(f"epoch {epoch + 1}: D loss {float(d_loss):.3f}, G loss {float(g_loss):.3f}, Frechet distance "
              f"{distances[-1]:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"wrote {args.epochs} sample grids to {out}")
    _common.result(frechet_distance=distances[-1], real_vs_real=floor, epochs=args.epochs)


if __name__ == "__main__":
    _common.run(main)
