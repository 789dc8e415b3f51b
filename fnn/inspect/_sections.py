"""The sections of `write_report`'s page. Each takes the `Context` and returns a `Section`:
its pictures (written into the folder), a table, or the one line saying why this model
cannot serve it. Which one is decided by the model's structure (`structure.describe`).
"""
from __future__ import annotations

import html
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses
from . import plots
from ._batchnorm import batchnorm_inputs_outputs
from .attribution import grad_cam, integrated_gradients, occlusion, seeded_trace
from .features import filters, norms_of, stats_of
from .internals import attention_rollout, attention_weights, gate_activations
from .shap import kernel_shap, rank_correlation
from .structure import GATE_NAMES, Structure, feature_layer


class Context(NamedTuple):
    """What every section reads: the model and its arrays, the images x (B, H, W, C) with their
    labels and titles, the class trace (saliency = its input_grad), the structure, the Grad-CAM
    layer (or the reason there is none), the output folder, IG steps and units to draw."""
    model: Any
    params: Any
    state: Any
    x: Any
    labels: Any
    titles: list
    trace: Any
    structure: Structure
    cam: tuple
    out: Any
    steps: int
    units: int


class Section(NamedTuple):
    title: str
    body: str       # HTML


def _na(title: str, reason: str) -> Section:
    """A method this model cannot serve: its one-line reason."""
    return Section(title, f'<p class="na">{html.escape(reason)}</p>')


def _picture(path, caption: str = "") -> str:
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{html.escape(path.name)}">{text}</figure>'


SHAP_SAMPLES = 126      # with the 2 end coalitions, one jitted call of shap.CHUNK coalitions: one compile
SHAP_GRID = 4           # a 4x4 grid of patches (7x7 pixels on 28x28): 126 samples fit its 16 values to ~13%
                        # of a 4094-sample fit on a trained CNN; a 7x7 grid's 49 are mostly noise at 126


def _pooled(maps, groups, mean: bool) -> np.ndarray:
    """Per-pixel maps (B, H, W) summed (or averaged) over each group of `groups` (H, W): (B, M)."""
    g = np.asarray(groups).ravel()
    one_hot = (g[:, None] == np.arange(g.max() + 1)[None]).astype(np.float64)          # (H*W, M)
    sums = np.asarray(maps, np.float64).reshape(len(maps), -1) @ one_hot
    return sums / one_hot.sum(axis=0) if mean else sums


def _shap_comparison(c: Context, shap, patch: int, ig, drop) -> str:
    """Spearman's rho of KernelSHAP with occlusion and with IG, per image, over the same groups."""
    M = shap.values.shape[1]
    pooled = {"occlusion": _pooled(drop, shap.groups, mean=True), "IG": _pooled(ig, shap.groups, mean=False)}
    rho = {k: [rank_correlation(shap.values[i], v[i]) for i in range(len(c.x))] for k, v in pooled.items()}
    rows = "".join(f"<tr><td>{i}: {html.escape(c.titles[i].replace(chr(10), ', '))}</td><td>{rho['occlusion'][i]:.2f}"
                   f"</td><td>{rho['IG'][i]:.2f}</td></tr>" for i in range(len(c.x)))
    mean = {k: float(np.mean(v)) for k, v in rho.items()}
    return (f"<p>KernelSHAP: the Shapley values of the class score over {M} patches of {patch}x{patch} pixels "
            f"(a patch left out is set to 0), fitted to {SHAP_SAMPLES} sampled coalitions; they sum exactly to "
            f"y_c(x) - y_c(0). Compared with occlusion and IG by Spearman's rank correlation per image, like "
            f"for like: both per-pixel maps are first pooled to the same {M} patches (occlusion averaged, "
            f"IG summed). Mean over the images: rho = {mean['occlusion']:.2f} with occlusion, "
            f"{mean['IG']:.2f} with IG.</p><table><tr><th>image</th><th>rho(KernelSHAP, occlusion)</th>"
            f"<th>rho(KernelSHAP, IG)</th></tr>{rows}</table>")


def attributions(c: Context) -> Section:
    """Per image: the input, Grad-CAM (when served), saliency, integrated gradients, occlusion, KernelSHAP."""
    maps = {} if c.cam[0] is None else {"Grad-CAM": grad_cam(c.model, c.params, c.state, c.x, layer=c.cam[0])}
    maps["saliency |dy/dx|"] = jnp.abs(c.trace.input_grad).max(axis=-1)
    ig = maps[f"integrated gradients ({c.steps} steps)"] = integrated_gradients(
        c.model, c.params, c.state, c.x, steps=c.steps).values.sum(axis=-1)
    drop = maps["occlusion (4x4, stride 2)"] = occlusion(c.model, c.params, c.state, c.x, patch=4, stride=2)
    patch = -(-min(c.x.shape[1:3]) // SHAP_GRID)
    shap = kernel_shap(c.model, c.params, c.state, c.x, patch=patch, samples=SHAP_SAMPLES)
    maps[f"KernelSHAP ({shap.values.shape[1]} patches)"] = shap.pixels
    cells = []
    for i in range(len(c.x)):
        path = plots.plot_attributions(c.x[i:i + 1], {k: v[i:i + 1] for k, v in maps.items()},
                                       c.out / f"image_{i}.png", titles=[c.titles[i]])
        cells.append(_picture(path, c.titles[i].replace("\n", ", ")))
    note = ("<p>For the predicted class: " + ", ".join(maps) + " (gradients from fnn's hand-derived "
            "backward pass; KernelSHAP and occlusion from forward passes only, baseline 0).</p>")
    return Section("Attributions", note + _shap_comparison(c, shap, patch, ig, drop) + '<div class="grid">'
                   + "".join(cells) + "</div>")


def grad_cam_overlays(c: Context) -> Section:
    layer, reason = c.cam
    if layer is None:
        return _na("Grad-CAM", reason)
    cams = grad_cam(c.model, c.params, c.state, c.x, layer=layer)
    path = plots.plot_grad_cam(c.x, cams, c.out / "grad_cam.png", titles=c.titles)
    return Section("Grad-CAM", f"<p>At <code>{html.escape(layer)}</code>.</p>" + _picture(path))


def _steps_of(s: Structure, path: str) -> tuple | None:
    """The (T, F) input of the recurrent layer at `path`: the output of the traced leaf before it."""
    order = list(s.shapes)
    at = next(i for i, p in enumerate(order) if path == p or path.startswith(p + "/"))
    shape = s.shapes[order[at - 1]] if at > 0 else None
    return shape if shape is not None and len(shape) == 2 else None


def time_steps(c: Context) -> Section:
    """Saliency per pixel and summed over each time step, when the steps are the image's rows."""
    title = "Saliency over time steps"
    if not c.structure.recurrent:
        return _na(title, f"{title}: no recurrent layer in this model")
    path = next(iter(c.structure.recurrent))
    steps = _steps_of(c.structure, path)
    if steps is None or steps[0] != c.x.shape[1] or math.prod(steps) != math.prod(c.x.shape[1:]):
        return _na(title, f"{title}: the input of {path} is not the image read row by row")
    saliency = jnp.abs(c.trace.input_grad)
    per_step = saliency.reshape(len(c.x), steps[0], -1).sum(axis=-1)
    figure = plots.plot_time_saliency(c.x, saliency.max(axis=-1), per_step, c.out / "time_steps.png",
                                      titles=c.titles)
    return Section(title, f"<p>{html.escape(path)} reads the image one row per time step.</p>"
                   + _picture(figure))


def gates(c: Context) -> Section:
    title = "Gate activations"
    found = c.structure.recurrent
    if not found:
        return _na(title, f"{title}: no recurrent layer in this model")
    path = next((p for p, g in found.items() if g in GATE_NAMES), None)
    if path is None:
        return _na(title, f"{title}: {next(iter(found))} is a simple RNN, which has no gates")
    values = gate_activations(c.model, c.params, c.state, c.x[:1], layer=path)
    shown = {k: v[0, :, :c.units] for k, v in values.items()}
    figure = plots.plot_gates(shown, c.out / "gates.png",
                              title=f"{path} on image 0 ({c.titles[0].splitlines()[0]}), units 0..{c.units - 1}")
    return Section(title, f"<p>The gates of <code>{html.escape(path)}</code> at every time step "
                   f"(one forward pass).</p>" + _picture(figure))


def _received(c: Context):
    """({path: P}, reason): the attention weights when they can be drawn on the image grid."""
    s = c.structure
    if not s.attention:
        return None, "no attention layer in this model"
    if s.grid is None:
        return None, "the attention's tokens are not the cells of an image grid"
    weights = attention_weights(c.model, c.params, c.state, c.x)
    if len(weights) != len(s.attention):
        return None, "some attention layers keep no weights (impl='blockwise')"
    return weights, ""


def attention_heads(c: Context) -> Section:
    title = "Attention per head"
    weights, reason = _received(c)
    if weights is None:
        return _na(title, f"{title}: {reason}")
    h, w = c.structure.grid
    received = np.stack([np.asarray(p[0].mean(axis=1)) for p in weights.values()])   # (layers, heads, T)
    maps = received.reshape(*received.shape[:2], h, w)
    rows = [p.rsplit("/", 2)[-2] for p in weights]
    figure = plots.plot_token_maps(c.x[0], maps, c.out / "attention_heads.png", row_titles=rows,
                                   title=f"mean attention each patch receives, image 0 ({c.titles[0].splitlines()[0]})")
    return Section(title, f"<p>For each head of each block: the mean over queries of the attention "
                   f"each of the {h}x{w} patches receives.</p>" + _picture(figure))


def rollout(c: Context) -> Section:
    """Attention rollout; a patch's share is the mean of its column (the model pools all tokens)."""
    title = "Attention rollout"
    weights, reason = _received(c)
    if weights is None:
        return _na(title, f"{title}: {reason}")
    h, w = c.structure.grid
    share = attention_rollout(list(weights.values())).mean(axis=1).reshape(len(c.x), h, w)
    low, high = share.min(axis=(1, 2), keepdims=True), share.max(axis=(1, 2), keepdims=True)
    share = (share - low) / jnp.where(high > low, high - low, 1)
    pictures = jax.image.resize(share, (len(c.x), *c.x.shape[1:3]), "nearest")
    figure = plots.plot_grad_cam(c.x, pictures, c.out / "rollout.png", titles=c.titles, label="attention rollout")
    return Section(title, "<p>Abnar &amp; Zuidema (2020): the heads' mean attention plus the residual, "
                   "multiplied through the blocks; each patch's share of the pooled output (the mean over "
                   "tokens), rescaled to [0, 1] per image.</p>" + _picture(figure))


def conv_filters(c: Context) -> Section:
    if not c.structure.convs:
        return _na("Filters", "Filters: no convolutional layer in this model")
    conv = c.structure.convs[0]
    path = plots.plot_filters(filters(c.model, c.params, conv), c.out / "filters.png", title=f"filters of {conv}")
    return Section("Filters", f"<p>Of <code>{html.escape(conv)}</code>.</p>" + _picture(path))


def feature_maps(c: Context) -> Section:
    layer = feature_layer(c.structure)
    if layer is None:
        return _na("Feature maps", "Feature maps: no convolutional layer in this model")
    maps = c.trace.outputs[layer][0]
    path = plots.plot_activation_maps(maps[..., :c.units], c.out / "activation_maps.png",
                                      title=f"{layer} on image 0 ({c.titles[0].splitlines()[0]})")
    return Section("Feature maps", f"<p>Of <code>{html.escape(layer)}</code>.</p>" + _picture(path))


def dense_weights(c: Context) -> Section:
    title, s = "First-layer weights", c.structure
    if s.dense is None:
        return _na(title, f"{title}: the first layer with weights is not a dense layer reading all "
                          f"{math.prod(c.x.shape[1:])} input values")
    from ..paths import tree_by_path
    W = tree_by_path(c.model, c.params)[s.dense]["W"]
    n = min(c.units, W.shape[1])
    images = jnp.transpose(W[:, :n]).reshape(n, *c.x.shape[1:])
    path = plots.plot_filters(images, c.out / "dense_weights.png", title=f"{s.dense}: units 0..{n - 1}")
    return Section(title, f"<p>Each hidden unit's weights of <code>{html.escape(s.dense)}</code>, "
                   f"drawn as an input image.</p>" + _picture(path))


def _cell(value) -> str:
    return "" if value is None else f"{value:.3g}"


def statistics(c: Context) -> Section:
    """Per leaf layer: its activation statistics and the loss gradient's norms (true labels)."""
    stats = stats_of(c.model, c.trace.outputs)
    dy = losses.softmax_cross_entropy.grad(c.trace.outputs[c.model.name], jnp.asarray(c.labels))
    norms = norms_of(c.model, seeded_trace(c.model, c.params, c.state, c.x, dy))
    head = "".join(f"<th>{h}</th>" for h in ("layer", "output", "mean", "std", "zeros", "saturated",
                                             "||dL/dy||", "||dL/dparams||"))
    rows = []
    for path, a in stats.items():
        g = norms.get(path)
        cells = [a.mean, a.std, a.zeros, a.saturated, g and g.output, g and g.params]
        shape = c.structure.shapes.get(path)
        rows.append(f"<tr><td><code>{html.escape(path)}</code></td><td>{shape}</td>"
                    + "".join(f"<td>{_cell(v)}</td>" for v in cells) + "</tr>")
    note = (f"<p>On the {len(c.x)} images, in evaluation mode; gradients of the cross-entropy with the "
            f"true labels.</p>")
    return Section("Layer statistics", note + f"<table><tr>{head}</tr>{''.join(rows)}</table>")


def batchnorm_histograms(c: Context) -> Section:
    """Histograms of each BatchNorm's input and output on the report's images (evaluation mode)."""
    title = "BatchNorm input and output"
    pairs = batchnorm_inputs_outputs(c.model, c.params, c.state, c.trace.outputs)
    if not pairs:
        return _na(title, f"{title}: no BatchNorm layer in this model")
    path = plots.plot_batchnorm_histograms(pairs, c.out / "batchnorm_histograms.png")
    return Section(title, f"<p>All values of each BatchNorm's input and output on the {len(c.x)} images, "
                   f"in evaluation mode (running statistics).</p>" + _picture(path))


SECTIONS = {"Attributions": attributions, "Grad-CAM": grad_cam_overlays, "Saliency over time steps": time_steps,
            "Gate activations": gates, "Attention per head": attention_heads, "Attention rollout": rollout,
            "Filters": conv_filters, "Feature maps": feature_maps, "First-layer weights": dense_weights,
            "Layer statistics": statistics, "BatchNorm input and output": batchnorm_histograms}


def section(title: str, c: Context) -> Section:
    """The section `title`; a structure this code did not foresee (a layer whose cache or output
    has another layout) gives its one-line reason instead of ending the report."""
    try:
        return SECTIONS[title](c)
    except (ValueError, TypeError, KeyError, IndexError, StopIteration) as err:
        first = (str(err).splitlines() or [""])[0]
        return _na(title, f"{title}: not drawn for this model ({type(err).__name__}: {first})")
