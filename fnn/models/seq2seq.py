"""Two encoder-decoders (grapheme-to-phoneme, or any short sequence transduction), each ONE
Layer whose backward composes its children's hand-derived backwards, their decoders (greedy,
beam search) and the attention weights of the decoder on the source (`attention_weights`).

Input x = (src (B, S) source ids, src_len (B,), tgt_in (B, T) target ids starting with BOS);
output logits (B, T, V) for tgt_out (teacher forcing). Token ids: PAD 0, BOS 1, EOS 2
(as `fnn.datasets.cmudict` encodes them).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .. import layers as L
from ..core import Layer, PyTree
from ..layers.attention import decode_cache_for, decode_step
from ..layers.transformer import sinusoids

PAD, BOS, EOS = 0, 1, 2

__all__ = ["BOS", "EOS", "PAD", "Seq2SeqLSTM", "Seq2SeqTransformer", "attention_weights", "beam_search",
           "decode", "encode", "greedy", "lstm_attention", "transformer_cross_attention"]


def _init_all(children, key, shapes):
    outs = [c.init(k, s) for c, k, s in zip(children, jax.random.split(key, len(children)), shapes)]
    return tuple(o[1] for o in outs), tuple(o[2] for o in outs)


def _src_mask(src_len, S):
    return jnp.arange(S, dtype=src_len.dtype)[None, :] < src_len[:, None]                     # (B, S) True = a letter


def _kind(model: Layer) -> str:
    """"lstm" for a Seq2SeqLSTM, "transformer" for a Seq2SeqTransformer (by their children's names), else "other"."""
    names = {c.name for c in model.children}
    return "lstm" if "attention" in names else "transformer" if "decoder_norm" in names else "other"


def _depth(model: Layer) -> int:
    """A Seq2SeqTransformer's blocks per side (its children: 7 + 2 x blocks)."""
    return (len(model.children) - 7) // 2


def _runner(children, params, state, key, train):
    """run(i, x) -> (y, new_state, cache) of child i, with its own dropout key."""
    keys = [None if key is None else jax.random.fold_in(key, i) for i in range(len(children))]
    return lambda i, inp: children[i].forward(params[i], state[i], inp, key=keys[i], train=train)


# ----------------------------------------------------------------- BiLSTM + additive attention

def Seq2SeqLSTM(src_vocab: int, tgt_vocab: int, *, embed: int = 64, hidden: int = 256, attn: int = 128,
                dropout: float = 0.0, name: str = "Seq2SeqLSTM") -> Layer:
    """BiLSTM encoder, LSTM decoder with Luong-style additive attention on its states:
    m = BiLSTM(E_s src)  (B, S, 2H);  h = LSTM(E_t tgt_in; h_0 = m[:, 0, H:], c_0 = 0)  (B, T, H);
    c = Additive(h, m, src mask);  logits = Drop([h, c]) W + b;  in training both embeddings
    and [h, c] pass through Dropout(dropout).

    Children: src Embedding, Bidirectional(LSTM), tgt Embedding, LSTM, AdditiveAttention, Dense,
        three Dropouts (src embeddings, tgt embeddings, [h, c]).
    Backward: d[h, c] = Drop.backward(dlogits W^T);  dh += Additive.backward_q,  dm = Additive.backward_m;
        LSTM.backward gives d tgt embeddings and dh_0, added to dm[:, 0, H:];  BiLSTM.backward;
        each embedding's gradient through its Dropout's backward.
    """
    children = (L.Embedding(src_vocab, embed, name="src_embedding"),
                L.Bidirectional(L.LSTM(hidden, return_sequences=True), name="encoder"),
                L.Embedding(tgt_vocab, embed, name="tgt_embedding"),
                L.LSTM(hidden, return_sequences=True, name="decoder"),
                L.AdditiveAttention(attn, return_weights=True, name="attention"),
                L.Dense(tgt_vocab, name="out"),
                *[L.Dropout(dropout, name=f"{n}_dropout") for n in ("src", "tgt", "out")])

    def init(key, in_shape):
        (S,), _, (T,) = in_shape
        shapes = ((S,), ((S, embed), ()), (T,), ((T, embed), (), ((hidden,), (hidden,))),
                  ((T, hidden), (S, 2 * hidden), (S,)), (T, 3 * hidden), (S, embed), (T, embed), (T, 3 * hidden))
        params, state = _init_all(children, key, shapes)
        return (T, tgt_vocab), params, state

    def forward(params, state, x, *, key=None, train=False):
        src, src_len, tgt_in = x
        (logits, _), caches = _lstm_run(children, params, state, src, src_len, tgt_in, key=key, train=train)
        return logits, state, caches

    def backward(params, cache, dlogits):
        c_src, c_enc, c_tgt, c_dec, c_att, c_out, c_ds, c_dt, c_do = cache
        g_out, dz = children[5].backward(params[5], c_out, dlogits)
        g_do, dz = children[8].backward(params[8], c_do, dz)
        g_att, (dq, dm, _) = children[4].backward(params[4], c_att, (dz[..., hidden:], None))
        g_dec, (de_t, _, (dh0, _)) = children[3].backward(params[3], c_dec, (dz[..., :hidden] + dq, None))
        g_dt, de_t = children[7].backward(params[7], c_dt, de_t)
        g_tgt, _ = children[2].backward(params[2], c_tgt, de_t)
        g_enc, (de_s, _) = children[1].backward(params[1], c_enc, (dm.at[:, 0, hidden:].add(dh0), None))
        g_ds, de_s = children[6].backward(params[6], c_ds, de_s)
        g_src, _ = children[0].backward(params[0], c_src, de_s)
        return (g_src, g_enc, g_tgt, g_dec, g_att, g_out, g_ds, g_dt, g_do), (None, None, None)

    return Layer(init, forward, backward, name, children)


def _lstm_run(children, params, state, src, src_len, tgt_in, *, key=None, train=False):
    """((logits, attention weights), caches) of the Seq2SeqLSTM forward."""
    run = _runner(children, params, state, key, train)
    m, (c_src, c_ds, c_enc) = _lstm_encode(run, src, src_len)
    (logits, p), (c_tgt, c_dt, c_dec, c_att, c_do, c_out) = _lstm_decode(run, params, m, src_len, tgt_in)
    return (logits, p), (c_src, c_enc, c_tgt, c_dec, c_att, c_out, c_ds, c_dt, c_do)


def _lstm_encode(run, src, src_len):
    """The encoder's states m (B, S, 2H), and its caches."""
    e_s, _, c_src = run(0, src)
    e_s, _, c_ds = run(6, e_s)
    (m, _), _, c_enc = run(1, (e_s, src_len))
    return m, (c_src, c_ds, c_enc)


def _lstm_decode(run, params, m, src_len, tgt_in):
    """((logits, attention weights), caches) of the decoder on the encoder's states m."""
    e_t, _, c_tgt = run(2, tgt_in)
    e_t, _, c_dt = run(7, e_t)
    B, T = tgt_in.shape
    (h, _), _, c_dec = run(3, (e_t, jnp.full((B,), T, jnp.int32), _lstm_first_state(params, m)))
    (logits, p), (c_att, c_do, c_out) = _lstm_readout(run, h, m, src_len)
    return (logits, p), (c_tgt, c_dt, c_dec, c_att, c_do, c_out)


def _lstm_first_state(params, m):
    """The decoder's (h_0, c_0): the backward encoder's state at the first letter, and zeros."""
    H = params[3]["W_h"].shape[0]
    return m[:, 0, H:], jnp.zeros_like(m[:, 0, H:])


def _lstm_readout(run, h, m, src_len):
    """((logits, attention weights), caches) from the decoder states h (B, T, H): attention on m,
    then Dense(Drop([h, c]))."""
    (c, p), _, c_att = run(4, (h, m, _src_mask(src_len, m.shape[1])[:, None, :]))
    z, _, c_do = run(8, jnp.concatenate([h, c], axis=-1))
    logits, _, c_out = run(5, z)
    return (logits, p), (c_att, c_do, c_out)


def _lstm_next(model, params, state, m, src_len, token, hc):
    """One decoding step of the Seq2SeqLSTM (inference): the next token's logits (B, V) from the
    previous token (B,) and the decoder's (h, c), and the new (h, c). Equals the forward on the
    whole prefix at that position: the recurrence only looks back."""
    run = _runner(model.children, params, state, None, False)
    e, _, _ = run(2, token[:, None])
    e, _, _ = run(7, e)
    step = L.LSTM(params[3]["W_h"].shape[0], return_sequences=True, return_state=True)
    ((h, _), hc), _, _ = step.forward(params[3], state[3], (e, jnp.ones(token.shape, jnp.int32), hc))
    (logits, _), _ = _lstm_readout(run, h, m, src_len)
    return logits[:, 0], hc


def lstm_attention(model: Layer, params: PyTree, state: PyTree, src: jax.Array, src_len: jax.Array,
                   tgt_in: jax.Array) -> jax.Array:
    """The decoder's attention weights (B, T, S) on a given target input."""
    return _lstm_run(model.children, params, state, src, src_len, tgt_in)[0][1]


# ----------------------------------------------------------------- transformer

def Seq2SeqTransformer(src_vocab: int, tgt_vocab: int, *, embed: int = 128, heads: int = 4, mlp: int = 512,
                       layers: int = 3, dropout: float = 0.1, name: str = "Seq2SeqTransformer") -> Layer:
    """Pre-LN transformer encoder-decoder: m = LN(Enc^n(E_s src + PE, key mask)),
    y = LN(Dec^n(E_t tgt_in + PE, m, key mask)),  logits = y W + b.

    Children: src Embedding, positions, n encoder blocks, LayerNorm, tgt Embedding, positions,
        n decoder blocks, LayerNorm, Dense.
    Backward: `_transformer_backward`, the children's backwards in reverse order.
    """
    enc = [L.TransformerEncoderBlock(embed, heads, mlp, dropout=dropout, name=f"encoder_{i}") for i in range(layers)]
    dec = [L.TransformerDecoderBlock(embed, heads, mlp, dropout=dropout, name=f"decoder_{i}") for i in range(layers)]
    children = (L.Embedding(src_vocab, embed, name="src_embedding"), L.SinusoidalPositions(name="src_positions"),
                *enc, L.LayerNorm(name="encoder_norm"), L.Embedding(tgt_vocab, embed, name="tgt_embedding"),
                L.SinusoidalPositions(name="tgt_positions"), *dec, L.LayerNorm(name="decoder_norm"),
                L.Dense(tgt_vocab, name="out"))

    def init(key, in_shape):
        (S,), _, (T,) = in_shape
        mem = (S, embed)
        shapes = ((S,), mem, *[(mem, (1, 1, S))] * layers, mem, (T,), (T, embed),
                  *[((T, embed), mem, (1, 1, S))] * layers, (T, embed), (T, embed))
        params, state = _init_all(children, key, shapes)
        return (T, tgt_vocab), params, state

    def forward(params, state, x, *, key=None, train=False):
        src, src_len, tgt_in = x
        run = _runner(children, params, state, key, train)
        m, encoded = _transformer_encode(run, layers, src, src_len)
        logits, decoded = _transformer_decode(run, layers, m, src_len, tgt_in)
        return logits, tuple(o[1] for o in encoded + decoded), tuple(o[2] for o in encoded + decoded)

    def backward(params, cache, dlogits):
        return _transformer_backward(children, layers, params, cache, dlogits)

    return Layer(init, forward, backward, name, children)


def _transformer_backward(children, n, params, cache, dlogits):
    """The children's backwards in reverse order; dm, the memory's gradient, sums the decoder blocks'."""
    grads = [None] * len(children)
    def bwd(i, dy):
        grads[i], dx = children[i].backward(params[i], cache[i], dy)
        return dx
    dy, dm = bwd(5 + 2 * n, bwd(6 + 2 * n, dlogits)), None
    for i in reversed(range(5 + n, 5 + 2 * n)):
        dy, dm, _ = bwd(i, (dy, dm, None))
    bwd(3 + n, bwd(4 + n, dy))
    dy = bwd(2 + n, dm)
    for i in reversed(range(2, 2 + n)):
        dy, _ = bwd(i, (dy, None))
    bwd(0, bwd(1, dy))
    return tuple(grads), (None, None, None)


def _transformer_encode(run, n, src, src_len):
    """The memory m = LN(Enc^n(E_s src + PE)) (B, S, E), and the encoder children's outputs."""
    mask = _src_mask(src_len, src.shape[1])[:, None, None, :]
    outs = [run(0, src)]
    outs.append(run(1, outs[-1][0]))
    for i in range(2, 2 + n):
        outs.append(run(i, (outs[-1][0] if i == 2 else outs[-1][0][0], mask)))
    outs.append(run(2 + n, outs[-1][0][0]))
    return outs[-1][0], outs


def _transformer_decode(run, n, m, src_len, tgt_in):
    """The logits of the decoder on the memory m, and the decoder children's outputs."""
    mask = _src_mask(src_len, m.shape[1])[:, None, None, :]
    outs = [run(3 + n, tgt_in)]
    outs.append(run(4 + n, outs[-1][0]))
    for i in range(5 + n, 5 + 2 * n):
        outs.append(run(i, (outs[-1][0] if i == 5 + n else outs[-1][0][0], m, mask)))
    outs.append(run(5 + 2 * n, outs[-1][0][0]))
    outs.append(run(6 + 2 * n, outs[-1][0]))
    return outs[-1][0], outs


def transformer_cross_attention(model: Layer, params: PyTree, state: PyTree, src: jax.Array, src_len: jax.Array,
                                tgt_in: jax.Array) -> jax.Array:
    """The last decoder block's cross-attention weights (B, T, S), the mean over its heads, on a
    given target input (read from the forward's cache: the block keeps them for its backward)."""
    n = _depth(model)
    _, _, cache = model.forward(params, state, (src, src_len, tgt_in))
    p = cache[4 + 2 * n][4][5]                          # last decoder block -> cross_attention -> P
    return p.mean(axis=1)                               # (B, H, T, S) -> (B, T, S)


def attention_weights(model: Layer, params: PyTree, state: PyTree, src: jax.Array, src_len: jax.Array,
                      tgt_in: jax.Array) -> jax.Array:
    """Where the decoder looks on the source: (B, T, S) weights, each row summing to 1 over the
    src_len letters, for either encoder-decoder of this module."""
    kind = _kind(model)
    if kind == "lstm":
        return lstm_attention(model, params, state, src, src_len, tgt_in)
    if kind == "transformer":
        return transformer_cross_attention(model, params, state, src, src_len, tgt_in)
    raise ValueError(f"attention_weights: {model.name} is neither a Seq2SeqLSTM nor a Seq2SeqTransformer")


# ----------------------------------------------------------------- decoding

def encode(model: Layer, params: PyTree, state: PyTree, src: jax.Array, src_len: jax.Array) -> jax.Array:
    """What the decoder reads of the source, computed once per word for decoding (inference mode):
    the BiLSTM's states (B, S, 2H), the transformer's memory (B, S, E); for any other
    encoder-decoder Layer the source ids themselves (its decode step re-runs it whole)."""
    kind, run = _kind(model), _runner(model.children, params, state, None, False)
    if kind == "lstm":
        return _lstm_encode(run, src, src_len)[0]
    if kind == "transformer":
        return _transformer_encode(run, _depth(model), src, src_len)[0]
    return src


def decode(model: Layer, params: PyTree, state: PyTree, memory: jax.Array, src_len: jax.Array,
           tgt_in: jax.Array) -> jax.Array:
    """Logits (B, T, V) of the decoder on `encode`'s memory and a target prefix (inference mode):
    the same numbers as model.apply(params, state, (src, src_len, tgt_in))[0]."""
    kind, run = _kind(model), _runner(model.children, params, state, None, False)
    if kind == "lstm":
        return _lstm_decode(run, params, memory, src_len, tgt_in)[0][0]
    if kind == "transformer":
        return _transformer_decode(run, _depth(model), memory, src_len, tgt_in)[0]
    return model.apply(params, state, (memory, src_len, tgt_in))[0]


def _first_carry(model: Layer, params: PyTree, memory: jax.Array, T: int):
    """What a decoding step carries besides the prefix: the LSTM decoder's (h, c); the transformer's
    keys and values of the positions decoded so far, a `DecodeCache` per decoder block; else nothing."""
    kind = _kind(model)
    if kind == "lstm":
        return _lstm_first_state(params, memory)
    if kind == "transformer":
        n = _depth(model)
        return tuple(decode_cache_for(model.children[i].children[1], params[i][1], memory.shape[0], T, memory.dtype)
                     for i in range(5 + n, 5 + 2 * n))
    return ()


def _next_logits(model, params, state, memory, src_len, tgt, t, carry):
    """(logits (B, V) at position t of the prefix tgt (B, T), the new carry): one step from the
    carried state (the LSTM's (h, c), the transformer's cached keys and values), or, for any
    other encoder-decoder, the model re-run on the prefix."""
    kind, token = _kind(model), jax.lax.dynamic_index_in_dim(tgt, t, 1, False)
    if kind == "lstm":
        return _lstm_next(model, params, state, memory, src_len, token, carry)
    if kind == "transformer":
        return _transformer_next(model, params, state, memory, src_len, token, t, carry)
    return jax.lax.dynamic_index_in_dim(decode(model, params, state, memory, src_len, tgt), t, 1, False), carry


def _transformer_next(model, params, state, memory, src_len, token, t, caches):
    """The decoder at position t alone: embed token (B,) + PE[t], then each block as its forward at
    that position (self-attention over the cached positions 0..t, see `_decoder_block_step`), the
    final LayerNorm and Dense. Equals `decode`'s logits at t (tested), O(t) a step instead of O(T^2)."""
    n, ch = _depth(model), model.children
    x, _ = ch[3 + n].apply(params[3 + n], state[3 + n], token[:, None])                  # (B, 1, E)
    x = x + jax.lax.dynamic_slice_in_dim(sinusoids(caches[0].k.shape[1], x.shape[-1], x.dtype), t, 1, 0)
    mask = _src_mask(src_len, memory.shape[1])[:, None, None, :]
    new = []
    for cache, i in zip(caches, range(5 + n, 5 + 2 * n)):
        x, cache = _decoder_block_step(ch[i], params[i], state[i], cache, x, memory, mask)
        new.append(cache)
    x, _ = ch[5 + 2 * n].apply(params[5 + 2 * n], state[5 + 2 * n], x)
    logits, _ = ch[6 + 2 * n].apply(params[6 + 2 * n], state[6 + 2 * n], x)
    return logits[:, 0], tuple(new)


def _decoder_block_step(block: Layer, p, s, cache, y, memory, mask):
    """`TransformerDecoderBlock` at one position (inference): h = y + MHA_cached(LN(y)),
    g = h + MHA(LN(h), memory, mask), out = g + MLP(g)."""
    norm_1, _, _, norm_2, cross, _, mlp = block.children
    a, _ = norm_1.apply(p[0], s[0], y)
    b, cache = decode_step(p[1], cache, a)
    y = y + b
    y = y + cross.apply(p[4], s[4], (norm_2.apply(p[3], s[3], y)[0], memory, mask))[0]
    return y + mlp.apply(p[6], s[6], y)[0], cache


@functools.partial(jax.jit, static_argnums=(0, 4))
def greedy(model: Layer, params: PyTree, state: PyTree, src_and_len: tuple, T: int) -> jax.Array:
    """Greedy decoding: encode the source once; at step t the logits of position t (one LSTM step
    from its carried state, the transformer's from its cached keys and values), take the argmax.
    Returns (B, T - 1) ids."""
    src, src_len = src_and_len
    memory = encode(model, params, state, src, src_len)
    tgt = jnp.zeros((src.shape[0], T), jnp.int32).at[:, 0].set(BOS)

    def step(t, out):
        tgt, done, carry = out
        logits, carry = _next_logits(model, params, state, memory, src_len, tgt, t, carry)
        nxt = jnp.where(done, PAD, jnp.argmax(logits, axis=-1).astype(jnp.int32))
        tgt = jax.lax.dynamic_update_slice(tgt, nxt[:, None], (0, t + 1))
        return tgt, done | (nxt == EOS), carry

    out = (tgt, jnp.zeros(src.shape[0], bool), _first_carry(model, params, memory, T))
    tgt, _, _ = jax.lax.fori_loop(0, T - 1, step, out)
    return tgt[:, 1:]


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def beam_search(model: Layer, params: PyTree, state: PyTree, src_and_len: tuple, T: int, beam: int) -> jax.Array:
    """Beam search (width `beam`, sum of log-probabilities, finished hypotheses kept as they are).
    Returns the best hypothesis (B, T - 1) ids."""
    src, src_len = src_and_len
    B = src.shape[0]
    memory = jnp.repeat(encode(model, params, state, src, src_len), beam, axis=0)   # encoded once per word
    lens = jnp.repeat(src_len, beam)
    tgt = jnp.zeros((B, beam, T), jnp.int32).at[:, :, 0].set(BOS)
    score = jnp.full((B, beam), -jnp.inf).at[:, 0].set(0.0)            # one live hypothesis at first

    def pick(x, origin):                                                # (B * beam, ...) rows by origin
        if x.ndim == 0:                                                 # a cache's length: shared
            return x
        x = x.reshape(B, beam, *x.shape[1:])
        x = jnp.take_along_axis(x, origin.reshape(B, beam, *[1] * (x.ndim - 2)), axis=1)
        return x.reshape(B * beam, *x.shape[2:])

    def step(t, out):
        tgt, score, done, carry = out
        logits, carry = _next_logits(model, params, state, memory, lens, tgt.reshape(B * beam, T), t, carry)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1).reshape(B, beam, -1)
        V = logp.shape[-1]
        stay = jnp.full((V,), -jnp.inf).at[PAD].set(0.0)                # a finished one extends with PAD, free
        logp = jnp.where(done[..., None], stay, logp)
        total = (score[..., None] + logp).reshape(B, beam * V)
        score, idx = jax.lax.top_k(total, beam)
        origin, token = idx // V, (idx % V).astype(jnp.int32)
        tgt = jnp.take_along_axis(tgt, origin[..., None], axis=1)
        tgt = jax.lax.dynamic_update_slice(tgt, token[..., None], (0, 0, t + 1))
        done = jnp.take_along_axis(done, origin, axis=1) | (token == EOS)
        return tgt, score, done, jax.tree.map(lambda x: pick(x, origin), carry)

    out = (tgt, score, jnp.zeros((B, beam), bool), _first_carry(model, params, memory, T))
    tgt, score, _, _ = jax.lax.fori_loop(0, T - 1, step, out)
    return tgt[:, 0, 1:]                                                # top_k sorts: 0 is the best
