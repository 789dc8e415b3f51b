"""Reading strips of 1 to 5 Fashion-MNIST items left to right, with no item positions given:
a small conv net (BatchNorm), a bidirectional GRU over the strip's columns, and CTC (Graves et
al. 2006). Everything backward is hand-derived: ctc.grad gives dL/dlogits, model.backward the rest.
Every epoch draws new strips from all 60000 training images; test strips use the test images.

    python examples/ctc_strip.py [--limit 12000] [--epochs 12] [--lr 2e-3]

Measured: label error rate 9.1% on 2000 held-out strips after 12 epochs (76% of strips read
exactly; 24.0% after 1 epoch, 12.2% after 4, 9.8% after 8), 1514 s on a 2-core CPU shared with
other runs (load average 8-11).
"""
import os
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import layers as L
from fnn.losses import ctc

MAX_ITEMS, BLANK = 5, 0                    # class c is CTC symbol c + 1; 0 is the blank


def strips(images, labels, n, rng):
    """n strips (28, 140, 1): 1-5 random items side by side at a random offset, zero elsewhere.
    Vectorised: column c of strip i shows column (c - offset_i) % 28 of item (c - offset_i) // 28."""
    k = rng.integers(1, MAX_ITEMS + 1, n)                               # items per strip
    picks = rng.integers(0, len(images), (n, MAX_ITEMS))
    col = np.arange(28 * MAX_ITEMS) - rng.integers(0, 28 * (MAX_ITEMS - k) + 1)[:, None]
    slot = col // 28
    inside = (col >= 0) & (slot < k[:, None])
    source = picks[np.arange(n)[:, None], np.clip(slot, 0, MAX_ITEMS - 1)]
    x = images[source, :, col % 28] * inside[:, :, None, None]           # (n, W, H, 1)
    used = np.arange(MAX_ITEMS) < k[:, None]
    y = np.where(used, labels[picks] + 1, 0).astype(np.int32)
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)), y, (~used).astype(np.float32)


def ToSequence(name="ToSequence"):
    """(B, H, W, C) -> (B, W, H*C): the strip's columns become time steps; backward is the inverse."""
    def init(key, in_shape):
        h, w, c = in_shape
        return (w, h * c), (), ()

    def forward(params, state, x, *, key=None, train=False):
        b, h, w, c = x.shape
        return jnp.transpose(x, (0, 2, 1, 3)).reshape(b, w, h * c), state, x.shape

    def backward(params, cache, dy):
        b, h, w, c = cache
        return (), jnp.transpose(dy.reshape(b, w, h, c), (0, 2, 1, 3))
    return fnn.Layer(init, forward, backward, name)


def greedy_decode(logits):
    """Best path: argmax per frame, merge repeats, drop blanks."""
    best = np.asarray(jnp.argmax(logits, -1))
    out = []
    for row in best:
        merged = [s for t, s in enumerate(row) if s != BLANK and (t == 0 or s != row[t - 1])]
        out.append(merged)
    return out


def edit_distance(a, b):
    d = np.arange(len(b) + 1)
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def conv_bn(features, kernel, padding="SAME"):
    return [L.Conv2D(features, kernel, padding=padding, use_bias=False), L.BatchNorm(), L.Relu()]


def reader():
    """28x140 -> 7x35x64 by two conv+pool stages; a conv as tall as the map (7x3, no padding in
    height) turns each of the 35 columns into 128 features; a BiGRU reads them; 11 CTC symbols."""
    return fnn.serial(*conv_bn(16, 3), L.MaxPool2D(2), *conv_bn(64, 3), L.MaxPool2D(2),
                      *conv_bn(128, (7, 3), ((0, 0), (1, 1))), ToSequence(),
                      L.Bidirectional(L.GRU(64, return_sequences=True)), L.Dense(11))


def read_test(predict, params, state, x, y, paddings):
    """(label error rate, fraction of strips read exactly) on greedy decoding."""
    decoded = [s for i in range(0, len(x), 500) for s in greedy_decode(predict(params, state, x[i:i + 500]))]
    truth = [list(t[p == 0]) for t, p in zip(y, paddings)]
    errors = sum(edit_distance(d, t) for d, t in zip(decoded, truth))
    return errors / sum(map(len, truth)), np.mean([d == t for d, t in zip(decoded, truth)])


def main():
    parser = _common.parser(__doc__, out=None, limit=12000, epochs=12,
                            limit_help="new training strips drawn every epoch",
                            small="python examples/ctc_strip.py --limit 640 --epochs 1 --test 200")
    parser.add_argument("--test", type=int, default=2000, help="held-out strips (default: 2000)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak of the warmup + cosine schedule")
    args = parser.parse_args()
    batch = 64
    steps = args.epochs * (args.limit // batch)
    _common.check_budget(limit=args.limit, batch_size=batch, epochs=args.epochs, steps=steps)
    xi, yi = fnn.data.load_dataset("fashion-mnist", "train")
    xt, yt = fnn.data.load_dataset("fashion-mnist", "test")
    x_test, y_test, p_test = strips(xt, yt, args.test, np.random.default_rng(args.seed))
    model, rng = reader(), np.random.default_rng(args.seed + 1)
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (28, 28 * MAX_ITEMS, 1))
    optimizer = fnn.optim.adam(fnn.optim.warmup_cosine(0.0, args.lr, steps // 20, steps, end_value=args.lr / 50))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, state, opt_state, x, labels, label_paddings):
        logits, state, cache = model.forward(params, state, x, train=True)
        frames = jnp.zeros(logits.shape[:2], logits.dtype)
        loss = ctc(logits, frames, labels, label_paddings)
        grads, _ = model.backward(params, cache, ctc.grad(logits, frames, labels, label_paddings))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), state, opt_state, loss

    predict = jax.jit(lambda p, s, x: model.apply(p, s, x)[0])
    start = time.perf_counter()
    for epoch in range(args.epochs):
        x, y, pad = strips(xi, yi, args.limit, rng)           # new strips from all 60000 images
        losses = []
        for i in range(0, args.limit - batch + 1, batch):
            params, state, opt_state, loss = step(params, state, opt_state, x[i:i + batch], y[i:i + batch],
                                                  pad[i:i + batch])
            losses.append(loss)
        ler, exact = read_test(predict, params, state, x_test, y_test, p_test)
        print(f"epoch {epoch + 1}: ctc loss {float(jnp.mean(jnp.stack(losses))):.3f}, test label error rate "
              f"{ler:.4f}, strips read exactly {exact:.4f} ({time.perf_counter() - start:.0f} s, "
              f"load {os.getloadavg()[0]:.1f})", flush=True)
    print(f"label error rate {100 * ler:.1f}% on {args.test} held-out strips after {args.epochs} epochs of "
          f"{args.limit} new strips each, {100 * exact:.0f}% read exactly ({time.perf_counter() - start:.0f} s)")
    _common.result(label_error_rate=ler, exact=exact)


if __name__ == "__main__":
    _common.run(main)
