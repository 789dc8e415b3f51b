"""Every benchmark in turn, into one dated page: benchmarks/results/<YYYY-MM-DD>.md (issue 25).

    python benchmarks/run_all.py [--only peers,recurrent] [--skip attention] [--extra] [--quick]
                                 [--wait-idle] [--args "peers=--only mlp"] [--timeout S] [--out PATH]

The page opens with the machine (CPU model, cores, float32 matmul rate measured now), the jax
and Python versions, the git commit, the load average at the start and at the end, and a
summary; then one section per script: its command line and what it printed on stdout,
verbatim (markdown tables as they are, plain-text ones in a code block). A script that fails,
or stops on a package this environment lacks, is recorded as such with the last lines of its
stderr, and the run goes on. The page is rewritten after each script, so an interrupted run
keeps what it measured. `--quick` gives each script its smallest sensible arguments: a smoke
test of the scripts and of this page, whose figures mean nothing.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _peers.common import load_average, machine, wait_for_load  # noqa: E402

STDERR_TAIL = 20        # lines of a failed script's stderr kept on the page
PEERS_IDLE_WAIT = "300"  # peers.py's --wait-idle: seconds it waits, at most, before each row


class Script(NamedTuple):
    """How run_all runs one benchmarks/<name>.py."""
    args: tuple = ()                 # the full run (the script's defaults)
    quick: tuple = ()                # --quick: the smallest sensible run
    wait_idle: tuple | None = None   # its own flag for waiting on an idle machine, if it has one
    extra: bool = False              # slow, or its peer is not in the bench extra: --extra or --only
    script: str = ""                 # the benchmarks/<script>.py it runs, when not its own name


ATTENTION_QUICK = ("--lengths", "64", "--batch", "2", "--heads", "2", "--dim", "16", "--repeat", "1")
SCRIPTS = {
    "peers": Script(quick=("--only", "cnn", "--steps", "2", "--repeat", "1"),
                    wait_idle=("--wait-idle", PEERS_IDLE_WAIT)),
    # twice: PyTorch in the process slows every JAX cell (benchmarks/README.md), so the hand-vs-autodiff
    # ratios come from a run without it, the ratios to PyTorch's SDPA from a run with it
    "attention": Script(args=("--no-torch",), quick=(*ATTENTION_QUICK, "--no-torch")),
    "attention_vs_torch": Script(quick=ATTENTION_QUICK, script="attention"),
    "recurrent": Script(quick=("--rows", "32x8", "--repeats", "1", "--no-growth"), wait_idle=("--wait-idle",)),
    "sequence_classifier": Script(args=("--torch-threads", "1,2"), quick=("--steps", "3", "--repeats", "1"),
                                  wait_idle=("--wait-idle",)),
    "conv_backward": Script(quick=("--rounds", "1", "--scan-steps", "1", "--only", "1")),
    "cnn_hlo": Script(quick=("--examples", "256")),                                   # compile-only
    "optim_updates": Script(quick=("--reps", "3", "--rules", "sgd,adam")),
    "lstm_threads": Script(quick=("--repeats", "2")),
    "reversible_memory": Script(quick=("--depths", "2", "4", "--batch", "8", "--width", "64")),
    "vit_block": Script(quick=("--repeats", "2", "--batch", "16"), wait_idle=("--wait-idle",)),
    "qkv_projection": Script(quick=("--batch", "4", "--calls", "2")),
    "vit_epoch": Script(quick=("--steps", "2", "--epochs", "2", "--rounds", "1"), wait_idle=("--wait-idle",)),
    "classic": Script(quick=("--rounds", "2", "--repeat", "1"), extra=True),          # scikit-learn
    "distributed": Script(quick=("--reps", "2", "--models", "mlp"), extra=True),
    "vae_reference": Script(quick=("--epochs", "1", "--limit", "1024"), extra=True),  # 2 x 10 epochs
    "cnn_variants": Script(quick=("base",), extra=True),
    "g2p_decode": Script(args=("--calls", "3"), quick=("--batch", "8", "--calls", "1", "--beam", "2"), extra=True),
}


class Outcome(NamedTuple):
    """One script's run: its command line, status ("ok", "failed (exit code 1)", "skipped: torch
    is not installed", "timed out after 600 s"), stdout, stderr, wall seconds, load before/after."""
    command: str
    status: str
    stdout: str
    stderr: str
    seconds: float
    load: tuple[str, str]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help=f"comma-separated scripts to run, of {','.join(SCRIPTS)}")
    p.add_argument("--skip", default="", help="comma-separated scripts to leave out")
    p.add_argument("--extra", action="store_true",
                   help="also the scripts left out by default: " + ",".join(n for n, s in SCRIPTS.items() if s.extra))
    p.add_argument("--quick", action="store_true", help="each script with its smallest arguments (a smoke test)")
    p.add_argument("--wait-idle", action="store_true",
                   help="pass --wait-idle to the scripts that take it; wait for a 1-min load < 1 before the others")
    p.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                   help='replace one script\'s arguments, e.g. --args "peers=--only mlp --repeat 2"; repeatable')
    p.add_argument("--timeout", type=float, default=0.0, help="seconds before a script is stopped (0: never)")
    p.add_argument("--out", type=Path, help="the page to write (default benchmarks/results/<date>.md)")
    args = p.parse_args(argv)
    args.only, args.skip = _names(args.only), _names(args.skip)
    args.args = dict(_script_args(p, text) for text in args.args)
    unknown = (args.only | args.skip | set(args.args)) - set(SCRIPTS)
    if unknown:
        p.error(f"unknown scripts {', '.join(sorted(unknown))}; known: {', '.join(SCRIPTS)}")
    return args


def _names(text: str) -> set[str]:
    return {name.strip().removesuffix(".py") for name in text.split(",") if name.strip()}


def _script_args(parser: argparse.ArgumentParser, text: str) -> tuple[str, tuple]:
    name, sep, rest = text.partition("=")
    if not sep:
        parser.error(f"--args expects NAME=ARGS (e.g. \"peers=--only mlp\"), got {text!r}")
    return name.strip().removesuffix(".py"), tuple(shlex.split(rest))


def selected(args: argparse.Namespace) -> list[str]:
    """The scripts to run, in SCRIPTS order."""
    return [name for name, script in SCRIPTS.items() if name not in args.skip
            and (name in args.only if args.only else args.extra or not script.extra)]


def arguments(name: str, args: argparse.Namespace) -> tuple:
    """The command-line arguments of one script: --args, else --quick's or the full run's,
    with its --wait-idle flag under --wait-idle."""
    script = SCRIPTS[name]
    chosen = args.args.get(name, script.quick if args.quick else script.args)
    return chosen + (script.wait_idle if args.wait_idle and script.wait_idle else ())


def _pump(stream, sink, kept: list) -> None:
    """Copy a child's stream to our own as it comes (a long run shows progress) and keep it."""
    for line in stream:
        sink.write(line)
        sink.flush()
        kept.append(line)


def status_of(code: int, stderr: str, timed_out: bool, timeout: float) -> str:
    if timed_out:
        return f"timed out after {timeout:.0f} s"
    if code == 0:
        return "ok"
    missing = re.findall(r"ModuleNotFoundError: No module named '([\w.]+)'", stderr)
    if missing:
        return f"skipped: {missing[-1].split('.')[0]} is not installed"
    return f"failed (exit code {code})"


def run_script(name: str, argv: tuple, timeout: float) -> Outcome:
    """benchmarks/<name>.py in a child process, stdout and stderr shown live and kept."""
    command = [sys.executable, str(HERE / f"{name}.py"), *argv]
    before, start, out, err, timed_out = load_average(), time.monotonic(), [], [], []
    child = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stop = threading.Timer(timeout, lambda: (timed_out.append(True), child.kill())) if timeout > 0 else None
    if stop:
        stop.start()
    errors = threading.Thread(target=_pump, args=(child.stderr, sys.stderr, err))
    errors.start()
    _pump(child.stdout, sys.stdout, out)
    code = child.wait()
    errors.join()
    if stop:
        stop.cancel()
    stderr = "".join(err)
    return Outcome(shlex.join(["python", f"benchmarks/{name}.py", *argv]),
                   status_of(code, stderr, bool(timed_out), timeout), "".join(out), stderr,
                   time.monotonic() - start, (before, load_average()))


def git_commit() -> str:
    """The checkout's commit, and whether files tracked by git differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    try:
        commit, dirty = git("log", "-1", "--format=%h (%cs)"), git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown (git not found)"
    return (commit or "unknown (not a git checkout)") + (" (with uncommitted changes)" if dirty else "")


def machine_facts(started: datetime.datetime) -> dict:
    """The header's facts, measured once at the start (the matmul rate takes a few seconds)."""
    import jax
    return {"date": started.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "cores": str(os.cpu_count()),
            "jax": jax.__version__, "python": f"{platform.python_version()} ({Path(sys.prefix).name})",
            "commit": git_commit(), "command": shlex.join(["python", "benchmarks/run_all.py", *sys.argv[1:]]),
            "load average (1/5/15 min) at the start": load_average()}


def code_block(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}"


def verbatim(text: str) -> str:
    """A script's output on the page: its markdown tables and headings as they are, every other
    run of lines in a code block (so line breaks and aligned columns stay as printed)."""
    runs: list[tuple[bool, list[str]]] = []
    for line in text.rstrip().splitlines():
        markdown = line.startswith(("|", "#")) if line.strip() else bool(runs) and runs[-1][0]
        if not runs or runs[-1][0] != markdown:
            runs.append((markdown, []))
        runs[-1][1].append(line)
    return "\n\n".join("\n".join(lines).strip() if markdown else code_block("\n".join(lines).strip("\n"))
                       for markdown, lines in runs if "".join(lines).strip())


def render_section(name: str, outcome: Outcome) -> str:
    lines = [f"## {name}", "", f"`{outcome.command}`: {outcome.status}; {outcome.seconds:.0f} s, "
             f"load average {outcome.load[0]} -> {outcome.load[1]}", ""]
    if outcome.stdout.strip():
        lines += [verbatim(outcome.stdout), ""]
    if outcome.status != "ok":
        tail = "".join(outcome.stderr.splitlines(keepends=True)[-STDERR_TAIL:])
        lines += ["The last lines of its stderr:", "", code_block(tail.rstrip() or "(empty)"), ""]
    return "\n".join(lines)


def render_page(facts: dict, end_load: str, outcomes: dict) -> str:
    head = [f"# Benchmarks, {facts['date']}", ""] + [f"- {key}: {value}" for key, value in facts.items()
                                                      if key != "date"]
    head += [f"- load average (1/5/15 min) at the end: {end_load}", "", "| script | result | seconds |",
             "| --- | --- | ---: |"]
    head += [f"| [{name}](#{name}) | {o.status} | {o.seconds:.0f} |" for name, o in outcomes.items()]
    return "\n".join(head) + "\n\n" + "\n".join(render_section(n, o) for n, o in outcomes.items())


def dated_path(started: datetime.datetime) -> Path:
    """benchmarks/results/<date>.md, or <date>-2.md, ... when a run of the same day is there."""
    base, n = HERE / "results" / started.strftime("%Y-%m-%d"), 1
    while (path := Path(f"{base}{'' if n == 1 else f'-{n}'}.md")).exists():
        n += 1
    return path


def main(argv=None) -> None:
    args = parse_args(argv)
    names = selected(args)
    if not names:
        raise SystemExit("run_all: --only and --skip leave no script to run")
    if args.wait_idle:
        wait_for_load()
    started = datetime.datetime.now()
    facts, out, outcomes = machine_facts(started), args.out or dated_path(started), {}
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        if args.wait_idle and SCRIPTS[name].wait_idle is None:
            wait_for_load()
        argv_ = arguments(name, args)
        script = SCRIPTS[name].script or name
        print(f"\n=== {name}: {shlex.join([f'benchmarks/{script}.py', *argv_])}", file=sys.stderr, flush=True)
        outcomes[name] = run_script(script, argv_, args.timeout)
        out.write_text(render_page(facts, "(still running)", outcomes))
    out.write_text(render_page(facts, load_average(), outcomes))
    print(f"\nwrote {out}: " + ", ".join(f"{n} {o.status}" for n, o in outcomes.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
