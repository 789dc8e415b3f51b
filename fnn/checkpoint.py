"""Checkpoints: pytrees of arrays in one `safetensors` file, written atomically, never unpickled.

    save("ckpt.safetensors", {"params": params, "opt_state": opt_state}, step=10)
    tree = load("ckpt.safetensors")                # rebuilt from the stored structure
    tree = load("ckpt.safetensors", like=template)  # checked against, and typed like, `template`

A tensor's name is its pytree key path (`jax.tree_util.keystr`, e.g. `['params'][0]['W']`);
the tree structure (dicts, lists, tuples, NamedTuples, None) is JSON in the file's metadata.
Dtypes safetensors' NumPy API cannot hold (bfloat16, float8) are stored as same-width
unsigned integers with the real dtype in the metadata; typed PRNG keys as their key data.
A SHA-256 of the metadata and of every tensor (name, dtype, shape, bytes) is stored as
`fnn.sha256` and checked by `load` and `read_info`: a truncated, extended or bit-flipped file raises a
ValueError naming the file, never returns wrong arrays.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from jax.tree_util import DictKey, GetAttrKey, SequenceKey, keystr

PyTree = Any
FORMAT = "fnn.checkpoint/2"
_UNCHECKED = "fnn.checkpoint/1"   # written before checksums: still loaded, without the check
_NATIVE = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64", "complex64"}
_PARTS = ("params", "state", "opt_state")


class Info(NamedTuple):
    step: int | None                 # the `step` given to `save`, or None
    metadata: dict[str, Any] | None  # the `metadata` given to `save`, or None


# ------------------------------------------------------------------ structure

def _encode(tree: PyTree, path: tuple = ()) -> dict:
    """The container skeleton of `tree` as JSON-ready dicts; leaves become {"t": "leaf"}."""
    if tree is None:
        return {"t": "none"}
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError(f"checkpoint: dict keys must be str, got {list(tree)} at {_where(path)}")
        keys = sorted(tree)
        return {"t": "dict", "keys": keys, "c": [_encode(tree[k], (*path, DictKey(k))) for k in keys]}
    if isinstance(tree, tuple) and hasattr(type(tree), "_fields"):
        fields = list(type(tree)._fields)
        return {"t": "namedtuple", "name": type(tree).__name__, "fields": fields,
                "c": [_encode(v, (*path, GetAttrKey(f))) for f, v in zip(fields, tree, strict=True)]}
    if isinstance(tree, (tuple, list)):
        children = [_encode(v, (*path, SequenceKey(i))) for i, v in enumerate(tree)]
        return {"t": type(tree).__name__, "c": children}
    if not jax.tree_util.treedef_is_leaf(jax.tree.structure(tree)):
        raise TypeError(f"checkpoint: unsupported pytree node {type(tree).__name__} at {_where(path)} "
                        f"(use dicts, lists, tuples, NamedTuples and None)")
    return {"t": "leaf"}


def _where(path: tuple) -> str:
    return keystr(path) or "the root"


def _child_keys(node: dict) -> list:
    if node["t"] == "dict":
        return [DictKey(k) for k in node["keys"]]
    if node["t"] == "namedtuple":
        return [GetAttrKey(f) for f in node["fields"]]
    return [SequenceKey(i) for i in range(len(node.get("c", ())))]


@functools.cache
def _namedtuple(name: str, fields: tuple) -> type:
    try:
        return collections.namedtuple(name, fields)
    except ValueError:  # not identifiers: fall back to a plain tuple
        return tuple


def _decode(node: dict, arrays: dict, path: tuple = ()) -> PyTree:
    """Rebuild a tree from its skeleton, taking each leaf from `arrays` by key path."""
    t = node["t"]
    if t == "none":
        return None
    if t == "leaf":
        return arrays[keystr(path)]
    children = [_decode(c, arrays, (*path, k)) for c, k in zip(node["c"], _child_keys(node), strict=True)]
    if t == "dict":
        return dict(zip(node["keys"], children, strict=True))
    if t == "namedtuple":
        cls = _namedtuple(node["name"], tuple(node["fields"]))
        return cls(*children) if cls is not tuple else tuple(children)
    return list(children) if t == "list" else tuple(children)


def _describe(node: dict) -> str:
    t, n = node["t"], len(node.get("c", ()))
    if t == "dict":
        return f"a dict with keys {node['keys']}"
    if t == "namedtuple":
        return f"a NamedTuple {node['name']}({', '.join(node['fields'])})"
    return {"none": "None", "leaf": "an array", "list": f"a list of {n}", "tuple": f"a tuple of {n}"}[t]


def _same_kind(a: dict, b: dict) -> bool:
    keys = ("t", "keys", "fields")  # a NamedTuple's class name may differ (rebuilt types)
    return all(a.get(k) == b.get(k) for k in keys) and len(a.get("c", ())) == len(b.get("c", ()))


def _struct_diff(stored: dict, like: dict, path: tuple = ()) -> str | None:
    """The first place where two skeletons differ, as a sentence fragment, or None."""
    if not _same_kind(stored, like):
        return f"at {_where(path)} the file has {_describe(stored)} but the template has {_describe(like)}"
    for a, b, k in zip(stored.get("c", ()), like.get("c", ()), _child_keys(stored), strict=True):
        diff = _struct_diff(a, b, (*path, k))
        if diff:
            return diff
    return None


# --------------------------------------------------------------------- leaves

def _to_numpy(leaf: Any, key: str) -> tuple[np.ndarray, str | None]:
    """The array to store and, when it is stored under another dtype, the real dtype's tag."""
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf)), f"key:{jax.random.key_impl(leaf)}"
    a = np.asarray(leaf, order="C")  # (np.ascontiguousarray would turn a scalar into shape (1,))
    if a.dtype.name in _NATIVE:
        return a, None
    if a.dtype.kind not in "biufcV" or a.dtype.itemsize not in (1, 2, 4, 8):
        raise TypeError(f"save: leaf {key or '(root)'} has dtype {a.dtype}, which a checkpoint cannot hold")
    return a.view(f"u{a.dtype.itemsize}"), a.dtype.name


def _from_numpy(a: np.ndarray, tag: str | None) -> Any:
    if tag is None:
        return a
    if tag.startswith("key:"):
        return jax.random.wrap_key_data(a, impl=tag[4:])
    return a.view(jnp.dtype(tag))


def _check_leaf(a: Any, like: Any, key: str, file: Path) -> None:
    shape = tuple(getattr(like, "shape", np.shape(like)))
    dtype = like.dtype if hasattr(like, "dtype") else np.asarray(like).dtype
    if tuple(a.shape) != shape or str(a.dtype) != str(dtype):
        raise ValueError(f"load: {file}: {key} is {a.dtype}{list(a.shape)} in the file "
                         f"but {dtype}{list(shape)} in the template")


# ------------------------------------------------------------------ file I/O

def _write_all(f, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), 1 << 24):
        f.write(view[start:start + (1 << 24)])


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (path.stat().st_mode & 0o777) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not every platform can fsync a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def checksum(metadata: dict[str, str], tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the metadata (but `fnn.sha256`) and of each tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for k in sorted(metadata):
        if k != "fnn.sha256":
            h.update(json.dumps([k, metadata[k]]).encode())
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        h.update(json.dumps([k, a.dtype.str, list(a.shape)]).encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _verify(path: Path, meta: dict[str, str], arrays: dict[str, np.ndarray]) -> None:
    if "fnn.sha256" not in meta:
        if meta.get("fnn.format") != _UNCHECKED and any(k.startswith("fnn.") for k in meta):
            raise ValueError(f"load: {path} is damaged: its fnn metadata has no checksum")
        return                                  # a foreign file, or one from before checksums
    if checksum(meta, arrays) != meta["fnn.sha256"]:
        raise ValueError(f"load: {path} is corrupt: its contents do not match the checksum stored "
                         f"when it was written (changed or damaged since)")
    if meta.get("fnn.format") not in (FORMAT, _UNCHECKED):
        raise ValueError(f"load: {path} has format {meta.get('fnn.format')!r}; this fnn reads {FORMAT}")


def _read(path: Path, *, tensors: bool = True) -> tuple[dict[str, str], dict[str, Any]]:
    """The string metadata and the (restored) arrays of a safetensors file, checksum verified."""
    if not path.is_file():
        raise FileNotFoundError(f"load: no checkpoint file at {path}")
    size = path.stat().st_size
    if size < 8:
        raise ValueError(f"load: {path} is {'empty' if size == 0 else f'truncated ({size} bytes)'}, "
                         f"not a readable checkpoint")
    try:
        with safetensors.safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
        if tensors:
            _verify(path, meta, arrays)
        tags = json.loads(meta.get("fnn.dtypes", "{}"))
        return meta, {k: _from_numpy(a, tags.get(k)) for k, a in arrays.items()}
    except (safetensors.SafetensorError, ValueError, TypeError, AttributeError) as err:
        if str(err).startswith("load: "):
            raise
        raise ValueError(f"load: {path} is not a readable checkpoint ({err})") from None


def _skeleton(meta: dict[str, str], path: Path) -> dict:
    """The stored container skeleton (see `_encode`)."""
    if "fnn.tree" not in meta:
        raise ValueError(f"load: {path} is a safetensors file without fnn tree metadata "
                         f"(load it with like=None to get a flat dict of its tensors)")
    try:
        return json.loads(meta["fnn.tree"])
    except ValueError as err:
        raise ValueError(f"load: {path} has corrupt tree metadata ({err})") from None


# -------------------------------------------------------------------- public

def save(path: str | os.PathLike, tree: PyTree, *, step: int | None = None,
         metadata: dict[str, Any] | None = None) -> None:
    """Write `tree` (dicts/lists/tuples/NamedTuples/None of arrays) to `path` atomically.

    `step` (an int) and `metadata` (JSON-serializable) are stored in the header; see `read_info`.
    A failed or killed write leaves any previous file at `path` intact.
    """
    skeleton = _encode(tree)
    tensors, tags = {}, {}
    for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = keystr(p)
        tensors[key], tag = _to_numpy(leaf, key)
        if tag is not None:
            tags[key] = tag
    header = {"fnn.format": FORMAT, "fnn.tree": json.dumps(skeleton), "fnn.dtypes": json.dumps(tags)}
    if step is not None:
        header["fnn.step"] = str(int(step))
    if metadata is not None:
        try:
            header["fnn.metadata"] = json.dumps(metadata)
        except TypeError as err:
            raise TypeError(f"save: metadata must be JSON-serializable ({err})") from None
    header["fnn.sha256"] = checksum(header, tensors)
    _atomic_write(Path(path), safetensors.numpy.save(tensors, metadata=header))


def load(path: str | os.PathLike, like: PyTree = None) -> PyTree:
    """Read a checkpoint written by `save`; leaves come back as `jax.Array`s.

    Without `like`, the stored structure is rebuilt (NamedTuples as look-alike namedtuples;
    a safetensors file from elsewhere as a flat dict of its tensors).
    With `like` (arrays or `jax.ShapeDtypeStruct`s), structure, shapes and dtypes must match
    exactly (a ValueError names the first difference) and the result has `like`'s types.
    """
    path = Path(path)
    meta, arrays = _read(path)
    if like is None and "fnn.tree" not in meta:  # a foreign safetensors file
        return _to_jax(arrays)
    skeleton = _skeleton(meta, path)
    if like is None:
        return _to_jax(_decode_checked(skeleton, arrays, path))
    return _conform(skeleton, arrays, like, (), path)


def read_info(path: str | os.PathLike) -> Info:
    """The `step` and `metadata` stored by `save`, once the whole file's checksum is verified (as `load`
    does): a damaged file raises ValueError naming it, never returns what its header says."""
    meta, _ = _read(Path(path))
    step, extra = meta.get("fnn.step"), meta.get("fnn.metadata")
    try:
        return Info(None if step is None else int(step), None if extra is None else json.loads(extra))
    except ValueError as err:
        raise ValueError(f"load: {path} has a damaged header ({err})") from None


def _decode_checked(skeleton: dict, arrays: dict, path: Path, prefix: tuple = ()) -> PyTree:
    try:
        return _decode(skeleton, arrays, prefix)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"load: {path}: its tree metadata and tensors disagree ({err!r})") from None


def _conform(skeleton: dict, arrays: dict, like: PyTree, prefix: tuple, path: Path) -> PyTree:
    """Check a stored subtree against `like` and rebuild it with `like`'s exact types."""
    diff = _struct_diff(skeleton, _encode(like, prefix), prefix)
    if diff:
        raise ValueError(f"load: {path}: {diff}")
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out = []
    for p, template in leaves:
        key = keystr((*prefix, *p))
        if key not in arrays:
            raise ValueError(f"load: {path}: the file has no tensor {key}")
        _check_leaf(arrays[key], template, key, path)
        out.append(arrays[key])
    return _to_jax(jax.tree_util.tree_unflatten(treedef, out))


def _to_jax(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda a: a if isinstance(a, jax.Array) else jnp.asarray(a), tree)


def save_training(path: str | os.PathLike, params: PyTree, state: PyTree, opt_state: PyTree,
                  step: int, extra: PyTree = None, *, metadata: dict[str, Any] | None = None) -> None:
    """Save a training run: the tree {"params", "state", "opt_state", "extra"} plus `step`.

    `extra` is any further pytree of arrays (a PRNG key, say); read it back with `load(path)["extra"]`.
    """
    tree = {"params": params, "state": state, "opt_state": opt_state, "extra": extra}
    save(path, tree, step=step, metadata=metadata)


def load_training(path: str | os.PathLike, like_params: PyTree, like_state: PyTree,
                  like_opt_state: PyTree) -> tuple[PyTree, PyTree, PyTree, int]:
    """`(params, state, opt_state, step)` from `save_training`, each checked against its template."""
    path = Path(path)
    meta, arrays = _read(path)
    skeleton = _skeleton(meta, path)
    parts = dict(zip(skeleton.get("keys", ()), skeleton.get("c", ()), strict=True))
    if skeleton["t"] != "dict" or not set(_PARTS) <= set(parts) or "fnn.step" not in meta:
        raise ValueError(f"load_training: {path} was not written by save_training "
                         f"(it holds {_describe(skeleton)})")
    likes = zip(_PARTS, (like_params, like_state, like_opt_state), strict=True)
    params, state, opt_state = (_conform(parts[k], arrays, like, (DictKey(k),), path) for k, like in likes)
    return params, state, opt_state, int(meta["fnn.step"])
