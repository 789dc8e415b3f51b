"""Where the CNN training step of benchmarks/peers.py spends work beyond its dots (issue 25), from
the optimized HLO alone: compile-only, nothing is timed.

    python benchmarks/cnn_hlo.py [--out DIR] [--batch 128] [--examples 7680]

Compiles the programs the CNN table runs (conv32-pool-conv64-pool-dense128-10, Fashion-MNIST
shapes, Adam): fnn's `fit` loops as `fnn.train.loops` builds them (`make_epoch`: ONE jitted
`lax.fori_loop` of `train_step`, carry donated; `make_step_loop`: one jitted step, carry donated),
grads=autodiff and manual, and raw JAX's (benchmarks/_peers/raw_jax.py: the jitted step and the
`lax.scan` epoch, params and Adam state donated). Writes each optimized HLO text to DIR and prints,
per step (a loop body counts once): top-level ops by kind (benchmarks/_hlo.py) side by side; every
dot/convolution with its FLOPs; the data-moving transposes/copies, pads and other big writers;
dot FLOPs against bytes written and bytes read + written by top-level ops; and the donation of
each program (input_output_alias) with the copies inside its loop body.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hlo import MOVING, parse_hlo, print_details, print_kinds, summarize  # noqa: E402
from _peers import fnn_peer, raw_jax  # noqa: E402
from _peers.common import BATCH, LR, shuffled_batches  # noqa: E402

_FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all"}


# ------------------------------------------------------------------ the programs

def fnn_texts(x, y, batch: int) -> dict:
    """{name: optimized HLO} of fit's two loops, both gradient modes, built from the pieces
    `fnn.train.loops.make_epoch` / `make_step_loop` jit (same step, body, donation)."""
    import fnn
    from fnn.train import loops
    from fnn.train.step import train_step

    model, optimizer = fnn_peer.model("cnn"), fnn.optim.adam(LR)
    _, params, state = model.init(jax.random.PRNGKey(0), x.shape[1:])
    carry = loops.copy(loops.new_carry(params, state, optimizer.init(params)))
    data = jax.device_put((x, y))
    plan = loops.plan(jax.random.PRNGKey(1), 0, x.shape[0], batch)
    texts = {}
    for grads in ("autodiff", "manual"):
        step = train_step(model, fnn.losses.softmax_cross_entropy, optimizer, grads=grads)
        epoch = jax.jit(lambda c, d, p, a, b, step=step: jax.lax.fori_loop(a, b, loops._body(step, d, *p), c),
                        donate_argnums=(0,))
        one = jax.jit(lambda c, d, p, i, step=step: loops._body(step, d, *p)(i, c), donate_argnums=(0,))
        texts[f"fnn {grads} epoch"] = epoch.lower(carry, data, plan, 0, 1).compile().as_text()
        texts[f"fnn {grads} step"] = one.lower(carry, data, plan, np.int32(0)).compile().as_text()
    return texts


def raw_texts(x, y, batch: int) -> dict:
    """{name: optimized HLO} of raw JAX's jitted step and lax.scan epoch (its runners' functions)."""
    params = raw_jax.cnn_init(jax.random.PRNGKey(0))
    opt, step = raw_jax.adam_init(params), raw_jax._train_step(raw_jax.cnn_apply)
    cut = shuffled_batches(batch)

    def epoch(params, opt, x, y, key):                 # raw_jax._scan_runner's epoch
        xs, ys = cut(key, x, y)

        def body(carry, batch):
            p, o, loss = step(*carry, *batch)
            return (p, o), loss
        (params, opt), losses = jax.lax.scan(body, (params, opt), (xs, ys))
        return params, opt, jnp.mean(losses)
    one = jax.jit(step, donate_argnums=(0, 1))
    scan = jax.jit(epoch, donate_argnums=(0, 1))
    return {"raw JAX step": one.lower(params, opt, x[:batch], y[:batch]).compile().as_text(),
            "raw JAX epoch": scan.lower(params, opt, x, y, jax.random.PRNGKey(1)).compile().as_text()}


# ------------------------------------------------------------------ reading the HLO

_NOTABLE = ("pad", "concatenate", "slice", "dynamic-slice", "dynamic-update-slice", "gather", "scatter",
            "reduce-window", "select-and-scatter", "reduce", "transpose", "copy", "dot", "convolution")


def _flops(i, shapes: dict) -> int:
    """2 x multiply-adds of a dot (out x contracted size) or convolution (out x kernel size / its o dim)."""
    out = math.prod(i.shapes[0].dims)
    lhs, rhs = (shapes.get(name) for name in i.operands[:2])
    if i.op == "dot":
        found = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", i.attributes)
        dims = [int(d) for d in found.group(1).split(",") if d] if found else []
        return 2 * out * math.prod(lhs.dims[d] for d in dims)
    labels = re.search(r"dim_labels=\w+_(\w+)->", i.attributes).group(1)
    return 2 * out * math.prod(rhs.dims) // rhs.dims[labels.index("o")]


def _top_level(computations: dict, names) -> list:
    """(instruction, the shapes of its computation) of the non-free instructions of `names`."""
    found = []
    for name in names:
        shapes = {i.name: i.shapes[0] for i in computations[name] if i.shapes}
        found += [(i, shapes) for i in computations[name] if i.op not in _FREE | {"while", "call"}]
    return found


def _inside(i, computations: dict) -> tuple:
    """The op names inside a fusion (the op itself otherwise), and the body's shapes."""
    called = re.search(r"calls=%?([\w.\-]+)", i.attributes)
    body = computations.get(called.group(1), []) if (i.op == "fusion" and called) else [i]
    return body, {b.name: b.shapes[0] for b in body if b.shapes}


def loop_bodies(text: str) -> tuple[dict, list]:
    """(computations, the names of the while bodies), or the entry alone when there is no loop."""
    computations, entry = parse_hlo(text)
    bodies = [b for body in computations.values() for i in body if i.op == "while"
              for b in re.findall(r"body=%?([\w.\-]+)", i.attributes)]
    return computations, bodies or [entry]


def step_stats(text: str) -> dict:
    """Per step (the loop body, or the whole program without a loop): dot FLOPs, bytes written
    and read + written by top-level ops, and per notable inner op the count and bytes written."""
    computations, names = loop_bodies(text)
    flops = written = moved = 0
    notable, notable_bytes, biggest = Counter(), Counter(), []
    for i, shapes in _top_level(computations, names):
        body, inner = _inside(i, computations)
        flops += sum(_flops(b, inner if i.op == "fusion" else shapes) for b in body
                     if b.op in ("dot", "convolution"))
        out = sum(s.bytes() for s in i.shapes)
        read = sum(shapes[o].bytes() for o in set(i.operands) if o in shapes)
        written, moved = written + out, moved + out + read
        ops = sorted({b.op for b in body if b.op in _NOTABLE})
        for op in ops:
            notable[op] += 1
            notable_bytes[op] += out
        biggest.append((out, read, i.op, "+".join(ops) or "elementwise", ", ".join(s.text() for s in i.shapes)))
    return {"flops": flops, "written": written, "moved": moved, "notable": notable,
            "notable_bytes": notable_bytes, "biggest": sorted(biggest, reverse=True)}


def donation(text: str) -> str:
    """The module's input_output_alias entries, and the copies at the top level of its loop bodies."""
    header = text.split("\n", 1)[0]
    aliases = re.search(r"input_output_alias=\{(.*?)\}\s*(?:,\s*\w+=|$)", header)
    pairs = re.findall(r"\{[\d,]*\}:\s*\((\d+)", aliases.group(1)) if aliases else []
    computations, names = loop_bodies(text)
    copies = [(i, s) for i, s in _top_level(computations, names) if i.op == "copy"]
    copied = sum(sum(x.bytes() for x in i.shapes) for i, _ in copies)
    where = "loop body" if names != [parse_hlo(text)[1]] else "program"
    return (f"{len(pairs)} outputs aliased to inputs (parameters {sorted({int(p) for p in pairs})}); "
            f"{len(copies)} top-level copies in the {where}, {copied / 2**10:.1f} KiB")


# ------------------------------------------------------------------ printing

def print_stats(stats: dict) -> None:
    names = list(stats)
    print("\n### Per step: dot/convolution FLOPs against bytes of the top-level ops\n")
    print("| program | MFLOP | MiB written | MiB read + written | FLOP per byte moved |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        s = stats[name]
        print(f"| {name} | {s['flops'] / 1e6:.1f} | {s['written'] / 2**20:.2f} | {s['moved'] / 2**20:.2f} "
              f"| {s['flops'] / s['moved']:.2f} |")
    ops = sorted(set().union(*(s["notable"] for s in stats.values())))
    print("\n### Top-level ops that contain an op (count, MiB they write), per step\n")
    print("| inner op | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for op in ops:
        print(f"| {op} | " + " | ".join(f"{stats[n]['notable'][op]} ({stats[n]['notable_bytes'][op] / 2**20:.2f})"
                                       for n in names) + " |")


def print_biggest(name: str, stats: dict, n: int = 12) -> None:
    print(f"\n{name}: the {n} top-level ops writing most (KiB written / read; op; inner ops; result):\n")
    for out, read, op, ops, shapes in stats["biggest"][:n]:
        print(f"- {out / 2**10:.0f} / {read / 2**10:.0f} KiB: {op} [{ops}] -> {shapes}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnn_hlo"), help="where the HLO texts go")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--examples", type=int, default=60 * BATCH, help="training examples (peers.py: 60 steps)")
    args = parser.parse_args(argv)
    x = jnp.zeros((args.examples, 28, 28, 1), jnp.float32)
    y = jnp.zeros((args.examples,), jnp.int32)
    texts = {**fnn_texts(x, y, args.batch), **raw_texts(x, y, args.batch)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (args.out / f"{name.replace(' ', '_')}.hlo.txt").write_text(text)
    print(f"jax {jax.__version__} ({jax.default_backend()}); HLO texts in {args.out}; batch {args.batch}")
    steps = {name: text for name, text in texts.items() if name.endswith("step")}
    summaries = {name: summarize(text) for name, text in steps.items()}
    print("\n### The jitted steps' top-level ops by kind\n")
    print_kinds(summaries)
    stats = {name: step_stats(text) for name, text in texts.items()}
    print_stats(stats)
    for name, summary in summaries.items():
        print_details(f"{name}: transposes and copies", summary.details, MOVING)
    for name in steps:
        print_biggest(name, stats[name])
    print("\n### Donation and copies in the loop\n")
    for name, text in texts.items():
        print(f"- {name}: {donation(text)}")


if __name__ == "__main__":
    main()
