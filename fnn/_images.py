"""One image made to look like the training data (`fnn predict`'s inputs); re-exported by `fnn.data`."""
from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._optional import require

CLASS_NAMES = {"fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                  "Sneaker", "Bag", "Ankle boot"), "mnist": tuple("0123456789")}


MIN_IMAGE_SIDE = 8   # smaller arrays are not pictures of clothes (a (3, 5) array, a vector as a row)


def load_image(path: str | os.PathLike, shape: tuple = (28, 28, 1), *, invert: str = "auto") -> np.ndarray:
    """One image made to look like the training data: grayscale `shape` = (H, W, 1) float32 in [0, 1].

    Reads `.npy` ((H, W) or (H, W, 1|3|4); values above 1 are divided by 255) and, with Pillow,
    PNG/JPEG; colour becomes luminance, the image is resized (antialiased), and invert="auto"
    inverts an image with a light border (dark on light, unlike Fashion-MNIST); "yes"/"no" force it.
    `read_image` + `to_example`: the first gives the stored size (to say that it was resized).
    """
    return to_example(read_image(path), str(path), shape, invert)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The array a `.npy`, PNG or JPEG file holds (PNG/JPEG as 2-D grayscale), unchanged."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_image: no file at {path}")
    if path.suffix.lower() != ".npy":
        Image = require("PIL.Image", extra="plot", purpose=f"load_image: reading {path}")
    try:
        return np.load(path, allow_pickle=False) if path.suffix.lower() == ".npy" else \
            np.asarray(Image.open(path).convert("L"))
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"load_image: {path} is not a readable image ({err})") from None


def to_example(a: np.ndarray, name: str, shape: tuple = (28, 28, 1), invert: str = "auto") -> np.ndarray:
    """An image array (H, W) or (H, W, 1|3|4), H, W >= 8, as one grayscale example of `shape` (see load_image)."""
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4) and a.dtype.kind in "biuf":
        a = a[..., 0] if a.shape[-1] == 1 else a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if a.ndim != 2 or a.dtype.kind not in "biuf":
        raise ValueError(f"load_image: {name} holds {a.dtype} of shape {a.shape}; expected a 2-D image "
                         f"(H, W) or (H, W, 1|3|4) of numbers")
    if min(a.shape) < MIN_IMAGE_SIDE:
        raise ValueError(f"load_image: {name} is {a.shape[0]}x{a.shape[1]} pixels; expected an image of at "
                         f"least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} (it is resized to {shape[0]}x{shape[1]})")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"load_image: {name} has non-finite pixels")
    a = a / 255.0 if a.max() > 1.0 else a
    if a.shape != tuple(shape[:2]):
        a = np.asarray(jax.image.resize(jnp.asarray(a, jnp.float32), shape[:2], "linear", antialias=True))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 0.5):
        a = 1.0 - a
    return np.clip(a, 0.0, 1.0).astype(np.float32).reshape(shape)
