"""fnn.paths: every layer has a unique name path; trees map to paths; select builds masks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L


def _model():
    trunk = fnn.serial(L.Flatten(), L.Dense(6), L.Relu(), L.Dense(5), name="trunk")
    block = fnn.residual(fnn.serial(L.Dense(5), L.Tanh()), shortcut=L.Dense(5, name="proj"))
    return fnn.serial(trunk, block, L.Dense(3), name="net")


def _init(model):
    return model.init(jax.random.PRNGKey(0), (2, 2))


def test_paths_are_unique_and_numbered():
    paths = list(fnn.layer_paths(_model()))
    assert paths == ["net", "net/trunk", "net/trunk/Flatten", "net/trunk/Dense_1", "net/trunk/Relu",
                     "net/trunk/Dense_2", "net/residual", "net/residual/serial", "net/residual/serial/Dense",
                     "net/residual/serial/Tanh", "net/residual/proj", "net/Dense"]
    assert len(set(paths)) == len(paths)


def test_tree_by_path_gives_each_leaf_layer_its_params():
    model = _model()
    _, params, _ = _init(model)
    parts = fnn.tree_by_path(model, params)
    assert parts["net/trunk/Dense_2"]["W"].shape == (6, 5)
    assert parts["net/residual/proj"]["W"] is params[1][1]["W"]
    assert parts["net/Dense"]["W"].shape == (5, 3)
    assert parts["net/trunk/Relu"] == ()


def test_select_masks_by_name_and_by_predicate():
    model = _model()
    _, params, _ = _init(model)
    mask = fnn.select(model, "trunk")(params)
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    assert all(jax.tree.leaves(mask[0])) and not any(jax.tree.leaves(mask[1:]))
    weights = fnn.select(model, "W")(params)
    assert jax.tree.leaves(weights).count(True) == 5 and jax.tree.leaves(weights).count(False) == 5
    only = fnn.select(model, lambda path: path.endswith("Dense_2/b"))(params)
    assert jax.tree.leaves(only).count(True) == 1 and only[0][3]["b"]


def test_freeze_by_name_keeps_the_trunk():
    model = _model()
    _, params, state = _init(model)
    opt = fnn.optim.freeze(fnn.select(model, "trunk"), fnn.optim.sgd(0.1))
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    assert all(float(jnp.abs(u).sum()) == 0 for u in jax.tree.leaves(updates[0]))
    assert all(float(jnp.abs(u).sum()) > 0 for u in jax.tree.leaves(updates[1:]))


def test_unknown_names_list_the_paths_and_the_closest():
    model = _model()
    _, params, _ = _init(model)
    with pytest.raises(ValueError, match=r"did you mean 'net/trunk'.*net/trunk/Dense_1"):
        fnn.find_layer(model, "net/trunc")
    with pytest.raises(ValueError, match="no layer at path 'trnk'"):
        fnn.select(model, "trnk")(params)
    assert fnn.find_layer(model, "trunk/Dense_2").name == "Dense"


def test_serial_errors_name_the_child_path():
    model = _model()
    _, params, state = _init(model)
    bad = fnn.serial(L.Dense(4), L.Dense(3), name="mlp")
    _, p, s = bad.init(jax.random.PRNGKey(0), (5,))
    p = (p[0], {"W": jnp.zeros((7, 3), jnp.float32), "b": jnp.zeros(3, jnp.float32)})
    with pytest.raises(ValueError, match=r"^mlp/Dense_2: expected x of shape"):
        bad.apply(p, s, jnp.ones((2, 5), jnp.float32))
    with pytest.raises(ValueError, match=r"^net/trunk/Dense_1: expected"):
        model.apply(params, state, jnp.ones((2, 3, 3), jnp.float32))


def test_frozen_is_transparent_in_paths():
    trunk = fnn.serial(L.Dense(4), L.Relu(), name="trunk")
    model = fnn.serial(L.Frozen(trunk), L.Dense(2), name="m")
    assert list(fnn.layer_paths(model)) == ["m", "m/trunk", "m/trunk/Dense", "m/trunk/Relu", "m/Dense"]


def test_summary_lists_paths():
    text = fnn.summary(_model(), (2, 2))
    assert "net/trunk/Dense_2" in text and "(5,)" in text
    _, params, _ = _init(_model())
    total = sum(np.size(a) for a in jax.tree.leaves(params))
    assert f"Total params: {total:,}" in text


KEY = jax.random.PRNGKey(3)


def test_replace_head_keeps_every_other_array():
    model = _model()
    _, params, state = _init(model)
    new, p, s = fnn.paths.replace(model, "Dense", L.Dense(7), params, state, in_shape=(2, 2), key=KEY)
    assert p[0] is params[0] and p[1] is params[1] and s[:2] == state[:2]
    assert p[2]["W"].shape == (5, 7)
    np.testing.assert_array_equal(p[2]["W"], L.Dense(7).init(KEY, (5,))[1]["W"])   # initialised with key
    assert list(fnn.layer_paths(new)) == list(fnn.layer_paths(model))
    y, _ = new.apply(p, s, jnp.ones((4, 2, 2), jnp.float32))
    assert y.shape == (4, 7)


def test_replace_inside_residual_and_frozen_keeps_the_wrappers():
    trunk = fnn.serial(L.Dense(4), L.Dropout(0.5), L.Dense(4), name="trunk")
    model = fnn.serial(L.Frozen(trunk), fnn.residual(fnn.serial(L.Dense(4), L.Tanh())), L.Dense(2), name="m")
    _, params, state = model.init(jax.random.PRNGKey(0), (4,))
    new, p, s = fnn.paths.replace(model, "m/trunk/Dense_2", L.Dense(4, name="swap"), params, state,
                                  in_shape=(4,), key=KEY)
    assert "m/trunk/swap" in fnn.layer_paths(new) and p[0][0] is params[0][0] and p[1] is params[1]
    x = jnp.ones((3, 4), jnp.float32)
    train, _ = new.apply(p, s, x, key=KEY, train=True)
    test, _ = new.apply(p, s, x)
    np.testing.assert_array_equal(train, test)           # the trunk still runs frozen (dropout off)
    new, p, s = fnn.paths.replace(model, "residual/serial/Tanh", L.Relu(), params, state, in_shape=(4,), key=KEY)
    assert "m/residual/serial/Relu" in fnn.layer_paths(new)
    assert new.apply(p, s, x)[0].shape == (3, 2)


def test_replace_errors_name_the_path_and_the_misfit():
    model = _model()
    _, params, state = _init(model)
    with pytest.raises(ValueError, match=r"no layer at path 'hed'.*net/trunk/Dense_1"):
        fnn.paths.replace(model, "hed", L.Dense(3), params, state, in_shape=(2, 2), key=KEY)
    with pytest.raises(ValueError, match=r"replace: net/trunk/Dense_1 now outputs \(7,\) instead of \(6,\), so "
                                         r"the layers after it no longer fit: net/trunk/Dense_2/W is \(6, 5\) "
                                         r"but the new model needs \(7, 5\)"):
        fnn.paths.replace(model, "trunk/Dense_1", L.Dense(7), params, state, in_shape=(2, 2), key=KEY)
    with pytest.raises(ValueError, match=r"replace: net/residual/serial/Dense now outputs \(4,\).*shortcut"):
        fnn.paths.replace(model, "residual/serial/Dense", L.Dense(4), params, state, in_shape=(2, 2), key=KEY)
    with pytest.raises(ValueError, match="replace: 'net' is the whole model"):
        fnn.paths.replace(model, "net", L.Dense(3), params, state, in_shape=(2, 2), key=KEY)
    with pytest.raises(TypeError, match="replace: new_layer must be a Layer, got int"):
        fnn.paths.replace(model, "Dense", 3, params, state, in_shape=(2, 2), key=KEY)


def test_replace_refuses_combinators_it_cannot_rebuild():
    model = fnn.serial(L.TransformerEncoderBlock(8, 2, 16), name="t")
    _, params, state = model.init(jax.random.PRNGKey(0), (4, 8))
    child = [p for p in fnn.layer_paths(model) if p.count("/") == 2][0]
    with pytest.raises(ValueError, match=r"replace: cannot rebuild t/TransformerEncoderBlock"):
        fnn.paths.replace(model, child, L.LayerNorm(), params, state, in_shape=(4, 8), key=KEY)
