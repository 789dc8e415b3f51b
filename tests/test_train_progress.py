"""fit's progress: a live bar on a terminal, one plain line per epoch in a log file (no `\r`)."""
import io
import re
import sys

import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L


def _fit_with_stderr(stream, epochs=3, initial_epoch=0, history=None):
    model = fnn.serial(L.Dense(8), L.Relu(), L.Dense(3))
    _, params, state = model.init(jax.random.PRNGKey(0), (4,))
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 4), jnp.float32)
    y = jnp.arange(64, dtype=jnp.int32) % 3
    saved, sys.stderr = sys.stderr, stream
    try:
        return fnn.train.fit(model, params, state, fnn.optim.adam(1e-2), (x[:48], y[:48]),
                             loss=fnn.losses.softmax_cross_entropy, epochs=epochs, batch_size=16,
                             key=jax.random.PRNGKey(2), val=(x[48:], y[48:]), loop="scan",
                             initial_epoch=initial_epoch, history=history)
    finally:
        sys.stderr = saved


def test_progress_in_a_log_file_is_one_plain_line_per_epoch(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        *_, history = _fit_with_stderr(f)
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3, text
    for i, line in enumerate(lines, 1):
        assert re.fullmatch(rf"epoch {i}/3  loss \d\.\d{{4}}  acc \d\.\d{{4}}  val_loss \d\.\d{{4}}  "
                            rf"val_acc \d\.\d{{4}}  \(\d+\.\d s\)", line), line
    assert lines[-1].startswith(f"epoch 3/3  loss {history['train_loss'][-1]:.4f}")


def test_resumed_fit_counts_epochs_from_where_it_starts(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        _fit_with_stderr(f, epochs=2, initial_epoch=1)
    assert [line.split("  ")[0] for line in log.read_text().splitlines()] == ["epoch 2/2"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_is_a_live_bar():
    term = _Terminal()
    _fit_with_stderr(term, epochs=2)
    assert "\r" in term.getvalue() and "2/2" in term.getvalue()
