"""Blockwise (FlashAttention-style) attention: equal to the plain one forward and backward for any
block size, masks and causality; memory linear in T (XLA's own account); errors. The float64
gradient checks against autodiff and finite differences are its CASES rows."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.layers import blockwise_attention, scaled_dot_product_attention
from fnn.layers.attention import MultiHeadAttention

KEY = jax.random.PRNGKey(0)
PADDING = np.arange(37)[None, None, None, :] < np.array([37, 20, 1])[:, None, None, None]     # (B, 1, 1, T_k)
ROWS = [  # (T_q, T_k, block, options)
    (37, 37, 8, {}), (37, 37, 37, {"causal": True}), (9, 37, 5, {"causal": True}), (37, 37, 16, {"mask": PADDING}),
    (37, 37, 6, {"mask": PADDING, "causal": True}), (1, 37, 64, {}),
]


@pytest.mark.parametrize("t_q, t_k, block, options", ROWS)
def test_equals_plain_attention_forward_and_backward(t_q, t_k, block, options):
    kq, kk, kv, kg = jax.random.split(KEY, 4)
    q, k, v = (jax.random.normal(key, (3, t, 2, 8), jnp.float64) for key, t in ((kq, t_q), (kk, t_k), (kv, t_k)))
    dout = jax.random.normal(kg, q.shape, jnp.float64)
    attend = blockwise_attention._replace(block_size=block)
    out, lse = attend(q, k, v, **options)
    plain_out, p = scaled_dot_product_attention(q, k, v, **options)
    np.testing.assert_allclose(out, plain_out, rtol=1e-12, atol=1e-12)
    for ours, plain in zip(attend.backward(q, k, v, lse, dout, out, **options),
                           scaled_dot_product_attention.backward(q, k, v, p, dout)):
        np.testing.assert_allclose(ours, plain, rtol=1e-11, atol=1e-12)


def test_memory_grows_linearly_not_quadratically():
    """XLA's compiled account of the forward+backward (arguments, outputs, temporaries) at T and 4T."""
    def peak(fn, t):
        q = jnp.zeros((2, t, 2, 16), jnp.float32)
        stats = jax.jit(fn).lower(q, q, q, q).compile().memory_analysis()
        if stats is None:
            pytest.skip("this backend gives no memory analysis")
        return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes

    def blockwise(q, k, v, g):
        out, lse = blockwise_attention(q, k, v)
        return blockwise_attention.backward(q, k, v, lse, g, out)

    def plain(q, k, v, g):
        out, p = scaled_dot_product_attention(q, k, v)
        return scaled_dot_product_attention.backward(q, k, v, p, g, out=out)
    assert peak(blockwise, 2048) / peak(blockwise, 512) < 5          # linear: 4x; quadratic would be 16x
    assert peak(plain, 2048) / peak(plain, 512) > 10


def test_multihead_blockwise_equals_plain():
    plain, blockwise = MultiHeadAttention(2, 4, causal=True), MultiHeadAttention(2, 4, causal=True, impl="blockwise",
                                                                                block_size=3)
    _, params, state = plain.init(KEY, (7, 6))
    params = fnn.cast(params, jnp.float64)
    x = jax.random.normal(KEY, (2, 7, 6), jnp.float64)
    loss = lambda layer: (lambda p, x: jnp.sum(jnp.sin(layer.apply(p, state, x)[0])))
    np.testing.assert_allclose(blockwise.apply(params, state, x)[0], plain.apply(params, state, x)[0], atol=1e-12)
    ours = jax.grad(loss(fnn.manual(blockwise)), argnums=(0, 1))(params, x)
    theirs = jax.grad(loss(plain), argnums=(0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: MultiHeadAttention(2, 4, impl="flash"), r"^MultiHeadAttention: impl must be 'plain' or 'blockwise', "
                                                     r"got 'flash'$"),
    (lambda: MultiHeadAttention(2, 4, impl="blockwise", return_weights=True),
     r"^MultiHeadAttention: impl='blockwise' needs a positive int block_size and return_weights=False"),
    (lambda: MultiHeadAttention(2, 4, impl="blockwise", block_size=0), r"block_size=0"),
    (lambda: blockwise_attention(*(jnp.ones((2, 5, 2, 4)),) * 3, mask=np.ones((3, 5), bool)),
     r"^blockwise_attention: mask of shape \(3, 5\) does not broadcast to \(B, H, T_q, T_k\) = \(2, 2, 5, 5\)$"),
    (lambda: blockwise_attention(jnp.ones((2, 5, 2, 4)), jnp.ones((2, 5, 2, 3)), jnp.ones((2, 5, 2, 4))),
     r"^blockwise_attention: expected q \(B, T_q, H, D\)"),
])
def test_errors_name_the_function(make, match):
    with pytest.raises(ValueError, match=match):
        make()
