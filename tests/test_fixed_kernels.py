"""examples/fixed_kernels.py: fnn's Conv2D with the Sobel, Gaussian and Laplacian kernels equals
scipy's correlation of the zero-padded image, and the Sobel response of a step is the formula's."""
import importlib.util
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import fnn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))                 # the example imports _common
_spec = importlib.util.spec_from_file_location("fixed_kernels", EXAMPLES / "fixed_kernels.py")
fk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fk)
ndimage = pytest.importorskip("scipy.ndimage")
signal = pytest.importorskip("scipy.signal")

KERNELS = [(name, k) for sigma, size in [(1.0, None), (0.6, 3), (2.0, 9)]
           for name, k in fk.filter_bank(sigma, size).items()]


def _images(n=4, seed=0):
    """Real Fashion-MNIST test images where installed, else uniform noise of the same shape."""
    try:
        x, _ = fnn.data.load_dataset("fashion-mnist", "test")
        return np.asarray(x[:n], np.float64)
    except (FileNotFoundError, ValueError, OSError):
        return np.random.default_rng(seed).uniform(size=(n, 28, 28, 1))


@pytest.mark.parametrize("name, kernel", KERNELS, ids=[f"{n}-{k.shape[0]}" for n, k in KERNELS])
def test_conv2d_equals_scipy_correlation(name, kernel):
    images = _images()
    ours = fk.apply_kernel(kernel, images, jnp.float64)
    for image, y in zip(images[..., 0], ours):
        scipy_nd = ndimage.correlate(image, kernel, mode="constant", cval=0.0)
        scipy_sig = signal.correlate2d(image, kernel, mode="same", boundary="fill", fillvalue=0.0)
        np.testing.assert_allclose(y, scipy_nd, rtol=0, atol=1e-12)
        np.testing.assert_allclose(y, scipy_sig, rtol=0, atol=1e-12)


def test_kernels_are_the_formulas():
    gx, gy = fk.sobel_kernels()
    np.testing.assert_array_equal(gx, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(gy, gx.T)
    g = fk.gaussian_kernel(5, 1.3)
    assert g.sum() == pytest.approx(1.0) and g[2, 2] == g.max()
    assert g[2, 3] / g[2, 2] == pytest.approx(np.exp(-1 / (2 * 1.3 ** 2)))
    assert fk.laplacian_kernel().sum() == 0
    with pytest.raises(ValueError, match="size must be odd"):
        fk.gaussian_kernel(4, 1.0)


@pytest.mark.parametrize("column, height", [(14, 1.0), (5, 0.37), (20, -2.5)])
def test_sobel_of_a_vertical_step_is_4h_beside_the_edge(column, height):
    """x[i, j] = h for j >= c, else 0: Gx = (1 + 2 + 1) h on columns c - 1 and c, 0 elsewhere inside;
    Gy = 0 on every row that is not next to the zero padding; the Laplacian is +h, -h there."""
    image = np.zeros((1, 28, 28, 1))
    image[0, :, column:] = height
    gx, gy = fk.sobel_kernels()
    sx, sy = fk.apply_kernel(gx, image, jnp.float64)[0], fk.apply_kernel(gy, image, jnp.float64)[0]
    lap = fk.apply_kernel(fk.laplacian_kernel(), image, jnp.float64)[0]
    inside = sx[1:-1, :-1]                        # away from the zero padding at the top, bottom, right
    expected = np.zeros(27)
    expected[[column - 1, column]] = 4 * height
    np.testing.assert_allclose(inside, np.broadcast_to(expected, inside.shape), atol=1e-12)
    np.testing.assert_allclose(sy[1:-1], 0, atol=1e-12)
    np.testing.assert_allclose(lap[1:-1, column - 1], height, atol=1e-12)
    np.testing.assert_allclose(lap[1:-1, column], -height, atol=1e-12)
    np.testing.assert_allclose(np.hypot(sx, sy)[1:-1, column], 4 * abs(height), atol=1e-12)
