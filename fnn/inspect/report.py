"""One folder of pictures for a trained image classifier, with an `index.html` that shows them.
What it shows follows the model's structure (`fnn.inspect.structure`), never its name:

    every model     saliency, integrated gradients, occlusion, KernelSHAP over patches (and its
                    rank correlation with the two); per-layer activation and gradient statistics
    convolutions    Grad-CAM, the first convolution's filters and feature maps
    dense input     the first dense layer's weights drawn as images, one per hidden unit
    LSTM / GRU      saliency per time step (image row), the gates over time for one image
    attention       per head of each block, the attention each patch receives; attention rollout

A method the model cannot serve gets one line saying why. `python -m fnn inspect RUN` runs it
on a run directory.
"""
from __future__ import annotations

import html
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, PyTree
from . import plots
from ._sections import SECTIONS, Context, Section, section
from ._trace import run
from .attribution import class_trace, resolve
from .structure import Structure, cam_layer, describe


def _cam_choice(model: Layer, params, state, x, s: Structure, layer: str | None) -> tuple:
    """(Grad-CAM layer, "") or (None, why not); a `layer` asked for must exist and have spatial axes."""
    if layer is None:
        return cam_layer(s)
    path = resolve(model, layer, "Grad-CAM")
    shape = jax.eval_shape(lambda z: run(model, params, state, z).outputs.get(path), x[:1])
    if getattr(shape, "ndim", 0) != 4:
        have = ", ".join(s.spatial()) or "none"
        raise ValueError(f"Grad-CAM: layer {path!r} gives outputs of shape {getattr(shape, 'shape', None)}, "
                         f"without the spatial axes (B, h, w, K) it needs; layers with them: {have}")
    return path, ""


def _titles(model: Layer, params, state, x, labels, class_names):
    """(the class trace of x, a 'true ... / predicted ... (p)' title per image)."""
    t, predicted = class_trace(model, params, state, x, what="inspect")
    probs = np.asarray(jax.nn.softmax(t.outputs[model.name], axis=-1))
    name = (lambda k: class_names[int(k)]) if class_names else str
    titles = [f"true {name(lab)}\npredicted {name(p)} ({probs[i, p]:.2f})"
              for i, (lab, p) in enumerate(zip(np.asarray(labels), np.asarray(predicted)))]
    return t, titles


def write_report(model: Layer, params: PyTree, state: PyTree, images, labels, out, *, class_names=None,
                 cam_layer: str | None = None, steps: int = 32, units: int = 64) -> Path:
    """Write the pictures that fit `model` for `images` (B, H, W, C) with true `labels` (B,) into
    `out`, and `out/index.html`; returns the index path. Everything is checked (the images, a
    Grad-CAM `cam_layer`, matplotlib) before the folder is made; a folder this call made is
    removed again if drawing fails. `units`: hidden units, channels or filters drawn at most."""
    x = jnp.asarray(images)
    if x.ndim != 4 or len(x) != len(np.asarray(labels)):
        raise ValueError(f"write_report: expected images (B, H, W, C) and labels (B,), got shapes "
                         f"{tuple(x.shape)} and {np.shape(labels)}")
    plots._pyplot()
    s = describe(model, params, state, x)
    cam = _cam_choice(model, params, state, x, s, cam_layer)
    out = Path(out)
    made = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)   # the topmost new folder
    out.mkdir(parents=True, exist_ok=True)
    try:
        t, titles = _titles(model, params, state, x, labels, class_names)
        context = Context(model, params, state, x, labels, titles, t, s, cam, out, steps, units)
        return _index(out, model, s, [section(title, context) for title in SECTIONS])
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise


STYLE = """body{font-family:sans-serif;margin:1em;max-width:1400px} .grid{display:grid;
grid-template-columns:repeat(2,1fr);gap:1em} img{max-width:100%} figure{margin:0} .na{color:#666}
table{border-collapse:collapse;font-size:90%} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"""


def _index(out: Path, model: Layer, s: Structure, sections: list[Section]) -> Path:
    found = {"attention": f"{len(s.attention)} attention layers", "recurrent": f"{len(s.recurrent)} recurrent layers",
             "convolutional": f"{len(s.convs)} convolutions", "dense": "dense layers only"}
    contents = "".join(f'<li><a href="#s{i}">{html.escape(x.title)}</a></li>' for i, x in enumerate(sections))
    body = "\n".join(f'<h2 id="s{i}">{html.escape(x.title)}</h2>\n{x.body}' for i, x in enumerate(sections))
    page = (f'<!doctype html><meta charset="utf-8"><title>fnn inspect: {html.escape(model.name)}</title>\n'
            f"<style>{STYLE}</style>\n<h1>Looking inside <code>{html.escape(model.name)}</code></h1>\n"
            f"<p>A {s.kind} model ({found[s.kind]}, read from its layers).</p><ul>{contents}</ul>\n{body}\n")
    (out / "index.html").write_text(page)
    return out / "index.html"


def inspect_run(args) -> int:
    """`python -m fnn inspect RUN --images N --out DIR`: `write_report` for a run directory's
    checkpoint on the first N test images. A refusal is one line (exit 2) and writes nothing."""
    from .. import data, runs
    from .._optional import MissingDependency
    from ..run_config import RunError, UsageError
    if args.images < 1:
        raise UsageError(f"--images must be at least 1, got {args.images}")
    try:
        plots._pyplot()
    except MissingDependency as err:
        raise UsageError(str(err)) from None
    cfg, model, params, state, _ = runs.load_run(args.run_dir, args.checkpoint)
    try:
        images, labels = data.load_dataset(cfg["dataset"], "test", data_dir=args.data_dir)
    except (FileNotFoundError, ValueError, OSError) as err:
        raise RunError(str(err)) from None
    x = jnp.asarray(images[:args.images])
    try:                            # a --layer not in the model, or without spatial axes
        _cam_choice(model, params, state, x, describe(model, params, state, x), args.layer)
    except ValueError as err:
        raise UsageError(str(err)) from None
    index = write_report(model, params, state, x, labels[:args.images], args.out or Path(args.run_dir) / "inspect",
                         class_names=data.CLASS_NAMES.get(cfg["dataset"]), cam_layer=args.layer)
    print(f"wrote {index} ({len(x)} test images)")
    return 0
