"""The CNN variants of docs/results.md's CNN table: CPU seconds of the training step per epoch (60000
examples), one jitted step (`make_train_step`, hand-derived gradients, Adam), before 10-epoch runs.

    python benchmarks/cnn_variants.py [base,top64,...]

Each variant is compiled and warmed up (3 steps), then 40 steps at batch 64 or 20 at batch 128 are
timed; CPU seconds are this process's user+sys (less sensitive to other jobs than wall time, which is
printed beside it). Figures on a shared machine move by 10-20%: compare the ratio column.
"""
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.train.step import make_train_step

VARIANTS = {
    "base": {},
    "top64": dict(top=64),
    "top128": dict(top=128),
    "top128_gap": dict(top=128, hidden=0),
    "top64_gap": dict(top=64, hidden=0),
    "w48_96": dict(widths=(48, 96)),
    "w32_64_128pool": dict(widths=(32, 64, 128)),
}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_epoch(kwargs: dict, x, y, batch: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the training step per 60000 examples."""
    model = fnn.models.cnn(**kwargs)
    _, p, s = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    opt = fnn.optim.adam(1e-3)
    o = opt.init(p)
    step = make_train_step(model, fnn.losses.softmax_cross_entropy.partial(label_smoothing=0.1), opt,
                           grads="manual")
    b, k = (x[:batch], y[:batch]), jax.random.PRNGKey(1)
    for _ in range(3):
        p, s, o, _ = step(p, s, o, b, k)
    jax.block_until_ready(p)
    n = 40 if batch == 64 else 20
    c0, t0 = cpu(), time.perf_counter()
    for _ in range(n):
        p, s, o, _ = step(p, s, o, b, k)
    jax.block_until_ready(p)
    scale = 60000 / (n * batch)
    return (cpu() - c0) * scale, (time.perf_counter() - t0) * scale


def main() -> None:
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(VARIANTS)
    x = jnp.asarray(np.random.rand(128, 28, 28, 1).astype("float32"))
    y = jnp.asarray(np.random.randint(0, 10, 128))
    base = {}
    print("| variant | batch | CPU s/epoch | wall s/epoch | CPU ratio to base |\n| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        for batch in (64, 128):
            c, t = per_epoch(VARIANTS[name], x, y, batch)
            base.setdefault(batch, c)
            print(f"| {name} | {batch} | {c:.1f} | {t:.1f} | {c / base[batch]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
