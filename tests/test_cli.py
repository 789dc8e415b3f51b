"""python -m fnn: train / resume / evaluate on a small real subset; one-line errors."""
import json
from pathlib import Path

import pytest

from fnn import checkpoint
from fnn.cli import main

REAL = Path("/usr/share/datasets/fashion-mnist")
needs_data = pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
SMALL = ["--limit", "1200", "--val-size", "200", "--batch-size", "100", "--no-progress", "--loop", "scan"]


@needs_data
def test_train_resume_and_evaluate(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(run), *SMALL]) == 0
    assert (run / "checkpoint.safetensors").exists() and (run / "curves.png").exists()
    history = json.loads((run / "history.json").read_text())
    assert len(history["train_loss"]) == 1 and history["test"]["accuracy"] > 0.3
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 2}))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert checkpoint.read_info(run / "checkpoint.safetensors").step == 2
    assert len(json.loads((run / "history.json").read_text())["train_loss"]) == 2
    assert main(["evaluate", str(run)]) == 0
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "resnet"], "invalid choice: 'resnet' (choose from 'cnn', 'mlp')"),
    (["train", "--optimizer", "sgdx"], "invalid choice: 'sgdx'"),
    (["train", "--dataset", "cifar"], "invalid choice: 'cifar' (choose from 'fashion-mnist', 'mnist')"),
    (["train", "--batch-size", "0"], "--batch-size: must be positive, got 0"),
    (["train", "--epochs", "-1"], "--epochs: must be positive"),
])
def test_bad_arguments_end_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_evaluating_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint.safetensors there" in capsys.readouterr().err


def test_gradcheck_command_passes_for_a_family(capsys):
    assert main(["gradcheck", "--only", "Dense"]) == 0
    out = capsys.readouterr().out
    assert "Dense" in out and "PASS" in out and "0 failed" in out


@pytest.mark.parametrize("argv, val_size", [
    (["train"], 5000),
    (["train", "--model", "cnn"], 0),
    (["train", "--model", "cnn", "--val-size", "300"], 300),
])
def test_validation_split_defaults_per_model(argv, val_size):
    from fnn.cli import _parser
    from fnn.runs import _config
    assert _config(_parser().parse_args(argv))["val_size"] == val_size
