"""One folder of pictures for a trained image classifier: Grad-CAM, saliency, integrated
gradients and occlusion for a few images, the first layer's filters and feature maps, and an
`index.html` that shows them in a grid. `python -m fnn inspect RUN` runs it on a run directory.
"""
from __future__ import annotations

import html
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, PyTree
from . import plots
from ._trace import run
from .attribution import class_trace, grad_cam, integrated_gradients, occlusion, resolve
from .features import filters


def default_layers(model: Layer, params: PyTree, state: PyTree, x) -> tuple[str, str, str]:
    """(first conv layer, the activation just after it, the last non-pooling layer with spatial
    axes): where to take filters, feature maps and Grad-CAM unless told."""
    outputs = run(model, params, state, x[:1]).outputs
    leaves = [p for p in outputs if not any(q.startswith(p + "/") for q in outputs)]
    spatial = [p for p in leaves if getattr(outputs[p], "ndim", 0) == 4]
    if not spatial:
        raise ValueError(f"inspect: model {model.name!r} has no layer with spatial axes (B, h, w, K); "
                         f"Grad-CAM, filters and feature maps need a convolutional model")
    convs = [p for p in spatial if "Conv" in p.rsplit("/", 1)[-1]] or spatial
    after = [p for p in spatial if p.rsplit("/", 1)[-1].split("_")[0] in ("Relu", "Tanh", "Sigmoid", "Gelu")]
    cam = [p for p in spatial if "Pool" not in p.rsplit("/", 1)[-1]]
    return convs[0], (after or convs)[0], (cam or spatial)[-1]


def write_report(model: Layer, params: PyTree, state: PyTree, images, labels, out, *,
                 class_names=None, cam_layer: str | None = None, steps: int = 32) -> Path:
    """Write the pictures for `images` (B, H, W, C) with true `labels` (B,) into `out`, and
    `out/index.html`; returns the index path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x = jnp.asarray(images)
    if cam_layer is not None:
        cam_layer = resolve(model, cam_layer, "inspect")      # fail before any work
    conv, activation, cam_default = default_layers(model, params, state, x)
    cam_layer = cam_layer or cam_default
    t, predicted = class_trace(model, params, state, x, what="inspect")
    probs = np.asarray(jax.nn.softmax(t.outputs[model.name], axis=-1))
    name = (lambda c: class_names[int(c)]) if class_names else str
    titles = [f"true {name(lab)}\npredicted {name(p)} ({probs[i, p]:.2f})"
              for i, (lab, p) in enumerate(zip(np.asarray(labels), np.asarray(predicted)))]
    cams = grad_cam(model, params, state, x, layer=cam_layer)
    maps = {"Grad-CAM": cams, "saliency |dy/dx|": jnp.abs(t.input_grad).max(axis=-1),
            f"integrated gradients ({steps} steps)": integrated_gradients(model, params, state, x,
                                                                         steps=steps).values.sum(axis=-1),
            "occlusion (4x4, stride 2)": occlusion(model, params, state, x, patch=4, stride=2)}
    rows = []
    for i in range(len(x)):
        path = plots.plot_attributions(x[i:i + 1], {k: v[i:i + 1] for k, v in maps.items()},
                                       out / f"image_{i}.png", titles=[titles[i]])
        rows.append((path.name, titles[i].replace("\n", ", ")))
    plots.plot_grad_cam(x, cams, out / "grad_cam.png", titles=titles)
    plots.plot_filters(filters(model, params, conv), out / "filters.png", title=f"filters of {conv}")
    feature_maps = run(model, params, state, x[:1]).outputs[activation][0]
    plots.plot_activation_maps(feature_maps, out / "activation_maps.png",
                               title=f"{activation} on image 0 ({titles[0].splitlines()[0]})")
    return _index(out, rows, cam_layer, conv, activation)


def _index(out: Path, rows, cam_layer, conv, activation) -> Path:
    cells = "\n".join(f'<figure><img src="{src}"><figcaption>{html.escape(caption)}</figcaption></figure>'
                      for src, caption in rows)
    page = f"""<!doctype html><meta charset="utf-8"><title>fnn inspect</title>
<style>body{{font-family:sans-serif;margin:1em}} .grid{{display:grid;grid-template-columns:repeat(2,1fr);gap:1em}}
img{{max-width:100%}} figure{{margin:0}}</style>
<h1>Looking inside the network</h1>
<p>Each row: the input, Grad-CAM at <code>{html.escape(cam_layer)}</code>, saliency, integrated gradients
and occlusion for the predicted class (gradients from fnn's hand-derived backward pass).</p>
<div class="grid">{cells}</div>
<h2>Grad-CAM overlays</h2><img src="grad_cam.png">
<h2>Filters of <code>{html.escape(conv)}</code></h2><img src="filters.png">
<h2>Feature maps of <code>{html.escape(activation)}</code></h2><img src="activation_maps.png">
"""
    (out / "index.html").write_text(page)
    return out / "index.html"


def inspect_run(args) -> int:
    """`python -m fnn inspect RUN --images N --out DIR`: `write_report` for a run directory's
    checkpoint on the first N test images."""
    from .. import data, runs
    from ..run_config import UsageError
    if args.images < 1:
        raise UsageError(f"--images must be at least 1, got {args.images}")
    run_dir = Path(args.run_dir)
    cfg = runs._read_config(run_dir)
    setup = runs._setup(cfg, cfg["batch_size"])         # the optimizer only as a checkpoint template
    params, state, *_ = runs._load_weights(runs._checkpoint_path(run_dir, args.checkpoint), setup)
    _, (images, labels) = runs._load(cfg, args.data_dir, False)
    out = Path(args.out or run_dir / "inspect")
    try:
        index = write_report(setup.model, params, state, images[:args.images], labels[:args.images], out,
                             class_names=data.CLASS_NAMES.get(cfg["dataset"]), cam_layer=args.layer)
    except ValueError as err:          # a --layer that is not in the model, or has no spatial axes
        raise UsageError(str(err)) from None
    print(f"wrote {index} ({args.images} test images)")
    return 0
