"""The collectives a compiled step contains, read from its HLO text, and the bytes they move."""
from __future__ import annotations

import re
from typing import Any, NamedTuple

OPS = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4,
          "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
_OP = "|".join(OPS)
_TYPE = r"\([^()]*\)|[\w\[\],{}:]+"
_DEF = re.compile(rf"%(?P<name>[\w.\-]+) = (?P<type>{_TYPE}) (?P<rest>.*)")
_LINE = re.compile(rf"(?P<op>{_OP})(?P<start>-start)?\((?P<args>[^)]*)\)")
_ARRAY = re.compile(r"\b([a-z]+\d*)\[([\d,]*)\]")


class Collective(NamedTuple):
    """One collective of a compiled program: its op, its HLO result type, and `bytes`, the
    size of the whole array it reduces or assembles (per device; the larger of operand and
    result, so an all-gather counts its gathered array, a reduce-scatter its full input)."""
    op: str
    result: str
    bytes: int


def _nbytes(text: str) -> int:
    total = 0
    for dtype, dims in _ARRAY.findall(text):
        count = 1
        for d in filter(None, dims.split(",")):
            count *= int(d)
        total += count * _BYTES.get(dtype, 4)
    return total


def collectives(compiled: Any) -> list[Collective]:
    """The collectives in `compiled` (a `jax.stages.Compiled`, or its `.as_text()`), in program
    order. Async pairs count once (at `-start`). A scanned epoch shows its body once: that is per step."""
    text = compiled if isinstance(compiled, str) else compiled.as_text()
    text = re.sub(r"/\*.*?\*/", "", text)
    types, found = {}, []
    for line in text.splitlines():
        d = _DEF.search(line)
        if d is None:
            continue
        types[d.group("name")] = d.group("type")
        m = _LINE.match(d.group("rest"))
        if m is None:
            continue
        operands = " ".join(types.get(a.strip().lstrip("%"), a) for a in m.group("args").split(","))
        result = d.group("type")
        size = _nbytes(operands) if m.group("start") else max(_nbytes(operands), _nbytes(result))
        found.append(Collective(m.group("op"), re.sub(r"\{[\d,]*\}", "", result), size))
    return found


def collective_table(compiled: Any) -> dict[str, tuple[int, int]]:
    """`{op: (count, bytes)}` summed over the collectives of `compiled`, every op of OPS listed."""
    table = {op: (0, 0) for op in OPS}
    for c in collectives(compiled):
        count, size = table[c.op]
        table[c.op] = (count + 1, size + c.bytes)
    return table
