"""The g2p run directory: train (a checkpoint per epoch, --resume, a --minutes budget), evaluate,
predict, inspect and summary, each taking the parsed command line."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax

from .. import checkpoint, losses, runs
from ..layers.combinators import ensemble
from ..run_config import RunError, UsageError
from ..rundir import atomic_json, checkpoint_path, discard_unfinished, epochs_done, make_run_dir, raw_config
from ..train import Buckets, fit
from .recipe import (
    CHANGEABLE_ON_RESUME,
    OWN,
    RECIPE,
    _given,
    _refuse_foreign,
    build_optimizer,
    check,
    config_from,
    init_model,
    load_task,
    score_words,
    spread,
    training_data,
    training_loss,
)


class _Context(NamedTuple):
    cfg: dict
    run_dir: Path
    model: Any
    curve_words: list
    test: dict
    clock: tuple            # (seconds before this session, perf_counter at its start)
    plan: dict              # {"planned": epochs the schedule spans, "best": lowest subset WER}


class _Replan(Exception):
    """Raised from the epoch callback when the --minutes budget changes the planned epochs."""


# ------------------------------------------------------------------ files

def read_config(run_dir: Path) -> dict:
    """A g2p run's config.json (UsageError: not a run; RunError: unreadable)."""
    cfg = raw_config(run_dir)
    if not isinstance(cfg, dict) or cfg.get("task") != "g2p" or "letters" not in cfg:
        raise RunError(f"{run_dir / 'config.json'} is not the config of a g2p run")
    return {**RECIPE, **OWN, **cfg}


def _load_weights(path: Path, cfg: dict):
    """(model, params, state, opt_state, epoch, metadata) from a checkpoint; RunError names what is wrong."""
    model, params, state = init_model(cfg)
    like_opt = build_optimizer(cfg, 1).init(params)
    try:
        params, state, opt_state, epoch = checkpoint.load_training(path, params, state, like_opt)
        meta = checkpoint.read_info(path).metadata or {}
    except (OSError, ValueError) as err:
        raise RunError(str(err).removeprefix("load: ").removeprefix("load_training: ")) from None
    return model, params, state, opt_state, epoch, meta


def load_run(run_dir, which: str = "last"):
    """(config, model, params, state, epoch) of a g2p run directory's last or best checkpoint."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    model, params, state, _, epoch, _ = _load_weights(checkpoint_path(run_dir, which), cfg)
    return cfg, model, params, state, epoch


def load_runs(run_dirs, which: str = "last"):
    """(config, model, params, state, epochs) of one g2p run, or of several as one ensemble
    (`fnn.ensemble`: the mean of their log-probabilities, each run's own architecture and weights);
    the config is the first run's. UsageError if the runs spell with different letters or phonemes."""
    loaded = [load_run(run_dir, which) for run_dir in run_dirs]
    if len(loaded) == 1:
        cfg, model, params, state, epoch = loaded[0]
        return cfg, model, params, state, (epoch,)
    first = loaded[0][0]
    for run_dir, (cfg, *_) in zip(run_dirs[1:], loaded[1:]):
        for vocabulary in ("letters", "phonemes"):
            if cfg[vocabulary] != first[vocabulary]:
                raise UsageError(f"--ensemble: {run_dir} has other {vocabulary} than {run_dirs[0]} "
                                 f"({len(cfg[vocabulary])} against {len(first[vocabulary])}): no common vote")
    model = ensemble(*(m for _, m, _, _, _ in loaded))
    params = (tuple(p for _, _, p, _, _ in loaded), ())
    state = (tuple(s for _, _, _, s, _ in loaded), ())
    return first, model, params, state, tuple(e for *_, e in loaded)


# ------------------------------------------------------------------ train

def train(args) -> int:
    """`fnn train --task g2p [options]`, or `--resume RUN`: every argument is checked before anything
    is written."""
    if getattr(args, "resume", None):
        return _resume(args)
    cfg = config_from(args)
    out, overwrite = getattr(args, "out", None), getattr(args, "overwrite", False)
    if out is not None:
        runs.check_out(Path(out), overwrite, getattr(args, "prog", "fnn"))
    task = load_task(cfg)
    cfg = {**cfg, "letters": task.letters, "phonemes": task.phonemes}
    run_dir, created = make_run_dir(out, "g2p", overwrite)
    args.run_dir = run_dir                 # for a caller that goes on with the run (examples/g2p.py)
    atomic_json(run_dir / "config.json", cfg)
    return _train_run(cfg, run_dir, task, None, args, created)


def _resume(args) -> int:
    run_dir = Path(args.resume)
    if getattr(args, "out", None) is not None or getattr(args, "overwrite", False):
        raise UsageError("--out and --overwrite cannot be combined with --resume")
    cfg, args.run_dir = read_config(run_dir), run_dir
    given = _changes(args, cfg, run_dir)
    new = {**cfg, **given}
    check(new)
    done = epochs_done(run_dir)
    if new["epochs"] < done:
        raise UsageError(f"--epochs {new['epochs']} is below the {done} epochs {run_dir} has finished")
    planned = new["epochs"] if given or not done else _stored_plan(run_dir, new["epochs"])
    if done >= planned:
        print(f"{run_dir}: all {done} planned epochs are done; nothing to train (pass --epochs N above {done})")
        return 0
    task = load_task(new)
    resumed = _load_weights(run_dir / "checkpoint.safetensors", new)[1:] if done else None
    atomic_json(run_dir / "config.json", new)
    return _train_run({**new, "epochs_planned": planned}, run_dir, task, resumed, args, False)


def _changes(args, cfg: dict, run_dir: Path) -> dict:
    """The options given to --resume that change the run (only CHANGEABLE_ON_RESUME may)."""
    _refuse_foreign(args)
    given = _given(args, (*RECIPE, *OWN))
    for k, v in given.items():
        if k not in CHANGEABLE_ON_RESUME and v != cfg[k]:
            raise UsageError(f"--{k.replace('_', '-')} cannot change on resume ({run_dir} was trained with "
                             f"{cfg[k]}); start a new run to change it")
    return {k: v for k, v in given.items() if k in CHANGEABLE_ON_RESUME}


def _stored_plan(run_dir: Path, epochs: int) -> int:
    """The epochs the schedule spans, as the last checkpoint planned them (the --minutes budget)."""
    try:
        return int((checkpoint.read_info(run_dir / "checkpoint.safetensors").metadata or {}).get("planned", epochs))
    except (OSError, ValueError, TypeError) as err:
        raise RunError(str(err).removeprefix("load: ")) from None


def _train_run(cfg, run_dir: Path, task, resumed, args, created: bool) -> int:
    """Fit (from `resumed` = (params, state, opt_state, epoch, metadata) if given), then decode the
    held-out words and report."""
    model, params, state = init_model(cfg)
    opt_state, done, history = None, 0, {}
    if resumed is not None:
        params, state, opt_state, done, meta = resumed
        history = meta.get("history", {})
        print(f"resuming {run_dir} after epoch {done}, training to epoch {cfg['epochs']}")
    data, pairs, steps = training_data(cfg, task)
    parts = f", in {len(data.parts)} parts by length" if isinstance(data, Buckets) else ""
    print(f"g2p {cfg['model']}: {len(task.train)} training words ({pairs} pronunciations{parts}), "
          f"{len(task.test)} held-out words, grads={cfg['grads']}; run: {run_dir}", flush=True)
    plan = {"planned": cfg.get("epochs_planned", cfg["epochs"]), "best": _best_so_far(run_dir)}
    ctx = _Context(cfg, run_dir, model, spread(task.test, cfg["curve_words"]), task.test,
                   (history.get("wall_seconds", 0.0), time.perf_counter()), plan)
    try:
        params, state, history = _fit_planned(ctx, data, steps, (params, state, opt_state), done, history,
                                              not getattr(args, "no_progress", False))
        return _final(ctx, params, state, history, task)
    except KeyboardInterrupt:
        return _interrupted(run_dir, getattr(args, "prog", "fnn"), created)


def _fit_planned(ctx: _Context, data, steps: int, carry, done: int, history: dict, progress: bool):
    """fit up to the planned epochs (`steps` an epoch); a re-plan (the --minutes budget) restarts fit
    with the new schedule."""
    cfg, (params, state, opt_state) = ctx.cfg, carry
    while done < ctx.plan["planned"]:
        try:
            params, state, opt_state, history = fit(
                ctx.model, params, state, build_optimizer(cfg, ctx.plan["planned"] * steps), data,
                loss=training_loss(cfg), report_loss=losses.softmax_cross_entropy, epochs=ctx.plan["planned"],
                batch_size=cfg["batch_size"], key=jax.random.fold_in(jax.random.PRNGKey(cfg["seed"]), 2),
                grads=cfg["grads"], loop=cfg["loop"],
                progress=progress, opt_state=opt_state, initial_epoch=done, history=history,
                on_epoch=lambda *a: _on_epoch(ctx, *a))
            done = ctx.plan["planned"]
        except _Replan as replan:
            params, state, opt_state, history, done = replan.args
    return params, state, history


RECENT_EPOCHS = 5   # the --minutes budget's estimate of an epoch: the median of the last 5 epochs' times


def planned_epochs(cfg: dict, done: int, minutes: list, planned: int) -> int:
    """Epochs the schedule spans: --epochs, or fewer when the --minutes budget fits fewer (after epoch 2;
    later it only shrinks, when an overrun is predicted). `minutes` is the run's wall clock at the end of
    each epoch; an epoch's time is estimated as the median duration of the last RECENT_EPOCHS epochs
    (the first epoch, with its compile, never counts), so one slow epoch (a resume's compile, a brief
    load beside it) does not shrink the schedule."""
    if cfg["minutes"] is None or done < 2 or len(minutes) < 2:
        return planned
    durations = [b - a for a, b in zip(minutes[:-1], minutes[1:])][-RECENT_EPOCHS:]
    per_epoch = max(statistics.median(durations), 1e-9)
    fits = done + int((cfg["minutes"] - minutes[-1]) / per_epoch)
    if done == 2 or fits < planned:
        return max(done, min(cfg["epochs"], fits))
    return planned


def _on_epoch(ctx: _Context, epoch, params, state, opt_state, history):
    """After each epoch: WER/PER on the curve words, the checkpoint, best.safetensors, history.json."""
    wer, per = score_words(ctx.model, params, state, ctx.cfg, ctx.curve_words, ctx.test)
    minutes = (ctx.clock[0] + time.perf_counter() - ctx.clock[1]) / 60
    for k, v in (("subset_wer", wer), ("subset_per", per), ("minutes", minutes)):
        history.setdefault(k, []).append(v)
    record = {**history, "subset_words": len(ctx.curve_words), "wall_seconds": 60 * minutes}
    planned = planned_epochs(ctx.cfg, epoch + 1, history["minutes"], ctx.plan["planned"])
    with runs._deferred_interrupt():
        checkpoint.save_training(ctx.run_dir / "checkpoint.safetensors", params, state, opt_state, epoch + 1,
                                 metadata={"history": record, "planned": planned})
        if wer < ctx.plan["best"]:
            ctx.plan["best"] = wer
            checkpoint.save_training(ctx.run_dir / "best.safetensors", params, state, opt_state, epoch + 1,
                                     metadata={"criterion": "held-out subset WER", "value": wer, "epoch": epoch + 1})
        if ctx.cfg["average"] > 1:
            _keep_for_average(ctx.run_dir, params, epoch + 1, ctx.cfg["average"])
        atomic_json(ctx.run_dir / "history.json", record)
    print(f"epoch {epoch + 1}/{planned}: loss {history['train_loss'][-1]:.4f}  held-out subset "
          f"({len(ctx.curve_words)} words) WER {wer:.2%} PER {per:.2%}  ({minutes:.1f} min)", flush=True)
    if planned != ctx.plan["planned"]:
        print(f"--minutes {ctx.cfg['minutes']}: the schedule now spans {planned} epochs (not "
              f"{ctx.plan['planned']})", flush=True)
        ctx.plan["planned"] = planned
        raise _Replan(params, state, opt_state, history, epoch + 1)


def _best_so_far(run_dir: Path) -> float:
    try:
        return float((checkpoint.read_info(run_dir / "best.safetensors").metadata or {})["value"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("inf")


def _final(ctx: _Context, params, state, history: dict, task) -> int:
    """Greedy WER/PER on the held-out words (all, or --test-words of them), into history.json; of the
    mean of the last --average epochs' parameters when that is above 1."""
    params, which = _average(ctx.run_dir, ctx.cfg, params, state) if ctx.cfg["average"] > 1 else (params, "last")
    words, t0 = spread(task.test, ctx.cfg["test_words"]), time.perf_counter()
    wer, per = score_words(ctx.model, params, state, ctx.cfg, words, task.test)
    history = {**history, "test": {"wer": wer, "per": per, "words": len(words), "decoder": "greedy",
                                   "checkpoint": which, "decode_seconds": time.perf_counter() - t0}}
    atomic_json(ctx.run_dir / "history.json", history)
    print(f"held-out WER {wer:.2%}  PER {per:.2%}  (greedy, {len(words)} of {len(task.test)} held-out words, "
          f"{which})  run: {ctx.run_dir}")
    return 0


def _epoch_params(run_dir: Path) -> dict:
    """{epoch: path} of the parameter files --average keeps (params-NNN.safetensors)."""
    return {int(p.stem.split("-")[1]): p for p in run_dir.glob("params-[0-9]*.safetensors")}


def _keep_for_average(run_dir: Path, params, epoch: int, n: int) -> None:
    """Save this epoch's parameters; delete those older than the last n epochs."""
    checkpoint.save(run_dir / f"params-{epoch:03d}.safetensors", params, step=epoch)
    for old, path in _epoch_params(run_dir).items():
        if old <= epoch - n:
            path.unlink()


def _average(run_dir: Path, cfg: dict, params, state) -> tuple:
    """(the mean of the kept parameters of the last `average` epochs, which), saved as averaged.safetensors
    (with the last checkpoint's optimizer state, so `--checkpoint averaged` loads like the others);
    `params` as they are when fewer than two epochs were kept."""
    _, _, _, opt_state, last, _ = _load_weights(run_dir / "checkpoint.safetensors", cfg)
    kept = {e: p for e, p in _epoch_params(run_dir).items() if last - cfg["average"] < e <= last}
    if len(kept) < 2:
        return params, "last"
    trees = [checkpoint.load(path, params) for _, path in sorted(kept.items())]
    mean = jax.tree.map(lambda *a: sum(a[1:], a[0]) / len(a), *trees)
    which = f"averaged over epochs {min(kept)}-{max(kept)}"
    checkpoint.save_training(run_dir / "averaged.safetensors", mean, state, opt_state, last,
                             metadata={"averaged_epochs": sorted(kept)})
    return mean, which


def _interrupted(run_dir: Path, prog: str, created: bool) -> int:
    """Ctrl-C: which epoch is safe and how to go on (nothing kept before the first epoch)."""
    done = epochs_done(run_dir)
    if done == 0:
        return discard_unfinished(run_dir, created, prog)
    print(f"{prog} train: interrupted; epoch {done} was the last to finish and its checkpoint is safe in "
          f"{run_dir}; continue with: {prog} train --task g2p --resume {run_dir}", file=sys.stderr)
    return 130
