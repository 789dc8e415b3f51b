"""Where the ViT block's backward time goes (issue 25): the default block of `fnn.models.vit`
(examples/vit.py), `TransformerEncoderBlock(64, 4, 256, dropout=0.0)` on x (B, 49, 64) float32,
pre-LN: h = x + MHA(LN(x)), y = h + mlp(h), mlp = LN, Dense(256), GELU, Dropout, Dense(64), Dropout.

    python benchmarks/vit_block.py [--batch 128] [--repeats 20] [--wait-idle] [--hlo DIR]

The block and each of its parts alone (LayerNorm, MultiHeadAttention, the mlp serial; inside the
attention its four projections and the core `scaled_dot_product_attention`; inside the mlp each
layer), all jitted, train=True, in four columns: the forward alone; the hand backward alone (a jit
that takes the forward's cache); forward + hand backward in one jit (what a training step runs);
`jax.vjp` of the forward (autodiff), forward + backward in one jit. Each part sees the input it
gets inside the block. One warm-up call each (compiles), then `--repeats` rounds, each round one
call of every cell in turn (a change of load falls on all alike); a cell is the median wall time,
with the median CPU time / median wall time in brackets (2.0 = both cores busy). "sum of parts"
rows add the parts' medians, so "parent - sum" is the time lost (or won) in the composition; each
part alone also pays one call's fixed cost (the "empty jitted call" row). Dropout at rate 0 is the
identity and gets no row.

`--hlo DIR` writes the optimized HLO text (`jax.jit(f).lower(...).compile().as_text()`) of the
block's forward + hand backward and of its autodiff pass to DIR, and prints their top-level
operations by kind (dot fusions with their shapes, physical transposes and layout-changing copies
with shapes and bytes, other fusions), hand beside autodiff (the parser is benchmarks/_hlo.py).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn.layers import TransformerEncoderBlock, scaled_dot_product_attention
from fnn.layers.attention import _affine_backward, _qkv, _qkv_backward

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hlo import MOVING, print_details, print_kinds, summarize  # noqa: E402
from _peers.common import load_average, machine, wait_for_load  # noqa: E402

TOKENS, WIDTH, HEADS, MLP_DIM = 49, 64, 4, 256
COLUMNS = ("fwd", "bwd", "hand", "autodiff")
COLUMN_TITLES = ("fwd", "hand bwd", "fwd+hand bwd", "autodiff fwd+bwd")


class Unit(NamedTuple):
    """A part to time: forward(params, x, key) -> (y, cache), backward(params, cache, dy) -> (dparams, dx),
    with the params and the input it gets inside the block."""
    forward: Callable
    backward: Callable
    params: object
    x: object


def layer_unit(layer, params, state, x) -> Unit:
    def forward(p, inputs, key):
        y, _, cache = layer.forward(p, state, inputs, key=key, train=True)
        return y, cache
    return Unit(forward, layer.backward, params, x)


def projections_unit(params, a, o) -> Unit:
    """MultiHeadAttention's four projections alone, as the layer runs them: (a, o) -> (Q, K, V split
    into heads by one a [W_q W_k W_v] matmul, o W_o + b_o)."""
    def forward(p, inputs, key):
        del key
        a, o = inputs
        return (*_qkv(p, a, a, False, HEADS), o @ p["W_o"] + p["b_o"]), inputs

    def backward(p, cache, dy):
        a, o = cache
        grads, da, _ = _qkv_backward(p, a, a, *dy[:3], False)
        grads["W_o"], grads["b_o"], do = _affine_backward(o, dy[3], p["W_o"])
        return grads, (da, do)
    return Unit(forward, backward, params, (a, o))


def core_unit(q, k, v) -> Unit:
    """The attention core as MultiHeadAttention calls it (the backward given the forward's output)."""
    def forward(p, qkv, key):
        del p, key
        out, weights = scaled_dot_product_attention(*qkv)
        return out, (*qkv, weights, out)

    def backward(p, cache, dout):
        q, k, v, weights, out = cache
        return (), scaled_dot_product_attention.backward(q, k, v, weights, dout, out=out)
    return Unit(forward, backward, (), (q, k, v))


def _output(unit: Unit, key):
    return jax.jit(unit.forward)(unit.params, unit.x, key)[0]


def build_units(batch: int, key) -> tuple[dict, dict]:
    """({label: Unit}, {parent label: [part labels]}): the block, its parts, the parts' parts."""
    block = TransformerEncoderBlock(WIDTH, HEADS, MLP_DIM, dropout=0.0)
    norm, attend, _, mlp = block.children
    _, params, state = block.init(jax.random.PRNGKey(0), (TOKENS, WIDTH))
    x = jax.random.normal(jax.random.PRNGKey(1), (batch, TOKENS, WIDTH), jnp.float32)
    units = {"block": layer_unit(block, params, state, x),
             "LayerNorm": layer_unit(norm, params[0], state[0], x)}
    a = _output(units["LayerNorm"], key)
    units["MultiHeadAttention"] = layer_unit(attend, params[1], state[1], a)
    h = x + _output(units["MultiHeadAttention"], key)
    units["mlp"] = layer_unit(mlp, params[3], state[3], h)
    q, k, v, _ = _output(projections_unit(params[1], a, a), key)
    units["attention core"] = core_unit(q, k, v)
    units["4 projections"] = projections_unit(params[1], a, _output(units["attention core"], key).reshape(a.shape))
    parts, inner = {"block": ["LayerNorm", "MultiHeadAttention", "mlp"],
                    "MultiHeadAttention": ["4 projections", "attention core"], "mlp": []}, h
    for i, (layer, p, s) in enumerate(zip(mlp.children, params[3], state[3])):
        unit = layer_unit(layer, p, s, inner)
        inner = _output(unit, key)
        if layer.name != "Dropout":          # rate 0: the identity
            units[f"mlp[{i}] {layer.name}"] = unit
            parts["mlp"].append(f"mlp[{i}] {layer.name}")
    return units, parts


def random_like(tree, key):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return treedef.unflatten([jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)])


def passes(unit: Unit) -> dict:
    """The four passes of a unit as plain functions: fwd(p, x, key), bwd(p, cache, dy),
    hand(p, x, dy, key) and autodiff(p, x, dy, key)."""
    def hand(p, x, dy, key):
        y, cache = unit.forward(p, x, key)
        return y, unit.backward(p, cache, dy)

    def autodiff(p, x, dy, key):
        y, vjp = jax.vjp(lambda p, x: unit.forward(p, x, key)[0], p, x)
        return y, vjp(dy)
    return {"fwd": lambda p, x, key: unit.forward(p, x, key)[0], "bwd": unit.backward, "hand": hand,
            "autodiff": autodiff}


def runs_of(unit: Unit, key) -> tuple[dict, dict]:
    """({column: a call that runs that jitted pass on the unit's data and waits for it},
    {column: the MiB of scratch XLA gives each call, `memory_analysis().temp_size_in_bytes`})."""
    fns = {column: jax.jit(fn) for column, fn in passes(unit).items()}
    y, cache = jax.jit(unit.forward)(unit.params, unit.x, key)
    dy = random_like(y, jax.random.PRNGKey(2))
    args = {"fwd": (unit.params, unit.x, key), "bwd": (unit.params, cache, dy),
            "hand": (unit.params, unit.x, dy, key), "autodiff": (unit.params, unit.x, dy, key)}
    scratch = {}
    for column in COLUMNS:
        stats = fns[column].lower(*args[column]).compile().memory_analysis()
        scratch[column] = float("nan") if stats is None else stats.temp_size_in_bytes / 2**20
    return ({column: (lambda f=fns[column], a=args[column]: jax.block_until_ready(f(*a))) for column in COLUMNS},
            scratch)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(runs: dict, repeats: int) -> dict:
    """{name: (median wall s, median CPU s, median minor page faults)}: one warm-up call each, then
    `repeats` rounds of one call of every run in turn."""
    wall, cpu, faults = {n: [] for n in runs}, {n: [] for n in runs}, {n: [] for n in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            w, c, f = time.perf_counter(), time.process_time(), _minor_faults()
            run()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
            faults[name].append(_minor_faults() - f)
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n]), statistics.median(faults[n])) for n in runs}


def _ratios(ms: dict) -> list[str]:
    """bwd / fwd, and (fwd+bwd)/fwd - 1 for the hand and the autodiff pass."""
    fwd = ms["fwd"]
    return [f"{ms['bwd'] / fwd:.2f}", f"{ms['hand'] / fwd - 1:.2f}", f"{ms['autodiff'] / fwd - 1:.2f}"]


def _row(label: str, times: dict, indent: str = "") -> str:
    cells = [f"{1e3 * times[(label, c)][0]:.3f} ({times[(label, c)][1] / times[(label, c)][0]:.1f})"
             for c in COLUMNS]
    return f"| {indent}{label} | " + " | ".join(cells + _ratios({c: times[(label, c)][0] for c in COLUMNS})) + " |"


def _sum_rows(parent: str, labels: list, times: dict) -> list[str]:
    total = {c: sum(times[(label, c)][0] for label in labels) for c in COLUMNS}
    lost = {c: times[(parent, c)][0] - total[c] for c in COLUMNS}
    return [f"| sum of the {len(labels)} parts | " + " | ".join([f"{1e3 * total[c]:.3f}" for c in COLUMNS]
                                                               + _ratios(total)) + " |",
            f"| **{parent} - sum** | " + " | ".join([f"**{1e3 * lost[c]:+.3f}**" for c in COLUMNS]
                                                    + ["-"] * 3) + " |"]


def print_table(parts: dict, times: dict, empty: tuple, batch: int, repeats: int) -> None:
    print(f"\n### ViT block, x ({batch}, {TOKENS}, {WIDTH}) float32, train=True: median of {repeats} rounds\n")
    print("Each time cell: median wall ms (median CPU time / median wall time). Ratios: hand bwd alone / fwd; "
          "(fwd+bwd)/fwd - 1 in one jit, hand and autodiff.\n")
    print("| part | fwd | hand bwd | fwd+hand bwd | autodiff fwd+bwd | hand bwd / fwd | hand (f+b)/f - 1 | "
          "autodiff (f+b)/f - 1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for parent, labels in parts.items():
        print(_row(parent, times))
        for label in labels:
            print(_row(label, times, indent="&nbsp;&nbsp;"))
        print("\n".join(_sum_rows(parent, labels, times)))
    print(f"| empty jitted call | {1e3 * empty[0]:.3f} ({empty[1] / empty[0]:.1f}) | | | | | | |")


def time_everything(units: dict, key, repeats: int) -> tuple[dict, tuple, dict]:
    runs, scratch = {}, {}
    for label, unit in units.items():
        unit_runs, unit_scratch = runs_of(unit, key)
        runs.update({(label, column): run for column, run in unit_runs.items()})
        scratch.update({(label, column): mib for column, mib in unit_scratch.items()})
    one = jnp.zeros((1,), jnp.float32)
    empty = jax.jit(lambda z: z + 1)
    runs[("empty", "")] = lambda: jax.block_until_ready(empty(one))
    times = interleaved(runs, repeats)
    return times, times.pop(("empty", "")), scratch


def print_faults(parts: dict, times: dict, scratch: dict) -> None:
    """Each cell's scratch (one fresh block per call) and the minor page faults a call takes: glibc
    serves a block above its mmap threshold (at most 32 MiB) with a new mapping each call, so every
    4 KiB page of it faults in (and is zeroed) again."""
    print("\n### Scratch per call and page faults\n")
    print("Each cell: XLA's scratch for one call, MiB / median minor page faults of one call (x 4 KiB = MiB "
          "touched fresh). Above 32 MiB glibc maps the scratch anew for every call.\n")
    print("| part | " + " | ".join(COLUMN_TITLES) + " |\n| --- |" + " ---: |" * len(COLUMNS))
    for label in [label for parent, labels in parts.items() for label in (parent, *labels)]:
        cells = [f"{scratch[(label, c)]:.1f} / {times[(label, c)][2]:.0f} ({times[(label, c)][2] * 4 / 1024:.1f})"
                 for c in COLUMNS]
        print(f"| {label} | " + " | ".join(cells) + " |")


def print_hlo(units: dict, key, out_dir: Path) -> None:
    """Write both passes' optimized HLO to out_dir and print the hand one's top-level ops beside autodiff's."""
    unit, summaries = units["block"], {}
    dy = random_like(jax.jit(unit.forward)(unit.params, unit.x, key)[0], jax.random.PRNGKey(2))
    out_dir.mkdir(parents=True, exist_ok=True)
    for column in ("hand", "autodiff"):
        text = jax.jit(passes(unit)[column]).lower(unit.params, unit.x, dy, key).compile().as_text()
        (out_dir / f"vit_block_{column}.hlo.txt").write_text(text)
        summaries[column] = summarize(text)
    print(f"\n### Optimized HLO of the block's forward + backward ({out_dir}/vit_block_{{hand,autodiff}}.hlo.txt)\n")
    print_kinds(summaries)
    print_details("hand: dots (operands -> result)", summaries["hand"].details, ("dot",))
    print_details("autodiff: dots", summaries["autodiff"].details, ("dot",))
    print_details("hand: transposes and copies", summaries["hand"].details, MOVING)
    print_details("autodiff: transposes and copies", summaries["autodiff"].details, MOVING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--wait-idle", action="store_true", help="start at a 1-min load average below 1")
    parser.add_argument("--hlo", type=Path, metavar="DIR", help="write the optimized HLO there and summarize it")
    args = parser.parse_args()
    if args.wait_idle:
        wait_for_load()
    print(f"jax {jax.__version__} ({jax.default_backend()}), {os.cpu_count()} CPUs, "
          f"load average (1/5/15 min) at the start {load_average()}")
    print(machine(), flush=True)
    key = jax.random.PRNGKey(3)
    units, parts = build_units(args.batch, key)
    if args.hlo:
        print_hlo(units, key, args.hlo)
    times, empty, scratch = time_everything(units, key, args.repeats)
    print_table(parts, times, empty, args.batch, args.repeats)
    print_faults(parts, times, scratch)
    print(f"\nload average (1/5/15 min) at the end {load_average()}")


if __name__ == "__main__":
    main()
