"""Data: IDX files (MNIST, Fashion-MNIST), a checked download, device-resident batching.

    images, labels = load_dataset("fashion-mnist", "train")   # (N, 28, 28, 1) float32, (N,) int32
    xb, yb = epoch_batches(key, images, labels, 128)           # (S, 128, 28, 28, 1), (S, 128)

`load_dataset` looks in `data_dir`, `$FNN_DATA_DIR`, `~/.cache/fnn/<name>` and
`/usr/share/datasets/<name>` (Debian's `dataset-fashion-mnist`), and downloads only
when asked, checking the published MD5 of every file before it is kept.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import sys
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._images import CLASS_NAMES as CLASS_NAMES  # one image made to look like the training data
from ._images import MIN_IMAGE_SIDE as MIN_IMAGE_SIDE
from ._images import load_image as load_image
from ._images import read_image as read_image
from ._images import to_example as to_example

Array = Any

# IDX type code -> big-endian element type (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


class Source(NamedTuple):
    url: str             # base address; a file's address is url + file name
    md5: dict[str, str]  # file name -> MD5 of the published .gz file


SOURCES = {
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "mnist": Source("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
}
SPLITS = {"train": "train", "test": "t10k"}
SYSTEM_DIR = Path("/usr/share/datasets")
_APT = {"fashion-mnist": "dataset-fashion-mnist"}


# --------------------------------------------------------------------- IDX files

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, told apart by content) into a native-order array.

    Layout: magic 0x00 0x00 <type code> <ndim>, ndim big-endian uint32 sizes, then the
    big-endian payload. Anything else (bad magic, unknown type, short or long payload,
    broken gzip) raises ValueError naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"read_idx: {path} is a corrupt or truncated gzip file ({err})") from None
    return _parse_idx(raw, str(path))


def _parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file; `name` is used in error messages."""
    if len(raw) < 4:
        raise ValueError(f"read_idx: {name} is too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {name} has a bad magic number {raw[:4].hex()} (not an IDX file)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"read_idx: {name} has unknown type code 0x{code:02X} "
                         f"(expected one of {', '.join(f'0x{c:02X}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise ValueError(f"read_idx: {name} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {name} is truncated inside its header of {header} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected, got = math.prod(shape) * dtype.itemsize, len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "oversized"
        raise ValueError(f"read_idx: {name} is {what}: shape {shape} of {dtype.name} needs "
                         f"{expected} payload bytes, found {got}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzip-compressed when `path` ends in .gz); the inverse of `read_idx`."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    if array.dtype not in codes or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: cannot store a {array.dtype} array of shape {array.shape} as IDX")
    head = bytes([0, 0, codes[array.dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = head + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(raw, mtime=0) if str(path).endswith(".gz") else raw)


# ---------------------------------------------------------------- finding files

def _file_names(split: str) -> tuple[str, str]:
    return f"{SPLITS[split]}-images-idx3-ubyte", f"{SPLITS[split]}-labels-idx1-ubyte"


def _cache_dir(name: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fnn" / name


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where `load_dataset` looks, in order (a given directory is also tried with `/<name>` appended)."""
    dirs = []
    for d in (data_dir, os.environ.get("FNN_DATA_DIR") or None):
        if d is not None:
            dirs += [Path(d).expanduser(), Path(d).expanduser() / name]
    return dirs + [_cache_dir(name), SYSTEM_DIR / name]


def _find(directory: Path, base: str) -> Path | None:
    for candidate in (directory / f"{base}.gz", directory / base):
        if candidate.is_file():
            return candidate
    return None


def _locate(name: str, split: str, dirs: list[Path]) -> tuple[Path, Path] | None:
    for d in dirs:
        found = [_find(d, base) for base in _file_names(split)]
        if all(found):
            return found[0], found[1]
    return None


def _missing_message(name: str, split: str, dirs: list[Path]) -> str:
    files = " and ".join(f"{b}[.gz]" for b in _file_names(split))
    looked = ", ".join(str(d) for d in dirs)
    apt = f"`apt-get install {_APT[name]}`, " if name in _APT else ""
    return (f"load_dataset: {name} {split} files ({files}) not found in {looked}; install them with "
            f"`make data` (in the fnn repository), {apt}or download them with `--download` "
            f"(load_dataset(..., download=True)), or point `--data-dir` (or FNN_DATA_DIR) at a directory "
            f"that holds them")


# -------------------------------------------------------------------- download

def _download(url: str, dest: Path, md5: str) -> None:
    """Fetch `url` into `dest` atomically; a wrong MD5 leaves nothing behind and raises ValueError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise ValueError(f"load_dataset: {url} has MD5 {digest.hexdigest()}, expected {md5} "
                             f"(corrupt download or wrong mirror); nothing was kept")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(name: str, split: str, target: str | os.PathLike, *, mirror: str | None = None) -> None:
    """Download the `split` files of `name` into `target`, checking each file's published MD5.

    `mirror` (or `$FNN_DATA_MIRROR`) replaces the canonical base address.
    """
    source = _source(name, split)
    base = mirror or os.environ.get("FNN_DATA_MIRROR") or source.url
    for stem in _file_names(split):
        file = f"{stem}.gz"
        dest = Path(target) / file
        if not dest.is_file():
            url = base.rstrip("/") + "/" + file
            print(f"downloading {url} -> {dest}", file=sys.stderr)
            try:
                _download(url, dest, source.md5[file])
            except OSError as err:
                raise OSError(f"load_dataset: could not download {url}: {err}") from err


def _source(name: str, split: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; choose one of {sorted(SOURCES)}")
    if split not in SPLITS:
        raise ValueError(f"load_dataset: unknown split {split!r}; choose one of {sorted(SPLITS)}")
    return SOURCES[name]


# ------------------------------------------------------------------ load_dataset

def load_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None,
                 download: bool = False, *, mirror: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 in [0, 1] (NHWC) and labels (N,) int32 of a split, as NumPy arrays.

    `name` is "fashion-mnist" or "mnist", `split` "train" or "test". With `download=True`
    missing files are fetched into `data_dir` (else `~/.cache/fnn/<name>`); `mirror` or
    `$FNN_DATA_MIRROR` replaces the canonical address. Absent files raise FileNotFoundError.
    """
    _source(name, split)
    dirs = search_dirs(name, data_dir)
    found = _locate(name, split, dirs)
    if found is None and download:
        target = Path(data_dir).expanduser() if data_dir is not None else _cache_dir(name)
        fetch(name, split, target, mirror=mirror)
        found = _locate(name, split, [target])
    if found is None:
        raise FileNotFoundError(_missing_message(name, split, dirs))
    return _images_labels(*found)


def _images_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"load_dataset: {images_path} holds {images.dtype} of shape {images.shape}, "
                         f"expected uint8 images (N, H, W)")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"load_dataset: {labels_path} holds {labels.dtype} of shape {labels.shape}, "
                         f"expected uint8 labels (N,)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_dataset: {images_path} has {images.shape[0]} images but "
                         f"{labels_path} has {labels.shape[0]} labels")
    return (images.astype(np.float32) / np.float32(255.0))[..., None], labels.astype(np.int32)


# --------------------------------------------------------------------- standardize

class MeanStd(NamedTuple):
    mean: np.ndarray     # (F,): per feature (last axis) of the training split, float64
    std: np.ndarray      # (F,): population std (ddof=0); 1 where a feature is constant


def standardize(train: Array, *others: Array) -> tuple[tuple[np.ndarray, ...], MeanStd]:
    """`(train, *others)` standardised with the TRAINING split's statistics: a = (a - mean) / std.

    Statistics per feature or channel (the last axis), over every other axis of `train`
    ((N, F) tables: per column; (N, H, W, C) images: per channel). Returns the arrays in the
    order given (float32 for integer inputs, else their dtype) and `MeanStd(mean, std)`, which
    `L.Normalize(*stats)` applies inside a model to raw inputs (at prediction time, say).
    """
    arrays = [np.asarray(a) for a in (train, *others)]
    if arrays[0].ndim < 2 or arrays[0].shape[0] == 0:
        raise ValueError(f"standardize: expected train of shape (N, ..., F) with N >= 1, got {arrays[0].shape}")
    example = ", ".join(map(str, arrays[0].shape[1:]))
    for i, a in enumerate(arrays[1:], 1):
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"standardize: expected every array of shape (M, {example}) as train, got "
                             f"{a.shape} for the array at position {i}")
    axes = tuple(range(arrays[0].ndim - 1))
    mean, std = arrays[0].mean(axis=axes, dtype=np.float64), arrays[0].std(axis=axes, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    dtype = lambda a: a.dtype if a.dtype.kind == "f" else np.float32      # noqa: E731
    return tuple(((a - mean) / std).astype(dtype(a)) for a in arrays), MeanStd(mean, std)


# --------------------------------------------------------------------- batching

def epoch_batches(key: jax.Array, x: Array, y: Array, batch_size: int, *,
                  drop_remainder: bool = True) -> tuple[jax.Array, jax.Array]:
    """Shuffle with `key` and cut into equal batches: x (N, ...) -> (S, B, ...), y (N, ...) -> (S, B, ...).

    x and y may be pytrees of arrays (`(tokens, lengths)`, `(labels, weights)`), every leaf
    with the example axis first; each leaf is cut alike.

    S = N // B with `drop_remainder` (the left-out examples change with the key), else
    ceil(N / B) with the last batch topped up from the start of the same permutation.
    Static shapes: jit it with `batch_size` static and `lax.scan` over the first axis.
    """
    n = _check_pair("epoch_batches", x, y, batch_size)
    if drop_remainder and n < batch_size:
        raise ValueError(f"epoch_batches: batch_size {batch_size} exceeds the {n} examples "
                         f"(pass drop_remainder=False to get one padded batch)")
    return _shuffled_batches(key, jax.tree.map(jnp.asarray, x), jax.tree.map(jnp.asarray, y),
                             batch_size, drop_remainder)


@functools.partial(jax.jit, static_argnums=(3, 4))  # one compile per shape, also when called eagerly
def _shuffled_batches(key, x, y, batch_size, drop_remainder):
    n = jax.tree.leaves(x)[0].shape[0]
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    perm = jnp.resize(jax.random.permutation(key, n), (steps * batch_size,))  # repeats to top up
    cut = lambda a: a[perm].reshape(steps, batch_size, *a.shape[1:])
    return jax.tree.map(cut, x), jax.tree.map(cut, y)


def batches(x: Array, y: Array, batch_size: int) -> Iterator[tuple[Array, Array]]:
    """Consecutive batches in order, covering every example once; the last may be smaller.
    x and y may be pytrees of arrays, examples first."""
    n = _check_pair("batches", x, y, batch_size)
    for start in range(0, n, batch_size):
        cut = functools.partial(_rows, start=start, stop=start + batch_size)
        yield jax.tree.map(cut, x), jax.tree.map(cut, y)


def _rows(a, *, start, stop):
    return a[start:stop]


def padded_batches(x: Array, y: Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every example once, in order, as static-shape batches with a mask for a scanned evaluation.

    x (N, ...) -> (S, B, ...), y (N, ...) -> (S, B, ...), mask (S, B) bool; S = ceil(N / B),
    padding (zeros) only at the end of the last batch, where mask is False.
    """
    _check_pair("padded_batches", x, y, batch_size)
    return _padded(jax.tree.map(jnp.asarray, x), jax.tree.map(jnp.asarray, y), batch_size)


@functools.partial(jax.jit, static_argnums=2)
def _padded(x, y, batch_size):
    n = jax.tree.leaves(x)[0].shape[0]
    steps = -(-n // batch_size)

    def cut(a):
        a = jnp.concatenate([a, jnp.zeros((steps * batch_size - n, *a.shape[1:]), a.dtype)])
        return a.reshape(steps, batch_size, *a.shape[1:])
    return jax.tree.map(cut, x), jax.tree.map(cut, y), (jnp.arange(steps * batch_size) < n).reshape(steps, batch_size)


def train_val_split(x: Array, y: Array, val_size: int | float = 0.1, key: jax.Array | None = None
                    ) -> tuple[tuple[Array, Array], tuple[Array, Array] | None]:
    """Split off a validation set: `((x_train, y_train), (x_val, y_val))`.

    `val_size` is a count (int) or a fraction in [0, 1) (float); 0 gives `(x, y), None`.
    With `key` the validation examples are drawn at random, without it they are the last ones.
    """
    n = _check_pair("train_val_split", x, y, 1)
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise ValueError(f"train_val_split: a fractional val_size must lie in [0, 1), got {val_size}")
        val_size = round(val_size * n)
    if not isinstance(val_size, (int, np.integer)) or not 0 <= val_size < n:
        raise ValueError(f"train_val_split: val_size must be a count in [0, {n}) or a fraction, "
                         f"got {val_size!r}")
    if val_size == 0:
        return (x, y), None
    order = np.arange(n) if key is None else np.asarray(_permutation(key, n))
    train, val = order[: n - val_size], order[n - val_size:]
    return (x[train], y[train]), (x[val], y[val])


_permutation = jax.jit(jax.random.permutation, static_argnums=1)


def _check_pair(fn: str, x: Array, y: Array, batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be a positive int, got {batch_size!r}")
    shapes = [np.shape(a) for a in jax.tree.leaves((x, y))]
    if not jax.tree.leaves(x) or not jax.tree.leaves(y) or len({s[:1] for s in shapes}) != 1 or () in shapes:
        raise ValueError(f"{fn}: every array of x and y must have the same leading length, got shapes "
                         f"{[np.shape(a) for a in jax.tree.leaves(x)]} and {[np.shape(a) for a in jax.tree.leaves(y)]}")
    if shapes[0][0] == 0:
        raise ValueError(f"{fn}: the data set is empty")
    return int(shapes[0][0])
