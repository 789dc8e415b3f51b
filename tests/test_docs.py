"""The README and docs/ run as printed: every ```python block executes (a page's blocks in order,
in one namespace, as a reader would paste them), the commands the shell blocks name exist, the
links point inside the repository, and the jit/vmap block's claims hold."""
import contextlib
import io
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- not-run: ([^>]*?) -->\s*\n)?```(\w*)\n(.*?)```", re.S)
MAX_NOT_RUN = 3                                   # a block that cannot run says why, and there are few


def _blocks(page: Path, language: str = "python") -> list[tuple[int, str, str | None]]:
    """(line, code, not-run reason) of each block of `language` on the page."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start(4)) + 1, m.group(4), m.group(2))
            for m in BLOCK.finditer(text) if m.group(3) == language]


def _data_missing() -> bool:
    try:
        fnn.data.load_dataset("fashion-mnist", "test")
    except (FileNotFoundError, ValueError, OSError):
        return True
    return False


def _run(code: str, scope: dict, where: str) -> str:
    """Run a block as a user would: 32-bit defaults and standard dtype promotion (the suite's
    conftest turns on float64 and strict promotion for its own tests)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), jax.numpy_dtype_promotion("standard"), jax.enable_x64(False):
        exec(compile(code, where, "exec"), scope)
    return out.getvalue()


RUNNABLE = [p for p in PAGES if any(reason is None for _, _, reason in _blocks(p))]


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                    # blocks that write files write them here
    scope = {"__name__": "__docs__"}
    for line, code, reason in _blocks(page):
        if reason is not None:
            continue
        if "load_dataset(" in code and _data_missing():
            pytest.skip("Fashion-MNIST is not installed (scripts/install-data.sh)")
        _run(code, scope, f"{page.relative_to(ROOT)}:{line}")


def test_blocks_that_do_not_run_are_few_and_say_why():
    skipped = [(p.name, line, reason) for p in PAGES for line, _, reason in _blocks(p) if reason is not None]
    assert all(reason.strip() for _, _, reason in skipped), skipped
    assert len(skipped) <= MAX_NOT_RUN, skipped


def _shell_text() -> str:
    """Every shell block, and every inline `code` span, of every page."""
    text = ""
    for page in PAGES:
        page_text = page.read_text()
        for language in ("sh", "bash", "console", "shell", ""):
            text += "\n".join(code for _, code, _ in _blocks(page, language)) + "\n"
        text += "\n".join(re.findall(r"`([^`\n]+)`", BLOCK.sub("", page_text))) + "\n"
    return text


def test_named_commands_exist():
    text = _shell_text()
    commands = set(re.findall(r"^[ \t]*(?:fnn|python -m fnn)[ \t]+([a-z][\w-]*)", text, re.M))
    commands |= set(re.findall(r"`(?:fnn|python -m fnn) ([a-z][\w-]*)", "\n".join(p.read_text() for p in PAGES)))
    known = set(re.findall(r"add_parser\(\s*\"([\w-]+)\"", (ROOT / "fnn" / "cli.py").read_text()))
    assert {"train", "evaluate", "predict", "inspect", "summary", "gradcheck"} <= commands
    assert commands <= known, f"the docs name fnn commands that do not exist: {sorted(commands - known)}"
    targets = set(re.findall(r"\bmake ([a-z][\w-]*)", text))
    defined = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    assert {"train", "test"} <= targets and targets <= defined, sorted(targets - defined)


def test_named_files_exist():
    every = "\n".join(p.read_text() for p in PAGES)
    named = set(re.findall(r"\b((?:examples|benchmarks|scripts|tests|fnn)/[\w/.-]*\w\.(?:py|sh|md))", every))
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"the docs name files that do not exist: {missing}"
    examples = {p.name for p in (ROOT / "examples").glob("[!_]*.py")}
    listed = set(re.findall(r"examples/(\w+\.py)", (ROOT / "docs" / "examples.md").read_text()))
    assert examples <= listed, f"docs/examples.md lacks {sorted(examples - listed)}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", BLOCK.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_point_inside_the_repository():
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = page.parent / target if target else page
            assert path.exists(), f"{page.name} links to {target}, which does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{page.name} links to {target}#{anchor}: no such heading"
    text = README.read_text()
    assert "../shared" not in text and "(docs/design.md)" in text
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    cited = {p for f in (ROOT / "fnn").rglob("*.py") for p in re.findall(r"DESIGN(?:\.md)?\b", f.read_text())}
    assert not cited, "docstrings cite DESIGN.md, which is not in the repository: cite docs/design.md"


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "<!-- family-table -->" in text
    for family in ("mlp", "cnn", "resnet", "lstm", "gru", "vit"):
        assert f"--model {family}" in text, family
    assert "--task g2p" in text


def _snippet(name: str) -> str:
    page = ROOT / "docs" / "layers-and-gradients.md"
    match = re.search(rf"<!-- snippet:{name} -->\n```python\n(.*?)```", page.read_text(), re.S)
    assert match, f"{page.name} has no <!-- snippet:{name} --> python block"
    return match.group(1)


def test_jit_and_vmap_snippet_runs_and_is_right():
    ns = {}
    printed = _run(_snippet("jit-vmap"), ns, "docs/layers-and-gradients.md:jit-vmap")
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
