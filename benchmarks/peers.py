"""fnn beside its peers: seconds per epoch of the same MLP and CNN on Fashion-MNIST.

    python benchmarks/peers.py                 # both tables (about 15 minutes on 2 cores)
    python benchmarks/peers.py --only mlp      # the MLP table (about a minute)
    python benchmarks/peers.py --only cnn --steps 30 --repeat 2

One process times every peer: batch 128, Adam lr 1e-3, softmax cross-entropy, real
Fashion-MNIST train (60000 images -> 468 full batches an epoch). Each peer runs one
untimed warm-up epoch (compilation, allocation), then `--repeat` timed epochs, by
default interleaved (one epoch of every peer per round, so a change of load on a shared
machine falls on all rows alike; `--sequential` times each peer in one go). The table
gives the median (`--stat min`: the best). MLP rows time whole epochs. CNN rows train on
the first `--steps` batches (an "epoch" of N steps, shuffle included) and scale the time
by 468/N, the same for every row. Peers missing from the environment are listed as
skipped. See README.md.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import common, protocol  # noqa: E402
from _peers.common import EPOCH_STEPS, Row  # noqa: E402
from _peers.protocol import Peer, log  # noqa: E402

PEERS = ("fnn", "jax-scan", "jax-steps", "linen", "nnx", "equinox", "torch", "numpy")


def _builder(module: str, attr: str = "runner", **kwargs) -> Callable:
    def build(kind, x, y):
        return getattr(importlib.import_module(f"_peers.{module}"), attr)(kind, x, y, **kwargs)
    return build


def _peer_rows(kind: str, args) -> list[tuple[str, str, Callable]]:
    """(key, row name, build) in table order; `build(kind, x, y) -> Runner`."""
    fnn_rows = [("fnn", f"fnn fit, grads={g}",
                 _builder("fnn_peer", "fit_runner", grads=g, epochs=1 + args.repeat, loop=args.fnn_loop))
                for g in ("autodiff", "manual")]
    jax_rows = [("jax-scan", "raw JAX, lax.scan epoch", _builder("raw_jax", "scan_runner")),
                ("jax-steps", "raw JAX, jitted steps", _builder("raw_jax", "step_runner"))]
    if kind == "cnn":
        jax_rows.reverse()
    rows = [*fnn_rows, *jax_rows,
            ("linen", "Flax linen + optax", _builder("flax_peers", "linen_runner")),
            ("nnx", "Flax nnx + optax", _builder("flax_peers", "nnx_runner")),
            ("equinox", "Equinox + optax", _builder("eqx_peer")),
            ("torch", "PyTorch eager (CPU)", _builder("torch_peer", threads=args.threads))]
    if kind == "mlp":
        rows.append(("numpy", "NumPy, hand-written backprop", _builder("numpy_peer")))
    return [r for r in rows if r[0] not in args.skip]


def _matmul_rate(rates: list[float], args) -> float:
    """Measure the matmul rate again (after waiting for quiet) and return the best so far."""
    common.wait_until_idle(args.wait_idle)
    rates.append(common.matmul_rate())
    return max(rates)


def _steps(kind: str, args) -> int:
    return EPOCH_STEPS if kind == "mlp" or args.steps <= 0 else min(args.steps, EPOCH_STEPS)


def run_table(kind: str, x, y, args, rates: list[float]) -> list[Row]:
    steps = _steps(kind, args)
    x, y = x[:steps * common.BATCH], y[:steps * common.BATCH]
    scale = EPOCH_STEPS / steps
    log(f"{kind.upper()}: {steps} steps per timed run, x{scale:.3g} to an epoch of {EPOCH_STEPS}")
    peers = [Peer(name, functools.partial(build, kind, x, y)) for _, name, build in _peer_rows(kind, args)]
    rows = (protocol.sequential if args.sequential else protocol.interleaved)(peers, args, scale)
    per_example = common.mlp_flops_per_example() if kind == "mlp" else common.cnn_flops_per_example()
    flops, rate = common.epoch_flops(per_example), _matmul_rate(rates, args)
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


def _header(source: str, rates: list[float], load: tuple[float, ...]) -> str:
    import jax

    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, jax backend {jax.default_backend()}",
        f"Versions: {_versions()}",
        f"OpenBLAS variables: {blas or 'unset'}; load average at start {', '.join(f'{v:.1f}' for v in load)}",
        f"Data: Fashion-MNIST train via {source}; batch {common.BATCH}, Adam lr {common.LR}",
        f"float32 matmul rate (2048², best of 7 per measurement): {max(rates) / 1e9:.0f} GFLOP/s "
        f"(measurements: {', '.join(f'{r / 1e9:.0f}' for r in rates)})"])


def _render(kind: str, rows: list[Row], args) -> str:
    if kind == "mlp":
        title = f"### MLP 784-256-128-10, seconds per epoch ({args.repeat} timed epochs, {args.stat})"
        return f"{title}\n\n{common.format_table(rows, 'raw JAX, lax.scan epoch', 'vs raw JAX scan')}"
    steps = _steps("cnn", args)
    how = ("whole epochs" if steps == EPOCH_STEPS else
           f"every row extrapolated: {args.stat} of {args.repeat} timed runs of {steps} steps, "
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
    p.add_argument("--stat", default="median", choices=tuple(common.STATS),
                   help="how timed runs are summarised; default median")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each row, wait up to this long for other processes to leave the CPU")
    p.add_argument("--sequential", action="store_true",
                   help="time each peer in one go instead of interleaving one epoch of each per round")
    p.add_argument("--fnn-loop", default="auto", choices=("auto", "scan", "step"), help="fit's loop")
    p.add_argument("--fixed-cost", type=int, default=0, metavar="N",
                   help="after the tables, N fresh processes per row (interleaved) measure the fixed "
                        "cost of fnn's fit and of raw JAX's scanned epoch (MLP)")
    p.add_argument("--loop-trials", type=int, default=0, metavar="N",
                   help="after the tables, fit(loop='auto') on N fresh MLPs per gradient mode: which loop it "
                        "picks, against warm epochs of each forced loop")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads; default 2")
    p.add_argument("--out", type=Path, help="also write the markdown tables to this file")
    args = p.parse_args(argv)
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.skip - set(PEERS) or args.repeat < 1:
        p.error(f"--skip takes names among {', '.join(PEERS)}; --repeat must be at least 1")
    return args


def loop_table(x, y, trials: int) -> str:
    """Which loop fit(loop="auto") picks on the MLP, `trials` times per gradient mode."""
    fnn_peer = importlib.import_module("_peers.fnn_peer")
    lines = ["### fit(loop=\"auto\") on the MLP: the loop it picks, against each loop's warm epoch",
             "", "| grads | auto picked | scan s/epoch (median) | step s/epoch (median) | faster |",
             "| --- | --- | ---: | ---: | --- |"]
    for grads in ("autodiff", "manual"):
        log(f"loop trials, grads={grads} ...")
        choices, seconds = fnn_peer.loop_trials(x, y, grads=grads, trials=trials)
        med = {k: statistics.median(v) for k, v in seconds.items()}
        picked = ", ".join(f"{name} x{choices.count(name)}" for name in sorted(set(choices)))
        lines.append(f"| {grads} | {picked} (of {trials}) | {med['scan']:.3g} | {med['step']:.3g} "
                     f"| {min(med, key=med.get)} |")
    return "\n".join(lines)


def fixed_cost_table(trials: int) -> str:
    """Fixed cost (build + first epoch - second epoch) in fresh processes, rounds interleaved."""
    import json
    import subprocess

    script = Path(__file__).resolve().parent / "_peers" / "fixed_cost.py"
    peers = ("jax-scan", "fnn-autodiff", "fnn-manual")
    seconds: dict[str, list[float]] = {p: [] for p in peers}
    for round_ in range(trials):
        log(f"fixed cost, round {round_ + 1}/{trials}")
        for peer in peers:
            out = subprocess.run([sys.executable, str(script), peer], capture_output=True, text=True, check=True)
            seconds[peer].append(json.loads(out.stdout.strip().splitlines()[-1])["fixed"])
    ref = statistics.median(seconds["jax-scan"])
    lines = ["### Fixed cost of one training run, fresh processes (MLP)", "",
             "| row | fixed cost s (median) | vs raw JAX compile | runs |", "| --- | ---: | ---: | --- |"]
    for peer in peers:
        med = statistics.median(seconds[peer])
        lines.append(f"| {peer} | {med:.2f} | {med / ref:.2f}x | {', '.join(f'{v:.2f}' for v in seconds[peer])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()
    x, y, source = common.load_train()
    if "fnn" not in args.skip:      # import fnn outside the timed warm-up, as the other peers' modules
        importlib.import_module("_peers.fnn_peer").missing("mlp")
    rates: list[float] = []
    log(f"float32 matmul rate: {_matmul_rate(rates, args) / 1e9:.0f} GFLOP/s")
    tables = [_render(kind, run_table(kind, x, y, args, rates), args)
              for kind in ("mlp", "cnn") if args.only in (None, kind)]
    if args.fixed_cost > 0:
        tables.append(fixed_cost_table(args.fixed_cost))
    if args.loop_trials > 0:
        tables.append(loop_table(x, y, args.loop_trials))
    report = "\n\n".join([_header(source, rates, load), *tables])
    print(report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
