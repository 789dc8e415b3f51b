"""fnn.distributed: N devices give the parameters of one; real multi-process runs over jax.distributed.

The device tests run scripts in subprocesses (tests/distributed_scripts/) with
XLA_FLAGS=--xla_force_host_platform_device_count=N, so this process keeps its one device.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fnn import distributed

# one xdist worker runs this whole file (make test: --dist loadfile), so its module-scoped fixtures are built once

SCRIPTS = Path(__file__).parent / "distributed_scripts"
ROOT = Path(__file__).parent.parent
TOL = 1e-5


def _env(devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT))
    return env


TIMEOUT = 900      # seconds: only a hang should hit it (the machine may be shared and slow)


def _start(args, devices):
    return subprocess.Popen([sys.executable, *map(str, args)], env=_env(devices), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(procs) -> list[dict]:
    """Wait for every process; JSON lines of their outputs. A failure shows its stderr."""
    lines = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT)
            assert p.returncode == 0, stderr[-3000:]
            lines += [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return lines


@pytest.fixture(scope="module")
def rows():
    """Two 8-device processes (one per core) run every device-count / mode combination,
    each paying JAX's start-up once."""
    script = SCRIPTS / "equivalence.py"
    return _finish([_start([script, "mlp", "error"], 8), _start([script, "cnn", "hlo"], 8)])


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_n_devices_give_the_parameters_of_one(rows, model):
    # `rel` covers params AND state: BatchNorm's running mean/var (and everything after it)
    # match one device only if its batch statistics are over the global batch (synchronised).
    got = [r for r in rows if r.get("model") == model]
    combos = {(r["grads"], r["loop"], r["devices"], r["shard"]) for r in got}
    assert len(combos) == 2 * 7              # grads x (scan: 1, 2, 8, 8 sharded; step: 2, 8, 8 sharded)
    bad = [r for r in got if not r["rel"] < TOL]
    assert not bad, bad
    for r in got:                            # the sharded option really splits params across devices
        assert (r["split_leaves"] > 0) == (r["shard"] and r["devices"] > 1), r


def test_hlo_replicated_all_reduces_the_gradient_sharded_gathers(rows):
    replicated, sharded = (next(r for r in rows if r.get("kind") == "hlo" and r["shard"] == s)
                           for s in (False, True))
    count, size = replicated["table"]["all-reduce"]
    assert count >= 1 and size >= replicated["grad_bytes"]          # the gradient, summed over devices
    assert replicated["table"]["all-gather"][0] == 0
    assert sharded["table"]["all-gather"][0] >= 1                  # params gathered where used
    assert sharded["memory"] < replicated["memory"] / 2            # params + Adam moments split


def test_batch_size_must_divide_over_the_devices(rows):
    message = next(r for r in rows if r.get("kind") == "error")["message"]
    assert message and "batch_size 12 does not divide over the 8 devices" in message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(tmp_path, n):
    """Start a run of n processes (n == 1: the one-process reference, one device)."""
    out = tmp_path / f"p{n}"
    out.mkdir()
    script = SCRIPTS / "multiprocess.py"
    if n == 1:
        return out, [_start([script, out], 1)]
    coordinator = f"127.0.0.1:{_free_port()}"
    args = ["--processes", n, "--coordinator", coordinator]
    return out, [_start([script, out, *args, "--process-id", i], 2) for i in range(n)]


def test_real_multi_process_runs_match_one_process(tmp_path):
    # 1 and 2 processes (4 devices): a 4-process run proved nothing more and cost ~40 s of CPU in the suite
    runs = {n: _processes(tmp_path, n) for n in (1, 2)}
    outs = {n: _finish(procs) for n, (_, procs) in runs.items()}
    reference = np.load(runs[1][0] / "result.npz")
    for n in (2,):
        lines, result = outs[n], np.load(runs[n][0] / "result.npz")
        assert sorted(r["process"] for r in lines) == list(range(n))
        assert all(r["devices"] == 2 * n and r["local_devices"] == 2 and r["epoch"] == 1 for r in lines)
        assert len({tuple(r["rows"]) for r in lines}) == n           # each loaded different rows
        for k in reference.files:                                    # full and resumed runs alike
            a, b = result[k].astype(np.float64), reference[k].astype(np.float64)
            assert np.linalg.norm(a - b) <= TOL * np.linalg.norm(b), (n, k)
        for i in range(len(reference.files) // 2):                   # resume == uninterrupted
            np.testing.assert_allclose(result[f"resumed{i}"], result[f"full{i}"], rtol=1e-6, atol=1e-7)


HLO = """
ENTRY %main {
  %p = f32[32,64]{1,0} parameter(0)
  %all-reduce.3 = (f32[32,64]{1,0}, f32[10]{0}, /*index=2*/f32[]) all-reduce(%p, %q, %r), channel_id=1
  %all-gather.1 = f32[64,32]{1,0} all-gather(%s), dimensions={0}
  %s.2 = f32[4,32]{1,0} parameter(1)
  %reduce-scatter = f32[4,32]{1,0} reduce-scatter(%full), dimensions={0}
  %full = bf16[32,32]{1,0} parameter(2)
  %cp-start = (f32[8]{0}, f32[8]{0}) collective-permute-start(%v), source_target_pairs={{0,1}}
}
"""


def test_collectives_reads_ops_and_bytes_from_hlo_text():
    # operands defined before use count by their type; the reduce-scatter's input appears later
    hlo = HLO.replace("  %full = bf16[32,32]{1,0} parameter(2)\n", "").replace(
        "ENTRY %main {\n", "ENTRY %main {\n  %full = bf16[32,32]{1,0} parameter(2)\n  %v = f32[8]{0} parameter(3)\n")
    found = distributed.collectives(hlo)
    assert [c.op for c in found] == ["all-reduce", "all-gather", "reduce-scatter", "collective-permute"]
    assert [c.bytes for c in found] == [(32 * 64 + 10 + 1) * 4, 64 * 32 * 4, 32 * 32 * 2, 8 * 4]
    table = distributed.collective_table(hlo)
    assert table["all-reduce"] == (1, (32 * 64 + 11) * 4) and table["all-to-all"] == (0, 0)


def test_one_device_mesh_and_errors():
    mesh = distributed.data_mesh()
    assert mesh.axis_names == ("data",) and distributed.as_plan(mesh).shard_params is False
    assert distributed.check_batch_size(6, mesh) == 6
    with pytest.raises(TypeError, match="expected a jax.sharding.Mesh or a distributed.Plan, got str"):
        distributed.as_plan("data")
    with pytest.raises(ValueError, match="expected an axis of the mesh"):
        distributed.plan(mesh, axis="model")
    assert distributed.initialize() is False          # no coordinator, no process count: one process
    with pytest.raises(ValueError, match="expected 0 <= process_id < 2, got 2"):
        distributed.initialize("127.0.0.1:1", 2, 2)


def test_largest_divisible_axis_is_sharded():
    from jax.sharding import PartitionSpec as P

    from fnn.distributed.mesh import _leaf_spec
    assert _leaf_spec((784, 256), 8, "data") == P("data")
    assert _leaf_spec((10, 256), 8, "data") == P(None, "data")
    assert _leaf_spec((3, 3, 32, 64), 8, "data") == P(None, None, None, "data")
    assert _leaf_spec((256, 10), 8, "data") == P("data")
    assert _leaf_spec((10,), 8, "data") == P()
    assert _leaf_spec((), 8, "data") == P()
    assert _leaf_spec((784, 256), 1, "data") == P()


def test_initialize_reads_jax_environment(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    assert distributed.initialize() is False          # one process: nothing to join
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match=r"expected an integer in \$JAX_NUM_PROCESSES, got 'two'"):
        distributed.initialize()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    with pytest.raises(ValueError, match="expected a coordinator, a process count and a process id"):
        distributed.initialize()                      # no coordinator, no id


def test_cli_takes_the_multi_process_flags():
    from fnn.cli import _parser
    args = _parser().parse_args(["train", "--processes", "2", "--process-id", "1", "--coordinator", "10.0.0.1:1234"])
    assert (args.processes, args.process_id, args.coordinator) == (2, 1, "10.0.0.1:1234")
    args = _parser().parse_args(["train"])
    assert (args.processes, args.process_id, args.coordinator) == (None, None, None)
