"""fnn.losses: hand gradients vs autodiff and finite differences, values vs optax,
reductions, extreme logits, the gradient registry and bad input."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import gradcheck
from fnn import losses as L

CASES = {c.name: c for c in L.CASES}
# CASES row -> (loss, options); its inputs come from the row's own make(key).
ROWS = {
    "mse": (L.mse, {}), "mae": (L.mae, {}), "huber": (L.huber, {"delta": 0.7}),
    "log_cosh": (L.log_cosh, {}), "quantile": (L.quantile, {"q": 0.3}), "hinge": (L.hinge, {}),
    "squared_hinge": (L.squared_hinge, {}), "binary_cross_entropy": (L.binary_cross_entropy, {}),
    "sigmoid_binary_cross_entropy": (L.sigmoid_binary_cross_entropy, {}),
    "softmax_cross_entropy-labels": (L.softmax_cross_entropy, {}),
    "softmax_cross_entropy-soft": (L.softmax_cross_entropy, {}),
    "softmax_cross_entropy-smoothed": (L.softmax_cross_entropy, {"label_smoothing": 0.1}),
    "kl_divergence": (L.kl_divergence, {}), "js_divergence": (L.js_divergence, {}),
    "focal": (L.focal, {}), "focal-gamma0.5-no-alpha": (L.focal, {"gamma": 0.5, "alpha": None}),
    "dice": (L.dice, {}), "contrastive": (L.contrastive, {}), "triplet": (L.triplet, {}),
}
KEY = jax.random.PRNGKey(5)


def test_every_loss_has_a_row_and_a_gradient():
    assert set(ROWS) == set(CASES)
    assert {loss for loss, _ in ROWS.values()} == set(L.GRADIENTS)
    for loss, grad in L.GRADIENTS.items():
        assert grad.__name__ == f"{loss.__name__}_grad" and L.gradient_of(loss) is grad


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_autodiff_and_finite_differences(name):
    report = gradcheck.check_case(CASES[name], KEY)
    assert report.autodiff_error < 1e-9, report
    assert report.fd_error < 1e-6, report
    assert report.passed


@pytest.mark.parametrize("name", list(CASES))
def test_reductions_and_the_gradient_of_none(name):
    """sum/mean agree with the "none" items; the "none" gradient is the VJP of the items."""
    loss, options = ROWS[name]
    grad = L.gradient_of(loss)
    primals = CASES[name].make(KEY)[2]
    items = loss(*primals, reduction="none", **options)
    np.testing.assert_allclose(loss(*primals, reduction="sum", **options), jnp.sum(items), rtol=1e-13)
    np.testing.assert_allclose(loss(*primals, **options), jnp.mean(items), rtol=1e-13)
    wrt = 3 if name == "triplet" else 1                # arrays the gradient covers
    cotangent = jnp.cos(jnp.arange(items.size, dtype=jnp.float64)).reshape(items.shape)
    _, vjp = jax.vjp(lambda *d: loss(*d, *primals[wrt:], reduction="none", **options), *primals[:wrt])
    hand, mean, total = (grad(*primals, reduction=r, **options) for r in ("none", "mean", "sum"))
    hand, mean, total = (g if wrt == 3 else (g,) for g in (hand, mean, total))
    for h, m, t, auto in zip(hand, mean, total, vjp(cotangent), strict=True):
        broadcast = cotangent.reshape(cotangent.shape + (1,) * (h.ndim - cotangent.ndim))
        np.testing.assert_allclose(broadcast * h, auto, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m * items.size, h, rtol=1e-13)
        np.testing.assert_array_equal(t, h)


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


# (name, ours, oracle): both take the CASES row's inputs; the oracle is optax
# (only in tests) or a hand formula, compared per item (reduction="none").
ORACLES = [
    ("mse", L.mse, optax.losses.squared_error),
    ("huber", functools.partial(L.huber, delta=0.7), functools.partial(optax.losses.huber_loss, delta=0.7)),
    ("log_cosh", L.log_cosh, optax.losses.log_cosh),
    ("hinge", L.hinge, optax.losses.hinge_loss),
    ("squared_hinge", L.squared_hinge, lambda p, t: optax.losses.hinge_loss(p, t) ** 2),
    ("mae", L.mae, lambda p, t: jnp.abs(p - t)),
    ("quantile", functools.partial(L.quantile, q=0.3),
     lambda p, t: jnp.where(t > p, 0.3 * (t - p), 0.7 * (p - t))),
    ("binary_cross_entropy", L.binary_cross_entropy,
     lambda p, t: optax.losses.sigmoid_binary_cross_entropy(_logit(p), t)),
    ("sigmoid_binary_cross_entropy", L.sigmoid_binary_cross_entropy,
     optax.losses.sigmoid_binary_cross_entropy),
    ("softmax_cross_entropy-labels", L.softmax_cross_entropy,
     optax.losses.softmax_cross_entropy_with_integer_labels),
    ("softmax_cross_entropy-soft", L.softmax_cross_entropy, optax.losses.softmax_cross_entropy),
    ("kl_divergence", L.kl_divergence, optax.losses.kl_divergence),
    ("js_divergence", L.js_divergence,
     lambda p, q: 0.5 * (optax.losses.kl_divergence(jnp.log((p + q) / 2), p)
                         + optax.losses.kl_divergence(jnp.log((p + q) / 2), q))),
    ("focal", L.focal, functools.partial(optax.losses.sigmoid_focal_loss, alpha=0.25, gamma=2.0)),
    ("focal-gamma0.5-no-alpha", functools.partial(L.focal, gamma=0.5, alpha=None),
     functools.partial(optax.losses.sigmoid_focal_loss, gamma=0.5)),
    ("triplet", L.triplet, functools.partial(optax.losses.triplet_margin_loss, eps=0.0)),
    ("contrastive", L.contrastive,
     lambda d, y: y * d**2 + (1 - y) * jnp.maximum(0.0, 1.0 - d) ** 2),
]


@pytest.fixture(scope="module")
def oracle_values():
    """(ours, oracle) per ORACLES row, computed in one compilation."""
    inputs = [CASES[name].make(KEY)[2] for name, _, _ in ORACLES]

    @jax.jit
    def values(inputs):
        with jax.numpy_dtype_promotion("standard"):
            return [(ours(*p, reduction="none"), oracle(*p))
                    for (_, ours, oracle), p in zip(ORACLES, inputs, strict=True)]

    return values(inputs)


@pytest.mark.parametrize("row", range(len(ORACLES)), ids=[o[0] for o in ORACLES])
def test_values_match_an_independent_oracle(row, oracle_values):
    ours, expected = oracle_values[row]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


def test_hand_computed_values():
    @jax.jit                                   # one compilation for all the small cases below
    def values():
        return (L.mse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])),
                L.softmax_cross_entropy(jnp.zeros((2, 4)), jnp.array([2, 0])),
                L.dice(jnp.array([[1.0, 0.5]]), jnp.array([[1.0, 0.0]])),
                L.contrastive(jnp.array([0.5, 0.5]), jnp.array([1, 0]), reduction="none"),
                L.js_divergence(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]])),
                L.huber(jnp.array([3.0]), jnp.array([0.0]), delta=2.0))

    mse, cross_entropy, dice, contrastive, js, huber = values()
    assert float(mse) == 2.5
    np.testing.assert_allclose(cross_entropy, np.log(4))
    np.testing.assert_allclose(dice, 1 - 3 / 3.5)               # I = 1, P = 1.5, T = 1
    np.testing.assert_allclose(contrastive, [0.25, 0.25])
    np.testing.assert_allclose(js, np.log(2))                    # disjoint supports: the maximum
    np.testing.assert_allclose(huber, 4.0)                       # 2 (3 - 2 / 2)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_logit_losses_stay_finite_at_plus_minus_1e4(dtype):
    names = ["sigmoid_binary_cross_entropy", "softmax_cross_entropy-labels", "softmax_cross_entropy-soft",
             "focal", "focal-gamma0.5-no-alpha"]
    logits = jnp.array([[1e4, -1e4, 0.0, 5.0, -1e4]] * 3, dtype)
    targets = [CASES[name].make(KEY)[2][1] for name in names]
    targets = [t if jnp.issubdtype(t.dtype, jnp.integer) else t.astype(dtype) for t in targets]

    @jax.jit                                   # one compilation for all the rows
    def values_and_grads(logits, targets):
        rows = [ROWS[name] for name in names]
        return [(loss(logits, t, **o), L.gradient_of(loss)(logits, t, **o))
                for (loss, o), t in zip(rows, targets, strict=True)]

    for name, (value, grad) in zip(names, values_and_grads(logits, targets), strict=True):
        assert value.dtype == dtype and grad.dtype == dtype, name
        assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad)), (name, value, grad)


def test_extreme_logits_give_the_right_values():
    @jax.jit
    def values():
        logits = jnp.array([1e4, -1e4, 1e4, -1e4])
        return (L.sigmoid_binary_cross_entropy(logits, jnp.array([1.0, 0.0, 0.0, 1.0]), reduction="none"),
                L.softmax_cross_entropy(jnp.array([[1e4, -1e4]]), jnp.array([1])),
                L.softmax_cross_entropy_grad(jnp.array([[1e4, -1e4]]), jnp.array([1])))

    binary, cross_entropy, grad = values()
    np.testing.assert_allclose(binary, [0.0, 0.0, 1e4, 1e4])
    np.testing.assert_allclose(cross_entropy, 2e4)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])


@pytest.mark.parametrize("loss", list(L.GRADIENTS), ids=lambda f: f.__name__)
def test_shape_mismatch_raises_value_error_naming_the_loss_and_shapes(loss):
    pred, target = jnp.zeros((3, 5)), jnp.zeros((3, 4))
    extra = {"quantile": {"q": 0.5}}.get(loss.__name__, {})
    arrays = (pred, pred, target) if loss is L.triplet else (pred, target)
    for function in (loss, L.gradient_of(loss)):
        with pytest.raises(ValueError, match=rf"^{function.__name__}: .*\(3, 5\).*\(3, 4\)"):
            function(*arrays, **extra)


def test_bad_labels_reduction_and_q_raise():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: integer labels .*\(3, 5\).*\(5,\)"):
        L.softmax_cross_entropy(jnp.zeros((3, 5)), jnp.zeros((5,), jnp.int32))
    with pytest.raises(ValueError, match="mse: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        L.mse(jnp.zeros(3), jnp.zeros(3), reduction="max")
    with pytest.raises(ValueError, match=r"quantile_grad: q must lie in \(0, 1\), got 1.5"):
        L.quantile_grad(jnp.zeros(3), jnp.zeros(3), q=1.5)
    with pytest.raises(TypeError, match="mae: expected a floating-point array"):
        L.mae(jnp.zeros(3, jnp.int32), jnp.zeros(3))


def test_out_of_range_labels_give_nan_as_documented():
    logits, labels = jnp.zeros((2, 3)), jnp.array([1, 3])
    values, grad = jax.jit(lambda x, y: (L.softmax_cross_entropy(x, y, reduction="none"),
                                         L.softmax_cross_entropy_grad(x, y)))(logits, labels)
    np.testing.assert_array_equal(np.isnan(values), [False, True])
    assert np.all(np.isnan(grad[1])) and not np.any(np.isnan(grad[0]))


def test_gradient_of_follows_partials_and_refuses_unknown_functions():
    pred, target = jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0])
    grad = L.gradient_of(functools.partial(L.quantile, q=0.9, reduction="sum"))
    np.testing.assert_allclose(grad(pred, target), [-0.9, 0.1])

    def my_loss(pred, target):
        return jnp.sum(pred - target)

    with pytest.raises(ValueError, match="my_loss has no hand-derived gradient"):
        L.gradient_of(my_loss)


def test_triplet_zero_distance_uses_a_zero_subgradient():
    anchor = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    # ||a - p|| = 0, ||a - n|| = 0.5: active; u_n = (a - n) / 0.5 = -(0.6, 0.8); mean over 2 triplets
    d_anchor, d_positive, d_negative = jax.jit(L.triplet_grad)(anchor, anchor, anchor + jnp.array([0.3, 0.4]))
    np.testing.assert_array_equal(d_positive, jnp.zeros_like(anchor))
    np.testing.assert_allclose(d_negative, [[-0.3, -0.4], [-0.3, -0.4]])
    np.testing.assert_allclose(d_anchor, -d_negative)
    assert float(jax.jit(L.triplet)(anchor, anchor, anchor + 3.0)) == 0.0


def test_binary_cross_entropy_is_clipped_at_zero_and_one():
    pred, target = jnp.array([0.0, 1.0, 0.5]), jnp.array([1.0, 0.0, 1.0])
    values, grad = jax.jit(lambda p, t: (L.binary_cross_entropy(p, t, reduction="none"),
                                         L.binary_cross_entropy_grad(p, t, reduction="none")))(pred, target)
    np.testing.assert_allclose(values, [-np.log(1e-7), -np.log(1e-7), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [0, 0, -2])


def test_losses_run_under_jit():
    pred, target = CASES["focal"].make(KEY)[2]
    np.testing.assert_allclose(jax.jit(L.focal_grad)(pred, target), L.focal_grad(pred, target), rtol=1e-14)
