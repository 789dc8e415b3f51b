"""`evaluate`, `predict`, `inspect` and `summary` for a g2p run directory."""
from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

from ..core import tree_size
from ..datasets import cmudict as D
from ..models import seq2seq as S
from ..run_config import UsageError
from .recipe import EXAMPLE_WORDS, OWN, RECIPE, init_model, score_words, spread, transcribe
from .run import load_run, load_runs, read_config

MAX_BEAM = 64


def _beam(args) -> int:
    beam = 1 if getattr(args, "beam", None) is None else args.beam
    if not 1 <= beam <= MAX_BEAM:
        raise UsageError(f"--beam must be in 1..{MAX_BEAM}, got {beam}")
    return beam


def _decoder(beam: int) -> str:
    return "greedy" if beam == 1 else f"beam {beam}"


def _run_dirs(args) -> list[Path]:
    """The run, then the runs given with --ensemble (each must be a directory)."""
    dirs = [Path(args.run_dir), *(Path(d) for d in getattr(args, "ensemble", None) or ())]
    for d in dirs[1:]:
        if not d.is_dir():
            raise UsageError(f"--ensemble {d}: no such directory")
    return dirs


def _which_runs(dirs, which: str, epochs) -> str:
    if len(dirs) == 1:
        return f"{dirs[0]}: {which} checkpoint (epoch {epochs[0]})"
    return (f"ensemble of {len(dirs)} runs ({', '.join(map(str, dirs))}): {which} checkpoints "
            f"(epochs {', '.join(map(str, epochs))})")


def evaluate_run(args) -> int:
    """`evaluate RUN [--ensemble RUN...] [--beam K] [--limit N] [--split test|train]`: WER and PER on the
    held-out words (or the run's training words), N of them spread evenly over the sorted list; also
    set as `args.figures` (wer, per, words) for a script that called it."""
    beam, limit = _beam(args), getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be a positive integer (words), got {limit}")
    split = getattr(args, "split", "test") or "test"
    if split not in ("test", "train"):
        raise UsageError(f"--split {split}: a g2p run holds out no validation words (use test or train)")
    which, dirs = getattr(args, "checkpoint", "last") or "last", _run_dirs(args)
    cfg, model, params, state, epochs = load_runs(dirs, which)
    train, test = D.split(D.load_lexicon())
    refs = test if split == "test" else dict(list(train.items())[:cfg["limit"] or len(train)])
    words, t0 = spread(refs, limit), time.perf_counter()
    wer, per = score_words(model, params, state, cfg, words, refs, beam=beam)
    print(f"{_which_runs(dirs, which, epochs)}: {_decoder(beam)} WER {wer:.2%}  PER {per:.2%} "
          f"on {len(words)} {'held-out' if split == 'test' else 'training'} words "
          f"({time.perf_counter() - t0:.0f} s to decode)")
    args.figures = {"wer": wer, "per": per, "words": len(words)}
    return 0


def _checked_words(words, letters) -> list[str]:
    """The words, lower-cased; a UsageError (one line) for the first outside the model's alphabet."""
    out = []
    for word in words:
        w = word.lower()
        bad = D.unknown_letters(w, letters)
        if bad or not w or len(w) > D.MAX_LETTERS:
            why = (f"has characters outside the alphabet {''.join(letters[len(D.SPECIALS):])}: {bad!r}" if bad
                   else f"must have 1 to {D.MAX_LETTERS} letters")
            raise UsageError(f"{word!r} {why}")
        out.append(w)
    return out


def predict_run(args) -> int:
    """`predict RUN WORD... [--beam K]`: each word and its predicted phonemes, one line each."""
    words = getattr(args, "inputs", None) or getattr(args, "words", None) or []
    beam, cfg = _beam(args), read_config(Path(args.run_dir))
    words = _checked_words(words, cfg["letters"])
    cfg, model, params, state, _ = load_runs(_run_dirs(args), getattr(args, "checkpoint", "last") or "last")
    predicted = transcribe(model, params, state, words, cfg["letters"], cfg["phonemes"], beam=beam, batch=len(words))
    for word in words:
        print(f"{word}: {' '.join(predicted[word])}")
    return 0


def _alignment(model, params, state, cfg, word: str, pron: tuple):
    """The decoder's attention (len(pron) + 1, len(word)) while it emits `pron` and then </s>."""
    src, n = D.encode_words([word], cfg["letters"])
    index = {p: i for i, p in enumerate(cfg["phonemes"])}
    tgt = np.zeros((1, D.TARGET_LENGTH), np.int32)
    tgt[0, :len(pron) + 1] = [D.BOS, *[index[p] for p in pron]]
    weights = S.attention_weights(model, params, state, src, n, tgt)
    return np.asarray(weights)[0, :len(pron) + 1, :len(word)]


def inspect_run(args) -> int:
    """`inspect RUN [--out DIR]`: the attention alignment of a few words (a heat map each, letters
    across, emitted phonemes down) and an index.html."""
    from ..inspect.plots import plot_attention
    cfg, model, params, state, epoch = load_run(args.run_dir, getattr(args, "checkpoint", "last") or "last")
    out = Path(getattr(args, "out", None) or Path(args.run_dir) / "inspect")
    out.mkdir(parents=True, exist_ok=True)
    words = list(getattr(args, "words", None) or EXAMPLE_WORDS)[:max(1, getattr(args, "images", 8) or 8)]
    words = _checked_words(words, cfg["letters"])
    predicted = transcribe(model, params, state, words, cfg["letters"], cfg["phonemes"], batch=len(words))
    rows, note = [], ""
    for i, word in enumerate(words):
        pron = predicted[word]
        try:
            weights = _alignment(model, params, state, cfg, word, pron)
        except (ValueError, IndexError, TypeError, AttributeError) as err:
            note = f"The attention weights of {model.name} are not reachable here ({err})."
            rows.append((None, f"{word}: {' '.join(pron)}"))
            continue
        end = "</s>" if len(pron) < D.MAX_PHONEMES else "(cut)"       # no </s> within the target length
        path = plot_attention(weights, out / f"attention_{i}.png", queries=[*pron, end], keys=list(word),
                              title=f"{word}: {' '.join(pron)}")
        rows.append((path.name, f"{word}: {' '.join(pron)}"))
    index = _index(out, rows, note, f"{args.run_dir} ({cfg['model']}, epoch {epoch})")
    print(f"wrote {index} ({len(words)} words)")
    return 0


def _index(out: Path, rows, note: str, title: str) -> Path:
    cells = "\n".join((f'<figure><img src="{src}"><figcaption>{html.escape(caption)}</figcaption></figure>'
                       if src else f"<p>{html.escape(caption)}</p>") for src, caption in rows)
    page = f"""<!doctype html><meta charset="utf-8"><title>fnn inspect: g2p</title>
<style>body{{font-family:sans-serif;margin:1em}} .grid{{display:grid;grid-template-columns:repeat(2,1fr);gap:1em}}
img{{max-width:100%}} figure{{margin:0}}</style>
<h1>Where the decoder looks: {html.escape(title)}</h1>
<p>Each picture: the attention weights while the decoder emits each phoneme (rows, greedy decoding) over the
letters of the word (columns). The LSTM: its additive attention; the transformer: the cross-attention of
its last decoder block, averaged over the heads. {html.escape(note)}</p>
<div class="grid">{cells}</div>
"""
    (out / "index.html").write_text(page)
    return out / "index.html"


def summary(args) -> int:
    """The layer table of a g2p model: a run's (`args.run_dir`), else one built from the options given.
    One row per child of the encoder-decoder (its name and parameters), then the total."""
    run_dir = getattr(args, "run_dir", None)
    if run_dir:
        cfg = read_config(Path(run_dir))
    else:
        from .recipe import config_from, load_task
        cfg = config_from(args)
        task = load_task({**cfg, "limit": None})
        cfg = {**RECIPE, **OWN, **cfg, "letters": task.letters, "phonemes": task.phonemes}
    model, params, _ = init_model(cfg)
    rows = [(f"{model.name}/{c.name}", tree_size(p)) for c, p in zip(model.children, params)]
    width = max(len(name) for name, _ in rows) + 2
    print(f"{model.name}: {len(cfg['letters'])} letters -> {len(cfg['phonemes'])} phonemes "
          f"(with <pad>, <s>, </s>); x = (src (B, {D.MAX_LETTERS}), src_len (B,), tgt_in (B, {D.TARGET_LENGTH}))")
    print("\n".join(f"{name:{width}s}{n:>12,}" for name, n in rows))
    print(f"{'total':{width}s}{tree_size(params):>12,}")
    return 0
