"""A detection task from a classification set: items pasted on empty canvases, with their boxes.

    x, boxes, classes = canvases(key, images, labels, 1000)   # (N, 64, 64, 1), (N, 3, 4), (N, 3)

Each canvas holds 1 to `max_objects` items, each in its own quadrant (a random one), at a
random scale and position that may spill a few pixels into the next quadrant; overlapping
pixels keep the brighter value. A box is the item's tight box (its pixels above `threshold`)
in canvas pixels, (x1, y1, x2, y2) with x2, y2 exclusive edges. Unused slots have class -1
and box 0. The same key gives the same canvases.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

Array = jax.Array
SPILL = 4          # pixels an item may reach past its quadrant


def tight_boxes(images, threshold: float = 0.1) -> np.ndarray:
    """(M, 4) float32 (x1, y1, x2, y2) of each image's pixels above `threshold`, in pixel edges;
    an empty image gets its whole frame. images: (M, H, W) or (M, H, W, 1)."""
    images = np.asarray(images).reshape(len(images), *np.shape(images)[1:3])
    on = images > threshold
    rows, cols = on.any(axis=2), on.any(axis=1)
    height, width = images.shape[1:]

    def span(mask, size):
        first = np.where(mask.any(1), mask.argmax(1), 0)
        last = np.where(mask.any(1), size - mask[:, ::-1].argmax(1), size)
        return first, last
    (y1, y2), (x1, x2) = span(rows, height), span(cols, width)
    return np.stack([x1, y1, x2, y2], 1).astype(np.float32)


def _place(u: Array, side: float, size: int, max_objects: int, scale: tuple[float, float]):
    """Per slot from uniforms u (4 + 3 max_objects,): scale s, top-left corner (x0, y0) in canvas pixels."""
    n = max_objects
    quadrant = jnp.argsort(u[:4])[:n]                                 # n distinct quadrants, in random order
    s = scale[0] + (scale[1] - scale[0]) * u[4:4 + n]
    half, extent = size / 2, s * side
    origin = jnp.stack([quadrant % 2, quadrant // 2], 1).astype(jnp.float32) * half    # (n, 2): x, y
    low = jnp.maximum(origin - SPILL, 0)
    high = jnp.minimum(origin + half + SPILL, size) - extent[:, None]
    return s, low + u[4 + n:].reshape(n, 2) * jnp.maximum(high - low, 0)


def _paint(items, s, corner, present, size: int) -> Array:
    """The canvas (size, size): each present item resampled (bilinear) at scale s from `corner`."""
    centers = jnp.arange(size, dtype=jnp.float32) + 0.5

    def one(item, s, corner):
        u = (centers - corner[0]) / s - 0.5                     # source column of each canvas column
        v = (centers - corner[1]) / s - 0.5
        rows, cols = jnp.meshgrid(v, u, indexing="ij")
        return map_coordinates(item, [rows, cols], order=1, mode="constant", cval=0.0)
    layers = jax.vmap(one)(items, s, corner) * present[:, None, None]
    return jnp.max(layers, axis=0)


def _canvas(u, images, frames, labels, size, max_objects, scale):
    """One canvas from uniforms u (5 + 4 max_objects,): the count, the items, then `_place`'s."""
    n = max_objects
    count = 1 + jnp.minimum((u[0] * n).astype(jnp.int32), n - 1)
    pick = jnp.minimum((u[1:1 + n] * images.shape[0]).astype(jnp.int32), images.shape[0] - 1)
    s, corner = _place(u[1 + n:], images.shape[1], size, n, scale)
    present = jnp.arange(n, dtype=jnp.int32) < count
    canvas = _paint(images[pick], s, corner, present.astype(images.dtype), size)
    boxes = jnp.clip(jnp.tile(corner, 2) + s[:, None] * frames[pick], 0, size)
    return canvas[..., None], jnp.where(present[:, None], boxes, 0), jnp.where(present, labels[pick], -1)


@functools.partial(jax.jit, static_argnums=(1, 5, 6, 7))
def _draw(key, count, images, frames, labels, size, max_objects, scale):
    """Every random number from one draw (one threefry program to compile, not one per use)."""
    u = jax.random.uniform(key, (count, 5 + 4 * max_objects), jnp.float32)
    return jax.vmap(lambda row: _canvas(row, images, frames, labels, size, max_objects, scale))(u)


def canvases(key: Array, images, labels, count: int, *, size: int = 64, max_objects: int = 3,
             scale: tuple[float, float] = (0.75, 1.15), threshold: float = 0.1) -> tuple[Array, Array, Array]:
    """`count` canvases of 1 to `max_objects` items drawn from (images, labels), with their boxes.

    images: (M, H, W) or (M, H, W, 1) in [0, 1]; labels: (M,) int. An item of side H is drawn
    at H s pixels, s uniform in `scale`. Returns x (count, size, size, 1) float32, boxes
    (count, max_objects, 4) float32 (x1, y1, x2, y2) and classes (count, max_objects) int32 (-1: empty slot).
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1] != images.shape[2] or len(labels) != len(images):
        raise ValueError(f"canvases: expected square images (M, H, H[, 1]) and labels (M,), got "
                         f"images {np.shape(images)} and labels {np.shape(labels)}")
    if not 1 <= max_objects <= 4:
        raise ValueError(f"canvases: max_objects must be 1 to 4 (one item per quadrant), got {max_objects}")
    if not 0 < scale[0] <= scale[1] or scale[1] * images.shape[1] > size / 2 + SPILL:
        raise ValueError(f"canvases: scale {scale} must be positive and fit an item of side {images.shape[1]} "
                         f"in a quadrant of side {size // 2} (+{SPILL})")
    frames = jnp.asarray(tight_boxes(images, threshold))
    return _draw(key, count, jnp.asarray(images), frames, jnp.asarray(labels, jnp.int32),
                 size, max_objects, tuple(scale))
