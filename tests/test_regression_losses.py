"""examples/regression_losses.py: gradient descent through each loss's `.grad` reaches the
minimiser an independent solver finds, and the robust losses resist the corrupted targets."""
import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy.optimize")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))                 # the example imports _common
_spec = importlib.util.spec_from_file_location("regression_losses", EXAMPLES / "regression_losses.py")
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)


@pytest.fixture(scope="module")
def data():
    (x_tr, y_bad, y_clean, x_te, y_te, centre_scale), corrupted = rl.corrupted_diabetes(0.1, 5.0, seed=0)
    assert corrupted == 31 and len(x_tr) == 309 and len(x_te) == 133
    assert (y_bad >= y_clean).all() and (y_bad > y_clean).sum() == corrupted
    return x_tr, y_bad, x_te, y_te, centre_scale


@pytest.mark.parametrize("name", list(rl.LOSSES))
def test_descent_through_grad_reaches_the_reference_minimiser(name, data):
    x_tr, y, x_te, y_te, centre_scale = data
    loss = rl.LOSSES[name]
    w, b, curve = rl.descend(loss, x_tr, y, steps=3000, lr=0.1)
    w_ref, b_ref = rl.reference(name, x_tr, y, delta=1.0)
    ref_value = float(loss(x_tr @ w_ref + b_ref, y))
    assert curve[0] > curve[-1] >= ref_value - 1e-5           # the reference is the minimum
    assert curve[-1] - ref_value < 2e-3 * ref_value
    ours, ref = rl.errors(w, b, x_te, y_te, centre_scale), rl.errors(w_ref, b_ref, x_te, y_te, centre_scale)
    assert abs(ours[0] - ref[0]) < 1.0 and abs(ours[1] - ref[1]) < 1.0   # test MAE / RMSE, in points


def test_robust_losses_resist_the_outliers(data):
    x_tr, y, x_te, y_te, centre_scale = data
    mae = {name: rl.errors(*rl.descend(rl.LOSSES[name], x_tr, y, 3000, 0.1)[:2], x_te, y_te, centre_scale)[0]
           for name in rl.LOSSES}
    for robust in ("mae", "huber", "log_cosh"):
        assert mae[robust] < 0.8 * mae["mse"], mae
