"""The top-level operations of an optimized HLO module, by kind: dots (with their shapes and
FLOPs), transposes and copies that move data (with the memory order before and after), other
fusions; with the bytes each writes. Read from `jax.jit(f).lower(...).compile().as_text()` by a
regex over the instruction lines (the text XLA prints in jax 0.10: operands as %names).

A transpose whose result layout keeps the memory order is a bitcast and counts as free; on XLA:CPU
the real reorders show up as copies (often fused with the elementwise work beside them).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import NamedTuple

from fnn.distributed.hlo import _BYTES

_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\(.*?\)|[^\s(]+)\s+([\w\-]+)\((.*)$")
_TYPE = re.compile(r"(\w+)\[([\d,]*)\](?:\{([\d,]*)[^}]*\})?")
_FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all"}
MOVES_ONLY, FUSED_MOVE, PLAIN_COPY = ("transpose/copy (moves data, nothing else)",
                                      "fusion with a data-moving transpose/copy", "plain copy (same memory order)")
MOVING = (MOVES_ONLY, FUSED_MOVE, PLAIN_COPY)


class Shape(NamedTuple):
    """An array type of the HLO text, f32[8,49,4,16]{3,1,2,0}."""
    dtype: str
    dims: tuple
    layout: tuple | None          # minor-to-major, as HLO prints it

    def bytes(self) -> int:
        return _BYTES.get(self.dtype, 4) * math.prod(self.dims)

    def in_memory(self) -> str:
        """The dims as they lie in memory, major to minor: f32[8,4,49,16] for f32[8,49,4,16]{3,1,2,0}."""
        order = reversed(self.layout) if self.layout is not None else range(len(self.dims))
        return f"{self.dtype}[{','.join(str(self.dims[d]) for d in order)}]"

    def text(self) -> str:
        default = tuple(range(len(self.dims) - 1, -1, -1))
        layout = "" if self.layout in (None, default) else "{" + ",".join(map(str, self.layout)) + "}"
        return f"{self.dtype}[{','.join(map(str, self.dims))}]{layout}"


class Instruction(NamedTuple):
    """One instruction line: %name = type op(operands), attributes."""
    name: str
    shapes: list                  # one Shape, or a tuple's
    op: str
    operands: list                # operand names
    attributes: str


def _shapes(text: str) -> list:
    return [Shape(dtype, tuple(int(d) for d in dims.split(",") if d),
                  None if layout is None else tuple(int(d) for d in layout.split(",") if d))
            for dtype, dims, layout in _TYPE.findall(text)]


def _instruction(line: str) -> Instruction | None:
    match = _INSTRUCTION.match(line)
    if match is None:
        return None
    name, type_text, op, rest = match.groups()
    operands, _, attributes = rest.partition(")")       # operands print as names: %a, %b
    return Instruction(name, _shapes(type_text), op, re.findall(r"%([\w.\-]+)", operands), attributes)


def _ints(attribute: str, i: Instruction) -> list:
    """The integers of `attribute={...}` of an instruction ([] when absent)."""
    found = re.search(r"\b" + attribute + r"=\{([\d,]*)\}", i.attributes)
    return [int(d) for d in found.group(1).split(",") if d] if found else []


def parse_hlo(text: str) -> tuple[dict, str]:
    """({computation name: [Instruction]}, the ENTRY computation's name) of an HLO module's text."""
    computations, entry, current = {}, "", None
    for line in text.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            current = computations.setdefault(header.group(2), [])
            entry = header.group(2) if header.group(1) else entry
        elif line.startswith("}"):
            current = None
        elif current is not None and (instruction := _instruction(line)) is not None:
            current.append(instruction)
    return computations, entry


def _called(computations: dict) -> set:
    """Computations run as part of another instruction (fusion bodies, reducers), not on their own."""
    return {name for body in computations.values() for i in body
            for name in re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", i.attributes)}


def _physical_order(shape: Shape, dims_map=None) -> list:
    """Major-to-minor order of the dims of size > 1, mapped through `dims_map` (a transpose's)."""
    order = [d for d in reversed(shape.layout) if shape.dims[d] > 1]
    return [dims_map[d] for d in order] if dims_map else order


def moves_data(i: Instruction, shapes: dict) -> bool:
    """Whether a transpose or copy reorders memory (False: a bitcast or a plain copy)."""
    source = shapes.get(i.operands[0]) if i.operands else None
    if source is None or source.layout is None or i.shapes[0].layout is None:
        return True
    perm = _ints("dimensions", i) if i.op == "transpose" else None
    return _physical_order(i.shapes[0], perm) != _physical_order(source)


def _dot_text(i: Instruction, shapes: dict) -> str:
    lhs, rhs = (shapes.get(name) for name in i.operands[:2])
    depth = math.prod(lhs.dims[d] for d in _ints("lhs_contracting_dims", i)) if lhs else 0
    flops = 2 * depth * math.prod(i.shapes[0].dims)
    operands = " x ".join(s.text() if s else "?" for s in (lhs, rhs))
    return f"{operands} -> {i.shapes[0].text()}, {flops / 1e6:.1f} MFLOP"


def classify(i: Instruction, computations: dict, shapes: dict) -> tuple[str, str]:
    """(kind, detail) of one top-level instruction; the detail groups like instructions."""
    body = computations.get((re.search(r"calls=%?([\w.\-]+)", i.attributes) or [None, ""])[1], [])
    inner = {b.name: b.shapes[0] for b in body if b.shapes}
    ops = [b for b in body if b.op not in _FREE] if i.op == "fusion" else [i]
    lookup = inner if i.op == "fusion" else shapes
    dots = [b for b in ops if b.op in ("dot", "convolution")]
    if dots:
        return "dot", "; ".join(_dot_text(d, lookup) for d in dots)
    moves = [b for b in ops if b.op in ("transpose", "copy") and moves_data(b, lookup)]
    names, only_moves = "+".join(sorted({b.op for b in ops})), all(b.op in ("transpose", "copy") for b in ops)
    if moves:
        source = lookup.get(moves[0].operands[0])
        order = f"{source.in_memory() if source else '?'} -> {moves[0].shapes[0].in_memory()} in memory order"
        return (MOVES_ONLY if only_moves else FUSED_MOVE), f"{names}: {order}"
    if ops and only_moves:
        return PLAIN_COPY, f"{names} -> {i.shapes[0].text()}"
    if i.op == "fusion":
        kind = "reduce fusion" if any(b.op == "reduce" for b in ops) else "elementwise fusion"
        return kind, f"{kind} -> {', '.join(s.text() for s in i.shapes)}"
    return f"other: {i.op}", f"{i.op} -> {', '.join(s.text() for s in i.shapes)}"


class Summary(NamedTuple):
    """The top-level instructions of an HLO module: count and bytes written by kind, count by
    (kind, detail, bytes), and how many of them are fusions."""
    counts: Counter
    written: Counter
    details: Counter
    fusions: int


def summarize(text: str) -> Summary:
    computations, entry = parse_hlo(text)
    called, counts, written, details, fusions = _called(computations), Counter(), Counter(), Counter(), 0
    for name, body in computations.items():
        if name in called and name != entry:
            continue
        shapes = {i.name: i.shapes[0] for i in body if i.shapes}
        for i in (i for i in body if i.op not in _FREE):
            kind, detail = classify(i, computations, shapes)
            size = sum(s.bytes() for s in i.shapes)
            counts[kind] += 1
            written[kind] += size
            details[(kind, detail, size)] += 1
            fusions += i.op == "fusion"
    return Summary(counts, written, details, fusions)


def print_kinds(summaries: dict) -> None:
    """A markdown table: per kind, the count and MiB written of each {label: Summary}, side by side."""
    print("| top-level op kind | " + " | ".join(f"{label} n | {label} MiB written" for label in summaries) + " |")
    print("| --- |" + " ---: | ---: |" * len(summaries))
    for kind in sorted(set().union(*(s.counts for s in summaries.values()))):
        print(f"| {kind} | " + " | ".join(f"{s.counts[kind]} | {s.written[kind] / 2**20:.2f}"
                                         for s in summaries.values()) + " |")
    print("| all | " + " | ".join(f"{s.counts.total()} | {s.written.total() / 2**20:.2f}"
                                 for s in summaries.values()) + " |")
    print("| of which fusions | " + " | ".join(f"{s.fusions} | " for s in summaries.values()) + " |")


def print_details(title: str, details: Counter, kinds: tuple) -> None:
    print(f"\n{title}:\n")
    for (kind, detail, size), n in sorted(details.items(), key=lambda item: (item[0][0], -item[0][2])):
        if kind in kinds:
            print(f"- {n} x `{detail}`, {size / 2**20:.2f} MiB each")
