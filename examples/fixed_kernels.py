"""Fixed-kernel convolutions on Fashion-MNIST: Sobel x / y and the gradient magnitude, a Gaussian
blur and a Laplacian, each run by fnn's own `L.Conv2D` with its weights set by hand to the kernel
(no bias, padding="SAME", i.e. the image zero-padded), as a grid: one row per test image, one
column for the input and one per filter.

    python examples/fixed_kernels.py [--images 6] [--sigma 1.0] [--size 7] [--out runs/fixed_kernels]

Conv2D is a cross-correlation (no kernel flip), as scipy.ndimage.correlate: Sobel x is
(1, 2, 1)^T (-1, 0, 1), positive where the image gets brighter to the right, and a vertical step
of height h gives 4h on the two columns beside it (tests/test_fixed_kernels.py checks both).
Signed responses are drawn red (positive) / blue (negative), scaled per image.
"""
import math

import _common
import jax.numpy as jnp
import numpy as np

from fnn import layers as L


def sobel_kernels() -> tuple[np.ndarray, np.ndarray]:
    """(Sobel x, Sobel y), 3x3: smoothing (1, 2, 1) across times the central difference (-1, 0, 1) along."""
    gx = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    return gx, gx.T


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """g[i, j] = exp(-((i - c)^2 + (j - c)^2) / (2 sigma^2)) / Z, c = (size - 1) / 2, summing to 1."""
    if size < 1 or size % 2 == 0 or sigma <= 0:
        raise ValueError(f"gaussian_kernel: size must be odd and positive and sigma > 0, got {size}, {sigma}")
    d = np.arange(size) - (size - 1) / 2
    g = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def laplacian_kernel() -> np.ndarray:
    """The 5-point Laplacian: x[i-1, j] + x[i+1, j] + x[i, j-1] + x[i, j+1] - 4 x[i, j]."""
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def filter_bank(sigma: float, size: int | None = None) -> dict[str, np.ndarray]:
    """The four kernels by name; the Gaussian is size x size (default 2 ceil(3 sigma) + 1)."""
    size = size or 2 * math.ceil(3 * sigma) + 1
    gx, gy = sobel_kernels()
    return {"Sobel x": gx, "Sobel y": gy, f"Gaussian s={sigma:g}": gaussian_kernel(size, sigma),
            "Laplacian": laplacian_kernel()}


def fixed_conv(kernel: np.ndarray, dtype=jnp.float32):
    """A one-in, one-out `L.Conv2D` (SAME, no bias) and its params: W[:, :, 0, 0] = kernel."""
    layer = L.Conv2D(1, kernel.shape, padding="SAME", use_bias=False, name="fixed")
    return layer, {"W": jnp.asarray(kernel, dtype)[:, :, None, None]}


def apply_kernel(kernel: np.ndarray, images, dtype=jnp.float32) -> np.ndarray:
    """images (N, H, W, 1) correlated with `kernel` through fnn's Conv2D -> (N, H, W)."""
    layer, params = fixed_conv(kernel, dtype)
    y, _ = layer.apply(params, (), jnp.asarray(images, dtype))
    return np.asarray(y[..., 0])


def responses(images, sigma: float, size: int | None) -> dict[str, np.ndarray]:
    """Each filter's response, plus the gradient magnitude sqrt(gx^2 + gy^2) after Sobel y."""
    out = {name: apply_kernel(k, images) for name, k in filter_bank(sigma, size).items()}
    magnitude = np.hypot(out["Sobel x"], out["Sobel y"])
    keys = list(out)
    return {**{k: out[k] for k in keys[:2]}, "|gradient|": magnitude, **{k: out[k] for k in keys[2:]}}


def draw(images, maps: dict[str, np.ndarray], path):
    plt = _common.require("matplotlib.pyplot", purpose="the filter grid")
    plt.switch_backend("Agg")
    columns = {"input": images[..., 0], **maps}
    fig, axes = plt.subplots(len(images), len(columns), figsize=(1.6 * len(columns), 1.6 * len(images)),
                             squeeze=False)
    for c, (name, column) in enumerate(columns.items()):
        axes[0, c].set_title(name, fontsize=8)
        for r, image in enumerate(column):
            signed = image.min() < 0
            bound = np.abs(image).max() or 1.0
            axes[r, c].imshow(image, cmap="RdBu_r" if signed else "gray", vmin=-bound if signed else 0,
                              vmax=bound if signed else max(image.max(), 1e-12))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = _common.parser(__doc__, out="runs/fixed_kernels", small="python examples/fixed_kernels.py")
    parser.add_argument("--images", type=int, default=6, help="test images, drawn at random (default: 6)")
    parser.add_argument("--sigma", type=float, default=1.0, help="the Gaussian's standard deviation, in pixels "
                        "(default: 1.0)")
    parser.add_argument("--size", type=int, default=None, help="the Gaussian kernel's (odd) size "
                        "(default: 2 ceil(3 sigma) + 1)")
    args = parser.parse_args()
    _common.check_budget(limit=args.images)
    if args.sigma <= 0 or (args.size is not None and (args.size < 1 or args.size % 2 == 0)):
        _common.refuse(f"--sigma {args.sigma} --size {args.size}: sigma must be > 0 and size odd and positive")
    _, (x_test, y_test) = _common.load_fashion_mnist(0)
    chosen = np.sort(np.random.default_rng(args.seed).choice(len(x_test), args.images, replace=False))
    images = np.asarray(x_test[chosen], np.float32)
    maps = responses(images, args.sigma, args.size)
    for name, m in maps.items():
        print(f"{name:14s} mean |response| {np.abs(m).mean():.4f}   range [{m.min():+.3f}, {m.max():+.3f}]")
    blur = maps[next(k for k in maps if k.startswith("Gaussian"))]
    path = _common.out_dir(args) / "fixed_kernels.png"
    draw(images, maps, path)
    print(f"test images {chosen.tolist()} (classes {np.asarray(y_test)[chosen].tolist()}); wrote {path}")
    _common.result(images=args.images, mean_gradient=float(maps["|gradient|"].mean()),
                   mean_abs_laplacian=float(np.abs(maps["Laplacian"]).mean()),
                   blur_rmse=float(np.sqrt(((blur - images[..., 0]) ** 2).mean())))


if __name__ == "__main__":
    _common.run(main)
