"""Every CASES row in fnn (layers, activations, losses) passes the gradient check:
hand-derived vs jax.vjp below 1e-9 relative in float64, central differences ~1e-6.
The check runs in float64 even with x64 off; a filter that matches nothing is an error."""
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import fnn.core
import fnn.models
from fnn import Layer, gradcheck
from fnn.layers import Dense

ROOT = Path(__file__).resolve().parents[1]

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


def test_check_layer_asks_eager_autodiff_where_jitted_autodiff_strays():
    """The default CNN in training mode on 8x8 images, batch 3, float64: `jax.vjp` of the jitted
    forward differs from the same forward's eager `jax.vjp` by ~50% (jax 0.10.2 on the CPU, only
    with BatchNorm at full width), while the hand backward equals the eager autodiff to ~1e-16
    and central differences. The check passes against the eager oracle and says so."""
    report = gradcheck.check_layer(fnn.models.cnn(top=0), (8, 8, 1), key=jax.random.PRNGKey(0),
                                   train=True, batch=3)
    assert report.passed, report
    assert report.autodiff_error < 1e-12 and report.fd_error < gradcheck.FINITE_DIFFERENCE_TOLERANCE
    assert not report.message or report.message.startswith("jax.vjp of the jitted forward differs")


def test_format_table_lists_every_report():
    reports = [gradcheck.Report("a", 1e-12, 1e-9, True), gradcheck.Report("b", 1.0, 1.0, False)]
    table = gradcheck.format_table(reports)
    assert "a" in table and "PASS" in table and "FAIL" in table


def test_the_row_types_live_in_gradcheck_not_core():
    assert not hasattr(fnn.core, "Case") and not hasattr(fnn.core, "FunctionCase")
    kinds = {type(c) for c in CASES}
    assert kinds == {gradcheck.Case, gradcheck.FunctionCase}


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter (x64 off, as a user's) in the repository root."""
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_check_layer_runs_in_float64_with_x64_off():
    code = ("import jax, fnn.layers as L, fnn.gradcheck as g\n"
            "r = g.check_layer(L.Dense(4), (3,), key=jax.random.PRNGKey(0))\n"
            "print(jax.config.jax_enable_x64, jax.numpy.ones(1).dtype, r.passed, r.fd_error < 1e-6)")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "float32", "True", "True"]   # passed; x64 left as it was


def test_check_function_casts_float32_inputs_to_float64():
    x = jax.numpy.linspace(-2.0, 2.0, 6, dtype=jax.numpy.float32)
    report = gradcheck.check_function(jax.numpy.sin, lambda p, ct: (ct * jax.numpy.cos(p[0]),), (x,),
                                      key=jax.random.PRNGKey(0))
    assert report.passed and report.fd_error < 1e-6, report


def test_select_cases_filters_and_refuses_a_filter_that_matches_nothing():
    assert [c.name for c in gradcheck.select_cases("dense-3")] == ["Dense-3d"]      # any case
    assert len(gradcheck.select_cases()) == len(CASES)
    with pytest.raises(ValueError, match=r"no gradcheck case name contains 'Dens3d'; close names: .*Dense-3d"):
        gradcheck.select_cases("Dens3d")
    with pytest.raises(ValueError, match=r"no gradcheck case name contains 'typo'; names look like \w"):
        gradcheck.select_cases("typo")


def test_cli_only_typo_exits_2_with_one_line():
    result = _python("", "-m", "fnn", "gradcheck", "--only", "typo")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "no gradcheck case name contains 'typo'" in result.stderr
