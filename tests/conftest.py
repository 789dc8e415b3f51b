"""Shared test set-up: the CPU, float64 available, strict dtype promotion, fixed keys."""
import os

# The tests run on the CPU whatever accelerator the machine has (and whatever the
# environment says): tolerances and timings assume it, and subprocesses inherit it.
# This must happen before JAX is imported.
os.environ["JAX_PLATFORMS"] = "cpu"

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
