"""Physics-style validation plots: numpy arrays in, matplotlib figures (and numbers) out.

Importing this package imports neither matplotlib nor mplhep and changes no
``rcParams``; styles are applied only by :func:`use_style`. Every ``plot_*``
function takes ``ax=None`` (or ``axes=None``) and returns a result object with
the artists it drew and the numbers it computed. ``PLOTS`` lists them by name.

Examples
--------
>>> import numpy as np
>>> from hepnn import plotting
>>> y = np.array([1, 1, 0, 0])
>>> res = plotting.plot_roc({"nn": np.array([0.9, 0.6, 0.7, 0.1])}, y)
>>> round(res.auc["nn"], 2)
0.75
"""

from __future__ import annotations

from ._common import PLOTS
from .anomaly import LatentResult, ReconstructionResult, plot_latent, plot_reconstruction_error
from .confusion import ConfusionResult, confusion_matrix, plot_confusion_matrix
from .decorrelation import SculptingResult, plot_rejection_vs_sculpting
from .efficiency import (
    EfficiencyResult,
    EfficiencyTable,
    MassSculptingResult,
    binned_efficiency,
    cut_for_efficiency,
    plot_efficiency,
    plot_mass_sculpting,
)
from .explanations import ImportanceResult, plot_beeswarm, plot_importance, plot_position_importance
from .filters import FiltersResult, plot_conv_filters, plot_efn_filters, plot_feature_maps
from .histio import load_hists, merge_hists, plot_hist, save_hists
from .images import HeatmapResult, ImagesResult, plot_average_images, plot_heatmap
from .learning import LearningResult, plot_learning_curves, read_history
from .metrics import (
    KSResult,
    auc,
    clopper_pearson,
    effective_count,
    ks_test,
    rejection_at,
    rejection_uncertainty,
    roc_curve,
)
from .roc import RocResult, plot_rejection, plot_roc
from .save import save_figure
from .scores import ScoreResult, plot_scores
from .style import STYLES, label, use_style

__all__ = [
    "PLOTS",
    "STYLES",
    # metrics
    "KSResult",
    "auc",
    "binned_efficiency",
    "clopper_pearson",
    "confusion_matrix",
    "cut_for_efficiency",
    "effective_count",
    "ks_test",
    "rejection_at",
    "rejection_uncertainty",
    "roc_curve",
    # plots
    "plot_average_images",
    "plot_beeswarm",
    "plot_confusion_matrix",
    "plot_conv_filters",
    "plot_efn_filters",
    "plot_feature_maps",
    "plot_efficiency",
    "plot_rejection_vs_sculpting",
    "SculptingResult",
    "plot_heatmap",
    "plot_hist",
    "plot_importance",
    "plot_latent",
    "plot_learning_curves",
    "plot_mass_sculpting",
    "plot_position_importance",
    "plot_reconstruction_error",
    "plot_rejection",
    "plot_roc",
    "plot_scores",
    # results
    "ConfusionResult",
    "EfficiencyResult",
    "EfficiencyTable",
    "FiltersResult",
    "HeatmapResult",
    "ImagesResult",
    "ImportanceResult",
    "LatentResult",
    "LearningResult",
    "MassSculptingResult",
    "ReconstructionResult",
    "RocResult",
    "ScoreResult",
    # style, files
    "label",
    "load_hists",
    "merge_hists",
    "read_history",
    "save_figure",
    "save_hists",
    "use_style",
]
