"""Every Fashion-MNIST family from the command line: `train`, `evaluate`, `predict`, `summary` on a tiny
budget (a 300/100-image copy of the data set, 1 epoch, narrow models), one trained run per family.

The commands go through `fnn.cli.main` in this process (a subprocess would spend its time importing
JAX), in float32 with JAX's standard promotion, as the `fnn` script runs them.
"""
import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from fnn import checkpoint, data
from fnn.cli import main
from fnn.models import MODELS, RECIPES

REAL = Path("/usr/share/datasets/fashion-mnist")
# one xdist worker runs this whole file (make test: --dist loadfile), so its module-scoped fixtures are built once
pytestmark = pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
NARROW = {"resnet": ["--width", "4"],
          "vit": ["--width", "8", "--depth", "2", "--heads", "2", "--mlp-dim", "16", "--drop-path", "0.2"],
          "lstm": ["--width", "8"], "gru": ["--width", "8"]}


@pytest.fixture(scope="module", autouse=True)
def float32_like_the_cli():
    x64, promotion = jax.config.jax_enable_x64, jax.config.jax_numpy_dtype_promotion
    jax.config.update("jax_enable_x64", False)
    jax.config.update("jax_numpy_dtype_promotion", "standard")
    yield
    jax.config.update("jax_enable_x64", x64)
    jax.config.update("jax_numpy_dtype_promotion", promotion)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """The first 300 training and 100 test images, as IDX files in a directory for --data-dir."""
    root = tmp_path_factory.mktemp("data")
    for split, n in (("train", 300), ("test", 100)):
        x, y = data.load_dataset("fashion-mnist", split)
        stem = data.SPLITS[split]
        data.write_idx(root / f"{stem}-images-idx3-ubyte", (x[:n, :, :, 0] * 255).round().astype(np.uint8))
        data.write_idx(root / f"{stem}-labels-idx1-ubyte", y[:n].astype(np.uint8))
    np.save(root / "shoe.npy", (x[0, :, :, 0] * 255).astype(np.uint8))
    return root


def run(capsys, *argv):
    """`fnn ARGV` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv], prog="fnn")
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module", params=list(MODELS))
def family_run(request, small_data, tmp_path_factory):
    model, out = request.param, tmp_path_factory.mktemp("runs") / request.param
    argv = ["train", "--model", model, "--epochs", "1", "--limit", "120", "--batch-size", "20", "--loop", "step",
            "--no-progress", "--data-dir", small_data, "--out", out, *NARROW.get(model, [])]
    code = main([str(a) for a in argv], prog="fnn")
    assert code == 0
    return model, out


def test_train_writes_the_recipe_and_a_checkpoint(family_run):
    model, out = family_run
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == model and cfg["task"] == "classify" and cfg["epochs"] == 1
    for setting in ("optimizer", "lr", "schedule", "label_smoothing"):
        assert cfg[setting] == RECIPES[model].get(setting, {"optimizer": "adam", "lr": 1e-3, "schedule": "cosine",
                                                            "label_smoothing": 0.1}[setting])
    assert cfg["val_size"] == (10 if model == "mlp" else 0)          # 5000 of every 60000: 10 of 120
    if model == "vit":
        assert (cfg["stem"], cfg["drop_path"]) == (RECIPES["vit"]["stem"], 0.2)
    assert checkpoint.read_info(out / "checkpoint.safetensors").step == 1
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 1 and 0.0 <= history["test"]["accuracy"] <= 1.0


def test_evaluate_predict_and_summary(family_run, small_data, capsys):
    model, out = family_run
    code, text, err = run(capsys, "evaluate", out, "--data-dir", small_data)
    assert code == 0 and err == "" and "last checkpoint (epoch 1): test accuracy" in text
    stored = json.loads((out / "history.json").read_text())["test"]["accuracy"]
    assert f"test accuracy {stored:.4f}" in text                     # the same 100 test images, the same model
    if model == "mlp":
        code, text, _ = run(capsys, "evaluate", out, "--data-dir", small_data, "--limit", "10")
        accuracy = float(text.split("test accuracy ")[1].split(",")[0])
        first = text.splitlines()[0]
        assert code == 0 and first.endswith("(10 examples)") and round(10 * accuracy, 6).is_integer()
    code, text, err = run(capsys, "predict", out, small_data / "shoe.npy", "--top", "2")
    assert code == 0 and err == ""
    line, = text.strip().splitlines()
    probabilities = [float(w.rstrip(",")) for w in line.split()[-3::2]]
    assert line.startswith(f"{small_data / 'shoe.npy'}: ") and len(probabilities) == 2
    assert 0 <= probabilities[1] <= probabilities[0] <= 1
    code, text, _ = run(capsys, "summary", "--model", model)
    assert code == 0 and text.splitlines()[2].split()[:2] == [model, "(10,)"]


# what `fnn inspect` must show for each family's run (the section titles of its index.html)
INSPECT_SECTIONS = {"mlp": ["Attributions", "First-layer weights"],
                    "cnn": ["Grad-CAM", "Filters", "BatchNorm input and output"],
                    "resnet": ["Grad-CAM", "Filters"], "lstm": ["Gate activations", "Saliency over time steps"],
                    "gru": ["Gate activations"],
                    "vit": ["Attention per head", "Attention rollout"]}


def test_inspect_serves_every_family(family_run, small_data, capsys):
    model, out = family_run
    code, text, err = run(capsys, "inspect", out, "--images", "1", "--data-dir", small_data)
    page = (out / "inspect" / "index.html").read_text()
    assert code == 0 and err == "" and text.startswith("wrote ")
    served = set(re.findall(r'<h2 id="s\d+">([^<]+)</h2>\n<p>', page))   # not `<p class="na">` (a reason)
    for title in INSPECT_SECTIONS[model]:
        assert title in served, f"{model}: {title!r} is not served in index.html (served: {sorted(served)})"
