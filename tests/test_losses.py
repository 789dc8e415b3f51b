"""fnn.losses: Loss records (value, hand gradient, fixed options); hand gradients vs autodiff
and finite differences, with and without per-item weights; values vs optax; reductions,
extreme logits and bad input; a user-built loss trained by fit(grads="manual")."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import gradcheck
from fnn import losses as L
from fnn.losses import _cases, boxes, pair, probability, regression

CASES = {c.name: c for module in (regression, probability, pair, boxes) for c in module.CASES}
# CASES row -> the record it checks (options fixed); its inputs come from the row's make(key).
ROWS = {
    "mse": L.mse, "mae": L.mae, "huber": L.huber.partial(delta=0.7), "log_cosh": L.log_cosh,
    "quantile": L.quantile.partial(q=0.3), "hinge": L.hinge, "squared_hinge": L.squared_hinge,
    "binary_cross_entropy": L.binary_cross_entropy,
    "sigmoid_binary_cross_entropy": L.sigmoid_binary_cross_entropy,
    "softmax_cross_entropy-labels": L.softmax_cross_entropy,
    "softmax_cross_entropy-soft": L.softmax_cross_entropy,
    "softmax_cross_entropy-smoothed": L.softmax_cross_entropy.partial(label_smoothing=0.1),
    "kl_divergence": L.kl_divergence, "js_divergence": L.js_divergence, "focal": L.focal,
    "focal-gamma0.5-no-alpha": L.focal.partial(gamma=0.5, alpha=None), "dice": L.dice,
    "contrastive": L.contrastive, "triplet": L.triplet, "iou": L.iou, "giou": L.giou,
}
PUBLIC = [getattr(L, name) for name in L.__all__ if isinstance(getattr(L, name), L.Loss)]
CHECKED = [loss for loss in PUBLIC if loss.name in {row.name for row in ROWS.values()}]   # (pred, target) ones
KEY = jax.random.PRNGKey(5)


def _primals(name):
    return CASES[name].make(KEY)[2]


def _wrt(name):
    return 3 if name == "triplet" else 1             # the arrays the gradient covers


def test_every_loss_is_a_record_with_a_gradcheck_row():
    rows = {c.name for c in gradcheck.discover_cases()}
    for loss in PUBLIC:
        assert any(row == loss.name or row.startswith(f"{loss.name}-") for row in rows), loss.name
    assert set(ROWS) <= set(CASES)
    assert not hasattr(L, "GRADIENTS") and not hasattr(L, "gradient_of")
    assert not [n for n in dir(L) if n.endswith("_grad")]


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_matches_autodiff_and_finite_differences(name):
    report = gradcheck.check_case(CASES[name], KEY)
    assert report.autodiff_error < 1e-9, report
    assert report.fd_error < 1e-6, report
    assert report.passed


@pytest.mark.parametrize("name", list(ROWS))
def test_reductions_and_the_gradient_of_none(name):
    """sum/mean agree with the "none" items; the "none" gradient is the VJP of the items."""
    loss, primals, wrt = ROWS[name], _primals(name), _wrt(name)
    items = loss(*primals, reduction="none")
    np.testing.assert_allclose(loss(*primals, reduction="sum"), jnp.sum(items), rtol=1e-13)
    np.testing.assert_allclose(loss(*primals), jnp.mean(items), rtol=1e-13)
    cotangent = jnp.cos(jnp.arange(items.size, dtype=jnp.float64)).reshape(items.shape)
    _, vjp = jax.vjp(lambda *d: loss(*d, *primals[wrt:], reduction="none"), *primals[:wrt])
    hand, mean, total = (loss.grad(*primals, reduction=r) for r in ("none", "mean", "sum"))
    hand, mean, total = (g if wrt == 3 else (g,) for g in (hand, mean, total))
    for h, m, t, auto in zip(hand, mean, total, vjp(cotangent), strict=True):
        broadcast = cotangent.reshape(cotangent.shape + (1,) * (h.ndim - cotangent.ndim))
        np.testing.assert_allclose(broadcast * h, auto, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m * items.size, h, rtol=1e-13)
        np.testing.assert_array_equal(t, h)


@pytest.mark.parametrize("name", list(ROWS))
def test_weights_give_the_weighted_mean_and_its_gradient(name):
    """With weights (a third of them 0): value = sum(w l) / sum(w) from the unweighted
    items, and .grad equals jax.grad of that independent formula in float64 (< 1e-9)."""
    loss, primals, wrt = ROWS[name], _primals(name), _wrt(name)
    items = loss(*primals, reduction="none")
    weights = _cases.random_weights(jax.random.PRNGKey(9), items.shape)
    assert 0 < int(jnp.sum(weights == 0)) < items.size

    def formula(*arrays):
        return jnp.sum(weights * loss(*arrays, *primals[wrt:], reduction="none")) / jnp.sum(weights)

    np.testing.assert_allclose(loss(*primals, weights=weights), formula(*primals[:wrt]), rtol=1e-13)
    np.testing.assert_allclose(loss(*primals, weights=weights, reduction="sum"),
                               jnp.sum(weights * items), rtol=1e-13)
    np.testing.assert_allclose(loss(*primals, weights=weights, reduction="none"), weights * items, rtol=1e-13)
    hand = loss.grad(*primals, weights=weights)
    auto = jax.grad(formula, argnums=tuple(range(wrt)))(*primals[:wrt])
    assert gradcheck.relative_error(hand if wrt == 3 else (hand,), auto) < 1e-9


def test_padded_sequence_positions_count_for_nothing():
    """(B, T, K) logits, (B, T) labels and (B, T) 0/1 weights: the same value and gradient
    as the loss over the real positions alone, even with out-of-range padded labels."""
    logits, labels = _cases.sequence_logits_and_labels(KEY)
    mask = jnp.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    padded = jnp.where(mask == 1, labels, -1)         # -1 alone would give NaN
    loss = L.softmax_cross_entropy.partial(label_smoothing=0.1)
    real = mask.astype(bool)
    np.testing.assert_allclose(loss(logits, padded, weights=mask), loss(logits[real], labels[real]), rtol=1e-13)
    grad = loss.grad(logits, padded, weights=mask)
    np.testing.assert_allclose(grad[real], loss.grad(logits[real], labels[real]), rtol=1e-13)
    np.testing.assert_array_equal(grad[~real], 0.0)
    assert float(loss(logits, padded, weights=jnp.zeros((2, 4)))) == 0.0     # nothing to average
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: weights must broadcast to the per-item "
                                         r"loss shape \(2, 4\), got weights of shape \(2, 4, 5\)"):
        loss(logits, labels, weights=jnp.ones((2, 4, 5)))


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


# (name, ours, oracle): both take the CASES row's inputs; the oracle is optax
# (only in tests) or a hand formula, compared per item (reduction="none").
ORACLES = [
    ("mse", L.mse, optax.losses.squared_error),
    ("huber", L.huber.partial(delta=0.7), functools.partial(optax.losses.huber_loss, delta=0.7)),
    ("log_cosh", L.log_cosh, optax.losses.log_cosh),
    ("hinge", L.hinge, optax.losses.hinge_loss),
    ("squared_hinge", L.squared_hinge, lambda p, t: optax.losses.hinge_loss(p, t) ** 2),
    ("mae", L.mae, lambda p, t: jnp.abs(p - t)),
    ("quantile", L.quantile.partial(q=0.3), lambda p, t: jnp.where(t > p, 0.3 * (t - p), 0.7 * (p - t))),
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
    ("focal-gamma0.5-no-alpha", L.focal.partial(gamma=0.5, alpha=None),
     functools.partial(optax.losses.sigmoid_focal_loss, gamma=0.5)),
    ("triplet", L.triplet, functools.partial(optax.losses.triplet_margin_loss, eps=0.0)),
    ("contrastive", L.contrastive, lambda d, y: y * d**2 + (1 - y) * jnp.maximum(0.0, 1.0 - d) ** 2),
]


@pytest.fixture(scope="module")
def oracle_values():
    """(ours, oracle) per ORACLES row, computed in one compilation."""
    inputs = [_primals(name) for name, _, _ in ORACLES]

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
                L.huber(jnp.array([3.0]), jnp.array([0.0]), delta=2.0),
                L.mse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]), weights=jnp.array([3.0, 1.0])))

    mse, cross_entropy, dice, contrastive, js, huber, weighted = values()
    assert float(mse) == 2.5
    np.testing.assert_allclose(cross_entropy, np.log(4))
    np.testing.assert_allclose(dice, 1 - 3 / 3.5)               # I = 1, P = 1.5, T = 1
    np.testing.assert_allclose(contrastive, [0.25, 0.25])
    np.testing.assert_allclose(js, np.log(2))                    # disjoint supports: the maximum
    np.testing.assert_allclose(huber, 4.0)                       # 2 (3 - 2 / 2)
    np.testing.assert_allclose(weighted, (3 * 1 + 1 * 4) / 4)


def test_records_with_equal_options_are_equal_and_hash_alike():
    a, b = L.huber.partial(delta=2.0), L.huber.partial(delta=2.0)
    assert isinstance(a, L.Loss) and a == b and hash(a) == hash(b)
    assert a != L.huber and a != L.huber.partial(delta=3.0)
    assert L.focal.partial(gamma=1.0).partial(alpha=None) == L.focal.partial(alpha=None, gamma=1.0)
    assert repr(a) == "Loss(huber, delta=2.0)" and len({a, b, L.huber}) == 2
    pred, target = _primals("huber")
    np.testing.assert_array_equal(a(pred, target), L.huber(pred, target, delta=2.0))
    np.testing.assert_array_equal(a.grad(pred, target), L.huber.grad(pred, target, delta=2.0))
    with pytest.raises(TypeError, match="huber.partial: unknown option 'delt'"):
        L.huber.partial(delt=2.0)
    with pytest.raises(TypeError, match="mse.partial: option weights must be hashable"):
        L.mse.partial(weights=jnp.ones(3))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_logit_losses_stay_finite_at_plus_minus_1e4(dtype):
    names = ["sigmoid_binary_cross_entropy", "softmax_cross_entropy-labels", "softmax_cross_entropy-soft",
             "focal", "focal-gamma0.5-no-alpha"]
    logits = jnp.array([[1e4, -1e4, 0.0, 5.0, -1e4]] * 3, dtype)
    targets = [_primals(name)[1] for name in names]
    targets = [t if jnp.issubdtype(t.dtype, jnp.integer) else t.astype(dtype) for t in targets]

    @jax.jit                                   # one compilation for all the rows
    def values_and_grads(logits, targets):
        return [(ROWS[name](logits, t), ROWS[name].grad(logits, t)) for name, t in zip(names, targets)]

    for name, (value, grad) in zip(names, values_and_grads(logits, targets), strict=True):
        assert value.dtype == dtype and grad.dtype == dtype, name
        assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad)), (name, value, grad)


def test_extreme_logits_give_the_right_values():
    @jax.jit
    def values():
        logits = jnp.array([1e4, -1e4, 1e4, -1e4])
        return (L.sigmoid_binary_cross_entropy(logits, jnp.array([1.0, 0.0, 0.0, 1.0]), reduction="none"),
                L.softmax_cross_entropy(jnp.array([[1e4, -1e4]]), jnp.array([1])),
                L.softmax_cross_entropy.grad(jnp.array([[1e4, -1e4]]), jnp.array([1])))

    binary, cross_entropy, grad = values()
    np.testing.assert_allclose(binary, [0.0, 0.0, 1e4, 1e4])
    np.testing.assert_allclose(cross_entropy, 2e4)
    np.testing.assert_allclose(grad, [[1.0, -1.0]])


@pytest.mark.parametrize("loss", CHECKED, ids=lambda loss: loss.name)
def test_shape_mismatch_raises_value_error_naming_the_loss_and_shapes(loss):
    pred, target = jnp.zeros((3, 5)), jnp.zeros((3, 4))
    arrays = (pred, pred, target) if loss is L.triplet else (pred, target)
    for function, name in ((loss, loss.name), (loss.grad, f"{loss.name}.grad")):
        with pytest.raises(ValueError, match=rf"^{name}: .*\(3, 5\).*\(3, 4\)"):
            function(*arrays)


def test_bad_labels_reduction_and_q_raise():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: integer labels .*\(3, 5\).*\(5,\)"):
        L.softmax_cross_entropy(jnp.zeros((3, 5)), jnp.zeros((5,), jnp.int32))
    with pytest.raises(ValueError, match="mse: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        L.mse(jnp.zeros(3), jnp.zeros(3), reduction="max")
    with pytest.raises(ValueError, match=r"quantile.grad: q must lie in \(0, 1\), got 1.5"):
        L.quantile.grad(jnp.zeros(3), jnp.zeros(3), q=1.5)
    with pytest.raises(TypeError, match="mae: expected a floating-point array"):
        L.mae(jnp.zeros(3, jnp.int32), jnp.zeros(3))


def test_out_of_range_labels_give_nan_as_documented():
    logits, labels = jnp.zeros((2, 3)), jnp.array([1, 3])
    values, grad = jax.jit(lambda x, y: (L.softmax_cross_entropy(x, y, reduction="none"),
                                         L.softmax_cross_entropy.grad(x, y)))(logits, labels)
    np.testing.assert_array_equal(np.isnan(values), [False, True])
    assert np.all(np.isnan(grad[1])) and not np.any(np.isnan(grad[0]))


def test_triplet_zero_distance_uses_a_zero_subgradient():
    anchor = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    # ||a - p|| = 0, ||a - n|| = 0.5: active; u_n = (a - n) / 0.5 = -(0.6, 0.8); mean over 2 triplets
    d_anchor, d_positive, d_negative = jax.jit(L.triplet.grad)(anchor, anchor, anchor + jnp.array([0.3, 0.4]))
    np.testing.assert_array_equal(d_positive, jnp.zeros_like(anchor))
    np.testing.assert_allclose(d_negative, [[-0.3, -0.4], [-0.3, -0.4]])
    np.testing.assert_allclose(d_anchor, -d_negative)
    assert float(jax.jit(L.triplet)(anchor, anchor, anchor + 3.0)) == 0.0


def test_binary_cross_entropy_is_clipped_at_zero_and_one():
    pred, target = jnp.array([0.0, 1.0, 0.5]), jnp.array([1.0, 0.0, 1.0])
    values, grad = jax.jit(lambda p, t: (L.binary_cross_entropy(p, t, reduction="none"),
                                         L.binary_cross_entropy.grad(p, t, reduction="none")))(pred, target)
    np.testing.assert_allclose(values, [-np.log(1e-7), -np.log(1e-7), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [0, 0, -2])


def test_losses_run_under_jit():
    pred, target = _primals("focal")
    np.testing.assert_allclose(jax.jit(L.focal.grad)(pred, target), L.focal.grad(pred, target), rtol=1e-14)
    np.testing.assert_allclose(jax.jit(L.focal)(pred, target), L.focal(pred, target), rtol=1e-14)


def test_a_user_built_loss_from_two_lambdas_trains_with_manual_gradients():
    """Loss(value_fn, grad_fn, name) from lambdas: fit(grads="manual") runs its .grad and
    lands where autodiff of its value does; a bare function has no hand gradient to use."""
    half_squared = L.Loss(lambda p, t: 0.5 * jnp.sum((p - t) ** 2) / p.shape[0],
                          lambda p, t: (p - t) / p.shape[0], "half_squared")
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 3), jnp.float32)
    y = x @ jnp.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], jnp.float32) + 0.5
    model = fnn.layers.Dense(2)
    _, params, state = model.init(jax.random.PRNGKey(1), (3,))

    def run(grads, loss=half_squared):
        return fnn.train.fit(model, params, state, fnn.optim.sgd(0.2), (x, y), loss=loss, epochs=15,
                             batch_size=16, key=jax.random.PRNGKey(2), grads=grads, loop="step", progress=False)

    manual, autodiff = run("manual")[0], run("autodiff")[0]
    before, after = (half_squared(model.apply(p, state, x)[0], y) for p in (params, manual))
    assert after < 1e-3 * before
    for leaf_manual, leaf_auto in zip(jax.tree.leaves(manual), jax.tree.leaves(autodiff), strict=True):
        np.testing.assert_allclose(leaf_manual, leaf_auto, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="grads='manual' needs a fnn.losses.Loss"):
        run("manual", loss=lambda p, t: jnp.mean((p - t) ** 2))
