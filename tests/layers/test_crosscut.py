"""Every registered layer through the same checks: float32/float64 (output and gradient dtypes
follow the input) under strict dtype promotion, init's out_shape equal to what forward returns,
all under jit (forward and backward in one program), and, in float64, vmap over a stack of two
batches equal to the plain call on the first (checking it again in float32 found nothing float64
does not)."""
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


def _forward_backward(layer, case, key):
    """One jitted program: forward, then backward of a cotangent of ones (op by op, a large layer
    compiled hundreds of small programs)."""
    def run(params, state, x):
        y, new_state, cache = layer.forward(params, state, x, key=key, train=case.train)
        return y, new_state, layer.backward(params, cache, jnp.ones_like(y))
    return jax.jit(run)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("case", LAYER_CASES, ids=[c.name for c in LAYER_CASES])
def test_layer_jit_vmap_dtype(case, dtype):
    layer = case.make()
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), case.in_shape)
    params, state = cast(params, dtype), cast(state, dtype)
    x = _inputs(jax.random.PRNGKey(1), case.in_shape, (case.batch,), dtype)
    fkey = jax.random.PRNGKey(2)
    y, new_state, (dparams, dx) = _forward_backward(layer, case, fkey)(params, state, x)
    assert y.dtype == dtype
    assert y.shape == (case.batch, *out_shape)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert all(g.dtype == dtype for g in jax.tree.leaves((dparams, dx)))
    if dtype == jnp.float64:      # vmap once, in float64 where it must agree to rounding
        apply = lambda p, s, xx: layer.apply(p, s, xx, key=fkey, train=case.train)
        other = _inputs(jax.random.PRNGKey(3), case.in_shape, (case.batch,), dtype)
        xs = jax.tree.map(lambda a, b: jnp.stack([a, b]), x, other)
        ys, _ = jax.jit(jax.vmap(apply, in_axes=(None, None, 0)))(params, state, xs)
        np.testing.assert_allclose(ys[0], y, rtol=1e-12, atol=1e-12)
