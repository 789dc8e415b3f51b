"""Random `train` commands, valid and invalid mixed, on a tiny subset: the command line answers with
exit code 0 or 2 only, never a traceback, and a refused command leaves no run directory behind.

The commands go through `fnn.cli.main`, the function the `fnn` script and `python -m fnn` call, in
this process (a subprocess per example would spend its time importing JAX); anything but a clean
exit (an exception escaping `main`) fails the test with its traceback.
"""
import contextlib
import io
import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fnn.cli import main

REAL = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")

# flag -> values: mostly valid, some out of range, some not numbers at all
VALUES = {
    "--epochs": ["1", "1", "0", "-2", "x"],
    "--limit": ["300", "300", "0", "70000", "1e3"],
    "--val-size": ["0", "60", "60", "300", "-1"],
    "--batch-size": ["32", "100", "250", "0"],
    "--lr": ["0.01", "0.001", "nan", "-1", "inf"],
    "--weight-decay": ["0", "1e-4", "-1", "inf"],
    "--dropout": ["0.1", "0.0", "1.0", "-0.5"],
    "--label-smoothing": ["0", "0.1", "1", "nan"],
    "--optimizer": ["adam", "sgd", "momentum", "adamw", "lamb", "nope"],
    "--schedule": ["constant", "cosine", "one_cycle", "warmup_cosine", "linear"],
    "--batch-norm": ["on", "off", "maybe"],
    "--seed": ["0", "1", "-1", "4294967296"],
    "--grads": ["manual", "autodiff", "numeric"],
    "--model": ["mlp", "mlp", "resnet50"],
    "--width": ["8", "0"],                       # an architecture flag the MLP does not take: refused
    "--minutes": ["30", "0", "-1", "nan"],
}
_counter = itertools.count()


@settings(max_examples=15, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALUES)), st.just(None), max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(VALUES[k]) for k in keys})))
def test_random_train_commands_exit_cleanly(flags):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"run{next(_counter)}"
        argv = ["train", "--out", str(out), "--limit", "300", "--epochs", "1", "--val-size", "60",
                "--batch-size", "50", "--loop", "scan", "--no-progress"]
        argv += [part for flag, value in flags.items() for part in (flag, value)]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv, prog="fnn")
            except SystemExit as exit_:             # argparse's refusals
                code = exit_.code
        text = err.getvalue()
        assert code in (0, 2), (argv, text)
        assert "Traceback" not in text, (argv, text)
        if code == 2:
            assert len(text.strip().splitlines()) == 1 and text.startswith("fnn train: "), (argv, text)
            assert not out.exists(), argv
        else:
            assert (out / "checkpoint.safetensors").exists() and (out / "best.safetensors").exists()
