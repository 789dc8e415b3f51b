"""Pictures of what `fnn.inspect` measures, written as PNGs (matplotlib, imported when called).

Each function takes arrays (NumPy or JAX), draws them with titles, axes and colour
bars, writes `path` and returns it as a Path.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or a one-line `MissingDependency` naming the extra."""
    from .._optional import require
    matplotlib = require("matplotlib", extra="plot", purpose="drawing fnn.inspect's pictures")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", extra="plot", purpose="drawing fnn.inspect's pictures")


def _save(fig, path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)


def _gray(image) -> np.ndarray:
    """(H, W, C) or (H, W) -> (H, W): a single channel as is, else the channel mean."""
    image = np.asarray(image, dtype=np.float32)
    return image if image.ndim == 2 else image.mean(axis=-1)


def _grid(n: int, columns: int) -> tuple[int, int]:
    columns = min(columns, n)
    return math.ceil(n / columns), columns


def plot_grad_cam(images, cams, path, *, titles=None, alpha: float = 0.5, label: str = "Grad-CAM") -> Path:
    """Each image (B, H, W, C) in grey with its map (B, H, W) in [0, 1] (Grad-CAM, attention
    rollout) in colour over it; `label` names the colour bar."""
    plt = _pyplot()
    images, cams = np.asarray(images), np.asarray(cams)
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images) + 0.6, 2.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(_gray(images[i]), cmap="gray")
        shown = ax.imshow(cams[i], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        ax.set_title(titles[i] if titles else f"image {i}", fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=list(axes[0]), fraction=0.02, label=label)
    return _save(fig, path)


def plot_attributions(images, maps: dict, path, *, titles=None) -> Path:
    """A grid: one row per image, the input and then one column per map name ({name: (B, H, W)});
    signed maps use a diverging scale centred on 0, others [0, max]."""
    plt = _pyplot()
    images = np.asarray(images)
    cols = 1 + len(maps)
    fig, axes = plt.subplots(len(images), cols, figsize=(2.3 * cols, 2.2 * len(images)), squeeze=False)
    for i in range(len(images)):
        axes[i, 0].imshow(_gray(images[i]), cmap="gray")
        axes[i, 0].set_title(titles[i] if titles else "input", fontsize=8)
        for j, (name, values) in enumerate(maps.items(), start=1):
            m = np.asarray(values[i], dtype=np.float32)
            m = m if m.ndim == 2 else m.sum(axis=-1)
            bound = float(np.abs(m).max()) or 1.0
            signed = m.min() < 0
            shown = axes[i, j].imshow(m, cmap="RdBu_r" if signed else "inferno",
                                      vmin=-bound if signed else 0, vmax=bound)
            axes[i, j].set_title(name, fontsize=8)
            fig.colorbar(shown, ax=axes[i, j], fraction=0.046, pad=0.02)
    for ax in axes.flat:
        ax.axis("off")
    return _save(fig, path)


def _mosaic(tiles: np.ndarray, columns: int) -> np.ndarray:
    """Tiles (K, h, w) as one (rows*(h+1)-1, cols*(w+1)-1) image, row-major, NaN in the 1-pixel gaps."""
    k, h, w = tiles.shape
    rows, cols = _grid(k, columns)
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tile
    return canvas


def _plot_mosaic(tiles, path, *, title, columns, cmap, lo, hi, label) -> Path:
    """One imshow of all tiles (a grid of subplots costs ~0.1 s each to draw), tile k at row k // cols."""
    plt = _pyplot()
    canvas = np.ma.masked_invalid(_mosaic(tiles, columns))          # the gaps stay blank
    rows, cols = _grid(len(tiles), columns)
    fig, ax = plt.subplots(figsize=(1.2 * cols + 1.2, 1.2 * rows + 0.6))
    shown = ax.imshow(canvas, cmap=cmap, vmin=lo, vmax=hi)
    ax.set_title(f"{title}\n(row-major, {cols} per row)", fontsize=9)
    ax.axis("off")
    fig.colorbar(shown, ax=ax, fraction=0.03, label=label)
    return _save(fig, path)


def plot_filters(kernels, path, *, title: str = "filters", columns: int = 8) -> Path:
    """Kernels (K, kh, kw, C_in) as one grid image (channel mean), one shared diverging scale."""
    tiles = np.stack([_gray(k) for k in np.asarray(kernels, dtype=np.float32)])
    bound = float(np.abs(tiles).max()) or 1.0
    return _plot_mosaic(tiles, path, title=title, columns=columns, cmap="RdBu_r", lo=-bound, hi=bound,
                        label="weight")


def plot_activation_maps(maps, path, *, title: str = "activation maps", columns: int = 8) -> Path:
    """One example's feature maps (h, w, K) as one grid image, one colour bar over all channels."""
    tiles = np.moveaxis(np.asarray(maps, dtype=np.float32), -1, 0)
    lo, hi = float(tiles.min()), float(tiles.max()) or 1.0
    return _plot_mosaic(tiles, path, title=title, columns=columns, cmap="viridis", lo=lo, hi=hi,
                        label="activation")


def plot_gradient_norms(profiles: dict, path, *, title: str = "gradient norm by depth",
                        ylabel: str = "||dL/dW||") -> Path:
    """Gradient norm per layer (input side = depth 1) for each {label: [norm, ...]}, log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, norms in profiles.items():
        norms = np.asarray(norms, dtype=np.float64)
        ax.plot(np.arange(1, len(norms) + 1), np.maximum(norms, 1e-30), marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_activation_functions(path, activations=None, *, span: float = 4.0) -> Path:
    """fnn's activation records, values left and derivatives (their own hand-derived
    `grad`, not autodiff) right, on x in [-span, span]."""
    import jax.numpy as jnp

    from .. import activations as A
    plt = _pyplot()
    activations = activations or (A.sigmoid, A.tanh, A.relu, A.leaky_relu.partial(alpha=0.1), A.elu,
                                  A.gelu, A.swish, A.softplus)
    x = jnp.linspace(-span, span, 401)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for act in activations:
        label = repr(act).removeprefix("Activation(").removesuffix(")")
        left.plot(x, act(x), label=label)
        right.plot(x, act.grad(x, jnp.ones_like(x)), label=label)
    for ax, what in ((left, "f(x)"), (right, "f'(x)")):
        ax.set_xlabel("x")
        ax.set_ylabel(what)
        ax.set_title(f"activation {what}")
        ax.grid(alpha=0.3)
        ax.axhline(0, color="k", lw=0.5)
    left.legend(fontsize=8)
    return _save(fig, path)


def plot_images(rows: dict, path, *, title: str = "") -> Path:
    """A grid of images: one row per {name: (N, H, W, C)} entry, values in [0, 1]."""
    plt = _pyplot()
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.4 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(_gray(images[c]), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_embedding(points, labels, path, *, class_names=None, title: str = "embedding") -> Path:
    """2-D points (N, 2) coloured by integer class label (N,), with a legend of class names."""
    plt = _pyplot()
    points, labels = np.asarray(points), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for c in np.unique(labels):
        chosen = labels == c
        name = class_names[int(c)] if class_names else str(int(c))
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.6, label=name)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.set_title(title)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_attention(weights, path, *, queries=None, keys=None, title: str = "attention weights") -> Path:
    """A heat map of one attention matrix (T_q, T_k) (rows: queries, columns: keys), with the
    query and key tokens as tick labels when given, and a colour bar; as the material draws it."""
    plt = _pyplot()
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2:
        raise ValueError(f"plot_attention: expected weights of shape (T_q, T_k), got {weights.shape}")
    fig, ax = plt.subplots(figsize=(1.0 + 0.35 * weights.shape[1], 1.0 + 0.35 * weights.shape[0]))
    image = ax.imshow(weights, cmap="viridis", vmin=0, aspect="auto")
    for axis, labels, setter in ((0, queries, ax.set_yticks), (1, keys, ax.set_xticks)):
        if labels is not None:
            setter(range(weights.shape[axis]), [str(t) for t in labels])
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, path)


def plot_token_maps(image, maps, path, *, row_titles, title: str = "attention") -> Path:
    """One image (H, W, C) in grey under each map of `maps` (rows, columns, h, w), a coarse grid
    (a ViT's patches) stretched over the whole image; one colour scale from 0 for all maps."""
    plt = _pyplot()
    image, maps = _gray(image), np.asarray(maps, dtype=np.float32)
    rows, cols = maps.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols + 0.8, 2.0 * rows + 0.3), squeeze=False)
    extent = (-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5)
    top = float(maps.max()) or 1.0
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(image, cmap="gray")
            shown = ax.imshow(maps[r, c], cmap="jet", alpha=0.5, extent=extent, vmin=0, vmax=top)
            ax.set_title(f"head {c}", fontsize=7)
            ax.axis("off")
        axes[r, 0].text(-0.06, 0.5, row_titles[r], rotation=90, transform=axes[r, 0].transAxes, ha="right",
                        va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.03, label="mean attention received")
    return _save(fig, path)


def plot_gates(gates: dict, path, *, title: str = "gates") -> Path:
    """Gate activations of one sequence, {name: (T, H)}: one heat map per gate, time steps
    across and units down; sigmoid gates on [0, 1], others on [-1, 1]."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(gates), figsize=(3.6 * len(gates) + 0.6, 3.6), squeeze=False,
                             layout="constrained")
    for ax, (name, values) in zip(axes[0], gates.items()):
        values = np.asarray(values, dtype=np.float32).T
        low = 0.0 if values.min() >= 0 else -1.0
        shown = ax.imshow(values, cmap="viridis", vmin=low, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time step")
        ax.set_ylabel("unit")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_time_saliency(images, saliency, per_step, path, *, titles=None) -> Path:
    """Per image: the input (B, H, W, C), |saliency| per pixel (B, H, W), and the saliency
    summed over each time step's pixels (B, T) as bars, one per step, top to bottom."""
    plt = _pyplot()
    images, saliency, per_step = (np.asarray(a, dtype=np.float32) for a in (images, saliency, per_step))
    fig, axes = plt.subplots(len(images), 3, figsize=(8.5, 2.6 * len(images)), squeeze=False, layout="constrained")
    for i, (left, middle, right) in enumerate(axes):
        left.imshow(_gray(images[i]), cmap="gray")
        left.set_title(titles[i] if titles else "input", fontsize=8)
        shown = middle.imshow(saliency[i], cmap="inferno", vmin=0)
        middle.set_title("|dy/dx| per pixel", fontsize=8)
        fig.colorbar(shown, ax=middle, fraction=0.046, pad=0.02)
        right.barh(np.arange(per_step.shape[1]), per_step[i], color="tab:orange")
        right.set_ylim(per_step.shape[1] - 0.5, -0.5)
        right.set_xlabel("sum |dy/dx| per step", fontsize=8)
        right.set_ylabel("time step", fontsize=8)
        left.axis("off")
        middle.axis("off")
    return _save(fig, path)


def plot_batchnorm_histograms(pairs: dict, path, *, bins: int = 40) -> Path:
    """One row per BatchNorm ({path: (input, output)}, arrays of any shape): the histogram of all
    values of its input and of its output, each titled with their mean and std."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(pairs), 2, figsize=(8, 1.9 * len(pairs)), squeeze=False)
    for row, (name, arrays) in enumerate(pairs.items()):
        for col, (side, values) in enumerate(zip(("input", "output"), arrays)):
            values = np.asarray(values).ravel()
            ax = axes[row, col]
            ax.hist(values, bins=bins, color="tab:blue" if col == 0 else "tab:orange")
            ax.set_title(f"{side}: mean {values.mean():.2f}, std {values.std():.2f}", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[row, 0].set_ylabel(name, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
