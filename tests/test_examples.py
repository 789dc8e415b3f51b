"""Every script in examples/ runs at a tiny budget (exit 0, a `result:` line, files only under
--out) and answers --help without doing any work or writing anything.

Each run is a subprocess, `python examples/X.py <tiny budget> --out DIR`, from an empty working
directory. The heavier ones are marked slow (`pytest -m "not slow"` leaves them out).
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
RESULT = re.compile(r"^result: \S+=", re.M)
# (script, tiny-budget flags); --out is added by the test. Smaller than the documented small budgets.
RUNS = [
    ("xor.py", ["--epochs", "1000"]),
    ("mlp_gradients.py", []),
    ("mnist_mlp.py", ["--limit", "512", "--epochs", "1"]),
    ("optimizers.py", ["--steps", "20"]),
    ("gradient_flow.py", ["--limit", "16"]),
    ("fixed_kernels.py", ["--images", "2"]),
    ("regression_losses.py", ["--steps", "200"]),
    ("forecasting.py", ["--epochs", "2", "--seeds", "1"]),
    ("text_classification.py", ["--limit", "600"]),
    ("data_parallel.py", ["--limit", "512", "--epochs", "1"]),
    pytest.param("finetune.py", ["--limit", "256", "--epochs", "1", "--width", "4"], marks=pytest.mark.slow),
    pytest.param("representations.py", ["--limit", "256", "--epochs", "1", "--steps", "10"],
                 marks=pytest.mark.slow),
    pytest.param("classic.py", ["--limit", "500", "--rounds", "2", "--small", "iris"], marks=pytest.mark.slow),
    pytest.param("ctc_strip.py", ["--limit", "128", "--epochs", "1", "--test", "50"], marks=pytest.mark.slow),
    pytest.param("inspect_cnn.py", ["--limit", "128", "--images", "1", "--units", "1", "--steps", "5"],
                 marks=pytest.mark.slow),
    pytest.param("vanishing_gradients.py", ["--limit", "200", "--epochs", "1", "--probe", "20"],
                 marks=pytest.mark.slow),
    pytest.param("vae.py", ["--limit", "256", "--epochs", "1", "--test", "500"], marks=pytest.mark.slow),
    pytest.param("dcgan.py", ["--limit", "256", "--epochs", "1", "--samples", "200"], marks=pytest.mark.slow),
    pytest.param("detection.py", ["--limit", "64", "--epochs", "1", "--test", "50"], marks=pytest.mark.slow),
    pytest.param("synthetic_gradients.py", ["--limit", "512", "--epochs", "1"], marks=pytest.mark.slow),
    pytest.param("char_lm.py", ["--limit", "4200", "--epochs", "1", "--width", "16", "--sample-length", "8"],
                 marks=pytest.mark.slow),
    pytest.param("denoising.py", ["--limit", "640", "--steps", "20", "--feature-steps", "10", "--test", "100"],
                 marks=pytest.mark.slow),
    # owned by the model-families and G2P engineers: the shared flags they are expected to take
    pytest.param("vit.py", ["--limit", "256", "--epochs", "1", "--width", "16", "--depth", "1", "--heads", "2"],
                 marks=pytest.mark.slow),
    pytest.param("resnet_small.py", ["--limit", "128", "--epochs", "1", "--width", "4"], marks=pytest.mark.slow),
    pytest.param("sequence_classifier.py", ["--limit", "256", "--epochs", "1"], marks=pytest.mark.slow),
    pytest.param("g2p.py", ["--limit", "200", "--epochs", "1", "--size", "16", "--curve-words", "10",
                           "--test-words", "20", "--beam", "1"], marks=pytest.mark.slow),
    pytest.param("g2p.py", ["--limit", "200", "--epochs", "1", "--size", "16", "--curve-words", "10",
                           "--test-words", "20", "--beam", "2", "--beam-words", "20", "--seeds", "2"],
                 marks=pytest.mark.slow, id="g2p.py-ensemble"),
]


# scripts that must end in one line naming the extra when their optional package is missing
NEEDS = {"forecasting.py": "statsmodels", "regression_losses.py": "sklearn"}


def run(script, *args, cwd, timeout=600):
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def has(module):
    return importlib.util.find_spec(module) is not None


def test_every_example_has_a_row():
    names = {r.values[0] if hasattr(r, "values") else r[0] for r in RUNS}
    assert names == set(SCRIPTS), f"examples without a row: {set(SCRIPTS) - names}; rows without a script: " \
                                  f"{names - set(SCRIPTS)}"


@pytest.mark.parametrize("script, flags", RUNS)
def test_example_runs_at_a_tiny_budget(script, flags, tmp_path):
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    if script in NEEDS and not has(NEEDS[script]):
        done = run(script, *flags, "--out", str(out), cwd=cwd)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "pip install -e '.[examples]'" in lines[0], done.stderr
        assert not out.exists()
        return
    done = run(script, *flags, "--out", str(out), cwd=cwd)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert RESULT.search(done.stdout), f"{script} printed no result line:\n{done.stdout[-2000:]}"
    assert list(cwd.iterdir()) == [], f"{script} wrote outside --out: {list(cwd.iterdir())}"


# --help of every script in ONE interpreter (jax and fnn imported once): each must exit 0 with a
# usage text before any work, and leave the working directory empty.
HELP = """
import contextlib, io, json, os, runpy, sys
sys.path.insert(0, {examples!r})
report = {{}}
for script in {scripts!r}:
    sys.argv, text = [script, "--help"], io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            runpy.run_path(os.path.join({examples!r}, script), run_name="__main__")
        code = "returned without exiting"
    except SystemExit as exit:
        code = exit.code or 0
    report[script] = [code, text.getvalue(), sorted(os.listdir("."))]
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("help")
    done = subprocess.run([sys.executable, "-c", HELP.format(examples=str(EXAMPLES), scripts=SCRIPTS)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.xdist_group("example_help")   # one worker: the helps fixture runs once
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_does_no_work(script, helps):
    code, text, written = helps[script]
    assert code == 0 and text.startswith("usage:"), f"{script} --help: exit {code}, {text[:300]!r}"
    assert written == [], f"{script} --help wrote {written}"


@pytest.mark.xdist_group("example_help")   # one worker: the helps fixture runs once
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_the_shared_flags(script, helps):
    text = helps[script][1]
    for flag in ("--out", "--seed"):
        assert re.search(rf"^\s+{flag}\b", text, re.M), f"{script} --help lists no {flag}"


@pytest.mark.parametrize("script, flags, reason", [
    ("mnist_mlp.py", ["--limit", "100"], "smaller than the batch size 128"),
    ("ctc_strip.py", ["--epochs", "0"], "at least 1 epoch"),
    ("data_parallel.py", ["--limit", "8"], "smaller than the batch size"),
])
def test_a_budget_that_cannot_train_is_refused_in_one_line(script, flags, reason, tmp_path):
    done = run(script, *flags, "--out", str(tmp_path / "out"), cwd=tmp_path, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and reason in lines[0], done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_the_g2p_example_trains_the_command_lines_recipe(model, monkeypatch):
    """`python examples/g2p.py [--model M]` reproduces docs/results.md's row: the recipe of
    `fnn train --task g2p [--model M]`, each architecture's defaults included (epochs, lr)."""
    from fnn import g2p
    from fnn.cli import _parser
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location("g2p_example", EXAMPLES / "g2p.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(sys, "argv", ["g2p.py", "--model", model])
    script = g2p.config_from(example.parse_args())
    command_line = g2p.config_from(_parser("fnn", "g2p").parse_args(["train", "--task", "g2p", "--model", model]))
    assert script == command_line
