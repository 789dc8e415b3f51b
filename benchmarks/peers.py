"""fnn beside its peers: seconds per epoch of the same MLP and CNN on Fashion-MNIST.

    python benchmarks/peers.py                 # both tables (about 15 minutes on 2 cores)
    python benchmarks/peers.py --only mlp      # the MLP table (about a minute)
    python benchmarks/peers.py --only cnn --steps 30 --repeat 2

One process times every peer in turn: batch 128, Adam lr 1e-3, softmax cross-entropy,
real Fashion-MNIST train (60000 images -> 468 full batches an epoch). Each peer runs one
untimed warm-up epoch (compilation, allocation), then `--repeat` timed epochs; the table
gives the median. MLP rows time whole epochs. CNN rows train on the first `--steps`
batches (an "epoch" of N steps, shuffle included) and scale the time by 468/N, the same
for every row. Peers missing from the environment are listed as skipped. See README.md.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import common  # noqa: E402
from _peers.common import EPOCH_STEPS, Row  # noqa: E402

PEERS = ("fnn", "jax-scan", "jax-steps", "linen", "nnx", "equinox", "torch", "numpy")


def _builder(module: str, attr: str = "runner", **kwargs) -> Callable:
    def build(kind, x, y):
        return getattr(importlib.import_module(f"_peers.{module}"), attr)(kind, x, y, **kwargs)
    return build


def _peer_rows(kind: str, args) -> list[tuple[str, str, Callable]]:
    """(key, row name, build) in table order; `build(kind, x, y) -> Runner`."""
    jax_rows = [("jax-scan", "raw JAX, lax.scan epoch", _builder("raw_jax", "scan_runner")),
                ("jax-steps", "raw JAX, jitted steps", _builder("raw_jax", "step_runner"))]
    if kind == "cnn":
        jax_rows.reverse()
    rows = [*jax_rows,
            ("linen", "Flax linen + optax", _builder("flax_peers", "linen_runner")),
            ("nnx", "Flax nnx + optax", _builder("flax_peers", "nnx_runner")),
            ("equinox", "Equinox + optax", _builder("eqx_peer")),
            ("torch", "PyTorch eager (CPU)", _builder("torch_peer", threads=args.threads))]
    if kind == "mlp":
        rows.append(("numpy", "NumPy, hand-written backprop", _builder("numpy_peer")))
    return [r for r in rows if r[0] not in args.skip]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _timed(name: str, measure: Callable[[], common.Measurement], scale: float) -> Row:
    """Run one peer's measurement; import errors and failures become a skipped row."""
    t0 = time.perf_counter()
    _log(f"  {name} ...")
    try:
        m = measure()
    except ImportError as err:
        return Row(name, None, None, f"skipped: {err}")
    except Exception as err:  # noqa: BLE001 - one broken peer must not end the whole run
        traceback.print_exc()
        return Row(name, None, None, f"failed: {type(err).__name__}: {err}")
    per_epoch = common.median(m.seconds) * scale
    runs = ", ".join(f"{s:.3g}" for s in m.seconds)
    _log(f"    {per_epoch:.3g} s/epoch (timed runs: {runs} s; {time.perf_counter() - t0:.0f} s in all)")
    return Row(name, per_epoch, m.loss, m.note)


def _fnn_rows(kind, x, y, args, scale) -> list[Row]:
    fnn_peer = importlib.import_module("_peers.fnn_peer")
    rows = []
    for grads in ("autodiff", "manual"):
        name = f"fnn fit, grads={grads}"
        reason = fnn_peer.missing(kind)
        if reason:
            rows.append(Row(name, None, None, reason))
            continue
        rows.append(_timed(name, lambda g=grads: fnn_peer.measure_fit(kind, g, x, y, args.repeat,
                                                                    args.fnn_loop), scale))
    return rows


def run_table(kind: str, x, y, args, rate: float) -> list[Row]:
    steps = EPOCH_STEPS if kind == "mlp" or args.steps <= 0 else min(args.steps, EPOCH_STEPS)
    x, y = x[:steps * common.BATCH], y[:steps * common.BATCH]
    scale = EPOCH_STEPS / steps
    _log(f"{kind.upper()}: {steps} steps per timed run, x{scale:.3g} to an epoch of {EPOCH_STEPS}")
    rows = _fnn_rows(kind, x, y, args, scale) if "fnn" not in args.skip else []
    for _, name, build in _peer_rows(kind, args):
        rows.append(_timed(name, lambda b=build: common.measure(b(kind, x, y), args.repeat), scale))
    per_example = common.mlp_flops_per_example() if kind == "mlp" else common.cnn_flops_per_example()
    flops = common.epoch_flops(per_example)
    rows.append(Row(f"FLOP limit ({flops / 1e9:.4g} GFLOP at {rate / 1e9:.0f} GFLOP/s)",
                    flops / rate, None, "epoch FLOPs / measured 2048² matmul rate"))
    return rows


def _versions() -> str:
    found = []
    for module in ("jax", "flax", "equinox", "optax", "torch", "numpy"):
        try:
            found.append(f"{module} {importlib.import_module(module).__version__}")
        except ImportError:
            found.append(f"{module} (absent)")
    return ", ".join(found)


def _header(source: str, rate: float) -> str:
    import jax

    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, jax backend {jax.default_backend()}",
        f"Versions: {_versions()}",
        f"OpenBLAS variables: {blas or 'unset'}",
        f"Data: Fashion-MNIST train via {source}; batch {common.BATCH}, Adam lr {common.LR}",
        f"float32 matmul rate (2048², best of 7): {rate / 1e9:.0f} GFLOP/s"])


def _render(kind: str, rows: list[Row], args) -> str:
    if kind == "mlp":
        title = f"### MLP 784-256-128-10, seconds per epoch ({args.repeat} timed epochs, median)"
        return f"{title}\n\n{common.format_table(rows, 'raw JAX, lax.scan epoch', 'vs raw JAX scan')}"
    steps = EPOCH_STEPS if args.steps <= 0 else min(args.steps, EPOCH_STEPS)
    how = ("whole epochs" if steps == EPOCH_STEPS else
           f"every row extrapolated: median of {args.repeat} timed runs of {steps} steps, "
           f"x{EPOCH_STEPS}/{steps}")
    title = "### CNN conv32-pool-conv64-pool-dense128-10, seconds per epoch"
    return f"{title}\n\n{common.format_table(rows, 'raw JAX, jitted steps', 'vs raw JAX steps')}\n\n({how})"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("mlp", "cnn"), help="run one table only")
    p.add_argument("--steps", type=int, default=60,
                   help="CNN steps per timed run, scaled to 468 (0 = whole epochs); default 60")
    p.add_argument("--repeat", type=int, default=3, help="timed epochs (runs) per peer; default 3")
    p.add_argument("--skip", default="", help=f"comma-separated peers to leave out, of {','.join(PEERS)}")
    p.add_argument("--fnn-loop", default="auto", choices=("auto", "scan", "step"), help="fit's loop")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads; default 2")
    p.add_argument("--out", type=Path, help="also write the markdown tables to this file")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip - set(PEERS) or args.repeat < 1:
        p.error(f"--skip takes names among {', '.join(PEERS)}; --repeat must be at least 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    x, y, source = common.load_train()
    rate = common.matmul_rate()
    parts = [_header(source, rate)]
    _log(parts[0])
    for kind in ("mlp", "cnn"):
        if args.only in (None, kind):
            parts.append(_render(kind, run_table(kind, x, y, args, rate), args))
    report = "\n\n".join(parts)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
