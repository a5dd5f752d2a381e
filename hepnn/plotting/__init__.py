"""Physics-style validation plots: numpy arrays in, matplotlib figures (and numbers) out.

Importing this package imports neither matplotlib nor mplhep and changes no
``rcParams``; styles are applied only by :func:`use_style`. Every ``plot_*``
function takes ``ax=None`` (or ``axes=None``) and returns a result object with
the artists it drew and the numbers it computed. ``PLOTS`` lists them by name;
the run report draws the figures registered in ``hepnn.plotting.report.REPORT_FIGURES``.
The metrics (efficiency curves, AUC, rejection, intervals, KS test) are in :mod:`hepnn.metrics`.

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

from .anomaly import LatentResult, ReconstructionResult, plot_latent, plot_reconstruction_error
from .common import PLOTS
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
from .roc import RocResult, plot_rejection, plot_roc
from .save import save_figure
from .scores import ScoreResult, plot_scores
from .style import STYLES, label, use_style
from .. import metrics

__all__ = [
    "PLOTS",
    "STYLES",
    # numbers behind the plots (the metrics themselves are in hepnn.metrics)
    "binned_efficiency",
    "confusion_matrix",
    "cut_for_efficiency",
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


#: metrics that lived here before hepnn.metrics; the same function under the same name there
_MOVED = ("KSResult", "clopper_pearson", "effective_count", "ks_test", "rejection_at", "rejection_uncertainty")


def __getattr__(name: str):
    if name in _MOVED:
        import warnings

        warnings.warn(f"hepnn.plotting.{name} moved to hepnn.metrics.{name}; import it from there",
                      DeprecationWarning, stacklevel=2)
        return getattr(metrics, name)
    if name in ("roc_curve", "auc"):
        msg = (f"hepnn.plotting.{name} was removed: it took scikit-learn's name with other semantics. Use "
               "hepnn.metrics.efficiency_curve(labels, scores, weights) -> (signal_eff, background_eff, thresholds), "
               "hepnn.metrics.efficiency_auc(signal_eff, background_eff) or hepnn.metrics.roc_auc(labels, scores)")
        raise AttributeError(msg)
    msg = f"module 'hepnn.plotting' has no attribute {name!r}"
    raise AttributeError(msg)
