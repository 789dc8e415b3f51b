"""Shared test set-up: float64 available, strict dtype promotion, fixed keys."""
import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
