"""The sequence-classifier epoch (examples/sequence_classifier.py) beside the same model in
PyTorch and Flax: Fashion-MNIST rows as sequences (28 steps of 28 pixels), LSTM(128) whose
last state feeds Dense(10), softmax cross-entropy, Adam(2e-3), batch 128.

    python benchmarks/sequence_classifier.py [--steps 100] [--repeats 5] [--unroll 4,28] [--batch-blocks 2]
        [--devices 2] [--wait-idle]

Peers: fnn's `fit` with hand-written gradients (grads="manual", as the example) and with
grads="autodiff"; PyTorch eager on the CPU (nn.LSTM + nn.Linear; 1 thread by default: with
2 on a loaded machine its spinning threads lose most of their time to other jobs); Flax linen
(nn.RNN(nn.OptimizedLSTMCell(128)) + nn.Dense) with optax in a jitted step. Each trains on
the first --steps batches of the training set as its "epoch" (shuffled every epoch), and the
time is scaled to the full epoch (468 batches). One untimed warm-up epoch (compilation),
then --repeats rounds, each one epoch of every peer in turn; the table gives the median
epoch time and the median of the per-round ratio to fnn's manual fit, with the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time


def _host_devices() -> int:
    """--devices N, read before JAX starts: XLA:CPU shows N devices (one per core here), which the
    data-parallel row trains over; the other rows run on the first, as without the flag."""
    for i, arg in enumerate(sys.argv):
        if arg.startswith("--devices"):
            return int(arg.partition("=")[2] or sys.argv[i + 1])
    return 1


if _host_devices() > 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={_host_devices()}").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fnn  # noqa: E402
from fnn import layers as L  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers.common import load_average, machine, wait_for_load  # noqa: E402

BATCH, HIDDEN, LR, EPOCH_STEPS = 128, 128, 2e-3, 60000 // 128


class _Closed(Exception):
    """Raised from `on_epoch` once the runner is closed: `fit` propagates it and its thread ends."""


class FitRunner:
    """`fnn.train.fit(epochs=n)` in a thread, paused in `on_epoch`: one epoch per call; `close()`
    ends the thread (a daemon thread still inside fit at exit aborts with "FATAL: exception not
    rethrown")."""

    def __init__(self, x, y, grads, epochs, mesh=None, **lstm_options):
        self.go, self.done = threading.Semaphore(0), threading.Semaphore(0)
        self.args, self.epochs, self.loss, self.error = (x, y, grads), epochs, float("nan"), None
        self.lstm_options, self.mesh, self.closed = lstm_options, mesh, False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_epoch(self, epoch, params, state, opt_state, history):
        jax.block_until_ready((params, opt_state))
        self.loss = history["train_loss"][-1]
        self.done.release()
        if epoch + 1 < self.epochs:
            self.go.acquire()
            if self.closed:
                raise _Closed

    def _run(self):
        x, y, grads = self.args
        try:
            model = fnn.serial(L.LSTM(HIDDEN, **self.lstm_options), L.Dense(10))
            _, params, state = model.init(jax.random.PRNGKey(0), (28, 28))
            fnn.train.fit(model, params, state, fnn.optim.adam(LR), (x, y),
                          loss=fnn.losses.softmax_cross_entropy, epochs=self.epochs, batch_size=BATCH,
                          key=jax.random.PRNGKey(1), grads=grads, progress=False, on_epoch=self._on_epoch,
                          mesh=self.mesh)
        except _Closed:
            pass
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = err
            self.done.release()

    def __call__(self):
        if self.thread.ident is None:
            self.thread.start()
        else:
            self.go.release()
        self.done.acquire()
        if self.error is not None:
            raise self.error
        return self.loss

    def close(self):
        """Lets a thread paused in `on_epoch` leave fit (or one past its last epoch finish) and joins it."""
        if self.thread.ident is not None:
            self.closed = True
            self.go.release()
            self.thread.join()


def torch_runner(x, y, threads):
    try:
        import torch
    except ImportError:                                   # not installed: no PyTorch row
        return None
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.dense = torch.nn.LSTM(28, HIDDEN, batch_first=True), torch.nn.Linear(HIDDEN, 10)

        def forward(self, xb):
            return self.dense(self.lstm(xb)[1][0][0])          # last hidden state h_T

    net, loss_fn = Net(), torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def run():
        torch.set_num_threads(threads)
        perm, total = torch.randperm(len(xt)), torch.zeros(())
        for i in range(len(xt) // BATCH):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total) / (len(xt) // BATCH)
    return run


def flax_runner(x, y):
    try:
        import flax.linen as nn
        import optax
    except ImportError:                                   # not installed: no Flax row
        return None

    class Net(nn.Module):
        @nn.compact
        def __call__(self, xb):
            return nn.Dense(10)(nn.RNN(nn.OptimizedLSTMCell(HIDDEN))(xb)[:, -1])

    net, tx = Net(), optax.adam(LR)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))
    box = [(params, tx.init(params))]
    xd, yd = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def step(params, opt_state, idx):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xd[idx]), yd[idx]).mean()
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def run():
        perm = np.random.permutation(len(x))
        losses = []
        for i in range(len(x) // BATCH):
            params, opt_state, loss = step(*box[0], perm[i * BATCH:(i + 1) * BATCH])
            box[0] = (params, opt_state)
            losses.append(loss)
        return float(jnp.mean(jnp.stack(losses)))
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100, help="batches per timed epoch (<= 468)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-threads", default="1", help="one PyTorch row per count, e.g. 1,2")
    parser.add_argument("--unroll", default="", help="extra fnn manual rows with LSTM(unroll=N), e.g. 4,28")
    parser.add_argument("--batch-blocks", default="",
                        help="extra fnn manual rows with LSTM(batch_blocks=N), e.g. 2,4")
    parser.add_argument("--devices", type=int, default=1,
                        help="with N > 1: XLA:CPU shows N devices and a row trains data-parallel over them "
                             "(fit(mesh=...)), so the compiled loop can keep N cores busy")
    parser.add_argument("--no-peers", action="store_true", help="fnn rows only (no autodiff, PyTorch, Flax)")
    parser.add_argument("--wait-idle", action="store_true", help="start once the 1-min load is below 1.0")
    args = parser.parse_args()
    args.torch_threads = [int(t) for t in args.torch_threads.split(",") if t]
    x, y = fnn.data.load_dataset("fashion-mnist", "train")
    n = min(args.steps, EPOCH_STEPS) * BATCH
    x, y = np.asarray(x[:n], np.float32).reshape(-1, 28, 28), np.asarray(y[:n], np.int32)
    runners = {"fnn fit, grads=manual": FitRunner(x, y, "manual", 1 + args.repeats)}
    for u in [int(u) for u in args.unroll.split(",") if u]:
        runners[f"fnn fit, manual, unroll={u}"] = FitRunner(x, y, "manual", 1 + args.repeats, unroll=u)
    for b in [int(b) for b in args.batch_blocks.split(",") if b]:
        runners[f"fnn fit, manual, batch_blocks={b}"] = FitRunner(x, y, "manual", 1 + args.repeats, batch_blocks=b)
    if args.devices > 1:
        mesh = fnn.distributed.data_mesh(jax.devices()[:args.devices])
        runners[f"fnn fit, manual, {args.devices} CPU devices"] = FitRunner(x, y, "manual", 1 + args.repeats,
                                                                            mesh=mesh)
    if not args.no_peers:
        runners.update({"fnn fit, grads=autodiff": FitRunner(x, y, "autodiff", 1 + args.repeats),
                        **({f"PyTorch eager (CPU, {t} thread{'s' * (t > 1)})": torch_runner(x, y, t)
                           for t in args.torch_threads}),
                        "Flax linen + optax, jitted step": flax_runner(x, y)})
    missing = [name for name, run in runners.items() if run is None]
    runners = {name: run for name, run in runners.items() if run is not None}
    if args.wait_idle:
        wait_for_load()
    print(machine(), flush=True)
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs; {n // BATCH} steps an epoch, scaled to "
          f"{EPOCH_STEPS}; load average (1/5/15 min) at start {load_average()}", flush=True)
    try:
        losses = {name: run() for name, run in runners.items()}              # warm-up epoch
        times = {name: [] for name in runners}
        for _ in range(args.repeats):
            for name, run in runners.items():
                start = time.perf_counter()
                losses[name] = run()
                times[name].append((time.perf_counter() - start) * EPOCH_STEPS * BATCH / n)
    finally:
        for run in runners.values():
            if isinstance(run, FitRunner):
                run.close()
    base = times["fnn fit, grads=manual"]
    print(f"\nOne epoch of LSTM({HIDDEN}) + Dense(10), median of {args.repeats} "
          f"(ratio: median over rounds of time / fnn manual in the same round)")
    print(f"{'peer':34} {'s/epoch':>8} {'ratio':>7} {'last loss':>10}")
    for name, t in times.items():
        ratio = statistics.median(a / b for a, b in zip(t, base))
        print(f"{name:34} {statistics.median(t):8.1f} {ratio:6.2f}x {losses[name]:10.4f}")
    if missing:
        print(f"not installed, no row: {', '.join(missing)}")
    print(f"load average (1/5/15 min) at the end {load_average()}")


if __name__ == "__main__":
    main()
