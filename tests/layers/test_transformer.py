"""Transformer parts: sinusoids by hand, MultiHeadAttention and the pre-LN encoder block equal to
PyTorch's (test-only oracle), stacking with masks, the decoder block's causality, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L
from fnn.layers.transformer import Pick, sinusoids

KEY = jax.random.PRNGKey(0)


def test_sinusoids_by_hand():
    pe = np.asarray(sinusoids(3, 4, jnp.float64))
    t = np.arange(3)[:, None]
    expected = np.concatenate([np.sin(t / 1.0), np.cos(t / 1.0), np.sin(t / 100.0), np.cos(t / 100.0)], 1)
    np.testing.assert_allclose(pe, expected[:, [0, 1, 2, 3]], rtol=1e-6, atol=1e-7)


def _torch_mha_params(mha, e):
    del e
    return fnn.interop.multihead_attention_from_torch({k: v.detach().numpy() for k, v in mha.state_dict().items()})


def test_multihead_attention_weights_round_trip_through_interop():
    torch = pytest.importorskip("torch")
    for kdim in (None, 6):
        mha = torch.nn.MultiheadAttention(8, 2, kdim=kdim, vdim=kdim, batch_first=True)
        theirs = {k: v.detach().numpy() for k, v in mha.state_dict().items()}
        back = fnn.interop.multihead_attention_to_torch(fnn.interop.multihead_attention_from_torch(theirs))
        assert sorted(back) == sorted(theirs)
        for k in theirs:
            np.testing.assert_array_equal(back[k], theirs[k])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multihead_attention_equals_torch(dtype):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    e, heads, tq, tk = 8, 2, 5, 7
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True).to(getattr(torch, dtype))
    q, kv = torch.randn(3, tq, e, dtype=getattr(torch, dtype)), torch.randn(3, tk, e, dtype=getattr(torch, dtype))
    pad = torch.tensor([[False] * 7, [False] * 4 + [True] * 3, [False] * 2 + [True] * 5])   # True = padding
    q.requires_grad_(True)
    out, _ = mha(q, kv, kv, key_padding_mask=pad, need_weights=False)
    out.pow(2).sum().backward()
    layer = L.MultiHeadAttention(heads, e // heads, cross=True)
    params = jax.tree.map(jnp.asarray, _torch_mha_params(mha, e))
    mask = ~pad.numpy()[:, None, None, :]
    ours = layer.apply(params, (), (jnp.asarray(q.detach().numpy()), jnp.asarray(kv.numpy()), mask))[0]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=tol, atol=tol)
    if dtype == "float64":                    # gradients through the hand-derived backward
        loss = lambda p, x: jnp.sum(fnn.manual(layer).apply(p, (), (x, jnp.asarray(kv.numpy()), mask))[0] ** 2)
        dparams, dq = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(q.detach().numpy()))
        np.testing.assert_allclose(dq, q.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dparams["W_o"].T, mha.out_proj.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dparams["W_q"].T, mha.in_proj_weight.grad.numpy()[:e], rtol=1e-10, atol=1e-12)


def test_encoder_block_equals_torch_pre_ln_layer():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    e, heads, mlp = 8, 2, 16
    ref = torch.nn.TransformerEncoderLayer(e, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True).double()
    x = torch.randn(2, 6, e, dtype=torch.float64)
    block = L.TransformerEncoderBlock(e, heads, mlp, dropout=0.0)
    _, params, state = block.init(KEY, (6, e))
    t = lambda a: jnp.asarray(a.detach().numpy())
    ln = lambda m: {"gamma": t(m.weight), "beta": t(m.bias)}
    dense = lambda m: {"W": t(m.weight).T, "b": t(m.bias)}
    params = (ln(ref.norm1), jax.tree.map(jnp.asarray, _torch_mha_params(ref.self_attn, e)), (),
              (ln(ref.norm2), dense(ref.linear1), (), (), dense(ref.linear2), ()))
    np.testing.assert_allclose(block.apply(params, state, t(x))[0], ref(x).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_stacked_encoder_with_padding_ignores_padded_positions():
    model = fnn.serial(L.LearnedPositions(), L.TransformerEncoderBlock(8, 2, 16, dropout=0.0),
                       L.TransformerEncoderBlock(8, 2, 16, dropout=0.0), Pick(0))
    _, params, state = model.init(KEY, ((6, 8), (1, 1, 6)))
    x = jax.random.normal(KEY, (2, 6, 8), jnp.float32)
    mask = (np.arange(6) < 4)[None, None, None, :].repeat(2, 0)
    y1 = model.apply(params, state, (x, mask))[0]
    y2 = model.apply(params, state, (x.at[:, 4:].set(100.0), mask))[0]      # change the padding only
    np.testing.assert_allclose(y1[:, :4], y2[:, :4], rtol=1e-5, atol=1e-5)


def test_decoder_block_is_causal():
    block = L.TransformerDecoderBlock(8, 2, 16, dropout=0.0)
    _, params, state = block.init(KEY, ((5, 8), (4, 8)))
    y = jax.random.normal(KEY, (1, 5, 8), jnp.float32)
    memory = jax.random.normal(jax.random.PRNGKey(1), (1, 4, 8), jnp.float32)
    out1 = block.apply(params, state, (y, memory))[0][0]
    out2 = block.apply(params, state, (y.at[:, 3:].set(7.0), memory))[0][0]
    np.testing.assert_allclose(out1[:, :3], out2[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out1[:, 3:], out2[:, 3:])


@pytest.mark.parametrize("make, in_shape, match", [
    (lambda: L.TransformerEncoderBlock(10, 3, 8), (5, 10),
     r"^TransformerEncoderBlock: embed_dim=10 must be divisible by num_heads=3$"),
    (lambda: L.TransformerEncoderBlock(8, 2, 8), (5, 6), r"^TransformerEncoderBlock: expected in_shape \(T, 8\)"),
    (lambda: L.TransformerDecoderBlock(8, 2, 8), (5, 8), r"^TransformerDecoderBlock: expected in_shape \(\(T, E\)"),
    (lambda: L.LearnedPositions(), (5,), r"^LearnedPositions: expected in_shape \(T, E\), got \(5,\)$"),
])
def test_bad_shapes_name_the_layer(make, in_shape, match):
    with pytest.raises(ValueError, match=match):
        make().init(KEY, in_shape)


def test_learned_positions_refuse_a_longer_sequence():
    layer = L.LearnedPositions()
    _, params, state = layer.init(KEY, (4, 3))
    with pytest.raises(ValueError, match=r"^LearnedPositions: expected x of shape \(B, T <= 4, 3\), got \(1, 5, 3\)$"):
        layer.apply(params, state, jnp.ones((1, 5, 3), jnp.float32))


def test_encoder_block_drop_path_drops_whole_branches_in_training_only():
    """drop_path = 0.5: in evaluation the block equals the block without it (same params); in
    training each example's two branches are kept (scaled by 2) or dropped whole, about half of each."""
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 5, 8), jnp.float32)
    plain, dropping = L.TransformerEncoderBlock(8, 2, 16, dropout=0.0), L.TransformerEncoderBlock(
        8, 2, 16, dropout=0.0, drop_path=0.5)
    _, params, state = plain.init(jax.random.PRNGKey(1), (5, 8))
    np.testing.assert_array_equal(dropping.apply(params, state, x)[0], plain.apply(params, state, x)[0])
    y, _, cache = dropping.forward(params, state, x, key=jax.random.PRNGKey(2), train=True)
    for scale in cache[4:]:
        assert scale.shape == (64, 1, 1) and set(np.unique(np.asarray(scale))) == {0.0, 2.0}
        assert 16 <= int(np.sum(np.asarray(scale) == 0)) <= 48
    both_dropped = np.flatnonzero((np.asarray(cache[4]) == 0) & (np.asarray(cache[5]) == 0))
    np.testing.assert_array_equal(np.asarray(y)[both_dropped], np.asarray(x)[both_dropped])
