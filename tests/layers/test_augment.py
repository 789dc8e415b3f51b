"""RandomFlip and RandomTranslate: identity in evaluation; per-example transforms in
training, checked against a NumPy loop over the examples (the independent oracle)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import layers as L

X = jnp.asarray(np.random.RandomState(0).randn(16, 5, 6, 2))


def numpy_shift(image, s, t):
    """image moved down by s and right by t pixels, zero-filled."""
    out = np.zeros_like(image)
    H, W = image.shape[:2]
    for i in range(H):
        for j in range(W):
            if 0 <= i - s < H and 0 <= j - t < W:
                out[i, j] = image[i - s, j - t]
    return out


@pytest.mark.parametrize("layer", [L.RandomFlip(), L.RandomTranslate(2)], ids=["flip", "translate"])
def test_evaluation_is_identity(layer):
    np.testing.assert_array_equal(layer.apply((), (), X)[0], X)


def test_flip_mirrors_some_images_and_keeps_the_rest():
    y, _ = L.RandomFlip().apply((), (), X, key=jax.random.PRNGKey(0), train=True)
    y, x = np.asarray(y), np.asarray(X)
    flipped = [np.array_equal(y[b], x[b, :, ::-1]) for b in range(len(x))]
    kept = [np.array_equal(y[b], x[b]) for b in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < len(x)                 # 16 fair coins: both outcomes occur


def test_translate_is_a_zero_filled_shift_within_the_bound():
    max_shift = 2
    y, _ = L.RandomTranslate(max_shift).apply((), (), X, key=jax.random.PRNGKey(1), train=True)
    y, x = np.asarray(y), np.asarray(X)
    seen = set()
    for b in range(len(x)):
        shifts = [(s, t) for s in range(-max_shift, max_shift + 1) for t in range(-max_shift, max_shift + 1)
                  if np.allclose(y[b], numpy_shift(x[b], s, t))]
        assert len(shifts) == 1, f"example {b}: not one shift of the input"
        seen.add(shifts[0])
    assert len(seen) > 3                              # the shifts differ between examples


@pytest.mark.parametrize("layer", [L.RandomFlip(), L.RandomTranslate(1)], ids=["flip", "translate"])
def test_backward_is_the_transpose(layer):
    """<T x, dy> == <x, T^T dy> for the drawn transform T."""
    y, _, cache = layer.forward((), (), X, key=jax.random.PRNGKey(2), train=True)
    dy = jnp.asarray(np.random.RandomState(3).randn(*X.shape))
    _, dx = layer.backward((), cache, dy)
    np.testing.assert_allclose(jnp.vdot(y, dy), jnp.vdot(X, dx), rtol=1e-12)


@pytest.mark.parametrize("make, error", [
    (lambda: L.RandomFlip(1.5), r"RandomFlip: probability must lie in \[0, 1\], got 1.5"),
    (lambda: L.RandomTranslate(-1), "RandomTranslate: max_shift must be a non-negative int, got -1"),
    (lambda: L.RandomTranslate(1).init(None, (28, 28)), r"RandomTranslate: expected in_shape \(H, W, C\)"),
    (lambda: L.RandomFlip().apply((), (), jnp.ones((2, 3)), key=jax.random.PRNGKey(0), train=True),
     r"RandomFlip: expected images of shape \(B, H, W, C\), got \(2, 3\)"),
    (lambda: L.RandomTranslate(1).apply((), (), X, train=True), "RandomTranslate: training mode needs a PRNG key"),
])
def test_bad_input_is_a_clear_error(make, error):
    with pytest.raises(ValueError, match=error):
        make()
