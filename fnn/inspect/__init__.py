"""fnn.inspect: looking inside a network, as numbers and as pictures.

`trace` gives every layer's output and its loss gradients from one forward and one
hand-derived backward pass (no autodiff); the rest builds on it. The `plot_*`
functions (in `fnn.inspect.plots`, matplotlib imported only when called) write PNGs.
`gate_activations` and `attention_weights` read a recurrent or attention layer's forward
cache; `describe` tells what a model is made of, and `write_report` (`fnn inspect RUN`)
draws what fits it.
"""
from ._trace import Trace as Trace
from ._trace import combinator_kind as combinator_kind
from ._trace import trace as trace
from .attribution import Attributions as Attributions
from .attribution import grad_cam as grad_cam
from .attribution import integrated_gradients as integrated_gradients
from .attribution import occlusion as occlusion
from .attribution import saliency as saliency
from .features import ActivationStats as ActivationStats
from .features import GradientNorms as GradientNorms
from .features import activation_maps as activation_maps
from .features import activation_maximization as activation_maximization
from .features import activation_stats as activation_stats
from .features import filters as filters
from .features import gradient_norms as gradient_norms
from .internals import attention_rollout as attention_rollout
from .internals import attention_weights as attention_weights
from .internals import gate_activations as gate_activations
from .plots import plot_activation_functions as plot_activation_functions
from .plots import plot_activation_maps as plot_activation_maps
from .plots import plot_attention as plot_attention
from .plots import plot_attributions as plot_attributions
from .plots import plot_batchnorm_histograms as plot_batchnorm_histograms
from .plots import plot_embedding as plot_embedding
from .plots import plot_filters as plot_filters
from .plots import plot_gates as plot_gates
from .plots import plot_grad_cam as plot_grad_cam
from .plots import plot_gradient_norms as plot_gradient_norms
from .plots import plot_images as plot_images
from .plots import plot_time_saliency as plot_time_saliency
from .plots import plot_token_maps as plot_token_maps
from .report import write_report as write_report
from .shap import Shapley as Shapley
from .shap import exact_shapley as exact_shapley
from .shap import kernel_shap as kernel_shap
from .shap import rank_correlation as rank_correlation
from .structure import Structure as Structure
from .structure import describe as describe

__all__ = [
    "ActivationStats", "Attributions", "GradientNorms", "Shapley", "Structure", "Trace", "activation_maps",
    "activation_maximization", "activation_stats", "attention_rollout", "attention_weights",
    "combinator_kind", "describe", "exact_shapley", "filters", "gate_activations", "grad_cam", "gradient_norms",
    "integrated_gradients", "kernel_shap", "occlusion", "plot_activation_functions", "plot_activation_maps",
    "plot_attention", "plot_attributions", "plot_batchnorm_histograms", "plot_embedding", "plot_filters",
    "plot_gates", "plot_grad_cam", "plot_gradient_norms", "plot_images", "plot_time_saliency", "plot_token_maps",
    "rank_correlation", "saliency", "trace", "write_report",
]
