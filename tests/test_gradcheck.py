"""Every CASES row in fnn (layers, activations, losses) passes the gradient check:
hand-derived vs jax.vjp below 1e-9 relative in float64, central differences ~1e-6."""
import jax
import pytest

from fnn import Layer, gradcheck
from fnn.layers import Dense

CASES = gradcheck.discover_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_passes_gradcheck(case):
    with jax.threefry_partitionable(False):      # its draws of 4-d shapes compile ~6x faster
        report = gradcheck.check_case(case, jax.random.PRNGKey(7))
    assert report.passed, report
    assert report.autodiff_error < gradcheck.AUTODIFF_TOLERANCE
    assert report.fd_error < gradcheck.FINITE_DIFFERENCE_TOLERANCE


def test_discovery_finds_every_family():
    names = {c.name for c in CASES}
    assert {"Dense", "Dropout-train", "serial", "residual"} <= names


@pytest.mark.parametrize("scale_dW, scale_dx", [(1.0001, 1.0), (1.0, 0.9999)])
def test_a_wrong_backward_fails(scale_dW, scale_dx):
    dense = Dense(3)

    def backward(params, x, dy):
        return {"W": scale_dW * (x.T @ dy), "b": dy.sum(0)}, scale_dx * (dy @ params["W"].T)

    report = gradcheck.check_layer(Layer(dense.init, dense.forward, backward, "wrong"), (4,),
                                   key=jax.random.PRNGKey(0))
    assert not report.passed
    assert report.autodiff_error > 1e-6 and report.fd_error > 1e-6


def test_format_table_lists_every_report():
    reports = [gradcheck.Report("a", 1e-12, 1e-9, True), gradcheck.Report("b", 1.0, 1.0, False)]
    table = gradcheck.format_table(reports)
    assert "a" in table and "PASS" in table and "FAIL" in table
