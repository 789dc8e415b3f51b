"""fnn.checkpoint: round trips, template checks, atomic writes, no pickle, checksums."""
import functools
import json
import pickle
import struct
import tempfile
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fnn import checkpoint


class AdamState(NamedTuple):
    count: jax.Array
    mu: dict
    nu: dict


def make_tree():
    """Nested dicts/tuples/lists/None/empty containers with f32, f64, bf16, int32 and bool leaves."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(7)  # NumPy first: no compiles
    return {
        "params": ({"W": jnp.asarray(w), "b": jnp.array([1.5, -2.0], jnp.float64)},
                   (), {"gamma": jnp.asarray(np.array([1.1, -2.7, 1e-3], jnp.bfloat16)), "beta": None}),
        "opt_state": AdamState(jnp.asarray(7, jnp.int32), {"W": jnp.asarray(2 * w)}, {"W": 3 * w}),
        "misc": [jnp.array([True, False]), {}, np.float64(0.25), np.arange(3, dtype=np.int64)],
    }


def assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x, np.float64), np.asarray(y, np.float64))


def test_round_trip_with_template(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree, step=12, metadata={"lr": 1e-3, "note": "x"})
    out = checkpoint.load(tmp_path / "c.safetensors", like=tree)
    assert_same(out, tree)
    assert type(out["opt_state"]) is AdamState and isinstance(out["misc"], list)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(out))
    assert checkpoint.read_info(tmp_path / "c.safetensors") == (12, {"lr": 1e-3, "note": "x"})


def test_round_trip_without_template(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    out = checkpoint.load(tmp_path / "c.safetensors")
    assert out["params"][1] == () and out["params"][2]["beta"] is None and out["misc"][1] == {}
    assert isinstance(out["misc"], list) and isinstance(out["params"], tuple)
    state = out["opt_state"]
    assert type(state).__name__ == "AdamState" and state._fields == ("count", "mu", "nu")
    assert state.count.dtype == jnp.int32 and state.count.shape == () and int(state.count) == 7
    assert_same(jax.tree.leaves(out), jax.tree.leaves(tree))
    assert checkpoint.read_info(tmp_path / "c.safetensors") == (None, None)


def test_a_bare_array_round_trips(tmp_path):
    checkpoint.save(tmp_path / "a.safetensors", jnp.asarray(np.arange(4.0)), step=0)
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "a.safetensors"), np.arange(4.0))
    assert checkpoint.read_info(tmp_path / "a.safetensors").step == 0


def test_tensor_names_are_key_paths(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    names = set(safetensors.numpy.load_file(tmp_path / "c.safetensors"))
    expected = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}
    assert names == expected and "['opt_state'].count" in names and "['params'][0]['W']" in names


def test_bfloat16_bits_and_prng_keys_survive(tmp_path):
    bf = jnp.asarray(np.array([np.pi, -1e-30, 3e38, np.inf, np.nan], jnp.bfloat16))
    tree = {"bf": bf, "typed_key": jax.random.key(4), "raw_key": jax.random.PRNGKey(5)}
    checkpoint.save(tmp_path / "k.safetensors", tree)
    path = tmp_path / "k.safetensors"
    for out in (checkpoint.load(path), checkpoint.load(path, like=tree)):
        assert out["bf"].dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(out["bf"]).view(np.uint16), np.asarray(bf).view(np.uint16))
        assert out["typed_key"].dtype == tree["typed_key"].dtype
        key_data = jax.random.key_data
        np.testing.assert_array_equal(key_data(out["typed_key"]), key_data(tree["typed_key"]))
        np.testing.assert_array_equal(out["raw_key"], tree["raw_key"])


def test_shape_dtype_struct_template(tmp_path):
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)
    assert_same(checkpoint.load(tmp_path / "c.safetensors", template), tree)


def _changed(tree, where, new):
    tree = jax.tree.map(lambda a: a, tree)  # a fresh copy of the containers
    where(tree, new)
    return tree


MISMATCHES = {
    "shape": (lambda t, v: t["params"][0].__setitem__("W", v), jnp.zeros((3, 2), jnp.float32),
              r"\['params'\]\[0\]\['W'\] is float32\[2, 3\] in the file but float32\[3, 2\] in the template"),
    "dtype": (lambda t, v: t["params"][0].__setitem__("b", v), jnp.zeros(2, jnp.float32),
              r"\['params'\]\[0\]\['b'\] is float64\[2\] in the file but float32\[2\]"),
    "missing key": (lambda t, v: t["params"][0].pop("b"), None,
                    r"at \['params'\]\[0\] the file has a dict with keys \['W', 'b'\] but the template "
                    r"has a dict with keys \['W'\]"),
    "extra key": (lambda t, v: t.__setitem__("new", v), jnp.zeros(1),
                  r"at the root the file has a dict with keys \['misc', 'opt_state', 'params'\]"),
    "list vs tuple": (lambda t, v: t.__setitem__("misc", tuple(t["misc"])), None,
                      r"at \['misc'\] the file has a list of 4 but the template has a tuple of 4"),
    "None vs array": (lambda t, v: t["params"][2].__setitem__("beta", v), jnp.zeros(3),
                      r"at \['params'\]\[2\]\['beta'\] the file has None but the template has an array"),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_template_mismatch_names_the_key(tmp_path, case):
    where, new, message = MISMATCHES[case]
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    with pytest.raises(ValueError, match=rf"^load: .*c\.safetensors: {message}"):
        checkpoint.load(tmp_path / "c.safetensors", like=_changed(tree, where, new))


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    checkpoint.save(path, {"w": jnp.zeros(1000)}, step=1)
    before = path.read_bytes()

    def dies_midway(f, data):
        f.write(data[: len(data) // 2])
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint, "_write_all", dies_midway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"w": jnp.ones(1000)}, step=2)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
    monkeypatch.undo()
    checkpoint.save(path, {"w": jnp.ones(1000)}, step=2)
    assert checkpoint.read_info(path).step == 2 and float(checkpoint.load(path)["w"].sum()) == 1000


def test_interrupted_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "_write_all", lambda f, data: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "sub" / "c.safetensors", {"w": jnp.zeros(3)})
    assert list((tmp_path / "sub").iterdir()) == []


def test_nothing_is_unpickled(tmp_path, monkeypatch):
    tree = make_tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    raw = (tmp_path / "c.safetensors").read_bytes()
    header = json.loads(raw[8: 8 + struct.unpack("<Q", raw[:8])[0]])  # plain safetensors: JSON header
    assert header["__metadata__"]["fnn.format"] == checkpoint.FORMAT
    assert b"\x80\x04" not in raw[:8 + len(header)] and b"pickle" not in raw

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    assert_same(checkpoint.load(tmp_path / "c.safetensors", tree), tree)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="load: no checkpoint file at"):
        checkpoint.load(tmp_path / "absent.safetensors")
    checkpoint.save(tmp_path / "c.safetensors", {"w": jnp.zeros(100)})
    raw = (tmp_path / "c.safetensors").read_bytes()
    for name, content in (("garbage", b"not a checkpoint at all"), ("cut", raw[:-50])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=rf"load: .*{name} is not a readable checkpoint"):
            checkpoint.load(tmp_path / name)


def test_foreign_safetensors_file(tmp_path):
    safetensors.numpy.save_file({"a.weight": np.ones((2, 2), np.float32)}, tmp_path / "f.safetensors")
    out = checkpoint.load(tmp_path / "f.safetensors")
    assert list(out) == ["a.weight"] and out["a.weight"].shape == (2, 2)
    with pytest.raises(ValueError, match="without fnn tree metadata"):
        checkpoint.load(tmp_path / "f.safetensors", like={"a": jnp.ones((2, 2))})


@pytest.mark.parametrize("tree, match", [
    ({1: jnp.zeros(1)}, "dict keys must be str"),
    ({"s": "text"}, r"leaf \['s'\] has dtype <U4"),
    ({"c": np.zeros(2, np.complex128)}, r"leaf \['c'\] has dtype complex128"),
])
def test_unsupported_trees(tmp_path, tree, match):
    with pytest.raises(TypeError, match=match):
        checkpoint.save(tmp_path / "c.safetensors", tree)
    assert not list(tmp_path.iterdir())


def test_metadata_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="save: metadata must be JSON-serializable"):
        checkpoint.save(tmp_path / "c.safetensors", {}, metadata={"f": object()})


def test_save_and_load_training(tmp_path):
    params = ({"W": jnp.ones((3, 2)), "b": jnp.zeros(2)}, ())
    state = ((), {"mean": jnp.zeros(2, jnp.float32)})
    opt_state = AdamState(jnp.asarray(3, jnp.int32), params[0], params[0])
    path = tmp_path / "run" / "checkpoint.safetensors"
    checkpoint.save_training(path, params, state, opt_state, 5, extra={"key": jax.random.PRNGKey(9)})
    p, s, o, step = checkpoint.load_training(path, params, state, opt_state)
    assert step == 5 and type(o) is AdamState
    assert_same((p, s, o), (params, state, opt_state))
    np.testing.assert_array_equal(checkpoint.load(path)["extra"]["key"], jax.random.PRNGKey(9))
    with pytest.raises(ValueError, match=r"\['opt_state'\]\.count is int32\[\] in the file but int64\[\]"):
        checkpoint.load_training(path, params, state, opt_state._replace(count=jnp.asarray(3, jnp.int64)))
    checkpoint.save(tmp_path / "plain.safetensors", {"params": params})
    with pytest.raises(ValueError, match="load_training: .* was not written by save_training"):
        checkpoint.load_training(tmp_path / "plain.safetensors", params, state, opt_state)


# ----------------------------------------------------------- checksums and damaged files

def test_checksum_is_stored_and_checked(tmp_path):
    path = tmp_path / "c.safetensors"
    checkpoint.save(path, {"w": jnp.arange(64.0, dtype=jnp.float32)}, step=3)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x10                                     # one bit inside the last float
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"^load: .*c\.safetensors is corrupt: its contents do not match"):
        checkpoint.load(path)
    with pytest.raises(ValueError, match=r"^load: .*c\.safetensors is corrupt: its contents do not match"):
        checkpoint.read_info(path)                      # the header is intact, but the file is not: refused


@pytest.mark.parametrize("content, what", [
    (b"", "is empty"), (b"\x05\x00", r"is truncated \(2 bytes\)"),
    (b"\xff" * 40, "is not a readable checkpoint"),
])
def test_empty_short_and_random_files(tmp_path, content, what):
    (tmp_path / "bad.safetensors").write_bytes(content)
    with pytest.raises(ValueError, match=rf"^load: .*bad\.safetensors {what}"):
        checkpoint.load(tmp_path / "bad.safetensors")


def test_a_checkpoint_without_its_checksum_is_refused(tmp_path):
    tree = {"w": np.ones(3, np.float32)}
    header = {"fnn.format": checkpoint.FORMAT, "fnn.tree": json.dumps(checkpoint._encode(tree)), "fnn.dtypes": "{}"}
    safetensors.numpy.save_file({"['w']": tree["w"]}, tmp_path / "c.safetensors", metadata=header)
    with pytest.raises(ValueError, match="is damaged: its fnn metadata has no checksum"):
        checkpoint.load(tmp_path / "c.safetensors")


def test_files_from_before_checksums_still_load(tmp_path):
    tree = {"w": np.arange(3, dtype=np.float32)}
    header = {"fnn.format": "fnn.checkpoint/1", "fnn.tree": json.dumps(checkpoint._encode(tree)), "fnn.dtypes": "{}"}
    safetensors.numpy.save_file({"['w']": tree["w"]}, tmp_path / "old.safetensors", metadata=header)
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "old.safetensors", like=tree)["w"], tree["w"])


_DAMAGE_TREE = {"params": ({"W": np.arange(12, dtype=np.float32).reshape(3, 4) / 7, "b": np.ones(4, np.float32)},),
                "count": np.asarray(5, np.int32), "bf": np.asarray([1.5, -2.0], jnp.bfloat16)}


@functools.cache
def _damage_original() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        checkpoint.save(Path(d) / "c.safetensors", _DAMAGE_TREE, step=7, metadata={"note": "x"})
        return (Path(d) / "c.safetensors").read_bytes()


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_damaged_checkpoints_raise_and_never_return_wrong_arrays(data):
    raw = bytearray(_damage_original())
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=64))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.safetensors"
        path.write_bytes(bytes(raw))
        for like in (None, _DAMAGE_TREE):
            if bytes(raw) == _damage_original():      # flips that cancelled out
                assert_same(checkpoint.load(path, like=_DAMAGE_TREE), _DAMAGE_TREE)
                continue
            with pytest.raises(ValueError, match=r"^load: .*c\.safetensors (is|has)"):
                checkpoint.load(path, like=like)
