"""SimpleRNN, LSTM, GRU, Bidirectional: gradient checks, PyTorch equivalence, padding, errors."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import interop
from fnn.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN

# The gradient checks of every row of fnn.layers.recurrent.CASES (T = 1 and 50, forward and reverse,
# padded, initial states, Bidirectional) run in tests/test_gradcheck.py with the rest of the table;
# running them here again with other keys cost ~70 s of CPU a suite.


def test_simple_rnn_by_hand():
    layer = SimpleRNN(1, return_sequences=True)
    params = {"W_x": jnp.array([[0.5]]), "W_h": jnp.array([[-1.0]]), "b_x": jnp.array([0.1]),
              "b_h": jnp.array([0.2])}
    x = jnp.array([[[1.0], [2.0]]])
    y, _, _ = layer.forward(params, (), x)
    h1 = np.tanh(0.5 + 0.3)
    h2 = np.tanh(1.0 + 0.3 - h1)
    np.testing.assert_allclose(np.asarray(y).ravel(), [h1, h2], rtol=1e-6)


def _stateless(params):
    return jax.tree.map(lambda _: (), params, is_leaf=lambda t: isinstance(t, dict) and "W_x" in t)


def _run(model, params, x):
    """apply with the state init gives (all these layers are stateless: () per leaf)."""
    return model.apply(params, _stateless(params), x)[0]


def test_padding_leaves_state_and_outputs_alone(key):
    """A padded sequence gives the same last state as the unpadded one, and 0 at padded steps."""
    layer = LSTM(4, return_sequences=True, return_state=True)
    _, params, _ = layer.init(key, ((7, 3), ()))
    x = jax.random.normal(key, (2, 7, 3), jnp.float32)
    (y, _), (h, c) = _run(layer, params, (x, jnp.array([7, 4])))
    (y4, (h4, c4)) = _run(LSTM(4, return_sequences=True, return_state=True), params, x[1:, :4])
    np.testing.assert_allclose(h[1], h4[0], atol=1e-6)
    np.testing.assert_allclose(y[1, :4], y4[0], atol=1e-6)
    assert np.all(np.asarray(y[1, 4:]) == 0)


def test_manual_gradient_through_pytree_input(key):
    """fnn.manual wires the hand BPTT into jax.grad with (x, lengths) inputs (float0 for lengths)."""
    model = fnn.serial(Bidirectional(GRU(3, return_sequences=True)), LSTM(2))
    _, params, _ = model.init(key, ((5, 2), ()))
    x, lengths = jax.random.normal(key, (2, 5, 2), jnp.float32), jnp.array([5, 2])
    loss = lambda m: lambda p, xx: jnp.sum(_run(m, p, (xx, lengths)) ** 2)   # noqa: E731
    hand = jax.grad(loss(fnn.manual(model)), argnums=(0, 1))(params, x)
    auto = jax.grad(loss(model), argnums=(0, 1))(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), hand, auto)


def test_jit_and_stacking(key):
    model = fnn.serial(LSTM(4, return_sequences=True), GRU(3), Dense(2))
    _, params, _ = model.init(key, ((6, 2), ()))
    x = (jax.random.normal(key, (3, 6, 2), jnp.float32), jnp.array([6, 1, 0]))
    eager = _run(model, params, x)
    np.testing.assert_allclose(jax.jit(functools.partial(_run, model))(params, x), eager, atol=1e-6)
    assert eager.shape == (3, 2)


@pytest.mark.parametrize("bad, error, match", [
    (jnp.ones((2, 5)), ValueError, r"LSTM: expected x of shape \(B, T, 3\), got \(2, 5\)"),
    (jnp.ones((2, 5, 4)), ValueError, r"LSTM: expected x of shape \(B, T, 3\), got \(2, 5, 4\)"),
    ((jnp.ones((2, 5, 3)), jnp.array([1, 6])), ValueError, r"LSTM: expected lengths in \[0, 5\]"),
    ((jnp.ones((2, 5, 3)), jnp.array([1, 2, 3])), ValueError, r"LSTM: expected lengths of shape \(2,\)"),
    ((jnp.ones((2, 5, 3)), jnp.array([1.0, 2.0])), TypeError, r"LSTM: expected integer lengths"),
    ((jnp.ones((2, 5, 3)), None, jnp.ones((2, 4))), ValueError, r"LSTM: expected an initial state"),
])
def test_bad_input(key, bad, error, match):
    layer = LSTM(4)
    _, params, _ = layer.init(key, (5, 3))
    with pytest.raises(error, match=match):
        layer.forward(params, (), bad)


def test_error_names_path_in_model(key):
    model = fnn.serial(GRU(4, return_sequences=True), GRU(2), name="encoder")
    _, params, _ = model.init(key, (5, 3))
    with pytest.raises(ValueError, match=r"encoder/GRU_1: expected x of shape"):
        model.forward(params, ((), ()), jnp.ones((2, 5, 7)))


@pytest.mark.parametrize("make", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("option", [{"unroll": 3}, {"unroll": True}, {"batch_blocks": 2},
                                    {"batch_blocks": 4, "unroll": 2}])
def test_speed_options_change_nothing_but_speed(key, make, option):
    """unroll=3 over T=7 (a partial last block), full unrolling, and the batch of 4 as 2 or 4
    independent recurrences give the default's outputs, final state and hand gradients (input,
    initial state, weights) in float64, with padding."""
    carries = 2 if make is LSTM else 1
    x = jax.random.normal(key, (4, 7, 2), jnp.float64)
    h0 = tuple(jax.random.normal(jax.random.fold_in(key, 2 + i), (4, 4), jnp.float64) for i in range(carries))
    inputs = (x, jnp.array([7, 3, 0, 5]), h0 if carries == 2 else h0[0])
    dy = jax.random.normal(jax.random.fold_in(key, 1), (4, 7, 4), jnp.float64)
    dstate = tuple(jnp.cos(h) for h in h0)
    results = []
    with jax.enable_x64(True):
        for options in ({}, option):
            layer = make(4, return_sequences=True, return_state=True, **options)
            _, params, _ = layer.init(key, ((7, 2), (), *((4,),) * carries))
            params = fnn.cast(params, jnp.float64)
            ((y, _), state), _, cache = layer.forward(params, (), inputs)
            grads, dx = layer.backward(params, cache, ((dy, None), dstate if carries == 2 else dstate[0]))
            results.append((y, state, grads, dx[0], dx[2]))
    for a, b in zip(jax.tree.leaves(results[1]), jax.tree.leaves(results[0])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("options, match", [
    ({"unroll": 0}, r"LSTM: unroll must be a positive int or a bool, got 0"),
    ({"unroll": -1}, r"LSTM: unroll must be a positive int or a bool"),
    ({"unroll": 2.0}, r"LSTM: unroll must be a positive int or a bool"),
    ({"unroll": "4"}, r"LSTM: unroll must be a positive int or a bool"),
    ({"batch_blocks": 0}, r"LSTM: batch_blocks must be a positive int or None, got 0"),
    ({"batch_blocks": True}, r"LSTM: batch_blocks must be a positive int or None"),
    ({"batch_blocks": 1.5}, r"LSTM: batch_blocks must be a positive int or None"),
])
def test_bad_speed_option(options, match):
    with pytest.raises(ValueError, match=match):
        LSTM(4, **options)


def test_batch_blocks_that_do_not_divide_the_batch_run_one_recurrence(key):
    """batch_blocks=2 on a batch of 3 (a last partial batch, one example to predict): one block."""
    layer = LSTM(4, batch_blocks=2)
    _, params, _ = layer.init(key, (5, 3))
    y, _, cache = layer.forward(params, (), jnp.ones((3, 5, 3), jnp.float32))
    assert y.shape == (3, 4) and len(cache[0][0]) == 1


@pytest.mark.parametrize("batch, blocks", [(2, 1), (63, 1), (64, 2), (128, 2)])
def test_batch_blocks_none_picks_two_for_an_even_batch_from_64(key, batch, blocks):
    layer = GRU(3, return_sequences=True, batch_blocks=None)
    _, params, _ = layer.init(key, (2, 2))
    _, _, cache = layer.forward(params, (), jnp.ones((batch, 2, 2), jnp.float32))
    assert len(cache[0][0]) == blocks                   # the cache keeps x per block of rows


# ----------------------------------------------------------------- PyTorch as the oracle

torch = pytest.importorskip("torch")
KINDS = {"RNN": (SimpleRNN, torch.nn.RNN), "LSTM": (LSTM, torch.nn.LSTM), "GRU": (GRU, torch.nn.GRU)}


def _pair(kind, layers, bidirectional, F=3, H=4, dtype=torch.float32):
    torch.manual_seed(0)
    module = KINDS[kind][1](F, H, num_layers=layers, bidirectional=bidirectional, batch_first=True).to(dtype)
    make = KINDS[kind][0]
    wrap = Bidirectional if bidirectional else (lambda layer: layer)
    model = fnn.serial(*[wrap(make(H, return_sequences=True)) for _ in range(layers)])
    params = interop.rnn_from_torch({k: v.detach().numpy() for k, v in module.state_dict().items()})
    return module, model, params


def _torch_out(module, x, lengths):
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = module(packed)
    return torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_outputs_equal_torch_float32(kind, layers, bidirectional):
    module, model, params = _pair(kind, layers, bidirectional)
    x = np.random.default_rng(0).normal(size=(3, 6, 3)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    expected = _torch_out(module, torch.from_numpy(x), torch.from_numpy(lengths)).detach().numpy()
    y, _ = _run(model, params, (jnp.asarray(x), jnp.asarray(lengths)))
    np.testing.assert_allclose(np.asarray(y), expected, atol=1e-5)
    full = module(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(np.asarray(_run(model, params, jnp.asarray(x))), full, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradients_equal_torch_float64(kind):
    module, model, params = _pair(kind, 2, True, dtype=torch.float64)
    rng = np.random.default_rng(1)
    x, ct = rng.normal(size=(3, 6, 3)), rng.normal(size=(3, 6, 8))
    lengths = np.array([6, 2, 4])
    xt = torch.from_numpy(x).requires_grad_(True)
    (_torch_out(module, xt, torch.from_numpy(lengths)) * torch.from_numpy(ct)).sum().backward()
    with jax.enable_x64(True):
        params64 = fnn.cast(params, jnp.float64)
        (y, _), _, cache = model.forward(params64, _stateless(params64), (jnp.asarray(x), jnp.asarray(lengths)))
        grads, dx = model.backward(params64, cache, jnp.asarray(ct))
    want = {k: v.grad.numpy() for k, v in module.named_parameters()}
    got = interop.rnn_to_torch(grads)
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(np.asarray(dx[0]), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_lstm_state_equals_torch():
    module, _, params = _pair("LSTM", 1, False)
    layer = LSTM(4, return_state=True)
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype(np.float32)
    h0, c0 = (np.random.default_rng(k).normal(size=(1, 2, 4)).astype(np.float32) for k in (3, 4))
    _, (h_n, c_n) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    h, (h2, c) = _run(layer, params[0], (jnp.asarray(x), None, (jnp.asarray(h0[0]), jnp.asarray(c0[0]))))
    np.testing.assert_allclose(h, h_n.detach().numpy()[0], atol=1e-5)
    np.testing.assert_allclose(c, c_n.detach().numpy()[0], atol=1e-5)
    np.testing.assert_allclose(h2, h, atol=0)


def test_round_trip_to_torch():
    module, _, params = _pair("GRU", 2, True)
    back = interop.rnn_to_torch(params)
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(back[k], v.numpy())
