"""fnn.train.lr_find (the learning-rate range test) and `fnn lr-find` on a run directory."""
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L
from fnn.cli import main
from fnn.losses import softmax_cross_entropy
from fnn.train.lr_find import suggest

REAL = Path("/usr/share/datasets/fashion-mnist")
MODEL = fnn.serial(L.Dense(16), L.BatchNorm(), L.Relu(), L.Dense(3))


def _data(n=256, d=8, seed=0):
    kx, kw = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (n, d), jnp.float32)
    return x, jnp.argmax(x @ jax.random.normal(kw, (d, 3), jnp.float32), -1).astype(jnp.int32)


def _find(**kw):
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (8,))
    before = jax.tree.map(np.array, (params, state))
    kw.setdefault("batch_size", 32)
    result = fnn.train.lr_find(MODEL, params, state, fnn.optim.sgd, _data(), softmax_cross_entropy,
                               jax.random.PRNGKey(1), **kw)
    after = jax.tree.map(np.array, (params, state))               # still readable: nothing was donated
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))
    return result


def test_sweep_is_exponential_and_stops_when_the_loss_diverges():
    result = _find(min_lr=1e-4, max_lr=1e4, steps=60)
    n = len(result.rates)
    assert n < 60 and result.stopped.startswith(f"diverged at step {n}")
    np.testing.assert_allclose(result.rates, 1e-4 * 1e8 ** (np.arange(n) / 59), rtol=1e-5)
    assert result.losses.shape == result.smoothed.shape == (n,)
    assert result.rates[0] <= result.suggestion <= result.rates[-1]
    low = int(np.argmin(result.smoothed))
    assert result.minimum_over_10 == pytest.approx(result.rates[low] / 10)
    gentle = _find(min_lr=1e-4, max_lr=1e-2, steps=20)
    assert len(gentle.rates) == 20 and gentle.stopped == "reached max_lr after 20 steps"


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    rates = np.logspace(-5, 0, 50)
    curve = 2.0 - np.tanh(3 * (np.log10(rates) + 3))    # steepest at 1e-3, flat after
    curve[45:] += 5.0                                    # a blow-up at the end
    steepest, tenth = suggest(rates, curve)
    assert steepest == pytest.approx(1e-3, rel=0.3)
    assert tenth == pytest.approx(rates[int(np.argmin(curve))] / 10)


def test_bad_arguments_name_lr_find():
    with pytest.raises(ValueError, match="lr_find: expected 0 < min_lr < max_lr"):
        _find(min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="lr_find: steps must be an int >= 2"):
        _find(steps=1)
    with pytest.raises(ValueError, match="lr_find: batch_size 1000 exceeds the 256 examples"):
        _find(batch_size=1000)


@pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
def test_cli_lr_find_on_a_run_leaves_its_checkpoint_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--limit", "400", "--val-size", "100",
                 "--batch-size", "50", "--no-progress", "--loop", "scan", "--out", str(run)]) == 0
    checkpoint = (run / "checkpoint.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["lr-find", str(run), "--steps", "30", "--limit", "400"]) == 0
    out = capsys.readouterr().out
    assert f"lr-find from {run} (last checkpoint, epoch 1)" in out and "suggested learning rate: " in out
    assert (run / "checkpoint.safetensors").read_bytes() == checkpoint
    pytest.importorskip("matplotlib")
    assert (run / "lr_find.png").stat().st_size > 0
    assert main(["lr-find", "nosuchmodel"]) == 2
    assert "neither a run directory nor a model" in capsys.readouterr().err
