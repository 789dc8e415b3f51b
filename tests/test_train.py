"""fnn.train: manual == autodiff training, no recompiles, NaN guard, early stopping,
exact resume, and a short real-data run that learns well above chance."""
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L
from fnn.losses import mse, softmax_cross_entropy

REAL = Path("/usr/share/datasets/fashion-mnist")


def _synthetic(n=512, d=12, classes=3, seed=0):
    kx, kw = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (n, d), jnp.float32)
    y = jnp.argmax(x @ jax.random.normal(kw, (d, classes), jnp.float32), -1).astype(jnp.int32)
    return x, y


MODEL = fnn.serial(L.Dense(32), L.Relu(), L.Dropout(0.1), L.Dense(3))
OPT = fnn.optim.adam(1e-2)


def _fit(grads="autodiff", loop="scan", epochs=2, data=None, **kw):
    data = _synthetic() if data is None else data
    _, params, state = MODEL.init(jax.random.PRNGKey(0), data[0].shape[1:])
    return fnn.train.fit(MODEL, params, state, OPT, data, loss=softmax_cross_entropy, epochs=epochs,
                         batch_size=64, key=jax.random.PRNGKey(1), grads=grads, loop=loop,
                         progress=False, **kw)


def _close(a, b, rtol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(y))))


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_manual_and_autodiff_epochs_agree(loop):
    p_auto, *_ = _fit("autodiff", loop, epochs=1)
    p_hand, *_ = _fit("manual", loop, epochs=1)
    _close(p_hand, p_auto, 1e-5)


def test_scan_and_step_loops_agree_and_learn():
    p_scan, _, _, h_scan = _fit(loop="scan")
    p_step, _, _, h_step = _fit(loop="step")
    _close(p_step, p_scan, 1e-5)
    assert h_scan["loop"] == "scan" and h_step["loop"] == "step"
    assert h_scan["train_loss"][1] < h_scan["train_loss"][0]
    assert h_scan["learning_rate"] == [pytest.approx(1e-2)] * 2


def test_second_fit_does_not_recompile():
    _fit(epochs=1)
    with jax.log_compiles(True):
        import logging
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("jax").addHandler(handler)
        try:
            _fit(epochs=1)
        finally:
            logging.getLogger("jax").removeHandler(handler)
    compiled = [r.getMessage() for r in records if "Compiling" in r.getMessage()]
    assert not compiled, compiled


def test_auto_loop_picks_a_measured_loop():
    *_, history = _fit(loop="auto", epochs=1)
    assert history["loop"] in ("scan", "step")


def test_nan_guard_keeps_last_finite_params_and_names_the_step():
    x, y = _synthetic()
    x = x.at[:].set(jnp.where(jnp.arange(x.shape[0])[:, None] == 5, jnp.nan, x))   # one poisoned example
    params, _, _, history = _fit(data=(x, y), epochs=3)
    assert "non-finite loss at epoch 1, step" in history["stopped"]
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params))
    assert len(history["train_loss"]) == 1


def test_early_stopping_restores_the_best_epoch():
    x, y = _synthetic()
    noise = (x, jax.random.permutation(jax.random.PRNGKey(5), y))         # labels unrelated to inputs
    _, _, _, history = _fit(data=noise, epochs=30, val=_synthetic(seed=3), early_stopping=2)
    assert "early stopping" in history["stopped"]
    assert len(history["val_loss"]) < 30


def test_resume_gives_exactly_the_uninterrupted_parameters(tmp_path):
    full, *_ = _fit(epochs=3)
    saved = {}

    def on_epoch(epoch, params, state, opt_state, history):
        if epoch == 0:
            fnn.checkpoint.save_training(tmp_path / "ckpt.safetensors", params, state, opt_state, epoch + 1)
            saved["history"] = dict(history)

    _fit(epochs=1, on_epoch=on_epoch)
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    like_opt = OPT.init(params)
    params, state, opt_state, step = fnn.checkpoint.load_training(tmp_path / "ckpt.safetensors", params,
                                                                  state, like_opt)
    resumed, *_ = fnn.train.fit(MODEL, params, state, OPT, _synthetic(), loss=softmax_cross_entropy,
                                epochs=3, batch_size=64, key=jax.random.PRNGKey(1), loop="scan",
                                progress=False, opt_state=opt_state, initial_epoch=int(step))
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(full)):
        np.testing.assert_array_equal(a, b)


def test_manual_grads_need_a_hand_derived_loss():
    def custom(pred, target):
        return jnp.mean(pred)
    with pytest.raises(TypeError, match="grads='manual' needs a fnn.losses.Loss"):
        fnn.train.fit(MODEL, *MODEL.init(jax.random.PRNGKey(0), (12,))[1:], OPT, _synthetic(), loss=custom,
                      epochs=1, batch_size=64, key=jax.random.PRNGKey(0), grads="manual", progress=False)


@pytest.mark.parametrize("kw, match", [
    ({"epochs": 0}, "fit: epochs must be a positive int"),
    ({"batch_size": 0}, "fit: batch_size must be a positive int"),
    ({"grads": "numeric"}, "fit: grads must be one of"),
    ({"loop": "while"}, "fit: loop must be one of"),
    ({"batch_size": 10000}, "fit: batch_size 10000 exceeds the 512 training examples"),
])
def test_bad_arguments(kw, match):
    args = {"epochs": 1, "batch_size": 64, **kw}
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    with pytest.raises(ValueError, match=match):
        fnn.train.fit(MODEL, params, state, OPT, _synthetic(), loss=softmax_cross_entropy,
                      key=jax.random.PRNGKey(0), progress=False, **args)


def test_evaluate_and_predict_cover_every_example():
    x, y = _synthetic(n=250)
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    pred = fnn.train.predict(MODEL, params, state, x, batch_size=100)
    assert pred.shape == (250, 3)
    result = fnn.train.evaluate(MODEL, params, state, (x, y), loss=softmax_cross_entropy, batch_size=100)
    assert result["accuracy"] == pytest.approx(float(np.mean(np.asarray(pred).argmax(-1) == np.asarray(y))))
    assert math.isclose(result["loss"], float(softmax_cross_entropy(pred, y)), rel_tol=1e-5)


def test_regression_loss_without_accuracy():
    x, _ = _synthetic()
    model = fnn.serial(L.Dense(8), L.Tanh(), L.Dense(1))
    _, params, state = model.init(jax.random.PRNGKey(0), (12,))
    _, _, _, history = fnn.train.fit(model, params, state, OPT, (x, x[:, :1] * 2), loss=mse, epochs=2,
                                     batch_size=64, key=jax.random.PRNGKey(0), grads="manual",
                                     progress=False)
    assert history["train_accuracy"] == [None, None]
    assert history["train_loss"][1] < history["train_loss"][0]


@pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_subset_learns_well_above_chance():
    x, y = fnn.data.load_dataset("fashion-mnist", "train")
    xt, yt = fnn.data.load_dataset("fashion-mnist", "test")
    model = fnn.models.mlp()
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    params, state, _, _ = fnn.train.fit(model, params, state, fnn.optim.adam(1e-3), (x[:6000], y[:6000]),
                                        loss=softmax_cross_entropy, epochs=3, batch_size=128,
                                        key=jax.random.PRNGKey(1), grads="manual", loop="scan",
                                        progress=False)
    result = fnn.train.evaluate(model, params, state, (xt[:2000], yt[:2000]), loss=softmax_cross_entropy)
    assert result["accuracy"] > 0.70          # chance is 0.10
