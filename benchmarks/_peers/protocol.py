"""How a table's rows are timed.

- `interleaved` (the default): build and warm up every peer, then time round by
  round, one epoch of each peer per round. A change in the machine's load during
  the run then falls on every row alike, so the ratios stay fair on a shared machine.
- `sequential`: each peer's warm-up and timed epochs in one go, then the next peer
  (less memory at once; the load may differ from row to row).

A peer that cannot be imported becomes a "skipped" row, one that fails a "failed" row;
the others go on."""
from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

from .common import STATS, Measurement, Row, Runner, measure, wait_until_idle


class Peer(NamedTuple):
    name: str
    build: Callable[[], Runner]     # data already bound


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _failed(name: str, err: Exception) -> Row:
    if isinstance(err, ImportError):
        log(f"  {name}: skipped ({err})")
        return Row(name, None, None, f"skipped: {err}")
    traceback.print_exception(err)
    return Row(name, None, None, f"failed: {type(err).__name__}: {err}")


def _row(name: str, m: Measurement, scale: float, stat: str, busy: float) -> Row:
    per_epoch = STATS[stat](m.seconds) * scale
    runs = ", ".join(f"{s:.3g}" for s in m.seconds)
    fixed = m.warmup - STATS[stat](m.seconds)       # unscaled: the first run has the timed runs' steps
    log(f"  {name}: {per_epoch:.3g} s/epoch (timed runs: {runs} s), fixed cost {fixed:.3g} s")
    return Row(name, per_epoch, m.loss, m.note, busy, fixed)


def sequential(peers: list[Peer], args, scale: float) -> list[Row]:
    rows = []
    for peer in peers:
        busy = wait_until_idle(args.wait_idle)
        log(f"  {peer.name} ...")
        try:
            m = measure(peer.build(), args.repeat)
        except Exception as err:        # one broken peer must not end the run
            rows.append(_failed(peer.name, err))
            continue
        rows.append(_row(peer.name, m, scale, args.stat, busy))
    return rows


def _warm_up(peers: list[Peer]) -> tuple[dict[str, Runner], dict[str, Row], dict[str, float]]:
    runners, failures, warmup = {}, {}, {}
    for peer in peers:
        t0 = time.perf_counter()
        try:
            runner = peer.build()
            runner.epoch()
        except Exception as err:
            failures[peer.name] = _failed(peer.name, err)
            continue
        runners[peer.name] = runner
        warmup[peer.name] = time.perf_counter() - t0
        log(f"  {peer.name}: built and warmed up in {warmup[peer.name]:.1f} s")
    return runners, failures, warmup


def interleaved(peers: list[Peer], args, scale: float) -> list[Row]:
    runners, failures, warmup = _warm_up(peers)
    seconds = {name: [] for name in runners}
    losses, busy = dict.fromkeys(runners, math.nan), []
    for round_ in range(args.repeat):
        busy.append(wait_until_idle(args.wait_idle))
        log(f"  round {round_ + 1}/{args.repeat} (others used {100 * busy[-1]:.0f}% CPU before it)")
        for name, runner in list(runners.items()):
            t0 = time.perf_counter()
            try:
                losses[name] = runner.epoch()
            except Exception as err:
                failures[name] = _failed(name, err)
                del runners[name]
                continue
            seconds[name].append(time.perf_counter() - t0)
    return [failures[p.name] if p.name in failures else
            _row(p.name, Measurement(seconds[p.name], losses[p.name], runners[p.name].describe(),
                                     warmup[p.name]),
                 scale, args.stat, sum(busy) / len(busy)) for p in peers]
