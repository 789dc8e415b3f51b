"""Denoising Fashion-MNIST with plain MSE vs MSE + a perceptual loss (fnn.losses.perceptual).

Gaussian noise (std --noise) is added to the images; a small conv denoiser (3 convs, 3x3) is
trained twice from the same initialisation, once on MSE and once on MSE + --weight x the
perceptual loss. The perceptual features are the two ReLU maps of a small CNN classifier trained
here first (--feature-steps steps); its gradient runs through that CNN's hand-written backward.
Prints the test PSNR (dB) and the perceptual distance of both denoisers, and writes denoising.png
(rows: noisy / MSE / MSE + perceptual / clean).

    python examples/denoising.py [--limit 12000] [--steps 500] [--feature-steps 200] [--weight 1] [--out runs/denoising]
"""
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.layers import Conv2D, Dense, GlobalAvgPool, Relu

BATCH = 64


def feature_cnn():
    """The classifier whose children 1 and 3 (ReLU maps, 28x28x16 and 14x14x32) are the features."""
    return fnn.serial(Conv2D(16, (3, 3)), Relu(), Conv2D(32, (3, 3), stride=2), Relu(), GlobalAvgPool(), Dense(10))


def denoiser():
    return fnn.serial(Conv2D(32, (3, 3)), Relu(), Conv2D(32, (3, 3)), Relu(), Conv2D(1, (3, 3)))


def batches(n, steps, seed):
    """`steps` index batches of size BATCH, reshuffling the n examples each pass."""
    rng, order = np.random.default_rng(seed), np.empty(0, int)
    for _ in range(steps):
        if len(order) < BATCH:
            order = np.concatenate([order, rng.permutation(n)])
        yield order[:BATCH]
        order = order[BATCH:]


def train_features(x, y, steps, seed):
    """The feature CNN trained as a classifier (Adam 1e-3, hand gradients); its params and state."""
    model, optimizer = feature_cnn(), fnn.optim.adam(1e-3)
    _, params, state = model.init(jax.random.PRNGKey(seed), x.shape[1:])
    step = fnn.train.make_train_step(model, fnn.losses.softmax_cross_entropy, optimizer, grads="manual")
    opt_state, key = optimizer.init(params), jax.random.PRNGKey(seed + 1)
    for i, idx in enumerate(batches(len(x), steps, seed)):
        params, state, opt_state, metrics = step(params, state, opt_state, (jnp.asarray(x[idx]), jnp.asarray(y[idx])),
                                                 jax.random.fold_in(key, i))
    return model, params, state


def denoise_step(model, optimizer, loss):
    """One jitted step on loss(pred, clean): its hand gradient, then the denoiser's backward."""
    @jax.jit
    def step(params, state, opt_state, noisy, clean):
        pred, _, cache = model.forward(params, state, noisy)
        dparams, _ = model.backward(params, cache, loss.grad(pred, clean))
        updates, opt_state = optimizer.update(dparams, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state
    return step


def train_denoiser(loss, clean, noisy, steps, seed):
    model, optimizer = denoiser(), fnn.optim.adam(1e-3)
    _, params, state = model.init(jax.random.PRNGKey(seed + 2), clean.shape[1:])
    step, opt_state = denoise_step(model, optimizer, loss), optimizer.init(params)
    for idx in batches(len(clean), steps, seed + 3):
        params, opt_state = step(params, state, opt_state, jnp.asarray(noisy[idx]), jnp.asarray(clean[idx]))
    return lambda x: model.apply(params, state, x)[0]


def add_noise(x, std, seed):
    return (x + std * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


def scores(restore, perceptual, noisy, clean, batch=500):
    """Test PSNR in dB (outputs clipped to [0, 1]; from the mean MSE) and the mean perceptual distance."""
    @jax.jit
    def one(noisy, clean):
        pred = jnp.clip(restore(noisy), 0, 1)
        return jnp.mean((pred - clean) ** 2), perceptual(pred, clean)
    pairs = [one(jnp.asarray(noisy[i:i + batch]), jnp.asarray(clean[i:i + batch])) for i in range(0, len(clean), batch)]
    mse, distance = (np.mean([float(p[k]) for p in pairs]) for k in (0, 1))
    return 10 * np.log10(1 / mse), float(distance)


def write_grid(rows, out):
    from fnn.inspect import plot_images
    plot_images(rows, out / "denoising.png", title="noisy / MSE / MSE + perceptual / clean (test images)")
    return out / "denoising.png"


def main():
    parser = _common.parser(__doc__, out="runs/denoising", limit=12000,
                            small="python examples/denoising.py --limit 2000 --steps 200 --feature-steps 50")
    parser.add_argument("--steps", type=int, default=500, help="denoiser training steps, each run (default: 500)")
    parser.add_argument("--feature-steps", type=int, default=200, help="feature CNN training steps (default: 200)")
    parser.add_argument("--noise", type=float, default=0.4, help="noise standard deviation (default: 0.4)")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the perceptual term (default: 1)")
    parser.add_argument("--test", type=int, default=2000, help="test images scored (default: 2000)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, steps=min(args.steps, args.feature_steps))
    (x, y), (x_test, _) = _common.load_fashion_mnist(args.limit)
    x_test = x_test[:args.test]
    start = time.perf_counter()
    features, f_params, f_state = train_features(x, y, args.feature_steps, args.seed)
    perceptual = fnn.losses.perceptual(features, f_params, f_state, taps=(1, 3))
    combined = fnn.losses.Loss(lambda p, t: fnn.losses.mse(p, t) + args.weight * perceptual(p, t),
                               lambda p, t: fnn.losses.mse.grad(p, t) + args.weight * perceptual.grad(p, t),
                               "mse+perceptual")
    noisy, noisy_test = add_noise(x, args.noise, args.seed), add_noise(x_test, args.noise, args.seed + 9)
    results, rows = {}, {"noisy": np.clip(noisy_test[:10], 0, 1)}
    for tag, loss in (("mse", fnn.losses.mse), ("perceptual", combined)):
        restore = train_denoiser(loss, x, noisy, args.steps, args.seed)
        results[tag] = scores(restore, perceptual, noisy_test, x_test)
        rows["MSE" if tag == "mse" else "MSE+perc."] = np.clip(np.asarray(restore(jnp.asarray(noisy_test[:10]))), 0, 1)
        print(f"{tag:10s}: test PSNR {results[tag][0]:.2f} dB, perceptual distance {results[tag][1]:.4f}", flush=True)
    rows["clean"] = x_test[:10]
    path = write_grid(rows, _common.out_dir(args))
    noisy_psnr = scores(lambda v: jnp.asarray(v), perceptual, noisy_test, x_test)[0]
    print(f"noisy input: PSNR {noisy_psnr:.2f} dB; {time.perf_counter() - start:.0f} s; wrote {path}")
    _common.result(psnr_mse=results["mse"][0], psnr_perceptual=results["perceptual"][0],
                   perceptual_mse=results["mse"][1], perceptual_perceptual=results["perceptual"][1],
                   psnr_noisy=noisy_psnr)


if __name__ == "__main__":
    _common.run(main)
