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
