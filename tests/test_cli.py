"""The command line, run as a user runs it (`python -m fnn ...` in a subprocess) on a small real subset.

One trained run (1 epoch, 500 examples) is shared by the module; tests that change a run copy it.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from fnn import checkpoint
from fnn.cli import _prog, main

# one xdist worker runs this whole file (make test: --dist loadfile), so its module-scoped fixtures are built once

ROOT = Path(__file__).resolve().parents[1]
REAL = Path("/usr/share/datasets/fashion-mnist")
needs_data = pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
SMALL = ["--limit", "600", "--val-size", "100", "--batch-size", "50", "--no-progress", "--loop", "scan"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


def fnn_cli(*argv, cwd=None, cache=None, popen=False):
    """`python -m fnn ARGV` on this checkout; compiled programs shared through JAX's cache."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    cmd = [sys.executable, "-m", "fnn", *map(str, argv)]
    if popen:                 # SIGINT as in a terminal (a test run started in the background ignores it)
        return subprocess.Popen(cmd, cwd=cwd or ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return subprocess.run(cmd, cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=600)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    run = tmp_path_factory.mktemp("runs") / "run"
    done = fnn_cli("train", "--epochs", "1", "--out", run, *SMALL, cache=cache)
    assert done.returncode == 0, done.stderr
    return run, done


@pytest.fixture
def copy(trained, tmp_path):
    shutil.copytree(trained[0], tmp_path / "run")
    return tmp_path / "run"


@needs_data
def test_a_run_writes_its_files_and_a_best_checkpoint(trained):
    run, done = trained
    assert {p.name for p in run.iterdir()} == {"config.json", "checkpoint.safetensors", "best.safetensors",
                                               "history.json", "curves.png"}
    assert "test accuracy" in done.stdout and done.stderr.strip() == ""
    assert done.stdout.startswith(f"device: {jax.devices()[0].platform} (")    # what it trains on, said first
    assert len(json.loads((run / "history.json").read_text())["train_loss"]) == 1
    info = checkpoint.read_info(run / "best.safetensors")
    assert info.step == 1 and info.metadata["criterion"] == "validation loss"
    assert checkpoint.read_info(run / "checkpoint.safetensors").metadata["history"]["train_loss"]


@needs_data
def test_an_existing_run_is_never_overwritten(trained):
    run, _ = trained
    before = (run / "checkpoint.safetensors").read_bytes()
    done = fnn_cli("train", "--epochs", "1", "--out", run, *SMALL)
    line = one_line(done.stderr)
    assert done.returncode == 2
    assert f"--out {run} already holds a run (mlp on fashion-mnist, 1 of 1 epochs done)" in line
    assert f"train --resume {run}" in line and "--overwrite" in line
    assert (run / "checkpoint.safetensors").read_bytes() == before


def test_runs_without_out_are_numbered(tmp_path):
    from fnn.runs import next_run_dir
    assert [next_run_dir(tmp_path / "runs", "mlp").name for _ in range(2)] == ["mlp-001", "mlp-002"]
    (tmp_path / "runs" / "mlp-007").mkdir()
    assert next_run_dir(tmp_path / "runs", "mlp").name == "mlp-008"
    train_line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "-m fnn train" in line)
    assert "--out" not in train_line and "--grads" not in train_line  # numbered runs; the CLI's default grads
    assert "--epochs" not in train_line and "--model" not in train_line  # ARGS="--model vit" gets vit's recipe


@needs_data
@pytest.mark.parametrize("argv, message", [
    (["--limit", "500", "--val-size", "500"], "--val-size 500 leaves no training examples out of --limit 500"),
    (["--val-size", "60000"], "--val-size 60000 leaves no training examples out of the 60000 training"),
    (["--batch-size", "100000"], "--batch-size 100000 exceeds the 55000 training examples left"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
])
def test_bad_commands_exit_2_with_one_line_and_write_nothing(tmp_path, argv, message):
    done = fnn_cli("train", "--out", tmp_path / "new", *argv, cwd=tmp_path)
    assert done.returncode == 2 and message in one_line(done.stderr)
    assert list(tmp_path.iterdir()) == []


@needs_data
@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "resnet50"],
     "invalid choice: 'resnet50' (choose from 'mlp', 'cnn', 'resnet', 'vit', 'lstm', 'gru')"),
    (["train", "--model", "lstm", "--depth", "2"], "--depth does not apply to --model lstm (only to vit)"),
    (["train", "--model", "vit", "--width", "30", "--heads", "4"], "--width 30 must be a multiple of --heads 4"),
    (["train", "--minutes", "0"], "--minutes must be a positive number, got 0.0"),
    (["train", "--optimizer", "sgdx"], "invalid choice: 'sgdx'"),
    (["train", "--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["train", "--epochs", "-1"], "--epochs must be a positive integer, got -1"),
    (["train", "--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["train", "--model", "vit", "--drop-path", "1"], "--drop-path must be in [0, 1), got 1.0"),
    (["train", "--model", "cnn", "--stem", "conv"], "--stem does not apply to --model cnn (only to vit)"),
    (["train", "--model", "vit", "--stem", "pixels"], "invalid choice: 'pixels' (choose from 'patch', 'conv')"),
    (["train", "--seed", "-3"], "--seed must be in [0, 2**32), got -3"),
    (["train", "--limit", "70000"], "--limit 70000 exceeds the 60000 training examples of fashion-mnist"),
    (["train", "--resume", "nowhere"], "nowhere: no such directory"),       # the same code and line everywhere
    (["evaluate", "nowhere"], "nowhere: no such directory"),
    (["predict", "nowhere", "a.npy"], "nowhere: no such directory"),
    (["inspect", "nowhere"], "nowhere: no such directory"),
    (["evaluate", "nowhere", "--beam", "3"], "nowhere: no such directory"),
])
def test_more_bad_commands_in_process(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv, prog="fnn")
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2 and message in one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


@needs_data
def test_resume_trains_to_the_new_epochs_and_refuses_changed_flags(copy, cache):
    done = fnn_cli("train", "--resume", copy, "--epochs", "2", "--no-progress", cache=cache)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout and "spans 2 epochs instead of 1" in done.stdout
    assert checkpoint.read_info(copy / "checkpoint.safetensors").step == 2
    assert json.loads((copy / "config.json").read_text())["epochs"] == 2
    history = json.loads((copy / "history.json").read_text())
    assert len(history["train_loss"]) == 2
    again = fnn_cli("train", "--resume", copy)
    assert again.returncode == 0 and "all 2 epochs are done (test accuracy 0." in again.stdout
    assert "nothing to train" in again.stdout
    assert json.loads((copy / "history.json").read_text())["wall_seconds"] == history["wall_seconds"]
    changed = fnn_cli("train", "--resume", copy, "--lr", "0.1", "--epochs", "3")
    assert changed.returncode == 2
    assert "--lr cannot change on resume" in one_line(changed.stderr)
    assert checkpoint.read_info(copy / "checkpoint.safetensors").step == 2


@needs_data
def test_ctrl_c_keeps_the_last_epoch_and_says_how_to_resume(copy, cache):
    # 100000 epochs: never finished before the signal, however the poller is scheduled (500 tiny
    # epochs once ran out while a loaded machine starved this process)
    argv = ["train", "--out", copy, "--overwrite", "--epochs", "100000", "--limit", "3000", "--val-size", "100",
            "--batch-size", "50", "--no-progress", "--loop", "scan"]
    launched = time.time()
    proc = fnn_cli(*argv, cache=cache, popen=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:      # until this run's first epoch is saved
        ckpt = copy / "checkpoint.safetensors"                       # (the copied run's is older): Ctrl-C
        if ckpt.exists() and ckpt.stat().st_mtime > launched:        # during XLA's compile is another case
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=300)     # 120 s once ran out beside a training, at nice 5
    finally:
        proc.kill()                                  # a lost Ctrl-C must not leave it training for hours
    assert proc.returncode == 130, err
    done = checkpoint.read_info(copy / "checkpoint.safetensors").step
    assert 1 <= done < 100000
    line = one_line(err)
    assert f"epoch {done} was the last to finish and its checkpoint is safe" in line
    assert line.endswith(f"continue with: python -m fnn train --resume {copy}")
    assert (copy / "curves.png").exists() and (copy / "best.safetensors").exists()
    assert len(json.loads((copy / "history.json").read_text())["train_loss"]) == done


@pytest.mark.parametrize("handler, raised", [(signal.default_int_handler, True), (signal.SIG_IGN, False)],
                         ids=["default", "ignored"])
def test_an_epochs_writes_hold_ctrl_c_and_an_ignored_one_stays_ignored(handler, raised):
    from fnn.runs import _deferred_interrupt
    before = signal.signal(signal.SIGINT, handler)
    try:
        finished = []
        with pytest.raises(KeyboardInterrupt) if raised else contextlib.nullcontext():
            with _deferred_interrupt():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)                                   # the handler runs here, between bytecodes
                finished.append(True)                              # the block still ends
        assert finished == [True]
        assert signal.getsignal(signal.SIGINT) == handler
    finally:
        signal.signal(signal.SIGINT, before)


@needs_data
def test_a_damaged_checkpoint_is_one_line(copy, monkeypatch, capsys):
    path = copy / "checkpoint.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[:-7] + bytes([raw[-7] ^ 4]) + raw[-6:])          # one bit in the tensor data
    done = fnn_cli("evaluate", copy)
    assert done.returncode == 1 and f"{path} is corrupt: its contents do not match" in one_line(done.stderr)
    np.save(copy / "image.npy", np.zeros((28, 28), np.float32))
    for argv in (["predict", str(copy), str(copy / "image.npy")], ["inspect", str(copy), "--images", "1"],
                 ["train", "--resume", str(copy), "--epochs", "2"]):
        assert main(argv, prog="fnn") == 1, argv                          # checked before anything is read
        assert f"{path} is corrupt: its contents do not match" in one_line(capsys.readouterr().err), argv
    for content, what in ((raw[: len(raw) // 2], "is not a readable checkpoint"), (b"", "is empty")):
        path.write_bytes(content)
        assert main(["evaluate", str(copy)], prog="fnn") == 1
        assert f"fnn evaluate: {path} {what}" in one_line(capsys.readouterr().err)
    assert main(["train", "--resume", str(copy)], prog="fnn") == 1
    assert f"{path} is empty" in one_line(capsys.readouterr().err)


def _class_rows(stdout: str) -> dict:
    """The per-class table of `fnn evaluate`: {class or average: (precision, recall, f1, support)}."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["class", "precision", "recall", "f1", "support"])
    rows = [line.rsplit(None, 4) for line in lines[start + 1:start + 14] if line.strip()]
    return {name: (*map(float, values[:3]), int(values[3])) for name, *values in rows}


@needs_data
def test_evaluate_chooses_checkpoint_and_split(copy, cache):
    """The headline, the per-class table with Fashion-MNIST's names and its averages, confusion.png."""
    done = fnn_cli("evaluate", copy, "--checkpoint", "best", "--split", "train", cache=cache)
    assert done.returncode == 0, done.stderr
    assert "best checkpoint (epoch 1, lowest validation loss): train accuracy" in done.stdout
    table = _class_rows(done.stdout)
    from fnn.data import CLASS_NAMES
    assert list(table) == [*CLASS_NAMES["fashion-mnist"], "macro avg", "weighted avg"]
    assert sum(row[3] for row in list(table.values())[:10]) == table["weighted avg"][3] == 500
    accuracy = float(done.stdout.split("train accuracy ")[1].split(",")[0])
    assert table["weighted avg"][1] == pytest.approx(accuracy, abs=1e-4)     # weighted recall is the accuracy
    assert all(0 <= v <= 1 for row in table.values() for v in row[:3])
    assert f"confusion matrix: {copy / 'confusion.png'}" in done.stdout
    assert (copy / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from fnn.runs import load_run
    cfg, model, params, state, epoch = load_run(copy, "best")
    assert (cfg["model"], epoch) == ("mlp", 1) and model.name == "mlp"


@needs_data
def test_evaluate_without_matplotlib_still_prints_the_table(copy, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)              # as if not installed
    assert main(["evaluate", str(copy), "--limit", "200"], prog="fnn") == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "(200 examples)" in out
    assert _class_rows(out)["macro avg"][3] == 200
    assert f"skipped {copy / 'confusion.png'}: confusion.png needs matplotlib: pip install -e '.[plot]'" in out
    assert not (copy / "confusion.png").exists()


@needs_data
def test_predict_classifies_npy_and_png(trained, tmp_path, cache):
    from fnn.data import load_dataset
    Image = pytest.importorskip("PIL.Image")
    images, labels = load_dataset("fashion-mnist", "test")
    np.save(tmp_path / "a.npy", (images[0, :, :, 0] * 255).astype(np.uint8))
    big = np.kron(1.0 - images[1, :, :, 0], np.ones((3, 3)))          # dark on light, 84x84
    Image.fromarray((big * 255).astype(np.uint8)).convert("RGB").save(tmp_path / "b.png")
    done = fnn_cli("predict", trained[0], tmp_path / "a.npy", tmp_path / "b.png", "--top", "2", cache=cache)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{tmp_path / 'a.npy'}: ")
    assert lines[1].startswith(f"{tmp_path / 'b.png'} (resized from 84x84 to 28x28): ")
    probabilities = [float(w.rstrip(",")) for line in lines for w in line.split()[-3::2]]
    assert len(probabilities) == 4 and all(0 <= p <= 1 for p in probabilities)
    missing = fnn_cli("predict", trained[0], tmp_path / "none.png")
    assert missing.returncode == 2 and "no file at" in one_line(missing.stderr)


def test_help_shows_every_default_and_the_prog_name(monkeypatch, capsys):
    done = fnn_cli("train", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m fnn train")
    text = " ".join(done.stdout.split())
    for shown in ("examples per step (default: 64 for mlp, cnn; 128 for resnet, vit, lstm, gru)",
                  "(default: cosine for mlp, resnet; warmup_cosine for cnn, vit; constant for lstm, gru)",
                  "(default: 0.0005 for cnn; 0.05 for vit)", "(default: 16 for resnet; 64 for vit; 128 for lstm, gru)",
                  "(default: 10 for mlp, cnn, resnet, lstm, gru; 20 for vit)",
                  "(default: 0.1 for mlp, cnn, vit; 0.0 for resnet, lstm, gru)", "BatchNorm", "(default: manual)",
                  "(default: for mlp 5000 of every 60000 used, so 125 of --limit 1500; 0 for the others)",
                  "(default: the next free", "--minutes M"):
        assert shown in text
    assert _prog("/home/u/.venv/bin/fnn") == "fnn" and _prog("/x/fnn/__main__.py") == "python -m fnn"
    monkeypatch.setattr(sys, "argv", ["/home/u/.venv/bin/fnn", "train", "--help"])
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert capsys.readouterr().out.startswith("usage: fnn train")


def test_every_option_of_every_command_has_a_help_line():
    import argparse

    from fnn.cli import _parser
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"train", "evaluate", "predict", "gradcheck", "summary"} <= set(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help line"
            takes_value = action.nargs != 0 and action.option_strings and action.dest not in ("help", "only")
            if takes_value and name in ("train", "evaluate", "predict") and action.dest != "resume":
                assert "(default:" in action.help or action.dest == "limit", (name, action.dest)


def test_gradcheck_command_passes_for_a_family(capsys):
    assert main(["gradcheck", "--only", "Dense"]) == 0
    out = capsys.readouterr().out
    assert "Dense" in out and "PASS" in out and "0 failed" in out


@needs_data
def test_predict_refuses_what_is_not_an_image(trained, tmp_path, capsys):
    np.save(tmp_path / "table.npy", np.arange(15.0).reshape(3, 5))
    np.save(tmp_path / "row.npy", np.ones((1, 784)))
    for name, message in (("table.npy", "is 3x5 pixels; expected an image of at least 8x8"),
                          ("row.npy", "is 1x784 pixels; expected an image of at least 8x8")):
        assert main(["predict", str(trained[0]), str(tmp_path / name)], prog="fnn") == 2
        assert f"{tmp_path / name} {message}" in one_line(capsys.readouterr().err)


def _no_data_anywhere(monkeypatch, tmp_path):
    from fnn import data
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FNN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)


@needs_data
def test_missing_data_exits_2_and_says_how_to_install_it(trained, monkeypatch, tmp_path, capsys):
    _no_data_anywhere(monkeypatch, tmp_path)
    for argv in (["train", "--out", str(tmp_path / "new")], ["evaluate", str(trained[0])]):
        assert main(argv, prog="fnn") == 2
        line = one_line(capsys.readouterr().err)
        for way in ("make data", "apt-get install dataset-fashion-mnist", "--download", "--data-dir"):
            assert way in line, (argv, line)
    assert not (tmp_path / "new").exists()


@needs_data
def test_minutes_stops_after_an_epoch_and_resume_goes_on(tmp_path, monkeypatch, capsys):
    """--minutes, the MLP's share of --limit held out, and curves.png skipped without matplotlib."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)              # as if not installed
    run = tmp_path / "run"
    argv = ["train", "--out", str(run), "--limit", "1500", "--epochs", "3", "--batch-size", "125",
            "--minutes", "0.0001", "--no-progress", "--loop", "step"]
    assert main(argv, prog="fnn") == 0
    out = capsys.readouterr().out
    assert "1375 train / 125 val examples" in out and json.loads((run / "config.json").read_text())["val_size"] == 125
    assert "stopped after epoch 1 of 3: the --minutes 0.0001 budget is spent" in out
    assert f"continue with: fnn train --resume {run}" in out
    assert checkpoint.read_info(run / "checkpoint.safetensors").step == 1
    assert f"skipped {run / 'curves.png'}: curves.png needs matplotlib: pip install -e '.[plot]'" in out
    assert not (run / "curves.png").exists()
    assert main(["train", "--resume", str(run), "--no-progress"], prog="fnn") == 0
    assert "resuming" in capsys.readouterr().out
    assert checkpoint.read_info(run / "checkpoint.safetensors").step == 3


class _FakeG2P:
    """Stands in for fnn.g2p: records which of its functions the command line called, with what."""

    def __init__(self):
        self.calls = []
        for name in ("train", "evaluate_run", "predict_run", "inspect_run", "summary"):
            setattr(self, name, lambda args, name=name: self.calls.append((name, args)) or 0)

    def add_train_arguments(self, parser):
        parser.add_argument("--size", type=int, default=256, help="(default: 256)")


def test_g2p_runs_go_to_fnn_g2p(tmp_path, monkeypatch, capsys):
    fake = _FakeG2P()
    monkeypatch.setitem(sys.modules, "fnn.g2p", fake)
    run = tmp_path / "g2p-001"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "g2p", "model": "lstm"}))
    assert main(["train", "--task", "g2p", "--size", "64", "--epochs", "2"], prog="fnn") == 0
    assert capsys.readouterr().out.startswith(f"device: {jax.devices()[0].platform} (")
    assert main(["predict", str(run), "hello", "world", "--beam", "5"], prog="fnn") == 0
    assert main(["evaluate", str(run), "--beam", "3"], prog="fnn") == 0
    assert main(["train", "--resume", str(run), "--epochs", "4"], prog="fnn") == 0
    assert main(["summary", "--task", "g2p", "--model", "lstm"], prog="fnn") == 0
    (train, a), (predict, b), (evaluate, c), (resume, d), (summary, e) = fake.calls
    assert (train, a.size, a.epochs, a.task) == ("train", 64, 2, "g2p")
    assert (predict, b.inputs, b.beam) == ("predict_run", ["hello", "world"], 5)
    assert (evaluate, c.beam, resume, d.resume, summary, e.model) == ("evaluate_run", 3, "train", str(run),
                                                                       "summary", "lstm")


@pytest.mark.parametrize("option", [["--beam", "3"], ["--ensemble", "."]])
def test_g2p_options_are_refused_for_an_image_run(tmp_path, capsys, option):
    (tmp_path / "config.json").write_text(json.dumps({"model": "mlp"}))
    assert main(["evaluate", str(tmp_path), *option], prog="fnn") == 2
    assert f"{option[0]} applies to g2p runs only" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("model, stored, expected", [
    ("vit", {}, {"stem": "patch", "drop_path": 0.0}),               # written before --stem / --drop-path
    ("vit", {"stem": "conv", "drop_path": 0.1}, {"stem": "conv", "drop_path": 0.1}),
    ("cnn", {}, {"stem": None, "drop_path": None}),                  # settings the model does not take
])
def test_a_run_written_before_a_setting_existed_keeps_what_it_was_trained_with(tmp_path, monkeypatch, model,
                                                                                stored, expected):
    from fnn.models import RECIPES
    from fnn.rundir import read_config
    monkeypatch.setitem(RECIPES["vit"], "stem", "conv")              # a recipe that changed since the run
    monkeypatch.setitem(RECIPES["vit"], "drop_path", 0.3)
    (tmp_path / "config.json").write_text(json.dumps({"model": model, "task": "classify", **stored}))
    cfg = read_config(tmp_path)
    assert {k: cfg[k] for k in expected} == expected
