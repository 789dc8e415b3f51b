"""fnn itself, timed through `fnn.train.fit` exactly as a user calls it.

`fit` runs all its epochs in one call, so to time it epoch by epoch like every other
peer (and to interleave it with them), it runs in a thread that pauses in `on_epoch`
until the benchmark asks for the next epoch. The first epoch compiles (and, with
loop="auto", measures the scanned loop against the per-step one): it is the warm-up.
An epoch's time is taken from outside `fit`, so it does not depend on how `fit`
times itself."""
from __future__ import annotations

import math
import threading

import numpy as np

from .common import BATCH, LR, Runner


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


class _FitThread:
    """`fit(epochs=n)` in a thread, one epoch per `epoch()` call."""

    def __init__(self, kind: str, grads: str, x: np.ndarray, y: np.ndarray, epochs: int, loop: str):
        self.args, self.epochs = (kind, grads, x, y, loop), epochs
        self.go, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.loss, self.loop, self.error = math.nan, loop, None
        self.requested = self.completed = 0

    def _on_epoch(self, epoch, params, state, opt_state, history):
        import jax
        jax.block_until_ready((params, state, opt_state))
        self.loss, self.loop = history["train_loss"][-1], history.get("loop", self.loop)
        self.completed += 1
        self.done.release()
        if epoch + 1 < self.epochs:
            self.go.acquire()

    def _run(self):
        import jax

        import fnn
        from fnn.train import fit

        kind, grads, x, y, loop = self.args
        try:
            net = model(kind)
            _, params, state = net.init(jax.random.PRNGKey(0), x.shape[1:])
            fit(net, params, state, fnn.optim.adam(LR), (x, y), loss=fnn.losses.softmax_cross_entropy,
                epochs=self.epochs, batch_size=BATCH, key=jax.random.PRNGKey(1), grads=grads,
                loop=loop, progress=False, on_epoch=self._on_epoch)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.error = err
        finally:
            self.done.release()      # wakes a caller waiting on an epoch that will not come

    def epoch(self) -> float:
        self.requested += 1
        if self.thread.ident is None:
            self.thread.start()
        else:
            self.go.release()
        self.done.acquire()
        if self.error is not None:
            raise self.error
        if self.completed < self.requested:
            raise RuntimeError(f"fnn fit stopped after {self.completed} epochs, "
                               f"{self.requested} were asked for")
        return float(self.loss)


def fit_runner(kind: str, x: np.ndarray, y: np.ndarray, *, grads: str, epochs: int,
               loop: str = "auto") -> Runner:
    """A Runner over `fit`: `epochs` must be the number of `epoch()` calls to come."""
    reason = missing(kind)
    if reason:
        raise ImportError(reason.removeprefix("skipped: "))
    runner = _FitThread(kind, grads, x, y, epochs, loop)
    note = lambda: f"fit, loop={runner.loop}" + (" (auto)" if loop == "auto" else "")
    return Runner(runner.epoch, note)


def loop_trials(x: np.ndarray, y: np.ndarray, *, grads: str, trials: int) -> tuple[list[str], dict]:
    """`fit(loop="auto")` on `trials` fresh models (nothing cached: each compiles and races
    anew, the race forced even where fit would skip it as too short to pay for the step
    loop's compile), and between them one warm epoch of each forced loop, timed by `fit`.
    Returns (the loops auto chose, {loop: [seconds per forced epoch]})."""
    import jax

    import fnn
    from fnn.train import fit, loops

    loops.RACE_PAYBACK = 0.0        # race even a one-epoch fit: the race itself is on trial

    def run(net, loop, epochs):
        _, params, state = net.init(jax.random.PRNGKey(0), x.shape[1:])
        return fit(net, params, state, fnn.optim.adam(LR), (x, y), loss=fnn.losses.softmax_cross_entropy,
                   epochs=epochs, batch_size=BATCH, key=jax.random.PRNGKey(1), grads=grads, loop=loop,
                   progress=False)[3]

    forced, choices, seconds = model("mlp"), [], {"scan": [], "step": []}
    for _ in range(trials):
        choices.append(run(model("mlp"), "auto", 1)["loop"])
        for loop in seconds:
            seconds[loop].append(run(forced, loop, 2)["epoch_seconds"][-1])
    return choices, seconds
