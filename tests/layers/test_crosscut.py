"""Every registered layer through the same checks: float32/float64 (output and gradient dtypes
follow the input) under strict dtype promotion, init's out_shape equal to what forward returns,
and, in float64, jit and vmap equal to the eager call (checking those again in float32 doubled
the module's cost and found nothing float64 does not)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import cast, gradcheck
from fnn.core import is_multi_shape
from fnn.gradcheck import Case

# whole models (model-*) are compositions of the layers checked here; their jit/vmap/dtype paths are
# exercised by the training and gradcheck tests, so they are left out (they cost ~2 min of CPU)
LAYER_CASES = [c for c in gradcheck.discover_cases() if isinstance(c, Case) and not c.name.startswith("model-")]


def _inputs(key, in_shape, lead, dtype):
    if is_multi_shape(in_shape):
        return tuple(jax.random.normal(jax.random.fold_in(key, i), (*lead, *s), dtype)
                     for i, s in enumerate(in_shape))
    return jax.random.normal(key, (*lead, *in_shape), dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("case", LAYER_CASES, ids=[c.name for c in LAYER_CASES])
def test_layer_jit_vmap_dtype(case, dtype):
    layer = case.make()
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), case.in_shape)
    params, state = cast(params, dtype), cast(state, dtype)
    x = _inputs(jax.random.PRNGKey(1), case.in_shape, (case.batch,), dtype)
    fkey = jax.random.PRNGKey(2)
    apply = lambda p, s, xx: layer.apply(p, s, xx, key=fkey, train=case.train)
    y, new_state = apply(params, state, x)
    assert y.dtype == dtype
    assert y.shape == (case.batch, *out_shape)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    if dtype == jnp.float64:      # jit and vmap once, in float64 where they must agree to rounding
        y_jit, _ = jax.jit(apply)(params, state, x)
        np.testing.assert_allclose(y_jit, y, rtol=1e-12, atol=1e-12)
        xs = _inputs(jax.random.PRNGKey(3), case.in_shape, (2, case.batch), dtype)
        ys, _ = jax.vmap(apply, in_axes=(None, None, 0))(params, state, xs)
        first = jax.tree.map(lambda a: a[0], xs)
        np.testing.assert_allclose(ys[0], apply(params, state, first)[0], rtol=1e-12, atol=1e-12)
    dparams, dx = layer.backward(params, layer.forward(params, state, x, key=fkey, train=case.train)[2],
                                 jnp.ones_like(y))
    assert all(g.dtype == dtype for g in jax.tree.leaves((dparams, dx)))
