"""Cross-cutting rules: one public door per package, docstrings with shapes and
derivatives, annotated signatures, no optax/torch/flax in fnn/, no autodiff in
the hand-derived code, the API lists of docs/api.md equal to __all__."""
import importlib
import inspect
import re
from pathlib import Path

import pytest

import fnn
import fnn.layers
import fnn.optim

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"fnn": fnn, "fnn.activations": fnn.activations, "fnn.layers": fnn.layers,
            "fnn.losses": fnn.losses, "fnn.metrics": fnn.metrics, "fnn.optim": fnn.optim,
            "fnn.distributed": fnn.distributed}
AUTODIFF = re.compile(r"jax\.(grad|vjp|jvp|linearize|linear_transpose|value_and_grad)\b|custom_vjp")
AUTODIFF_ALLOWED = {"fnn/gradcheck.py", "fnn/core.py",      # the oracle, manual()'s wiring,
                    "fnn/train/step.py"}                     # and the step's grads="autodiff"


@pytest.mark.parametrize("name", fnn.layers.__all__)
def test_layer_docstrings_give_shapes_and_backward(name):
    if not callable(getattr(fnn.layers, name)):
        pytest.skip("a constant (IMAGENET_MEAN): no docstring of its own")
    doc = inspect.getdoc(getattr(fnn.layers, name)) or ""
    assert "Shapes:" in doc and "Backward:" in doc, name
    assert len(doc.splitlines()) <= 15, f"{name}: docstring longer than 15 lines"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_public_callables_are_annotated(package):
    module = PACKAGES[package]
    for name in module.__all__:
        obj = getattr(module, name)
        if not inspect.isfunction(obj):
            continue
        sig = inspect.signature(obj)
        missing = [p for p in sig.parameters.values()
                   if p.annotation is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD,)]
        assert not missing and sig.return_annotation is not inspect.Signature.empty, \
            f"{package}.{name} lacks annotations: {[p.name for p in missing]}"


def _sources():
    return sorted((ROOT / "fnn").rglob("*.py"))


def test_no_peer_library_imports_in_fnn():
    banned = re.compile(r"^\s*(import|from)\s+(optax|torch|flax|equinox|sklearn)\b", re.M)
    offenders = [str(p) for p in _sources() if banned.search(p.read_text())]
    assert not offenders


def test_no_autodiff_in_hand_derived_code():
    offenders = [str(p.relative_to(ROOT)) for p in _sources()
                 if str(p.relative_to(ROOT)) not in AUTODIFF_ALLOWED and AUTODIFF.search(p.read_text())]
    assert not offenders, f"autodiff used outside the allowed modules: {offenders}"


API_PAGE = ROOT / "docs" / "api.md"      # written by scripts/readme_api.py from __all__
API_LISTED = ["fnn.classic", "fnn.detection", "fnn.inspect", *sorted(PACKAGES)]


def _listed_api(package):
    text = API_PAGE.read_text()
    block = re.search(rf"<!-- api:{re.escape(package)} -->(.*?)<!-- /api -->", text, re.S)
    assert block, f"docs/api.md has no API list for {package}: run scripts/readme_api.py"
    return sorted(set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", block.group(1))))


@pytest.mark.parametrize("package", API_LISTED)
def test_api_page_lists_all(package):
    assert _listed_api(package) == sorted(importlib.import_module(package).__all__), \
        "docs/api.md differs from __all__: run scripts/readme_api.py"


def test_api_page_lists_every_package():
    assert sorted(re.findall(r"<!-- api:([\w.]+) -->", API_PAGE.read_text())) == sorted(API_LISTED)


def test_only_namedtuple_classes_under_layers():
    for path in (ROOT / "fnn" / "layers").rglob("*.py"):
        for match in re.finditer(r"^class\s+\w+\(([^)]*)\)", path.read_text(), re.M):
            assert "NamedTuple" in match.group(1), f"{path.name}: {match.group(0)}"
