"""fnn.metrics: how good predictions are.

`classification`: pure JAX functions on arrays, jit-able (accuracy, top-k accuracy, confusion
matrix, precision/recall/F1, binary ROC AUC), each equal to scikit-learn's on the same input.
`sequence`: host-side Python on token sequences (edit distance, G2P's word and phoneme error
rates, corpus BLEU equal to sacrebleu's).
`frechet`: host-side NumPy, the Frechet distance between Gaussians fitted to two feature sets (FID's formula).
"""
from .classification import AVERAGES as AVERAGES
from .classification import PrecisionRecallF1 as PrecisionRecallF1
from .classification import accuracy as accuracy
from .classification import confusion_matrix as confusion_matrix
from .classification import precision_recall_f1 as precision_recall_f1
from .classification import roc_auc as roc_auc
from .classification import top_k_accuracy as top_k_accuracy
from .frechet import frechet_distance as frechet_distance
from .frechet import gaussian_frechet_distance as gaussian_frechet_distance
from .sequence import BLEU_SMOOTHING as BLEU_SMOOTHING
from .sequence import bleu as bleu
from .sequence import edit_distance as edit_distance
from .sequence import phoneme_error_rate as phoneme_error_rate
from .sequence import wer_per as wer_per
from .sequence import word_error_rate as word_error_rate

__all__ = [
    "AVERAGES", "BLEU_SMOOTHING", "PrecisionRecallF1", "accuracy", "bleu", "confusion_matrix", "edit_distance",
    "frechet_distance", "gaussian_frechet_distance", "phoneme_error_rate",
    "precision_recall_f1", "roc_auc", "top_k_accuracy", "wer_per", "word_error_rate",
]
