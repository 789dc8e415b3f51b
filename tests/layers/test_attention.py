"""Attention: values against jax.nn.dot_product_attention and hand-written formulas, masks and
causal masking, fully masked rows, errors; the gradient checks of every row are in CASES."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.layers.attention import MultiHeadAttention, dot_product_attention, scaled_dot_product_attention
from fnn.layers.seq2seq_attention import AdditiveAttention, LuongAttention

KEY = jax.random.PRNGKey(0)


def _qkv(t_q=5, t_k=7, heads=2, d=4, dtype=jnp.float64):
    kq, kk, kv = jax.random.split(KEY, 3)
    return (jax.random.normal(kq, (3, t_q, heads, d), dtype), jax.random.normal(kk, (3, t_k, heads, d), dtype),
            jax.random.normal(kv, (3, t_k, heads, d), dtype))


@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"mask": "padding"}])
def test_matches_jax_dot_product_attention(options):
    q, k, v = _qkv(t_q=7)
    mask = np.arange(7)[None, None, None, :] < np.array([7, 4, 2])[:, None, None, None] \
        if options.get("mask") == "padding" else None
    ours, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=options.get("is_causal", False))
    with jax.numpy_dtype_promotion("standard"):
        theirs = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=options.get("is_causal", False))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)   # jax.nn takes its softmax in float32
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("function", [scaled_dot_product_attention, dot_product_attention])
def test_heads_first_layout_gives_the_same_arrays_transposed(function):
    """heads_first=True: (B, H, T, D) in and out, forward and backward, equal to the (B, T, H, D)
    record's arrays with the T and H axes swapped (float64, a padding mask)."""
    q, k, v = _qkv()
    dout = jnp.cos(jnp.arange(3 * 5 * 2 * 4, dtype=jnp.float64)).reshape(3, 5, 2, 4)
    mask = np.arange(7)[None, None, None, :] < np.array([7, 4, 2])[:, None, None, None]
    out, p = function(q, k, v, mask=mask)
    grads = function.backward(q, k, v, p, dout, out=out)
    first, swap = function._replace(heads_first=True), lambda a: jnp.swapaxes(a, 1, 2)   # noqa: E731
    out_h, p_h = first(*map(swap, (q, k, v)), mask=mask)
    grads_h = first.backward(*map(swap, (q, k, v)), p_h, swap(dout), out=out_h)
    np.testing.assert_allclose(out_h, swap(out), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(p_h, p, rtol=1e-13, atol=1e-15)
    for a, b in zip(grads_h, grads):
        np.testing.assert_allclose(a, swap(b), rtol=1e-12, atol=1e-14)


def test_plain_dot_product_has_no_scale():
    q, k, v = _qkv()
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    p = jnp.exp(s - s.max(-1, keepdims=True))
    p = p / p.sum(-1, keepdims=True)
    np.testing.assert_allclose(dot_product_attention(q, k, v)[1], p, rtol=1e-12)


def test_masked_keys_get_zero_weight_and_zero_gradient():
    q, k, v = _qkv()
    mask = np.ones((3, 1, 5, 7), bool)
    mask[:, :, :, 5:] = False                   # the last two keys are padding
    mask[1, :, 2, :] = False                    # one query sees nothing at all
    out, p = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(p[..., 5:] == 0) and np.all(p[1, :, 2] == 0) and np.all(out[1, 2] == 0)
    dq, dk, dv = scaled_dot_product_attention.backward(q, k, v, p, jnp.ones_like(out))
    assert np.all(dk[:, 5:] == 0) and np.all(dv[:, 5:] == 0) and np.all(dq[1, 2] == 0)


def test_causal_with_longer_keys_sees_the_past_only():
    q, k, v = _qkv(t_q=2, t_k=5)
    _, p = scaled_dot_product_attention(q, k, v, causal=True)
    assert np.all(p[:, :, 0, 4] == 0) and np.all(p[:, :, 0, :4] > 0) and np.all(p[:, :, 1] > 0)


def test_multihead_hand_computed_value():
    """One head, identity projections, zero biases: y = softmax(x x^T / sqrt(2)) x."""
    layer = MultiHeadAttention(1, 2)
    x = jnp.array([[[1.0, 0.0], [0.0, 1.0]]], jnp.float64)
    eye = jnp.eye(2, dtype=jnp.float64)
    params = {n: eye for n in ("W_q", "W_k", "W_v", "W_o")} | {n: jnp.zeros(2) for n in ("b_q", "b_k", "b_v", "b_o")}
    a = np.exp(1 / np.sqrt(2))
    expected = np.array([[a, 1], [1, a]]) / (a + 1)
    np.testing.assert_allclose(layer.apply(params, (), x)[0][0], expected, rtol=1e-12)


def test_manual_multihead_with_mask_trains_under_jax_grad():
    layer = MultiHeadAttention(2, 3, return_weights=False)
    _, params, state = layer.init(KEY, (6, 4))
    params = fnn.cast(params, jnp.float64)
    x = jax.random.normal(KEY, (3, 6, 4), jnp.float64)
    mask = np.arange(6)[None, None, None, :] < np.array([6, 3, 1])[:, None, None, None]
    loss = lambda lay: (lambda p, xx: jnp.sum(lay.apply(p, state, (xx, mask))[0] ** 2))
    g_auto = jax.grad(loss(layer), argnums=(0, 1))(params, x)
    g_hand = jax.grad(loss(fnn.manual(layer)), argnums=(0, 1))(params, x)
    for a, h in zip(jax.tree.leaves(g_auto), jax.tree.leaves(g_hand)):
        np.testing.assert_allclose(h, a, rtol=1e-10, atol=1e-12)


def test_weights_output_carries_its_own_gradient():
    layer = MultiHeadAttention(2, 2, return_weights=True)
    _, params, state = layer.init(KEY, (4, 3))
    params = fnn.cast(params, jnp.float64)
    x = jax.random.normal(KEY, (2, 4, 3), jnp.float64)
    f = lambda lay: (lambda p: sum(jnp.sum(jnp.sin(t)) for t in lay.apply(p, state, x)[0]))
    auto, hand = jax.grad(f(layer))(params), jax.grad(f(fnn.manual(layer)))(params)
    for a, h in zip(jax.tree.leaves(auto), jax.tree.leaves(hand)):
        np.testing.assert_allclose(h, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: scaled_dot_product_attention(*_qkv()[:2], _qkv(t_k=6)[2]), r"^scaled_dot_product_attention: expected q"),
    (lambda: scaled_dot_product_attention._replace(heads_first=True)(*_qkv()),
     r"^scaled_dot_product_attention: expected q \(B, H, T_q, D\), k \(B, H, T_k, D\)"),
    (lambda: scaled_dot_product_attention(*_qkv(), mask=np.ones((2, 5), bool)),
     r"^scaled_dot_product_attention: mask of shape \(2, 5\) does not broadcast to "
     r"\(B, H, T_q, T_k\) = \(3, 2, 5, 7\)$"),
    (lambda: MultiHeadAttention(0, 4), r"^MultiHeadAttention: num_heads must be a positive int, got 0$"),
    (lambda: MultiHeadAttention(2, 4).init(KEY, (32, 5, 8)), r"^MultiHeadAttention: expected in_shape \(T, E\)"),
    (lambda: MultiHeadAttention(2, 4, cross=True).apply(
        MultiHeadAttention(2, 4, cross=True).init(KEY, ((3, 4), (5, 4)))[1], (), jnp.ones((1, 3, 4), jnp.float32)),
     r"^MultiHeadAttention: expected \(query, keys_values\)"),
    (lambda: AdditiveAttention(3).apply(AdditiveAttention(3).init(KEY, ((3, 4), (5, 2)))[1], (),
                                        (jnp.ones((1, 3, 5), jnp.float32), jnp.ones((1, 5, 2), jnp.float32))),
     r"^AdditiveAttention: expected inputs"),
])
def test_bad_input_names_the_function_or_layer(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()



def test_incremental_decoding_equals_the_causal_layer():
    from fnn.layers.attention import decode_cache, decode_step
    layer = MultiHeadAttention(2, 3, causal=True)
    _, params, state = layer.init(KEY, (6, 4))
    x = jax.random.normal(KEY, (2, 6, 4), jnp.float32)
    full = layer.apply(params, state, x)[0]
    cache = decode_cache(2, 8, 2, 3)
    step = jax.jit(decode_step)
    for t in range(6):
        y_t, cache = step(params, cache, x[:, t:t + 1])
        np.testing.assert_allclose(y_t[:, 0], full[:, t], rtol=1e-5, atol=1e-6)
    assert int(cache.length) == 6


def test_luong_general_hand_computed_value():
    """One query q = [1, 0], two memory slots; W = I: scores q.m_k = [2, 0], P = softmax = [0.881, 0.119]."""
    layer = LuongAttention(return_weights=True)
    params = {"W": jnp.eye(2)}
    q, m = jnp.array([[[1.0, 0.0]]]), jnp.array([[[2.0, 1.0], [0.0, 3.0]]])
    (c, p), _, _ = layer.forward(params, (), (q, m))
    weights = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    np.testing.assert_allclose(p[0, 0], weights, rtol=1e-6)
    np.testing.assert_allclose(c[0, 0], weights @ np.array([[2.0, 1.0], [0.0, 3.0]]), rtol=1e-6)
    assert layer.init(KEY, ((1, 2), (2, 2)))[0] == (1, 2)


def test_luong_backward_with_weights_out_matches_vjp():
    layer = LuongAttention(return_weights=True)
    _, params, _ = layer.init(KEY, ((4, 3), (5, 2)))
    params = fnn.cast(params, jnp.float64)
    q, m = (jax.random.normal(k, s, jnp.float64) for k, s in zip(jax.random.split(KEY), [(2, 4, 3), (2, 5, 2)]))
    mask = np.arange(5)[None, None, :] < np.array([5, 3])[:, None, None]
    (c, p), _, cache = layer.forward(params, (), (q, m, mask))
    dc, dp = jnp.cos(c), jnp.sin(p)
    dparams, (dq, dm, _) = layer.backward(params, cache, (dc, dp))
    _, vjp = jax.vjp(lambda pr, a, b: layer.forward(pr, (), (a, b, mask))[0], params, q, m)
    auto = vjp((dc, dp))
    for ours, theirs in ((dparams["W"], auto[0]["W"]), (dq, auto[1]), (dm, auto[2])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"^LuongAttention: expected the memory of shape \(B, T, 2\), got \(2, 5, 3\)"):
        layer.forward(params, (), (q, jnp.ones((2, 5, 3), jnp.float64)))
