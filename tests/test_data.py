"""fnn.data: IDX reading and validation, dataset search and download (loopback only), batching."""
import functools
import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array, code=None, ndim=None, shape=None):
    """Raw IDX bytes of `array`; `code`/`ndim`/`shape` override the header to make broken files."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in data.IDX_DTYPES.items()}
    shape = array.shape if shape is None else shape
    head = bytes([0, 0, codes[array.dtype] if code is None else code, len(shape) if ndim is None else ndim])
    return head + np.asarray(shape, ">u4").tobytes() + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: HOME, cache and the system directory all point into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("XDG_CACHE_HOME", "FNN_DATA_DIR", "FNN_DATA_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    return tmp_path


def make_split(directory, split="train", n=5, n_labels=None, gz=True, seed=0):
    """A tiny MNIST-format split in `directory`; returns (images uint8, labels uint8)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (n if n_labels is None else n_labels,), dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    stem = data.SPLITS[split]
    suffix = ".gz" if gz else ""
    data.write_idx(directory / f"{stem}-images-idx3-ubyte{suffix}", images)
    data.write_idx(directory / f"{stem}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


# ------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(24) - 7).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    data.write_idx(path, array)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "labels"
    data.write_idx(path, np.array([1, 2, 3], np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3])


BROKEN = {
    "bad magic": (lambda b: b"\x01" + b[1:], "bad magic number"),
    "unknown type code": (lambda b: b[:2] + b"\x0a" + b[3:], "unknown type code 0x0A"),
    "zero dimensions": (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
    "too short": (lambda b: b[:3], "too short"),
    "truncated header": (lambda b: b[:10], "truncated inside its header"),
    "truncated payload": (lambda b: b[:-1], "is truncated"),
    "oversized": (lambda b: b + b"\x00\x00", "is oversized"),
    "ndim too large": (lambda b: b[:3] + b"\x03" + b[4:], "is truncated"),
    "ndim too small": (lambda b: b[:3] + b"\x01" + b[4:], "is oversized"),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_idx_broken_files_raise_naming_the_file(tmp_path, case, gz):
    corrupt, message = BROKEN[case]
    raw = corrupt(idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4)))
    path = tmp_path / ("broken.gz" if gz else "broken")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=rf"^read_idx: {tmp_path}/broken(\.gz)? .*{message}"):
        data.read_idx(path)


def test_idx_huge_declared_size_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(idx_bytes(np.zeros(4, np.float64), shape=(2**32 - 1, 2**32 - 1)))
    with pytest.raises(ValueError, match="huge is truncated: shape"):
        data.read_idx(path)


@pytest.mark.parametrize("cut", [10, 0.5, -8])
def test_idx_truncated_gzip_raises(tmp_path, cut):
    packed = gzip.compress(idx_bytes(np.arange(4000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: int(len(packed) * cut) if isinstance(cut, float) else cut])
    with pytest.raises(ValueError, match=r"read_idx: .*cut\.gz is a corrupt or truncated gzip"):
        data.read_idx(path)


def test_idx_corrupt_gzip_raises(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(4000, dtype=np.int32))))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "flip.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(ValueError, match=r"flip\.gz"):
        data.read_idx(path)


def test_write_idx_refuses_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match="write_idx: cannot store a int64"):
        data.write_idx(tmp_path / "x", np.zeros(3, np.int64))


# ----------------------------------------------------------------- load_dataset

@pytest.mark.parametrize("gz", [True, False])
def test_load_dataset_from_data_dir(isolated, gz):
    images, labels = make_split(isolated / "d", "test", n=7, gz=gz)
    x, y = data.load_dataset("mnist", "test", data_dir=isolated / "d")
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_search_order(isolated, monkeypatch):
    make_split(isolated / "system" / "mnist", seed=1)
    make_split(isolated / "home" / ".cache" / "fnn" / "mnist", seed=2)
    make_split(isolated / "env" / "mnist", seed=3)      # $FNN_DATA_DIR/<name> is accepted
    make_split(isolated / "given", seed=4)
    monkeypatch.setenv("FNN_DATA_DIR", str(isolated / "env"))
    first = lambda **kw: data.load_dataset("mnist", "train", **kw)[1]
    for seed, kwargs in [(4, {"data_dir": isolated / "given"}), (3, {})]:
        np.testing.assert_array_equal(first(**kwargs), make_split(isolated / "ref", seed=seed)[1])
    monkeypatch.delenv("FNN_DATA_DIR")
    np.testing.assert_array_equal(first(), make_split(isolated / "ref", seed=2)[1])
    shutil.rmtree(isolated / "home")
    np.testing.assert_array_equal(first(), make_split(isolated / "ref", seed=1)[1])


def test_mismatched_lengths_name_both_files(isolated):
    make_split(isolated / "d", n=5, n_labels=4)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz has 5 images but .*"
                                         r"train-labels-idx1-ubyte.gz has 4 labels"):
        data.load_dataset("mnist", "train", data_dir=isolated / "d")


def test_wrong_content_is_refused(isolated):
    d = isolated / "d"
    make_split(d)
    data.write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros((5, 2), np.uint8))
    with pytest.raises(ValueError, match=r"labels-idx1-ubyte.gz holds uint8 of shape \(5, 2\)"):
        data.load_dataset("mnist", "train", data_dir=d)


def test_absent_data_says_how_to_get_it(isolated):
    with pytest.raises(FileNotFoundError) as info:
        data.load_dataset("fashion-mnist", "test")
    message = str(info.value)
    for hint in ("apt-get install dataset-fashion-mnist", "download=True", "FNN_DATA_DIR", "make data",
                 "--data-dir", "--download", "t10k-images-idx3-ubyte", str(isolated / "system" / "fashion-mnist")):
        assert hint in message
    assert "\n" not in message                                     # one line


@pytest.mark.parametrize("shape, match", [((3, 5), "is 3x5 pixels; expected an image of at least 8x8"),
                                          ((7, 40, 3), "is 7x40 pixels"), ((784,), "expected a 2-D image"),
                                          ((28, 28, 2), "expected a 2-D image")])
def test_images_too_small_or_of_the_wrong_shape_are_refused(tmp_path, shape, match):
    np.save(tmp_path / "x.npy", np.ones(shape))
    with pytest.raises(ValueError, match=match):
        data.load_image(tmp_path / "x.npy")


def test_an_image_is_read_as_stored_then_made_an_example(tmp_path):
    image = np.zeros((56, 56), np.uint8)
    image[10:46, 20:36] = 255                                       # a light object on a dark ground
    np.save(tmp_path / "x.npy", image)
    raw = data.read_image(tmp_path / "x.npy")
    assert raw.shape == (56, 56) and raw.dtype == np.uint8
    example = data.to_example(raw, "x", (28, 28, 1))
    assert example.shape == (28, 28, 1) and example.dtype == np.float32
    np.testing.assert_allclose(example[6:22, 11:17, 0], 1.0, atol=1e-6)   # 2x smaller, not inverted
    assert example[:4].max() == 0.0 and example[:, :8].max() == 0.0
    np.testing.assert_array_equal(data.load_image(tmp_path / "x.npy"), example)


@pytest.mark.parametrize("name, split, match", [("cifar", "train", "unknown dataset 'cifar'"),
                                                ("mnist", "val", "unknown split 'val'")])
def test_unknown_names(name, split, match):
    with pytest.raises(ValueError, match=match):
        data.load_dataset(name, split)


@pytest.mark.skipif(not (REAL_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = data.load_dataset("fashion-mnist", split, data_dir=REAL_DIR)
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_array_equal(np.bincount(y), np.full(10, n // 10))


# -------------------------------------------------------------------- download

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A loopback HTTP server on tmp_path/www, torn down after the test."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _publish(root, monkeypatch, bad=()):
    images, labels = make_split(root, "train", n=6)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in root.iterdir()}
    for name in bad:
        md5[name] = "0" * 32
    monkeypatch.setitem(data.SOURCES, "mnist", data.Source("http://192.0.2.1/never/", md5))
    return images, labels


def test_download_from_loopback_mirror(isolated, mirror, monkeypatch):
    root, url = mirror
    images, labels = _publish(root, monkeypatch)
    target = isolated / "dl"
    x, y = data.load_dataset("mnist", "train", data_dir=target, download=True, mirror=url)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(x[..., 0], images / np.float32(255))
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in root.iterdir())


def test_download_to_cache_with_env_mirror(isolated, mirror, monkeypatch):
    root, url = mirror
    _, labels = _publish(root, monkeypatch)
    monkeypatch.setenv("FNN_DATA_MIRROR", url)
    _, y = data.load_dataset("mnist", "train", download=True)
    np.testing.assert_array_equal(y, labels)
    assert (isolated / "home" / ".cache" / "fnn" / "mnist" / "train-labels-idx1-ubyte.gz").is_file()
    _, y = data.load_dataset("mnist", "train")  # found in the cache now, no download
    np.testing.assert_array_equal(y, labels)


def test_bad_checksum_leaves_nothing(isolated, mirror, monkeypatch):
    root, url = mirror
    _publish(root, monkeypatch, bad=["train-labels-idx1-ubyte.gz"])
    target = isolated / "dl"
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz has MD5 .*, expected 0{32}"):
        data.load_dataset("mnist", "train", data_dir=target, download=True, mirror=url)
    assert [p.name for p in target.iterdir()] == ["train-images-idx3-ubyte.gz"]  # no labels, no temp


def test_download_http_error_names_the_url(isolated, mirror, monkeypatch):
    root, url = mirror
    _publish(root, monkeypatch)
    (root / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(OSError, match=r"could not download http://127\.0\.0\.1:\d+/train-labels"):
        data.load_dataset("mnist", "train", data_dir=isolated / "dl", download=True, mirror=url)
    assert not any(p.name.startswith(".") for p in (isolated / "dl").iterdir())


def test_known_checksums():
    for name in ("mnist", "fashion-mnist"):
        md5 = data.SOURCES[name].md5
        assert sorted(md5) == sorted(f"{s}-{k}.gz" for s in ("train", "t10k")
                                     for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))
        assert all(len(v) == 32 and int(v, 16) >= 0 for v in md5.values())


# --------------------------------------------------------------------- batching

# one data shape for all batching tests: compiling is the slow part
EPOCH = data.epoch_batches  # jitted inside
N = 70
X = jnp.stack([jnp.arange(N, dtype=jnp.float32), -jnp.arange(N, dtype=jnp.float32)], axis=1)
Y = jnp.arange(N, dtype=jnp.int32)


def test_epoch_batches_cover_every_example_once(key):
    xb, yb = EPOCH(key, X, Y, batch_size=16)
    assert xb.shape == (4, 16, 2) and yb.shape == (4, 16) and yb.dtype == jnp.int32
    assert len(set(np.asarray(yb).ravel().tolist())) == 64            # no repeats; 6 left out
    np.testing.assert_array_equal(np.asarray(xb)[..., 1], -np.asarray(yb))  # pairs stay together
    xb, yb = EPOCH(key, X, Y, batch_size=16, drop_remainder=False)
    assert yb.shape == (5, 16) and set(np.asarray(yb).ravel().tolist()) == set(range(N))


def test_epoch_batches_order_depends_on_key_only(key):
    a = EPOCH(key, X, Y, batch_size=16)[1]
    b = EPOCH(jax.random.PRNGKey(1), X, Y, batch_size=16)[1]
    np.testing.assert_array_equal(a, EPOCH(key, X, Y, batch_size=16)[1])
    np.testing.assert_array_equal(a, EPOCH(key, np.asarray(X), np.asarray(Y), 16)[1])  # NumPy in
    assert not np.array_equal(a, b)


def test_epoch_batches_scan_over_a_compiled_epoch(key):
    @jax.jit
    def total(key):
        xb, yb = data.epoch_batches(key, X, Y, 16)
        body = lambda c, b: (c + b[1].sum(dtype=jnp.int32), None)
        return jax.lax.scan(body, jnp.asarray(0, jnp.int32), (xb, yb))[0]
    kept = np.asarray(EPOCH(key, X, Y, batch_size=16)[1])
    assert int(total(key)) == kept.sum()


def test_batches_and_padded_batches_cover_in_order():
    x, y = np.arange(23 * 2).reshape(23, 2), np.arange(23)
    got = list(data.batches(x, y, 5))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y)
    xb, yb, mask = data.padded_batches(x, y, 5)
    assert xb.shape == (5, 5, 2) and mask.shape == (5, 5) and int(mask.sum()) == 23
    np.testing.assert_array_equal(np.asarray(yb)[np.asarray(mask)], y)
    assert not np.asarray(mask)[-1, 3:].any()


@pytest.mark.parametrize("fn, args, match", [
    (data.epoch_batches, (jnp.zeros((4, 2)), jnp.zeros(3), 2), "same leading length"),
    (data.epoch_batches, (jnp.zeros((4, 2)), jnp.zeros(4), 0), "batch_size must be a positive int"),
    (data.epoch_batches, (jnp.zeros((4, 2)), jnp.zeros(4), 5), "batch_size 5 exceeds the 4 examples"),
])
def test_batching_errors(key, fn, args, match):
    with pytest.raises(ValueError, match=f"epoch_batches: .*{match}"):
        fn(key, *args)


def test_train_val_split(key):
    x, y = np.arange(100 * 3).reshape(100, 3), np.arange(100)
    (xt, yt), (xv, yv) = data.train_val_split(x, y, 10)
    np.testing.assert_array_equal(yv, np.arange(90, 100))
    (xt, yt), (xv, yv) = data.train_val_split(x, y, 0.25, key)
    assert len(yt) == 75 and len(yv) == 25
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(100))
    np.testing.assert_array_equal(xv[:, 0], 3 * yv)
    assert not np.array_equal(yv, np.arange(75, 100))
    assert data.train_val_split(jnp.asarray(x), jnp.asarray(y), 0)[1] is None
    for bad in (100, -1, 1.0, "5"):
        with pytest.raises(ValueError, match="train_val_split: "):
            data.train_val_split(x, y, bad)


def test_standardize_uses_the_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 4, 4, 3)).astype(np.float32)
    train[..., 2] = 7.0                                            # a constant channel: std 1, not 0
    test = rng.normal(size=(10, 4, 4, 3)).astype(np.float32)
    (train_s, test_s), stats = data.standardize(train, test)
    assert stats.mean.shape == stats.std.shape == (3,) and stats.std[2] == 1.0
    np.testing.assert_allclose(stats.mean, train.reshape(-1, 3).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(train_s.reshape(-1, 3)[:, :2].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_s.reshape(-1, 3)[:, :2].std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(test_s, (test - stats.mean) / stats.std, rtol=1e-5)
    assert train_s.dtype == test_s.dtype == np.float32
    (ints,), _ = data.standardize(np.arange(12, dtype=np.uint8).reshape(6, 2))
    assert ints.dtype == np.float32


def test_standardize_errors():
    with pytest.raises(ValueError, match=r"standardize: expected train of shape \(N, \.\.\., F\)"):
        data.standardize(np.zeros(5))
    with pytest.raises(ValueError, match=r"expected every array of shape \(M, 3\) as train, got \(2, 4\) for "
                                         r"the array at position 1"):
        data.standardize(np.zeros((5, 3)), np.zeros((2, 4)))
