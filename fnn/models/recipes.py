"""Each model family's training recipe: the settings `fnn train --model NAME` uses unless told
otherwise (the recipes the README's results table reports), and the architecture settings it takes.

Settings not listed for a family take `fnn.run_config.SETTINGS`' defaults (Adam 1e-3, cosine
decay, label smoothing 0.1, batch 64, 10 epochs).
"""
from __future__ import annotations

_ROWS = {"optimizer": "adam", "lr": 2e-3, "schedule": "constant", "batch_size": 128, "epochs": 10,
         "label_smoothing": 0.0, "width": 128}     # examples/sequence_classifier.py: LSTM 89.36%, GRU 89.68%

RECIPES: dict[str, dict] = {
    "mlp": {"dropout": 0.2, "batch_norm": "on"},
    "cnn": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 5e-4, "schedule": "warmup_cosine", "dropout": 0.3,
            "batch_norm": "on"},      # 93.31% with seeds 0 and 1 (docs/results.md)
    "resnet": {"optimizer": "adam", "lr": 1e-3, "schedule": "cosine", "batch_size": 128, "epochs": 10,
               "label_smoothing": 0.0, "width": 16, "batch_norm": "on"},
    "vit": {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "schedule": "warmup_cosine",
            "batch_size": 128, "epochs": 20, "label_smoothing": 0.1, "dropout": 0.0,
            "width": 64, "depth": 4, "heads": 4, "mlp_dim": 192, "drop_path": 0.1, "stem": "conv"},
    # examples/vit.py: 92.01% / 92.27% (seeds 0 / 1); MLP 256: 92.26% / 92.21%; with stem "patch",
    # drop_path 0, MLP 256: 90.24%
    "lstm": dict(_ROWS),
    "gru": dict(_ROWS),
}

# architecture setting -> the builder's keyword argument, per family (others do not apply to it)
ARCH_ARGS: dict[str, dict[str, str]] = {
    "mlp": {"dropout": "dropout", "batch_norm": "batch_norm"},
    "cnn": {"dropout": "dropout", "batch_norm": "batch_norm"},
    "resnet": {"width": "width", "batch_norm": "batch_norm"},
    "vit": {"width": "width", "depth": "depth", "heads": "heads", "mlp_dim": "mlp_dim", "dropout": "dropout",
            "drop_path": "drop_path", "stem": "stem"},
    "lstm": {"width": "hidden"},
    "gru": {"width": "hidden"},
}

# training examples held out for validation out of every 60000 used (the MLP: 5000 of 60000, so
# --limit 1500 holds out 125). The other recipes train on everything, as their results were measured.
VAL_SIZE: dict[str, int] = {"mlp": 5000, "cnn": 0, "resnet": 0, "vit": 0, "lstm": 0, "gru": 0}
VAL_OF = 60000


def default_val_size(model: str, available: int) -> int:
    """The recipe's share of `available` examples: round(VAL_SIZE[model] * available / 60000)."""
    return round(VAL_SIZE[model] * available / VAL_OF)
