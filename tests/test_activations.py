"""fnn.activations: each an Activation record; hand derivatives vs autodiff and finite
differences, values vs jax.nn, records that compare equal, options fixed by .partial."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations as A
from fnn import gradcheck


@pytest.mark.parametrize("case", A.CASES, ids=[c.name for c in A.CASES])
def test_backward_matches_autodiff_and_finite_differences(case):
    report = gradcheck.check_case(case, jax.random.PRNGKey(13))   # test_gradcheck uses key 7
    assert report.autodiff_error < 1e-9, report
    assert report.fd_error < 1e-6, report
    assert report.passed


# (ours, oracle, options): the oracle is jax.nn, an independent implementation.
ORACLES = [
    (A.sigmoid, jax.nn.sigmoid, {}),
    (A.tanh, jnp.tanh, {}),
    (A.relu, jax.nn.relu, {}),
    (A.leaky_relu, lambda x: jax.nn.leaky_relu(x, negative_slope=0.2), {"alpha": 0.2}),
    (A.elu, lambda x: jax.nn.elu(x, alpha=1.5), {"alpha": 1.5}),
    (A.selu, jax.nn.selu, {}),
    (A.gelu, lambda x: jax.nn.gelu(x, approximate=False), {}),
    (A.gelu, lambda x: jax.nn.gelu(x, approximate=True), {"approximate": True}),
    (A.swish, jax.nn.silu, {}),
    (A.mish, jax.nn.mish, {}),
    (A.softplus, jax.nn.softplus, {}),
    (A.softmax, jax.nn.softmax, {}),
    (A.softmax, lambda x: jax.nn.softmax(x, axis=0), {"axis": 0}),
    (A.log_softmax, jax.nn.log_softmax, {}),
]
ORACLE_IDS = [f"{f.name}{'-' + str(o) if o else ''}" for f, _, o in ORACLES]
# Wide range, both signs, including saturation; shape (3, 5) like the gradient-check
# rows, so the eager ops compiled there are reused here.
X = jnp.array([[-60.0, -8.0, -1.5, -0.3, 0.0], [0.2, 1.0, 3.0, 9.0, 60.0], [-4.0, -0.7, 0.4, 2.2, 25.0]])


@pytest.fixture(scope="module")
def oracle_values():
    """(ours, jax.nn's) for every ORACLES row, computed in one compilation."""
    with jax.numpy_dtype_promotion("standard"):
        return jax.jit(lambda x: [(ours(x, **options), oracle(x)) for ours, oracle, options in ORACLES])(X)


@pytest.mark.parametrize("row", range(len(ORACLES)), ids=ORACLE_IDS)
def test_values_match_jax_nn(row, oracle_values):
    ours, expected = oracle_values[row]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_inputs_stay_finite_and_keep_dtype(dtype):
    @jax.jit                                  # one compilation for all the rows
    def outputs(x):
        pairs = []
        for ours, _, options in ORACLES:
            pairs.append((ours(x, **options), ours.grad(x, jnp.ones_like(x), **options)))
        return pairs

    extreme = jnp.array([[-1e4, -100.0, 0.5, 100.0, 1e4]] * 3, dtype)
    for name, (y, dx) in zip(ORACLE_IDS, outputs(extreme), strict=True):
        assert y.dtype == dtype and dx.dtype == dtype, name
        assert jnp.all(jnp.isfinite(y)) and jnp.all(jnp.isfinite(dx)), name


def test_backward_reads_only_what_reads_says():
    @jax.jit
    def both(x, dy):
        pairs = {}
        for act in A.ACTIVATIONS:
            y = act(x)
            partial = act.backward(x, None, dy) if act.reads == "x" else act.backward(None, y, dy)
            pairs[act.name] = (partial, act.backward(x, y, dy), act.grad(x, dy))
        return pairs

    assert {a.name for a in A.ACTIVATIONS if a.reads == "y"} == {"sigmoid", "tanh", "softmax", "log_softmax"}
    for name, (partial, full, grad) in both(X + 0.1, jnp.cos(X)).items():
        np.testing.assert_array_equal(partial, full, err_msg=name)
        np.testing.assert_array_equal(grad, full, err_msg=name)


@pytest.mark.parametrize("act", A.ACTIVATIONS, ids=lambda a: a.name)
def test_grad_equals_jax_vjp_in_float64(act):
    """The record's own .grad (not only the CASES rows) against jax.vjp, below 1e-9 relative."""
    x = X + 0.1                                        # 0.1 keeps relu & co. off their kink
    dy = jnp.sin(3 * X)
    y, vjp = jax.vjp(act, x)
    (auto,) = vjp(dy)
    np.testing.assert_array_equal(act(x), y)
    assert gradcheck.relative_error(act.grad(x, dy), auto) < 1e-9


def test_records_with_equal_options_are_equal_and_hash_alike():
    a, b = A.leaky_relu.partial(alpha=0.2), A.leaky_relu.partial(alpha=0.2)
    assert a == b and hash(a) == hash(b) and a != A.leaky_relu and a != A.leaky_relu.partial(alpha=0.3)
    assert A.softmax.partial(axis=0).partial(axis=1) == A.softmax.partial(axis=1)
    assert repr(a) == "Activation(leaky_relu, alpha=0.2)"
    np.testing.assert_array_equal(a(X), A.leaky_relu(X, alpha=0.2))
    np.testing.assert_array_equal(a.grad(X, X), A.leaky_relu.grad(X, X, alpha=0.2))
    with pytest.raises(TypeError, match="leaky_relu.partial: unknown option 'slope'"):
        A.leaky_relu.partial(slope=0.2)
    with pytest.raises(TypeError, match="elu.partial: option alpha must be hashable"):
        A.elu.partial(alpha=jnp.ones(3))


def test_a_user_built_activation_passes_the_gradient_check():
    cube = A.Activation(lambda x: x**3, lambda x, y, dy: 3 * x**2 * dy, "cube")
    report = gradcheck.check_function(cube, lambda p, dy: (cube.grad(p[0], dy),), (X,),
                                      key=jax.random.PRNGKey(0), name="cube")
    assert report.passed, report
    wrong = dataclasses.replace(cube, backward_fn=lambda x, y, dy: 3.001 * x**2 * dy)
    assert not gradcheck.check_function(wrong, lambda p, dy: (wrong.grad(p[0], dy),), (X,),
                                        key=jax.random.PRNGKey(0)).passed


def test_hand_computed_values():
    @jax.jit                                 # one compilation for all the scalars below
    def values():
        return (A.sigmoid(jnp.array(0.0)), A.gelu(jnp.array(1.0)), A.selu(jnp.array(1.0)),
                A.softmax(jnp.array([0.0, np.log(2.0)])), A.log_softmax(jnp.array([1e4, 0.0])),
                A.softplus(jnp.array([0.0, -800.0, 800.0])), A.sigmoid(jnp.array(-700.0)))

    sigmoid0, gelu1, selu1, softmax2, log_softmax2, softplus3, sigmoid_tail = values()
    assert float(sigmoid0) == 0.5
    np.testing.assert_allclose(gelu1, 0.8413447460685429, rtol=1e-15)
    np.testing.assert_allclose(selu1, 1.0507009873554805, rtol=1e-15)
    np.testing.assert_allclose(softmax2, [1 / 3, 2 / 3], rtol=1e-15)
    np.testing.assert_allclose(log_softmax2, [0.0, -1e4])
    np.testing.assert_allclose(softplus3, [np.log(2.0), 0.0, 800.0])
    np.testing.assert_allclose(sigmoid_tail, np.exp(-700.0), rtol=1e-12)   # no 1 - (1 - e) loss
    assert A.silu is A.swish


def test_activations_run_under_jit_and_vmap():
    x = X + 0.1
    np.testing.assert_allclose(jax.jit(A.gelu.partial(approximate=True))(x), A.gelu(x, approximate=True),
                               rtol=1e-14)
    np.testing.assert_allclose(jax.vmap(A.softmax)(x), A.softmax(x), rtol=1e-14)
