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


def _fit(grads="autodiff", loop="scan", epochs=2, data=None, loss=softmax_cross_entropy, **kw):
    data = _synthetic() if data is None else data
    _, params, state = MODEL.init(jax.random.PRNGKey(0), data[0].shape[1:])
    return fnn.train.fit(MODEL, params, state, OPT, data, loss=loss, epochs=epochs,
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


_TIMED = fnn.train.loops._timed


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


def test_auto_loop_keeps_the_scan_when_a_race_cannot_pay_for_its_compile(monkeypatch):
    # the tests' warm compilation cache makes a compile cost milliseconds, so a real payback would
    # weigh 8 steps against noise on a loaded machine: no training is worth this many compiles
    monkeypatch.setattr(fnn.train.loops, "RACE_PAYBACK", 1e12)
    timed = []
    monkeypatch.setattr(fnn.train.loops, "_timed", lambda run, *a: timed.append(run) or _TIMED(run, *a))
    *_, history = _fit(loop="auto", epochs=1)          # 8 steps
    assert history["loop"] == "scan" and len(set(timed)) == 1    # the step loop never ran


def test_auto_loop_race_trains_on_every_step_it_times(monkeypatch):
    monkeypatch.setattr(fnn.train.loops, "RACE_PAYBACK", 0.0)    # race whatever the cost
    data = _synthetic(n=1280)                                      # 20 steps: chunks of 2
    p_auto, _, _, history = _fit(loop="auto", epochs=2, data=data)
    p_scan, _, _, h_scan = _fit(loop="scan", epochs=2, data=data)
    assert history["loop"] in ("scan", "step")
    _close(p_auto, p_scan, 1e-5)                                   # the race's chunks are the epoch's steps
    np.testing.assert_allclose(history["train_loss"], h_scan["train_loss"], rtol=1e-5)


def test_nan_guard_keeps_last_finite_params_and_names_the_step():
    x, y = _synthetic()
    x = x.at[:].set(jnp.where(jnp.arange(x.shape[0])[:, None] == 5, jnp.nan, x))   # one poisoned example
    params, _, _, history = _fit(data=(x, y), epochs=3)
    assert "non-finite loss at epoch 1, step" in history["stopped"]
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(params))
    assert len(history["train_loss"]) == 1


def test_nan_at_the_first_step_returns_the_initial_parameters():
    x, y = _synthetic()
    params, _, _, history = _fit(data=(jnp.full_like(x, jnp.nan), y), epochs=2)
    _, initial, _ = MODEL.init(jax.random.PRNGKey(0), (12,))
    assert "non-finite loss at epoch 1, step 1;" in history["stopped"] and history["train_loss"] == [None]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(initial)):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_epoch():
    x, y = _synthetic()
    noise = (x, jax.random.permutation(jax.random.PRNGKey(5), y))         # labels unrelated to inputs
    _, _, _, history = _fit(data=noise, epochs=30, val=_synthetic(seed=3), early_stopping=2)
    assert "early stopping" in history["stopped"]
    assert len(history["val_loss"]) < 30


def test_resume_gives_exactly_the_uninterrupted_parameters(tmp_path):
    full, _, _, full_history = _fit(epochs=3)
    saved = {}

    def on_epoch(epoch, params, state, opt_state, history):
        if epoch == 0:
            fnn.checkpoint.save_training(tmp_path / "ckpt.safetensors", params, state, opt_state, epoch + 1)
            saved["history"] = {k: list(v) if isinstance(v, list) else v for k, v in history.items()}

    _fit(epochs=1, on_epoch=on_epoch)
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    like_opt = OPT.init(params)
    params, state, opt_state, step = fnn.checkpoint.load_training(tmp_path / "ckpt.safetensors", params,
                                                                  state, like_opt)
    resumed, _, _, history = fnn.train.fit(
        MODEL, params, state, OPT, _synthetic(), loss=softmax_cross_entropy, epochs=3, batch_size=64,
        key=jax.random.PRNGKey(1), loop="scan", progress=False, opt_state=opt_state,
        initial_epoch=int(step), history=saved["history"])
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(full)):
        np.testing.assert_array_equal(a, b)
    assert history["train_loss"] == full_history["train_loss"]         # each epoch's own mean


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


# ------------------------------------------------------------ issue 11, items 9-11

def test_early_stopping_without_validation_data_raises():
    with pytest.raises(ValueError, match=r"fit: early_stopping=1 monitors the validation loss, so it needs val="):
        _fit(early_stopping=1)


def test_history_given_is_copied_not_changed():
    given = {"train_loss": [9.0], "val_loss": [None], "note": "kept"}
    snapshot = {k: list(v) if isinstance(v, list) else v for k, v in given.items()}
    *_, history = _fit(epochs=1, history=given)
    assert given == snapshot
    assert history["train_loss"][0] == 9.0 and len(history["train_loss"]) == 2 and history["note"] == "kept"


def test_reported_loss_is_the_test_loss_and_the_smoothed_objective_is_kept_apart():
    train, val = _synthetic(), _synthetic(n=200, seed=3)
    smoothed = softmax_cross_entropy.partial(label_smoothing=0.2)
    params, state, _, history = _fit(epochs=2, data=train, val=val, loss=smoothed,
                                     report_loss=softmax_cross_entropy)
    plain = fnn.train.evaluate(MODEL, params, state, val, loss=softmax_cross_entropy)
    assert history["val_loss"][-1] == pytest.approx(plain["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == pytest.approx(plain["accuracy"])
    assert all(o > t for o, t in zip(history["train_objective"], history["train_loss"]))   # smoothing adds
    *_, unsmoothed = _fit(epochs=1, data=train, val=val, loss=smoothed)
    assert "train_objective" not in unsmoothed


@pytest.mark.parametrize("labels, error, match", [
    (lambda y: y.astype(jnp.float32), TypeError, "fit: train labels must be integer class ids"),
    (lambda y: y.at[7].set(3), ValueError, r"fit: train labels must lie in \[0, 3\) .* got labels from 0 to 3"),
    (lambda y: y.at[0].set(-1), ValueError, r"fit: train labels must lie in \[0, 3\)"),
])
def test_labels_are_checked_at_fit_entry(labels, error, match):
    x, y = _synthetic()
    with pytest.raises(error, match=match):
        _fit(data=(x, labels(y)))


def test_evaluate_checks_labels_and_warns_on_nan_inputs():
    x, y = _synthetic(n=50)
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    with pytest.raises(ValueError, match=r"evaluate: data labels must lie in \[0, 3\)"):
        fnn.train.evaluate(MODEL, params, state, (x, y.at[3].set(5)), loss=softmax_cross_entropy)
    with pytest.warns(RuntimeWarning, match="evaluate: the data inputs hold NaN"):
        fnn.train.evaluate(MODEL, params, state, (x.at[2, 0].set(jnp.nan), y), loss=softmax_cross_entropy)


def test_numpy_int64_labels_do_not_warn_without_x64():
    import warnings
    x, y = _synthetic(n=128)
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        params, state, _, history = _fit(epochs=1, data=(x, y), val=(x, y))
        result = fnn.train.evaluate(MODEL, params, state, (x, y), loss=softmax_cross_entropy)
    assert 0.0 <= result["accuracy"] <= 1.0 and history["val_accuracy"][0] is not None


# ------------------------------------------------------------ caching

def test_equal_configuration_does_not_recompile_and_models_are_not_kept_alive():
    import gc
    import logging
    import weakref

    def run(model, loss):
        _, params, state = model.init(jax.random.PRNGKey(0), (12,))
        fnn.train.fit(model, params, state, OPT, _synthetic(), loss=loss, epochs=1, batch_size=64,
                      key=jax.random.PRNGKey(1), loop="auto", progress=False)

    model = fnn.serial(L.Dense(16), L.Relu(), L.Dense(3))
    run(model, softmax_cross_entropy.partial(label_smoothing=0.1))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles(True):
            run(model, softmax_cross_entropy.partial(label_smoothing=0.1))     # an equal, new record
    finally:
        logging.getLogger("jax").removeHandler(handler)
    assert not [r.getMessage() for r in records if "Compiling" in r.getMessage()]
    alive = weakref.ref(model.forward)
    del model
    gc.collect()
    assert alive() is None


# ------------------------------------------------------------ issue 12: pytree inputs and weighted targets

SEQ_MODEL = fnn.serial(L.Concat(), L.Dense(8), L.Tanh(), L.Dense(4))    # (B, T, 2) and (B, T, 3) -> (B, T, 4)


def _sequences(n=96, t=5, seed=0):
    ka, kb, kl, kw = jax.random.split(jax.random.PRNGKey(seed), 4)
    a, b = jax.random.normal(ka, (n, t, 2), jnp.float32), jax.random.normal(kb, (n, t, 3), jnp.float32)
    labels = (jnp.argmax(jnp.concatenate([a, b], -1)[..., :4], -1)).astype(jnp.int32)
    lengths = jax.random.randint(kl, (n,), 1, t + 1)
    weights = (jnp.arange(t)[None, :] < lengths[:, None]).astype(jnp.float32)    # padded steps count 0
    return (a, b), labels, weights


def _fit_sequences(y, grads="autodiff", loop="scan"):
    x, _, _ = _sequences()
    _, params, state = SEQ_MODEL.init(jax.random.PRNGKey(0), ((5, 2), (5, 3)))
    return fnn.train.fit(SEQ_MODEL, params, state, OPT, (x, y), loss=softmax_cross_entropy, epochs=2,
                         batch_size=32, key=jax.random.PRNGKey(1), grads=grads, loop=loop, progress=False)


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_fit_on_tuple_inputs_with_weighted_targets_in_both_gradient_modes(loop):
    _, labels, weights = _sequences()
    p_auto, _, _, history = _fit_sequences((labels, weights), "autodiff", loop)
    p_hand, *_ = _fit_sequences({"target": labels, "weights": weights}, "manual", loop)
    _close(p_hand, p_auto, 1e-5)
    assert history["train_loss"][1] < history["train_loss"][0]


def test_padded_positions_count_for_nothing():
    _, labels, weights = _sequences()
    scrambled = jnp.where(weights > 0, labels, (labels + 1) % 4)          # change only padded targets
    p_one, *_ = _fit_sequences((labels, weights))
    p_two, *_ = _fit_sequences((scrambled, weights))
    for a, b in zip(jax.tree.leaves(p_one), jax.tree.leaves(p_two)):
        np.testing.assert_array_equal(a, b)


def test_evaluate_and_predict_take_pytrees_and_weigh_accuracy():
    x, labels, weights = _sequences(n=70)
    _, params, state = SEQ_MODEL.init(jax.random.PRNGKey(0), ((5, 2), (5, 3)))
    pred = fnn.train.predict(SEQ_MODEL, params, state, x, batch_size=32)        # 32 + 32 + 6, padded
    assert pred.shape == (70, 5, 4)
    result = fnn.train.evaluate(SEQ_MODEL, params, state, (x, (labels, weights)), loss=softmax_cross_entropy,
                                batch_size=32)
    hit = np.asarray(pred).argmax(-1) == np.asarray(labels)
    w = np.asarray(weights)
    assert result["accuracy"] == pytest.approx(float((hit * w).sum() / w.sum()), rel=1e-6)
    assert result["loss"] == pytest.approx(float(softmax_cross_entropy(pred, labels, weights=weights)), rel=1e-6)


def test_epoch_batches_take_pytrees():
    x, labels, weights = _sequences(n=70)
    xs, ys = fnn.data.epoch_batches(jax.random.PRNGKey(0), x, (labels, weights), 32)
    assert xs[0].shape == (2, 32, 5, 2) and xs[1].shape == (2, 32, 5, 3) and ys[1].shape == (2, 32, 5)


def test_make_train_step_is_the_pure_step_jitted():
    x, y = _synthetic(n=64)
    _, params, state = MODEL.init(jax.random.PRNGKey(0), (12,))
    opt_state = OPT.init(params)
    step = fnn.train.make_train_step(MODEL, softmax_cross_entropy, OPT)
    pure = fnn.train.train_step(MODEL, softmax_cross_entropy, OPT)
    # jitted without donation (op by op, the step's hundreds of small programs cost ~10 s of compiling)
    expected = jax.jit(pure)(params, state, opt_state, (x, y), jax.random.PRNGKey(2))
    got = step(jax.tree.map(jnp.copy, params), state, jax.tree.map(jnp.copy, opt_state), (x, y),
               jax.random.PRNGKey(2))
    _close(got[0], expected[0], 1e-6)
    assert set(got[3]) == {"loss", "accuracy"}


def _top1(logits, labels):
    return jnp.mean((jnp.argmax(logits, -1).astype(labels.dtype) == labels).astype(logits.dtype))


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_metrics_hook_logs_train_and_val_per_epoch(loop):
    *_, history = _fit(loop=loop, val=_synthetic(n=100, seed=5), metrics={"top1": _top1})
    assert len(history["train_top1"]) == len(history["val_top1"]) == 2
    np.testing.assert_allclose(history["train_top1"], history["train_accuracy"], rtol=1e-6)
    np.testing.assert_allclose(history["val_top1"], history["val_accuracy"], rtol=1e-6)


def test_metrics_names_and_functions_are_checked():
    with pytest.raises(ValueError, match=r"fit: metric names \['accuracy'\] are taken"):
        _fit(epochs=1, metrics={"accuracy": _top1})
    with pytest.raises(TypeError, match="fit: metrics must be a dict"):
        _fit(epochs=1, metrics=[_top1])


STAGED = fnn.serial(fnn.serial(L.Dense(16), L.BatchNorm(), L.Relu(), name="body"), L.Dense(3, name="head"),
                    name="net")


def _staged_fit(epochs=3, **kw):
    x, y = _synthetic()
    _, params, state = STAGED.init(jax.random.PRNGKey(0), (12,))
    seen = []
    keep = lambda e, p, s, o, h: seen.append(jax.tree.map(np.array, (p, s)))
    out = fnn.train.fit(STAGED, params, state, fnn.optim.adam(1e-2), (x, y), loss=softmax_cross_entropy,
                        epochs=epochs, batch_size=64, key=jax.random.PRNGKey(1), loop="scan", progress=False,
                        on_epoch=keep, **kw)
    return jax.tree.map(np.array, (params, state)), seen, out


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_progressive_unfreezing_keeps_frozen_blocks_bit_identical_until_their_epoch():
    schedule = fnn.train.unfreeze_schedule({0: "head", 2: ["body"]})
    (params, state), seen, (_, _, opt_state, history) = _staged_fit(trainable=schedule)
    assert history["trainable"] == [["head"], ["head"], ["head", "body"]]
    for epoch in (0, 1):                       # body: params and BatchNorm statistics untouched
        assert _same(seen[epoch][0][0], params[0]) and _same(seen[epoch][1][0], state[0])
        assert not _same(seen[epoch][0][1], params[1] if epoch == 0 else seen[epoch - 1][0][1])
    assert not _same(seen[2][0][0], params[0]) and not _same(seen[2][1][0], state[0])
    groups = opt_state.inner_states            # one Adam state per stage, counted from its first epoch
    steps = 512 // 64
    assert int(groups["0"].inner_state[0].count) == 3 * steps and int(groups["2"].inner_state[0].count) == steps


def test_unfreezing_resumes_and_checks_its_schedule():
    _, _, (p, s, o, h) = _staged_fit(epochs=2, trainable={0: ["head"], 2: ["body"]})
    _, _, (_, _, o2, h2) = _staged_fit(epochs=3, trainable={0: ["head"], 2: ["body"]}, initial_epoch=2,
                                       opt_state=o, history=h)
    assert h2["trainable"][-1] == ["head", "body"] and set(o2.inner_states) == {"0", "2", "frozen"}
    with pytest.raises(ValueError, match="unfreeze_schedule: the first stage must start at epoch 0"):
        fnn.train.unfreeze_schedule({1: ["head"]})
    with pytest.raises(ValueError, match="no layer at path 'hed'"):
        _staged_fit(epochs=1, trainable={0: ["hed"]})
    with pytest.raises(TypeError, match="fit: with trainable=, opt_state must be the one"):
        _staged_fit(epochs=1, trainable={0: ["head"]}, opt_state=fnn.optim.adam(1e-2).init(p))


# ------------------------------------------------------------------ Buckets: training data in parts

def _parts():
    """Two parts of the sequence data: 70 sequences of length 5 and 45 trimmed to length 3."""
    (a, b), labels, weights = _sequences(n=115)
    long_ = ((a[:70], b[:70]), (labels[:70], weights[:70]))
    short = ((a[70:, :3], b[70:, :3]), (labels[70:, :3], weights[70:, :3]))
    return long_, short


def test_bucket_plan_takes_each_parts_full_batches_once_in_one_shuffled_order():
    (rows, which), _, _ = fnn.train.loops.plan(jax.random.PRNGKey(3), 2, (70, 45, 100), 16)
    rows, which = np.asarray(rows), np.asarray(which)
    assert sorted(which.tolist()) == [0] * 4 + [1] * 2 + [2] * 6           # n // 16 full batches each
    assert which.tolist() != sorted(which.tolist())                        # interleaved, not part by part
    for part, size in enumerate((70, 45, 100)):
        taken = rows[which == part].ravel()
        assert len(set(taken.tolist())) == len(taken) and taken.max() < size
    again = fnn.train.loops.plan(jax.random.PRNGKey(3), 2, (70, 45, 100), 16)[0]
    np.testing.assert_array_equal(np.asarray(again[0]), rows)


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_fit_on_buckets_equals_its_steps_taken_one_by_one(loop):
    """The oracle: the pure step applied by hand to each batch of the plan, in the plan's order."""
    parts = _parts()
    _, params, state = SEQ_MODEL.init(jax.random.PRNGKey(0), ((5, 2), (5, 3)))
    key = jax.random.PRNGKey(1)
    fitted, _, _, history = fnn.train.fit(SEQ_MODEL, params, state, OPT, fnn.train.Buckets(parts),
                                          loss=softmax_cross_entropy, epochs=2, batch_size=16, key=key,
                                          grads="manual", loop=loop, progress=False)
    step = jax.jit(fnn.train.train_step(SEQ_MODEL, softmax_cross_entropy, OPT, grads="manual"))
    p, s, o = params, state, OPT.init(params)
    for epoch in range(2):
        (rows, which), _, _ = fnn.train.loops.plan(key, epoch, (70, 45), 16)
        for i, (r, b) in enumerate(zip(np.asarray(rows), np.asarray(which))):
            batch = jax.tree.map(lambda t, r=r: t[r], parts[b])
            p, s, o, _ = step(p, s, o, batch, jax.random.fold_in(jax.random.fold_in(key, epoch), i))
    _close(fitted, p, 1e-5)
    assert len(history["train_loss"]) == 2 and history["learning_rate"] == [pytest.approx(1e-2)] * 2


@pytest.mark.parametrize("parts, match", [
    ((), "non-empty tuple"),
    ("short", r"batch_size 16 exceeds the 10 training examples of train bucket 1"),
])
def test_buckets_are_checked(parts, match):
    long_, short = _parts()
    if parts == "short":
        parts = (long_, jax.tree.map(lambda t: t[:10], short))
    _, params, state = SEQ_MODEL.init(jax.random.PRNGKey(0), ((5, 2), (5, 3)))
    with pytest.raises(ValueError, match=match):
        fnn.train.fit(SEQ_MODEL, params, state, OPT, fnn.train.Buckets(parts), loss=softmax_cross_entropy,
                      epochs=1, batch_size=16, key=jax.random.PRNGKey(1), progress=False)
