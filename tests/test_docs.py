"""The README's jit/vmap block runs as printed, and its claims hold: per-example gradients equal
jax.grad of each example alone, their mean is the batch gradient, and fnn.manual gives the same."""
import contextlib
import io
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import fnn

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(name: str) -> str:
    match = re.search(rf"<!-- snippet:{name} -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no <!-- snippet:{name} --> python block"
    return match.group(1)


def run_snippet(name: str) -> tuple[dict, str]:
    scope, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out), jax.numpy_dtype_promotion("standard"):
        exec(compile(snippet(name), f"README:{name}", "exec"), scope)
    return scope, out.getvalue()


def test_jit_and_vmap_snippet_runs_and_is_right():
    ns, printed = run_snippet("jit-vmap")
    model, params, state, x, labels = ns["model"], ns["params"], ns["state"], ns["x"], ns["labels"]
    assert printed.strip() == "(32, 784, 64)"
    assert ns["logits"].shape == (32, 10)
    eager, _ = jax.jit(model.apply)(params, state, x)
    np.testing.assert_allclose(ns["logits"], eager, rtol=1e-5, atol=1e-6)
    per_example = ns["per_example"]
    with jax.numpy_dtype_promotion("standard"):
        alone = jax.jit(jax.grad(ns["example_loss"]))(params, x[5], labels[5])
        batch = jax.jit(jax.grad(lambda p: fnn.losses.softmax_cross_entropy(model.apply(p, state, x)[0], labels)))(
            params)
        hand_model = fnn.manual(model)

        def hand_loss(p, x1, y1):
            return fnn.losses.softmax_cross_entropy(hand_model.apply(p, state, x1[None])[0], y1[None])
        hand = jax.jit(jax.vmap(jax.grad(hand_loss), in_axes=(None, 0, 0)))(params, x, labels)
    for got, want in zip(jax.tree.leaves(per_example), jax.tree.leaves(alone)):
        np.testing.assert_allclose(got[5], want, rtol=1e-4, atol=1e-6)
    for got, want in zip(jax.tree.leaves(per_example), jax.tree.leaves(batch)):
        np.testing.assert_allclose(jnp.mean(got, axis=0), want, rtol=1e-4, atol=1e-6)
    for got, want in zip(jax.tree.leaves(hand), jax.tree.leaves(per_example)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_readme_points_inside_the_repository():
    text = README.read_text()
    assert "../shared" not in text and "(docs/design.md)" in text and "(examples/finetune.py)" in text
    root = README.parent
    assert (root / "docs" / "design.md").is_file() and (root / "LICENSE").is_file()
    assert "MIT License" in (root / "LICENSE").read_text()
    cited = {p for f in (root / "fnn").rglob("*.py") for p in re.findall(r"DESIGN(?:\.md)?\b", f.read_text())}
    assert not cited, "docstrings cite DESIGN.md, which is not in the repository: cite docs/design.md"
