"""Shared test set-up: float64 available, strict dtype promotion, fixed keys."""
import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
# With jax 0.10's default partitionable threefry, a random draw of a 4-d shape takes
# seconds to compile; the classic threefry compiles ~6x faster (same determinism).
jax.config.update("jax_threefry_partitionable", False)
