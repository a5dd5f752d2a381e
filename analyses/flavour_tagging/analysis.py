"""Flavour tagging hooks: b-tagging efficiency and mistag rates against jet pT.

Loaded by path (``hepnn run analyses/flavour_tagging``) or, once the folder is
installed with pip, through the ``hepnn.analyses`` entry point ``flavour_tagging``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hepnn import Analysis

__all__ = ["FlavourTagging", "efficiency_vs_pt"]

#: jet pT bin edges [GeV] of the efficiency plots
PT_BINS = (20.0, 30.0, 40.0, 60.0, 80.0, 110.0, 150.0, 250.0)


def efficiency_vs_pt(probs: np.ndarray, labels: np.ndarray, classes: list[str], pt: np.ndarray,
                     b_efficiency: float = 0.7, bins=PT_BINS, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Tag rate of b, c and light jets per pT bin at the cut giving ``b_efficiency`` overall.

    The tag is the b-vs-light discriminant of :func:`hepnn.training.evaluate.flavour_discriminant`
    with one cut, fixed on all b jets of the sample (as a working point is calibrated).

    ``weights`` (one per jet, e.g. the event weights the report uses with ``evaluation.weighted``):
    the cut keeps the fraction ``b_efficiency`` of the b jets' summed weight
    (:func:`hepnn.metrics.cut_for_efficiency`, tagged: discriminant at or above it), each rate is
    the tagged share of the bin's summed weight and its error uses the effective number of jets
    ``(sum w)**2 / sum w**2``; a bin whose weights do not sum above 0 gets NaN. Without weights
    every jet counts once.

    Examples
    --------
    >>> probs = np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    >>> eff = efficiency_vs_pt(probs, np.array([2, 0, 2, 0]), ["light", "c", "b"],
    ...                        np.array([25.0, 25.0, 45.0, 45.0]), 0.5, bins=(20, 30, 60))
    >>> eff["b"][0].tolist(), eff["light"][0].tolist()  # row 0: rates, row 1: errors
    ([1.0, 0.0], [0.0, 0.0])
    >>> eff = efficiency_vs_pt(probs, np.array([2, 0, 2, 0]), ["light", "c", "b"],
    ...                        np.array([25.0, 25.0, 45.0, 45.0]), 0.75, bins=(20, 30, 60),
    ...                        weights=np.array([3.0, 1.0, 1.0, 1.0]))
    >>> eff["b"][0].tolist()  # the heavy b jet alone holds 75% of the b weight
    [1.0, 0.0]
    """
    from hepnn.metrics import cut_for_efficiency
    from hepnn.training.evaluate import flavour_discriminant

    disc = flavour_discriminant(np.asarray(probs), classes, "b")
    labels = np.asarray(labels)
    index = {name: i for i, name in enumerate(classes)}
    is_b = labels == index["b"]
    if weights is None:
        w = np.ones(len(labels))
        cut = np.quantile(disc[is_b], 1.0 - b_efficiency)
        tagged = disc > cut
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(w) != len(labels):
            msg = f"efficiency_vs_pt: weights has {len(w)} values for {len(labels)} jets; give one weight per jet"
            raise ValueError(msg)
        cut = cut_for_efficiency(disc[is_b], b_efficiency, w[is_b])
        tagged = disc >= cut
    edges = np.asarray(bins, dtype=float)
    which = np.digitize(pt, edges) - 1
    out: dict[str, Any] = {"edges": edges, "cut": float(cut)}
    for name in ("b", "c", "light"):
        if name not in index:
            continue
        out[name] = _rates(tagged, w, (labels == index[name])[None, :] & (which[None, :] == np.arange(len(edges) - 1)[:, None]))
    return out


def _rates(tagged: np.ndarray, w: np.ndarray, in_bin: np.ndarray) -> np.ndarray:
    """``(2, n_bins)``: the weighted tagged share of each bin's jets (``in_bin[i]``) and its binomial error
    (floored at one effective jet) from the effective count ``(sum w)**2 / sum w**2``; NaN for a bin
    without a positive summed weight."""
    rates = np.full((2, len(in_bin)), np.nan)
    for i, sel in enumerate(in_bin):
        total = float(w[sel].sum())
        if not sel.any() or not total > 0:
            continue
        rate = float(w[sel & tagged].sum()) / total
        n_eff = total**2 / float(np.sum(w[sel] ** 2))
        rates[0, i] = rate
        rates[1, i] = np.sqrt(max(rate * (1 - rate), 1.0 / n_eff) / n_eff)  # binomial error, floored
    return rates


class FlavourTagging(Analysis):
    """b vs c vs light jets in ttbar with tracks; adds efficiency-vs-pT plots to the report."""

    name = "flavour_tagging"

    def plots(self, run_dir: Path, results: Mapping[str, Any]) -> list:
        """Draw ``analysis/btag_efficiency_pt_<variant>.png`` for every multiclass run (jets weighted
        as the rest of the report weighs them: with ``evaluation.weighted``, by their weights)."""
        from matplotlib.figure import Figure

        from hepnn.training.evaluate import evaluation_weights  # lazy: the plugin loads without the training layer

        wp = float(self.config.plots.working_point)
        written = []
        folder = Path(run_dir) / "analysis"
        folder.mkdir(parents=True, exist_ok=True)
        for variant, result in results.items():
            test = result.get("test") or {}
            classes = list(test.get("classes", []))
            pt = test.get("data", {}).get("spec_Jet_pt")
            if test.get("task") != "multiclass" or not {"b", "light"} <= set(classes) or pt is None:
                continue
            # weighted as the report's other figures and the metrics are (evaluation.weighted)
            weights = evaluation_weights(test["config"], test) if "config" in test else None
            eff = efficiency_vs_pt(test["outputs"], test["label"], classes, np.asarray(pt), wp, weights=weights)
            centres = 0.5 * (eff["edges"][1:] + eff["edges"][:-1])
            half = 0.5 * np.diff(eff["edges"])
            fig = Figure(figsize=(9, 4), layout="constrained")
            left, right = fig.subplots(1, 2)
            left.errorbar(centres, eff["b"][0], yerr=eff["b"][1], xerr=half, fmt="o", label="b jets")
            left.axhline(wp, color="grey", linestyle="--", linewidth=1, label=f"overall {wp:.0%}")
            left.set(xlabel="Jet $p_T$ [GeV]", ylabel="b-tagging efficiency", ylim=(0, 1.05),
                     title=f"{variant}: b-tag at {wp:.0%} b efficiency")
            left.legend(loc="lower right")
            for name, marker in (("c", "s"), ("light", "^")):
                if name in eff:
                    right.errorbar(centres, eff[name][0], yerr=eff[name][1], xerr=half, fmt=marker,
                                   label=f"{name} jets")
            right.set(xlabel="Jet $p_T$ [GeV]", ylabel="mistag rate", yscale="log",
                      title=f"{variant}: mistag rate")
            right.legend(loc="upper right")
            path = folder / f"btag_efficiency_pt_{variant}.png"
            fig.savefig(path, dpi=100)
            written.append(path)
        return written
