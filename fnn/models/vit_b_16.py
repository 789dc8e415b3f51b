"""ViT-B/16 (Dosovitskiy et al. 2021) in torchvision's layout, NHWC, 86,567,656 parameters.

`vision_transformer` is torchvision's VisionTransformer class (any size, for tests);
`vit_b_16` its ViT-B/16: conv_proj (16x16 patches, stride 16) -> class token in front ->
encoder (pos_embedding, dropout, 12 pre-LN blocks with packed-in_proj attention and an
exact-GELU MLP, LayerNorm eps 1e-6 throughout, final ln) -> the class token's output -> heads.
Paths follow torchvision's names where fnn's layers allow (`fnn.interop` maps the rest:
a block's LayerNorm / MultiHeadAttention / mlp/LayerNorm / mlp/Dense_1 / mlp/Dense_2 are
torchvision's ln_1 / self_attention / ln_2 / mlp.0 / mlp.3).

    model = fnn.models.vit_b_16()                 # (B, 224, 224, 3) -> (B, 1000) logits
"""
from __future__ import annotations

import jax.numpy as jnp

from .. import layers as L
from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from ..layers.combinators import serial


def ClassToken(*, name: str = "class_token") -> Layer:
    """Prepend one learned token to every sequence: y[b] = [c; x[b, 1]; ...; x[b, T]] (ViT, BERT).

    Shapes: x (B, T, E) -> y (B, T + 1, E);  W (E,) (zeros at init, as torchvision).
    Backward: dW = sum_b dy[b, 0],  dx = dy[:, 1:].
    """
    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(T, E)", rank=2)
        return (in_shape[0] + 1, in_shape[1]), {"W": jnp.zeros((in_shape[1],), jnp.float32)}, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        check_input(name, x)
        e = params["W"].shape[0]
        if x.ndim != 3 or x.shape[-1] != e:
            raise ValueError(f"{name}: expected x of shape (B, T, {e}), got {tuple(x.shape)}")
        token = jnp.broadcast_to(params["W"].astype(x.dtype), (x.shape[0], 1, e))
        return jnp.concatenate([token, x], axis=1), state, None

    def backward(params, cache, dy):
        return {"W": dy[:, 0].sum(axis=0)}, dy[:, 1:]

    return Layer(init, forward, backward, name)


def TakeToken(index: int = 0, *, name: str = "class_output") -> Layer:
    """One position of every sequence: y = x[:, index] (the class token's output).

    Shapes: x (B, T, E) -> y (B, E); no params.
    Backward: dx[:, index] = dy, zeros elsewhere.
    """
    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(T, E)", rank=2)
        if not -in_shape[0] <= index < in_shape[0]:
            raise ValueError(f"{name}: index {index} is outside sequences of length {in_shape[0]}")
        return (in_shape[1],), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x, min_ndim=2)
        return x[:, index], state, x                      # backward reads its static shape

    def backward(params, cache, dy):
        return (), jnp.zeros(cache.shape, dy.dtype).at[:, index].set(dy)

    return Layer(init, forward, backward, name)


def vision_transformer(image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                       mlp_dim: int, num_classes: int = 1000, *, dropout: float = 0.0,
                       name: str = "vision_transformer") -> Layer:
    """torchvision's VisionTransformer (attention_dropout 0, no representation layer), NHWC:
    conv_proj -> (B, T, E), T = (image_size / patch_size)^2 -> class_token -> encoder
    (pos_embedding, dropout, layers = num_layers x TransformerEncoderBlock(eps 1e-6), ln)
    -> class_output (token 0) -> heads/head: (B, image_size, image_size, 3) -> (B, num_classes)."""
    if image_size % patch_size:
        raise ValueError(f"{name}: image_size {image_size} is not a multiple of patch_size {patch_size}")
    tokens = (image_size // patch_size) ** 2
    blocks = [L.TransformerEncoderBlock(hidden_dim, num_heads, mlp_dim, dropout=dropout, eps=1e-6,
                                        name=f"encoder_layer_{i}") for i in range(num_layers)]
    encoder = serial(L.LearnedPositions(name="pos_embedding"), L.Dropout(dropout, name="dropout"),
                     serial(*blocks, name="layers"), L.LayerNorm(1e-6, name="ln"), name="encoder")
    return serial(L.Conv2D(hidden_dim, patch_size, patch_size, "VALID", name="conv_proj"),
                  L.Reshape((tokens, hidden_dim), name="patches"), ClassToken(), encoder, TakeToken(),
                  serial(L.Dense(num_classes, name="head"), name="heads"), name=name)


def vit_b_16(num_classes: int = 1000, *, image_size: int = 224, dropout: float = 0.0) -> Layer:
    """ViT-B/16: vision_transformer(image_size, patch 16, 12 layers, 12 heads, width 768, MLP 3072)."""
    return vision_transformer(image_size, 16, 12, 12, 768, 3072, num_classes, dropout=dropout, name="vit_b_16")


CASES = (
    Case("ClassToken", ClassToken, (3, 4)),
    Case("TakeToken", TakeToken, (3, 4)),
    Case("model-vision_transformer-small",
         lambda: vision_transformer(8, 4, 1, 2, 4, 6, 3, dropout=0.1), (8, 8, 3), train=True, batch=2),
)
