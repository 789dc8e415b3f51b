"""Shared test set-up: the CPU, float64 available, strict dtype promotion, fixed keys."""
import os
import tempfile

# The tests run on the CPU whatever accelerator the machine has (and whatever the
# environment says): tolerances and timings assume it, and subprocesses inherit it.
# This must happen before JAX is imported.
os.environ["JAX_PLATFORMS"] = "cpu"
# One JAX compilation cache for the whole run, shared by the xdist workers and by every subprocess
# (the CLI and examples/ run as `python ...`): a program one of them compiled is read back by the
# others instead of compiled again (a small `fnn train` subprocess: 18 s of CPU cold, 7 s warm).
# Entries are keyed by the JAX version, the flags and the program, so a stale one is never used;
# FNN_TEST_JAX_CACHE="" turns it off.
_CACHE = os.environ.get("FNN_TEST_JAX_CACHE", os.path.join(tempfile.gettempdir(), f"fnn-tests-jax-cache-{os.getuid()}"))
if _CACHE:
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
# With jax 0.10's default partitionable threefry, a random draw of a 4-d shape takes
# seconds to compile; the classic threefry compiles ~6x faster (same determinism).
jax.config.update("jax_threefry_partitionable", False)

# FNN_TEST_CPU_LOG=FILE: append "cpu_seconds<TAB>nodeid<TAB>phase" for every test phase (setup, call,
# teardown), counting this process and its finished subprocesses: where the suite's time goes,
# independent of the machine's load (wall-clock durations are not, on a shared machine).
_CPU_LOG = os.environ.get("FNN_TEST_CPU_LOG")


def _cpu_seconds() -> float:
    import resource
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if _CPU_LOG:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(item):
        yield from _log_cpu(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(item):
        yield from _log_cpu(item, "call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(item):
        yield from _log_cpu(item, "teardown")

    def _log_cpu(item, phase):
        start = _cpu_seconds()
        yield
        with open(_CPU_LOG, "a") as log:
            log.write(f"{_cpu_seconds() - start:.2f}\t{item.nodeid}\t{phase}\n")
