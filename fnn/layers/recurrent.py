"""Recurrent layers: SimpleRNN, LSTM, GRU and Bidirectional, with BPTT written by hand.

Input: x (B, T, F), or a tuple (x, lengths) / (x, lengths, initial_state) with lengths
(B,) integers in [0, T] (None for all T). Steps t >= lengths[b] neither change the state
nor get gradient; their outputs are 0. Parameters are PyTorch's, transposed to x @ W:
W_x (F, G*H), W_h (H, G*H), b_x, b_h (G*H,), gates in PyTorch's order. The engine
(weight gradients as one matmul after the loop) is in `_bptt`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, check_float, is_multi_shape
from ..gradcheck import Case
from . import _bptt
from ._bptt import reverse_within, zero_cotangent


def _parse(name, x):
    """(x, lengths, initial_state, form): form is None for a bare array, else a tuple of
    Nones as long as the input tuple (a static marker that survives jit)."""
    if not isinstance(x, (tuple, list)):
        return x, None, None, None
    if not 2 <= len(x) <= 3:
        raise ValueError(f"{name}: expected x, (x, lengths) or (x, lengths, initial_state), "
                         f"got a tuple of {len(x)}")
    return x[0], x[1], (x[2] if len(x) == 3 else None), (None,) * len(x)


def _check_lengths(name, lengths, B, T):
    if lengths is None:
        return None
    if not jnp.issubdtype(jnp.asarray(lengths).dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer lengths, got dtype {jnp.asarray(lengths).dtype}")
    if jnp.shape(lengths) != (B,):
        raise ValueError(f"{name}: expected lengths of shape ({B},), got {jnp.shape(lengths)}")
    try:
        values = np.asarray(lengths)
    except jax.errors.TracerArrayConversionError:       # under jit: not checkable
        return jnp.asarray(lengths)
    if values.size and (values.min() < 0 or values.max() > T):
        raise ValueError(f"{name}: expected lengths in [0, {T}], got {values.min()}..{values.max()}")
    return jnp.asarray(lengths)


def _check(name, cell, params, x, h0):
    """The input checks; returns the initial carry (zeros when h0 is None)."""
    F, H = params["W_x"].shape[0], params["W_h"].shape[0]
    if not hasattr(x, "shape"):
        raise TypeError(f"{name}: expected an array x, got {type(x).__name__}")
    check_float(name, x)
    if x.ndim != 3 or x.shape[-1] != F:
        raise ValueError(f"{name}: expected x of shape (B, T, {F}), got {tuple(x.shape)}")
    zeros = jnp.zeros((x.shape[0], H), x.dtype)
    if h0 is None:
        return (zeros,) * cell.carries
    h0 = tuple(h0) if cell.carries == 2 else (h0,)
    if len(h0) != cell.carries or any(jnp.shape(h) != zeros.shape for h in h0):
        want = f"(h0, c0), each {zeros.shape}" if cell.carries == 2 else f"{zeros.shape}"
        raise ValueError(f"{name}: expected an initial state of shape {want}, got "
                         f"{[jnp.shape(h) for h in h0]}")
    return tuple(jnp.asarray(h, x.dtype) for h in h0)


def _out_shape(name, in_shape, hidden, carries, return_sequences, return_state):
    seq = in_shape[0] if is_multi_shape(in_shape) else in_shape
    if len(seq) != 2:
        raise ValueError(f"{name}: expected in_shape (T, features), got {in_shape}")
    out = (seq[0], hidden) if return_sequences else (hidden,)
    if return_sequences and is_multi_shape(in_shape):
        out = (out, ())
    state = ((hidden,), (hidden,)) if carries == 2 else (hidden,)
    return seq[-1], ((out, state) if return_state else out)


def _check_options(name, hidden, unroll, batch_blocks):
    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"{name}: hidden must be a positive int, got {hidden!r}")
    if not (isinstance(unroll, bool) or isinstance(unroll, int) and unroll >= 1):
        raise ValueError(f"{name}: unroll must be a positive int or a bool, got {unroll!r}")
    if batch_blocks is not None and (isinstance(batch_blocks, bool) or not isinstance(batch_blocks, int)
                                     or batch_blocks < 1):
        raise ValueError(f"{name}: batch_blocks must be a positive int or None, got {batch_blocks!r}")


def _blocks(batch_blocks, B):
    """How many independent recurrences the batch of B runs as: batch_blocks when it divides B, else
    1 (the same numbers either way: a speed option); None: 2 when B is even and >= 64, the size
    from which both of a CPU's cores pay off."""
    if batch_blocks is None:
        return 2 if B % 2 == 0 and B >= 64 else 1
    return batch_blocks if B % batch_blocks == 0 else 1


def _init_params(key, features, hidden, gates):
    """W_x (F, G H), W_h (H, G H), b_x, b_h (G H,), each U(-1/sqrt(H), 1/sqrt(H)) as PyTorch's."""
    k = 1 / np.sqrt(hidden)
    shapes = {"W_x": (features, gates * hidden), "W_h": (hidden, gates * hidden), "b_x": (gates * hidden,),
              "b_h": (gates * hidden,)}
    keys = dict(zip(shapes, jax.random.split(key, 4)))
    return {n: jax.random.uniform(keys[n], s, jnp.float32, -k, k) for n, s in shapes.items()}


def _recurrent(cell, hidden, return_sequences, return_state, reverse, name, fused=False, unroll=1,
               batch_blocks=1):
    """The layer for one cell; `SimpleRNN`, `LSTM` and `GRU` document it."""
    _check_options(name, hidden, unroll, batch_blocks)

    def init(key, in_shape):
        F, out = _out_shape(name, in_shape, hidden, cell.carries, return_sequences, return_state)
        return out, _init_params(key, F, hidden, cell.gates), ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        x, lengths, h0, form = _parse(name, x)
        carry0 = _check(name, cell, params, x, h0)
        lengths = _check_lengths(name, lengths, x.shape[0], x.shape[1])
        mask = _bptt.time_mask(lengths, x.shape[1])
        ys, final, inner = _bptt.run_forward(cell, params, jnp.swapaxes(x, 0, 1), mask, carry0, fused,
                                             unroll, _blocks(batch_blocks, x.shape[0]))
        out = jnp.swapaxes(ys, 0, 1) if return_sequences else final[0]
        if return_sequences and lengths is not None:
            out = (out, lengths)
        if return_state:
            out = (out, final if cell.carries == 2 else final[0])
        return out, state, (inner, lengths, form, None if h0 is None else carry0)

    def backward(params, cache, dy):
        inner, lengths, form, h0 = cache
        dstate = (None,) * cell.carries
        if return_state:
            dy, dstate = dy
            dstate = tuple(dstate) if cell.carries == 2 else (dstate,)
        dys = None
        if return_sequences:
            dys = jnp.swapaxes(dy[0] if isinstance(dy, tuple) else dy, 0, 1)
        dfinal = list(dstate)                                # None: no gradient reaches it
        if not return_sequences:
            dfinal[0] = dy if dfinal[0] is None else dfinal[0] + dy
        (dparams, dx), dcarry0 = _bptt.run_backward(cell, params, inner, dys, dfinal, unroll)
        return dparams, _input_cotangent(jnp.swapaxes(dx, 0, 1), lengths, form, h0, dcarry0, cell)

    layer = Layer(init, forward, backward, name)
    return Reversed(layer, name=name) if reverse else layer


def _input_cotangent(dx, lengths, form, h0, dcarry0, cell):
    """dL/d(input), shaped as the input was: dx, (dx, 0) or (dx, 0, dL/d initial state)."""
    if form is None:
        return dx
    parts = [dx, None if lengths is None else zero_cotangent(lengths)]
    if len(form) == 3:
        parts.append(None if h0 is None else (dcarry0 if cell.carries == 2 else dcarry0[0]))
    return tuple(parts)


def SimpleRNN(hidden: int, *, return_sequences: bool = False, return_state: bool = False,
              reverse: bool = False, fused: bool = False, unroll: int | bool = 1,
              batch_blocks: int | None = 1, name: str = "SimpleRNN") -> Layer:
    """Elman RNN (PyTorch nn.RNN, tanh): h_t = tanh(x_t W_x + b_x + h_{t-1} W_h + b_h).

    Shapes: x (B, T, F) [or (x, lengths[, h0 (B, H)])] -> y (B, T, H) if return_sequences
        (with lengths: (y, lengths)) else h_T (B, H); return_state adds h_T: (y, h_T).
        W_x (F, H), W_h (H, H), b_x, b_h (H,).
    Backward: (reverse scan, dh_T from the output) a_t = (dy_t + dh_t) (1 - h_t^2),
        dh_{t-1} = a_t W_h^T;  dW_x = sum_t x_t^T a_t,  dW_h = sum_t h_{t-1}^T a_t,
        db_x = db_h = sum_t a_t,  dx_t = a_t W_x^T.  Padded steps pass dh through.
    fused=True: X W_x + b_x as one matmul before the loop (cuDNN); slower on XLA:CPU.
    unroll: lax.scan's, for the forward and the backward scan (True: all steps).
    batch_blocks: the batch as that many independent recurrences in one scan step (rows
        in blocks; XLA:CPU runs them on different cores) when it divides the batch, else one;
        None: 2 for an even batch >= 64.
    """
    return _recurrent(_bptt.RNN_CELL, hidden, return_sequences, return_state, reverse, name,
                      fused, unroll, batch_blocks)


def LSTM(hidden: int, *, return_sequences: bool = False, return_state: bool = False,
         reverse: bool = False, fused: bool = False, unroll: int | bool = 1,
         batch_blocks: int | None = 1, name: str = "LSTM") -> Layer:
    """LSTM (PyTorch nn.LSTM): [i f g o] = x_t W_x + b_x + h_{t-1} W_h + b_h, then i, f, o
    sigmoid, g tanh;  c_t = f c_{t-1} + i g,  h_t = o tanh(c_t).

    Shapes: x (B, T, F) [or (x, lengths[, (h0, c0)])] -> y (B, T, H) or h_T (B, H);
        return_state adds (h_T, c_T).  W_x (F, 4H), W_h (H, 4H), b_x, b_h (4H,).
    Backward: (reverse scan carrying dh, dc) dc' = dc_t + dh_t o (1 - tanh(c_t)^2),
        a = [dc' g i(1-i), dc' c_{t-1} f(1-f), dc' i (1-g^2), dh_t tanh(c_t) o(1-o)],
        dh_{t-1} = a W_h^T,  dc_{t-1} = dc' f;  [dW_x; dW_h] = [X, H_prev]^T A, db = sum A,
        dx = A W_x^T (one matmul each, after the loop). Forward: one [x_t, h] [W_x; W_h] matmul
        a step; fused=True computes X W_x before the loop instead (cuDNN; slower on XLA:CPU).
        unroll: lax.scan's, in both scans (True: all steps).
        batch_blocks: the batch as that many independent recurrences in one scan step (rows
            in blocks; XLA:CPU runs them on different cores) when it divides the batch, else
            one; None: 2 for an even batch >= 64.
    """
    return _recurrent(_bptt.LSTM_CELL, hidden, return_sequences, return_state, reverse, name,
                      fused, unroll, batch_blocks)


def GRU(hidden: int, *, return_sequences: bool = False, return_state: bool = False,
        reverse: bool = False, fused: bool = False, unroll: int | bool = 1,
        batch_blocks: int | None = 1, name: str = "GRU") -> Layer:
    """GRU (PyTorch nn.GRU): r = s(x W_xr + b_xr + h W_hr + b_hr), z likewise,
    n = tanh(x W_xn + b_xn + r (h W_hn + b_hn)),  h_t = (1 - z) n + z h_{t-1}.

    Shapes: x (B, T, F) [or (x, lengths[, h0 (B, H)])] -> y (B, T, H) or h_T (B, H);
        W_x (F, 3H), W_h (H, 3H), b_x, b_h (3H,).
    Backward: (reverse scan, dh = dh_t + dy_t) a_n = dh (1-z)(1-n^2), a_z = dh (h_{t-1}-n) z(1-z),
        a_r = a_n (h W_hn + b_hn) r(1-r);  input side A_x = [a_r a_z a_n], recurrent side
        A_h = [a_r a_z r a_n];  dh_{t-1} = A_h W_h^T + dh z;  dW_x = X^T A_x, dW_h = H_prev^T A_h.
    fused=True: X W_x + b_x as one matmul before the loop (cuDNN); slower on XLA:CPU.
    unroll: lax.scan's, for the forward and the backward scan (True: all steps).
    batch_blocks: the batch as that many independent recurrences in one scan step (rows
        in blocks; XLA:CPU runs them on different cores) when it divides the batch, else one;
        None: 2 for an even batch >= 64.
    """
    return _recurrent(_bptt.GRU_CELL, hidden, return_sequences, return_state, reverse, name,
                      fused, unroll, batch_blocks)


def _map_sequence(tree, fn):
    """Apply fn to the (B, T, ...) sequence leading `tree` (y, (y, lengths), ((y, lengths), state))."""
    if isinstance(tree, tuple):
        return (_map_sequence(tree[0], fn), *tree[1:])
    return fn(tree) if getattr(tree, "ndim", 0) == 3 else tree


def Reversed(layer: Layer, *, name: str | None = None) -> Layer:
    """Run a sequence layer on each sequence reversed within its length: y = rev(f(rev(x))).

    Shapes: as `layer`; x (B, T, F) or (x, lengths, ...); a sequence output is reversed back.
    Backward: dparams, dx' = f.backward(rev(dy));  dx = rev(dx')  (rev is its own inverse).
    """
    def lengths_of(x):
        return x[1] if isinstance(x, (tuple, list)) else None

    def forward(params, state, x, *, key=None, train=False):
        lengths = lengths_of(x)
        rev = functools.partial(reverse_within, lengths=lengths)
        x = tuple(x) if isinstance(x, list) else x
        y, state, cache = layer.forward(params, state, _map_sequence(x, rev), key=key, train=train)
        return _map_sequence(y, rev), state, (cache, lengths)

    def backward(params, cache, dy):
        cache, lengths = cache
        rev = functools.partial(reverse_within, lengths=lengths)
        dparams, dx = layer.backward(params, cache, _map_sequence(dy, rev))
        return dparams, _map_sequence(dx, rev)

    return Layer(layer.init, forward, backward, name or layer.name)


def _join(a, b):
    if isinstance(a, tuple):                               # (y, lengths)
        return (jnp.concatenate([a[0], b[0]], axis=-1), a[1])
    return jnp.concatenate([a, b], axis=-1)


def _join_shapes(name, a, b):
    if is_multi_shape(a) and a[1] == ():
        return ((*a[0][:-1], a[0][-1] + b[0][-1]), ())
    if is_multi_shape(a) or len(a) > 2:
        raise ValueError(f"{name}: expected a layer whose output is (T, H) or (H,), got {a}; "
                         f"Bidirectional does not take return_state")
    return (*a[:-1], a[-1] + b[-1])


def Bidirectional(layer: Layer, *, name: str = "Bidirectional") -> Layer:
    """Two passes, left to right and right to left within each length: y = [f(x), rev(f'(rev(x)))].

    Children: `forward` (the layer) and `backward` (its Reversed copy, own parameters).
    Shapes: x (B, T, F) or (x, lengths) -> (B, T, 2H), (y, lengths) or (B, 2H);
        params {"forward": ..., "backward": ...}.
    Backward: dy splits into [dy_f, dy_b] at H;  dx = dx_f + dx_b.
    """
    fwd, bwd = layer._replace(name="forward"), Reversed(layer, name="backward")

    def init(key, in_shape):
        k1, k2 = jax.random.split(key)
        (sf, pf, stf), (sb, pb, stb) = fwd.init(k1, in_shape), bwd.init(k2, in_shape)
        return _join_shapes(name, sf, sb), {"forward": pf, "backward": pb}, {"forward": stf, "backward": stb}

    def forward(params, state, x, *, key=None, train=False):
        keys = (None, None) if key is None else jax.random.split(key)
        yf, sf, cf = fwd.forward(params["forward"], state["forward"], x, key=keys[0], train=train)
        yb, sb, cb = bwd.forward(params["backward"], state["backward"], x, key=keys[1], train=train)
        return _join(yf, yb), {"forward": sf, "backward": sb}, (cf, cb)

    def backward(params, cache, dy):
        H = params["forward"]["W_h"].shape[0]
        dseq = dy[0] if isinstance(dy, tuple) else dy
        dy_f, dy_b = dseq[..., :H], dseq[..., H:]
        if isinstance(dy, tuple):
            dy_f, dy_b = (dy_f, *dy[1:]), (dy_b, *dy[1:])
        gf, dxf = fwd.backward(params["forward"], cache[0], dy_f)
        gb, dxb = bwd.backward(params["backward"], cache[1], dy_b)
        dx = (dxf[0] + dxb[0], *dxf[1:]) if isinstance(dxf, tuple) else dxf + dxb
        return {"forward": gf, "backward": gb}, dx

    return Layer(init, forward, backward, name, (fwd, bwd))


# ----------------------------------------------------------------- gradient-check rows

def _with_lengths(layer: Layer, lengths, *, initial_state: bool = False, carries: int = 1) -> Layer:
    """A gradient-check harness: `layer` fed (x, lengths[, h0]) with fixed lengths, taking
    x (and h0) as float inputs and giving back the float output only."""
    lengths = np.asarray(lengths, np.int32)

    def pack(x):
        if not initial_state:
            return (x, lengths)
        h0 = x[1] if carries == 1 else (x[1], x[2])
        return (x[0], lengths, h0)

    def init(key, in_shape):
        seq = in_shape[0] if initial_state else in_shape
        out, params, state = layer.init(key, (seq, (), *([in_shape[1]] if initial_state else [])))
        return (out[0] if is_multi_shape(out) and out[1] == () else out), params, state

    def forward(params, state, x, *, key=None, train=False):
        y, state, cache = layer.forward(params, state, pack(x), key=key, train=train)
        return (y[0] if isinstance(y, tuple) else y), state, cache

    def backward(params, cache, dy):
        grads, dx = layer.backward(params, cache, dy)      # a bare dy stands for (dy, lengths)
        if not initial_state:
            return grads, dx[0]
        return grads, (dx[0], *(dx[2] if carries == 2 else (dx[2],)))

    return Layer(init, forward, backward, f"{layer.name}-padded")


def _case_rows():
    rows = []
    for kind, make in (("SimpleRNN", SimpleRNN), ("LSTM", LSTM), ("GRU", GRU)):
        for T, lengths in ((1, (1, 0)), (50, (50, 17))):
            for direction in ("forward", "reverse"):
                seq = functools.partial(make, 3, return_sequences=True, reverse=direction == "reverse")
                rows.append(Case(f"{kind}-T{T}-{direction}", seq, (T, 2), batch=2))
                rows.append(Case(f"{kind}-T{T}-{direction}-padded",
                                 functools.partial(_with_lengths_of, seq, lengths), (T, 2), batch=2))
        carries = 2 if kind == "LSTM" else 1
        last = functools.partial(make, 3)
        rows.append(Case(f"{kind}-T50-last-padded", functools.partial(_with_lengths_of, last, (50, 17)),
                         (50, 2), batch=2))
        rows.append(Case(f"{kind}-T50-initial-state-padded",
                         functools.partial(_with_lengths_of, last, (50, 17), True, carries),
                         ((50, 2), *((3,),) * carries), batch=2))
    for kind, make in (("LSTM", LSTM), ("GRU", GRU)):           # cuDNN's layout, the non-default
        fused = functools.partial(make, 3, return_sequences=True, fused=True)
        rows.append(Case(f"{kind}-T50-fused-padded", functools.partial(_with_lengths_of, fused, (50, 17)),
                         (50, 2), batch=2))
    for kind, make in (("LSTM", LSTM), ("GRU", GRU)):           # the batch as 2 recurrences of 1 row
        blocks = functools.partial(make, 3, return_sequences=True, batch_blocks=2)
        rows.append(Case(f"{kind}-T50-batch-blocks-padded", functools.partial(_with_lengths_of, blocks, (50, 17)),
                         (50, 2), batch=2))
    for kind, make in (("LSTM", LSTM), ("GRU", GRU), ("SimpleRNN", SimpleRNN)):
        bi = functools.partial(lambda m: Bidirectional(m(3, return_sequences=True)), make)
        rows.append(Case(f"Bidirectional-{kind}-T50", bi, (50, 2), batch=2))
        rows.append(Case(f"Bidirectional-{kind}-T50-padded", functools.partial(_with_lengths_of, bi, (50, 17)),
                         (50, 2), batch=2))
    return tuple(rows)


def _with_lengths_of(make, lengths, initial_state=False, carries=1):
    return _with_lengths(make(), lengths, initial_state=initial_state, carries=carries)


CASES = _case_rows()
