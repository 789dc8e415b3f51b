"""fnn itself, timed through `fnn.train.fit` exactly as a user calls it: the first epoch
compiles (and, with loop="auto", measures the scanned against the per-step loop), the
following epochs are warm and are the ones reported."""
from __future__ import annotations

import time

import numpy as np

from .common import BATCH, LR, Measurement


def missing(kind: str) -> str | None:
    """Why fnn cannot run `kind` yet (a part not written), or None when it can."""
    try:
        import fnn
        from fnn import layers as L
        from fnn.train import fit  # noqa: F401
        fnn.losses.softmax_cross_entropy  # noqa: B018
        fnn.optim.adam  # noqa: B018
        if kind == "cnn":
            L.Conv2D, L.MaxPool2D  # noqa: B018
    except (ImportError, AttributeError) as err:
        return f"skipped: fnn not ready ({type(err).__name__}: {err})"
    return None


def model(kind: str):
    import fnn
    from fnn import layers as L

    if kind == "mlp":
        return fnn.serial(L.Flatten(), L.Dense(256), L.Relu(), L.Dense(128), L.Relu(), L.Dense(10))
    return fnn.serial(L.Conv2D(32, (3, 3)), L.Relu(), L.MaxPool2D((2, 2)),
                      L.Conv2D(64, (3, 3)), L.Relu(), L.MaxPool2D((2, 2)),
                      L.Flatten(), L.Dense(128), L.Relu(), L.Dense(10))


def measure_fit(kind: str, grads: str, x: np.ndarray, y: np.ndarray, repeat: int,
                loop: str = "auto") -> Measurement:
    """`fit` for 1 + `repeat` epochs over (x, y); the first (compiling) epoch is dropped.

    Epochs are timed from the outside, between `on_epoch` calls that wait for the
    parameters, rather than read from `history["epoch_seconds"]`, so the figure does
    not depend on how `fit` times itself."""
    import jax

    import fnn
    from fnn.train import fit

    net = model(kind)
    _, params, state = net.init(jax.random.PRNGKey(0), x.shape[1:])
    stamps = []

    def on_epoch(epoch, params, state, opt_state, history):
        jax.block_until_ready((params, state, opt_state))
        stamps.append(time.perf_counter())
    *_, history = fit(net, params, state, fnn.optim.adam(LR), (x, y),
                      loss=fnn.losses.softmax_cross_entropy, epochs=1 + repeat, batch_size=BATCH,
                      key=jax.random.PRNGKey(1), grads=grads, loop=loop, progress=False, on_epoch=on_epoch)
    seconds = [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
    note = f"fit, loop={history.get('loop', loop)}" + (" (auto)" if loop == "auto" else "")
    return Measurement(seconds, float(history["train_loss"][-1]), note)
