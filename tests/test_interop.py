"""fnn.interop: PyTorch weights in and out; torch as the oracle (outputs agree to 1e-5 in float32)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import interop
from fnn import layers as L

torch = pytest.importorskip("torch")


def _numpy(state_dict):
    return {k: v.detach().numpy() for k, v in state_dict.items()}


def _round_trip(module, to_torch, params):
    back = to_torch(*params) if isinstance(params, tuple) else to_torch(params)
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(np.asarray(back[k]), v.numpy(), err_msg=k)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in back.items()})


def test_linear():
    torch.manual_seed(0)
    module = torch.nn.Linear(5, 3)
    params = interop.linear_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    y, _ = L.Dense(3).apply(params, (), jnp.asarray(x))
    np.testing.assert_allclose(y, module(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    _round_trip(module, interop.linear_to_torch, params)


def test_conv2d():
    torch.manual_seed(0)
    module = torch.nn.Conv2d(3, 4, (3, 2), padding="valid")
    params = interop.conv2d_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 6)).astype(np.float32)      # NCHW
    y, _ = L.Conv2D(4, (3, 2), padding="VALID").apply(params, (), jnp.asarray(x.transpose(0, 2, 3, 1)))
    expected = module(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    _round_trip(module, interop.conv2d_to_torch, params)


def test_batchnorm2d():
    torch.manual_seed(0)
    module = torch.nn.BatchNorm2d(3)
    module.train()
    module(torch.randn(8, 3, 4, 4) * 2 + 1)                 # move the running statistics
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-1, 1)
    module.eval()
    params, state = interop.batchnorm_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 4)).astype(np.float32)
    y, _ = L.BatchNorm().apply(params, state, jnp.asarray(x.transpose(0, 2, 3, 1)), train=False)
    expected = module(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    back = interop.batchnorm_to_torch(params, state)
    for k in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(back[k], module.state_dict()[k].numpy())


def test_embedding():
    torch.manual_seed(0)
    module = torch.nn.Embedding(10, 4)
    params = interop.embedding_from_torch(_numpy(module.state_dict()))
    ids = np.array([[1, 9, 0], [3, 3, 2]])
    y, _ = L.Embedding(10, 4).apply(params, (), jnp.asarray(ids))
    np.testing.assert_allclose(y, module(torch.from_numpy(ids)).detach().numpy(), atol=1e-6)
    _round_trip(module, interop.embedding_to_torch, params)


@pytest.mark.parametrize("kind, make", [("LSTM", L.LSTM), ("GRU", L.GRU), ("RNN", L.SimpleRNN)])
def test_rnn_stack_bidirectional(kind, make):
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    params = interop.rnn_from_torch(_numpy(module.state_dict()))
    model = fnn.serial(L.Bidirectional(make(4, return_sequences=True)), L.Bidirectional(make(4, return_sequences=True)))
    _, _, state = model.init(jax.random.PRNGKey(0), (5, 3))
    x = np.random.default_rng(3).normal(size=(2, 5, 3)).astype(np.float32)
    y, _ = model.apply(params, state, jnp.asarray(x))
    np.testing.assert_allclose(y, module(torch.from_numpy(x))[0].detach().numpy(), atol=1e-5)
    _round_trip(module, interop.rnn_to_torch, (params,))


def test_missing_keys_and_projections_are_errors():
    with pytest.raises(KeyError, match="linear_from_torch: expected a state_dict with 'weight'"):
        interop.linear_from_torch({"bias": np.zeros(3)})
    with pytest.raises(ValueError, match="rnn_from_torch: LSTM with proj_size is not supported"):
        interop.rnn_from_torch(_numpy(torch.nn.LSTM(3, 4, proj_size=2).state_dict()))
