"""Named architectures as builders (plain functions returning a `Layer` with named children), the
table the command line picks them from (`MODELS`), their training recipes and gradient-check rows.

    model = fnn.models.vit(width=64, depth=4)          # (B, 28, 28, 1) -> (B, 10) logits
"""
from __future__ import annotations

from ..gradcheck import Case
from .detection import detector as detector
from .efficientnet import efficientnet_b0 as efficientnet_b0
from .recipes import ARCH_ARGS as ARCH_ARGS
from .recipes import RECIPES as RECIPES
from .recipes import VAL_SIZE as VAL_SIZE
from .recipes import default_val_size as default_val_size

# grapheme-to-phoneme: the encoder-decoders and their decoders (fnn/models/seq2seq.py; `fnn.g2p` trains them)
from .seq2seq import Seq2SeqLSTM as Seq2SeqLSTM
from .seq2seq import Seq2SeqTransformer as Seq2SeqTransformer
from .seq2seq import attention_weights as attention_weights
from .seq2seq import beam_search as beam_search
from .seq2seq import greedy as greedy
from .sequence import gru as gru
from .sequence import lstm as lstm
from .sequence import row_classifier as row_classifier
from .torchvision import alexnet as alexnet
from .torchvision import resnet as resnet
from .torchvision import resnet18 as resnet18
from .torchvision import resnet34 as resnet34
from .torchvision import vgg as vgg
from .torchvision import vgg11 as vgg11
from .torchvision import vgg16 as vgg16
from .vision import VIT_STEMS as VIT_STEMS
from .vision import cnn as cnn
from .vision import mlp as mlp
from .vision import residual_block as residual_block
from .vision import resnet_small as resnet_small
from .vision import vit as vit
from .vit_b_16 import vision_transformer as vision_transformer
from .vit_b_16 import vit_b_16 as vit_b_16

__all__ = ["ARCH_ARGS", "CASES", "MODELS", "RECIPES", "Seq2SeqLSTM", "Seq2SeqTransformer", "VAL_SIZE", "VIT_STEMS",
           "attention_weights", "beam_search", "cnn", "default_val_size", "detector", "greedy", "gru", "lstm", "mlp",
           "residual_block", "resnet_small", "row_classifier", "vit",
           "alexnet", "resnet", "resnet18", "resnet34", "vgg", "vgg11", "vgg16",   # torchvision's (ImageNet)
           "efficientnet_b0", "vision_transformer", "vit_b_16"]

# `fnn train --model NAME`: every Fashion-MNIST family, (28, 28, 1) images -> 10 logits
MODELS = {"mlp": mlp, "cnn": cnn, "resnet": resnet_small, "vit": vit, "lstm": lstm, "gru": gru}

CASES = (   # the whole reference models, hand backward vs autodiff (small images keep it fast). Max-pool
           # and ReLU have kinks, so finite differences fail at some random points (never autodiff).
    Case("model-mlp-train", lambda: mlp(hidden=(6, 5)), (4, 4, 1), train=True, batch=4),
    Case("model-cnn-train", lambda: cnn(), (8, 8, 1), train=True, batch=2),   # batch 4 meets a kink (fd 0.09)
    Case("model-resnet-train", lambda: resnet_small(width=2), (8, 8, 1), train=True, batch=3),
    Case("model-vit", lambda: vit(width=8, depth=1, heads=2, mlp_dim=8, image_size=8, flip=False,
                                  max_shift=0, stem="patch", drop_path=0.0), (8, 8, 1), batch=2),
    Case("model-vit-conv-stem-train", lambda: vit(width=8, depth=2, heads=2, mlp_dim=8, image_size=8, flip=False,
                                                  max_shift=0, drop_path=0.5), (8, 8, 1), train=True, batch=2),
    Case("model-lstm", lambda: lstm(hidden=4, image_shape=(5, 4, 1)), (5, 4, 1), batch=2),
    Case("model-gru", lambda: gru(hidden=4, image_shape=(5, 4, 1)), (5, 4, 1), batch=2),
)
