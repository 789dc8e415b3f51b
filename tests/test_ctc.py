"""fnn.losses.ctc: values vs optax.ctc_loss and torch's ctc_loss, gradient vs jax.grad."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import gradcheck
from fnn.losses import ctc
from fnn.losses.ctc import CASES

optax = pytest.importorskip("optax")

B, T, K = 4, 8, 5
LABELS = np.array([[1, 1, 2, 2], [3, 2, 0, 0], [4, 4, 4, 4], [1, 2, 3, 4]])
LABEL_PADDINGS = np.array([[0.0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
LENGTHS = np.array([8, 5, 7, 4])          # row 2: 4 repeats need 7 frames (exactly); row 3: 4 of 4


def _inputs(dtype=np.float64, seed=0):
    logits = 2 * np.random.default_rng(seed).normal(size=(B, T, K)).astype(dtype)
    paddings = (np.arange(T)[None, :] >= LENGTHS[:, None]).astype(dtype)
    return logits, paddings, LABELS, LABEL_PADDINGS.astype(dtype)


def test_gradcheck_row():
    report = gradcheck.check_case(CASES[0], jax.random.PRNGKey(0))
    assert report.passed, report


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_values_equal_optax(dtype, tol):
    args = _inputs(dtype)
    with jax.numpy_dtype_promotion("standard"):
        expected = optax.ctc_loss(*args)
    np.testing.assert_allclose(ctc(*args, reduction="none"), expected, rtol=tol)
    np.testing.assert_allclose(ctc(*args), np.mean(expected), rtol=tol)


def test_gradient_equals_jax_grad_of_optax():
    args = _inputs()
    weights = jnp.array([1.0, 0.5, 2.0, 0.0])
    with jax.numpy_dtype_promotion("standard"):
        expected = jax.grad(lambda x: jnp.sum(weights * optax.ctc_loss(x, *args[1:])) / jnp.sum(weights))(args[0])
    got = ctc.grad(*args, weights=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.all(np.asarray(got)[1, 5:] == 0)            # padded frames get no gradient


def test_values_equal_torch():
    torch = pytest.importorskip("torch")
    logits, paddings, labels, label_paddings = _inputs()
    log_probs = torch.log_softmax(torch.from_numpy(logits), -1).transpose(0, 1)
    expected = torch.nn.functional.ctc_loss(
        log_probs, torch.from_numpy(labels), torch.from_numpy(LENGTHS),
        torch.from_numpy((label_paddings < 0.5).sum(1)), blank=0, reduction="none").numpy()
    np.testing.assert_allclose(ctc(logits, paddings, labels, label_paddings, reduction="none"), expected,
                               rtol=1e-10)


def test_label_that_cannot_fit_is_finite():
    """Five frames cannot hold 4 equal symbols (7 frames needed): a large finite loss, finite grad."""
    logits, paddings, labels, label_paddings = _inputs()
    paddings = paddings.copy()
    paddings[2, 5:] = 1.0
    values = ctc(logits, paddings, labels, label_paddings, reduction="none")
    grad = ctc.grad(logits, paddings, labels, label_paddings)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grad))
    assert values[2] > 1e4 and np.all(np.asarray(values)[[0, 1, 3]] < 100)


def test_jit_and_blank_id():
    args = _inputs()
    shifted = np.where(LABEL_PADDINGS > 0, 0, LABELS - 1)          # the same labels with blank = K-1
    logits = np.roll(args[0], -1, axis=-1)
    jitted = jax.jit(lambda *a: ctc(*a, blank_id=K - 1, reduction="none"))
    np.testing.assert_allclose(jitted(logits, args[1], shifted, args[3]), ctc(*args, reduction="none"),
                               rtol=1e-10)


def test_bad_input():
    logits, paddings, labels, label_paddings = _inputs()
    with pytest.raises(ValueError, match=r"ctc: expected logits \(B, T, K\) and logit_paddings"):
        ctc(logits[0], paddings, labels, label_paddings)
    with pytest.raises(ValueError, match=r"ctc: expected labels and label_paddings of one shape"):
        ctc(logits, paddings, labels[:, :2], label_paddings)
    with pytest.raises(TypeError, match=r"ctc: expected integer labels"):
        ctc(logits, paddings, labels.astype(float), label_paddings)
