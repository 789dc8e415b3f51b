"""fnn.optim.base, and the contract every named optimizer keeps (run for all of them, as Haiku's
cross-cutting tests do): dtypes kept, no recompilation, any pytree, checkpointable state,
tree-structure errors, the learning rate read from the schedule by `learning_rate_at`, and the
STYLE checks on the public API (annotations, short docstrings, no optax import)."""
import functools
import inspect
import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optim_cases import FAST_COMPILE, RULES, grad_sequence, make_params, run_fnn

import fnn.optim as fo

BOOKKEEPING = {"count", "mu_product"}       # scalar state fields of their own dtype


def _named_tuples(state):
    """Every NamedTuple inside an optimizer state (chains are tuples, wrappers nest)."""
    if hasattr(state, "_fields"):
        return [state, *(t for v in state for t in _named_tuples(v))]
    if isinstance(state, (tuple, list)):
        return [t for v in state for t in _named_tuples(v)]
    if isinstance(state, dict):
        return [t for v in state.values() for t in _named_tuples(v)]
    return []


def _params(dtype):
    """The shared pytree plus an empty subtree (a layer without parameters)."""
    return {**make_params(dtype), "act": ()}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", sorted(RULES))
def test_updates_and_state_keep_the_parameter_dtype(name, dtype):
    opt, params = RULES[name](fo.cosine_decay(1e-2, 100)), _params(dtype)   # the schedule is float64
    state = jax.eval_shape(opt.init, params)
    updates, state = jax.eval_shape(opt.update, params, state, params)     # traces, no compilation
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)
    parts = _named_tuples(state)
    assert parts and any("count" in type(t)._fields for t in parts)
    for part in parts:
        for field, value in part._asdict().items():
            if field == "count":
                assert value.dtype == jnp.int32 and value.shape == (), type(part).__name__
            elif field not in BOOKKEEPING and not hasattr(value, "_fields"):
                assert {x.dtype for x in jax.tree.leaves(value)} <= {jnp.dtype(dtype)}, field
            assert field != "learning_rate"
    assert jax.eval_shape(fo.apply_updates, params, updates) == jax.eval_shape(lambda p: p, params)


@pytest.mark.parametrize("name", sorted(RULES))
def test_jitted_steps_compile_once_and_checkpoint(name, caplog):
    """One jitted training step per optimizer, run 6 times: it compiles once (jax.log_compiles,
    as optax's tests check), `learning_rate_at` reads the schedule at each step, and the state
    (arrays only) round-trips through NumPy and continues exactly."""
    schedule = fo.piecewise_constant(0.1, {2: 0.5, 4: 0.4})
    opt, params = RULES[name](schedule), _params(jnp.float32)
    grads = [jax.tree.map(lambda g, t=t: np.asarray(g)[t], grad_sequence(params, steps=6)) for t in range(6)]

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def optimizer_step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return fo.apply_updates(params, updates), state

    state = opt.init(params)
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        for t in range(5):
            params, state = optimizer_step(params, state, grads[t])
    compiles = [r.getMessage() for r in caplog.records if "Compiling jit(optimizer_step)" in r.getMessage()]
    assert len(compiles) == 1 and optimizer_step._cache_size() == 1, compiles
    rates = [fo.learning_rate_at(opt, t) for t in range(5)]
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.02])
    leaves, treedef = jax.tree.flatten(state)
    assert all(isinstance(x, jax.Array) for x in leaves)
    restored = jax.tree.unflatten(treedef, [jnp.asarray(np.asarray(x)) for x in leaves])  # "saved" as NumPy
    last = grads[5]
    resumed = optimizer_step(params, restored, last)
    same = jax.tree.map(jnp.array_equal, optimizer_step(params, state, last), resumed)
    assert jax.tree.all(same) and optimizer_step._cache_size() == 1


@pytest.mark.parametrize("name", sorted(RULES))
def test_grads_of_another_structure_or_shape_are_refused(name):
    opt, params = RULES[name](0.01), make_params()
    state = opt.init(params)
    missing = {k: v for k, v in params.items() if k != "W"}
    with pytest.raises(ValueError, match=r"^\w+: grads have tree structure"):
        opt.update(missing, state, params)
    reshaped = {**params, "W": jnp.zeros((4, 5))}
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(4, 5\)"):
        opt.update(reshaped, state, params)


def test_chain_carries_the_one_learning_rate_and_refuses_two():
    schedule = fo.cosine_decay(0.1, 10)
    opt = fo.chain(fo.clip_by_global_norm(1.0), fo.adam(schedule), fo.reduce_on_plateau())
    assert opt.learning_rate is schedule and fo.learning_rate_at(opt, 10) == pytest.approx(0.0)
    assert fo.learning_rate_at(fo.chain(fo.scale_by_adam(), fo.clip_by_value(1.0)), 3) is None
    assert fo.learning_rate_at(fo.Optimizer(lambda p: (), lambda g, s, p=None: (g, s)), 0) is None
    with pytest.raises(ValueError, match="chain: expected at most one member that scales by a learning rate, got 2"):
        fo.chain(fo.adam(0.1), fo.scale_by_learning_rate(0.5))
    with pytest.raises(TypeError, match="chain: member 1 must be an fnn.optim.Optimizer"):
        fo.chain(fo.adam(0.1), lambda g: g)


def test_optimizers_vmap_over_an_ensemble_of_parameters():
    opt, params = fo.adam(0.01), make_params()
    ensemble = jax.tree.map(lambda p: jnp.stack([p, 2 * p, -p]), params)
    step = jax.jit(lambda p: opt.update(p, opt.init(p), p)[0])
    batched = jax.jit(jax.vmap(step))(ensemble)
    one_by_one = [step(jax.tree.map(lambda e, i=i: e[i], ensemble)) for i in range(3)]
    for i, single in enumerate(one_by_one):
        assert jax.tree.all(jax.tree.map(lambda b, s, i=i: jnp.allclose(b[i], s), batched, single))


def test_apply_updates_keeps_the_parameter_dtype_and_checks_the_tree():
    params = {"W": jnp.ones((2, 2), jnp.bfloat16)}
    out = fo.apply_updates(params, {"W": jnp.full((2, 2), 0.5, jnp.float32)})
    assert out["W"].dtype == jnp.bfloat16 and float(out["W"][0, 0]) == 1.5
    with pytest.raises(ValueError, match="apply_updates: updates have tree structure"):
        fo.apply_updates(params, {"V": jnp.ones((2, 2))})


def test_chain_runs_members_in_order_and_checks_its_state():
    params = make_params()
    opt = fo.chain(fo.clip_by_value(0.1), fo.sgd(1.0))
    updates, _ = opt.update(jax.tree.map(lambda p: 10 * p, params), opt.init(params))
    assert float(jnp.max(jnp.abs(updates["W"]))) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="chain: expected a state of 2 members"):
        opt.update(params, (), params)


def test_plain_sgd_matches_the_formula_on_a_nested_pytree():
    params, grads = make_params(), grad_sequence(make_params(), steps=3)
    final = run_fnn(fo.sgd(0.1), params, grads)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g.sum(0), params, grads)
    assert jax.tree.all(jax.tree.map(lambda a, b: jnp.allclose(a, b, rtol=1e-14), final, expected))


def test_public_factories_are_annotated_and_documented_briefly():
    for name in fo.__all__:
        obj = getattr(fo, name)
        if not inspect.isfunction(obj):
            continue
        sig = inspect.signature(obj)
        missing = [p for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not missing and sig.return_annotation is not inspect.Signature.empty, name
        doc = inspect.getdoc(obj)
        assert doc and len(doc.splitlines()) <= 15, f"{name}: docstring missing or over 15 lines"


def test_fnn_optim_never_imports_optax():
    source = pathlib.Path(fo.__file__).parent
    offenders = [p.name for p in source.glob("*.py") if "optax" in "\n".join(
        line for line in p.read_text().splitlines() if line.lstrip().startswith(("import", "from")))]
    assert not offenders
