"""Looks inside a trained model that the run report draws, computed once where the model is in memory.

Three views, each a dict of numpy arrays computed from the model and its run's test split:

- ``efn_filters``: an Energy Flow Network's per-particle filters on a grid of its angular
  inputs (:func:`hepnn.models.efn.efn_filters`), over the range holding 98% of the test
  particles;
- ``feature_maps``: a CNN's first-convolution kernels and its feature maps averaged per class
  over the first 400 test jets (the ``feature_maps`` explainer);
- ``latent``: an autoencoder's latent vectors of the test jets.

The ``explain`` step of ``hepnn run`` computes the views that apply to each run's model
(in its ``--jobs`` workers, where the model is loaded anyway) and stores them in
``RUN_DIR/predictions/<view>.npz`` under the run's prediction key
(:func:`hepnn.training.evaluate.prediction_key`: the model file, the data and the
preprocessing), like the stored predictions. The report draws stored views whose key
matches without loading the model, so a report of stored runs does not import TensorFlow
(on the 2-core machine the import alone takes ~7 s); anything else it computes itself.
A view that does not apply is stored as its reason, so the report need not load the model
to find that out either.

Examples
--------
>>> from hepnn.explain.views import view_names
>>> view_names()
['efn_filters', 'feature_maps', 'latent']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._fileio import atomic_path
from ..models.autoencoder import encoder
from ..models.efn import efn_filters
from ..models.inference import predict
from ..training.rundir import RunDirectory
from .gradcam import conv_layers
from .registry import explain

__all__ = ["ViewUnavailable", "compute_view", "stored_view", "store_views", "view_names", "wanted_views"]

FEATURE_MAP_JETS = 400


class ViewUnavailable(ValueError):
    """The view does not apply to this model (the message says why)."""


def _efn_filters(model: Any, test: dict) -> dict[str, np.ndarray]:
    input_name = next((layer.name[: -len("_energy_flow")] for layer in model.layers
                      if layer.name.endswith("_energy_flow")), None)
    if input_name is None:
        raise ViewUnavailable("the model has no EFN branch")
    columns = list(model.get_layer(f"{input_name}_angles").indices)
    data = test["data"]
    x = np.asarray(data[input_name])
    mask_key = f"{input_name}_mask"
    real = np.asarray(data[mask_key], dtype=bool) if mask_key in data else np.any(x != 0.0, axis=-1)
    angles = np.abs(x[..., columns][real]) if real.any() else np.zeros((0, 2))
    extent = float(np.quantile(angles, 0.98)) if angles.size else 1.0
    extent = extent if extent > 0 else 1.0
    grid = efn_filters(model, extent=extent, n_grid=65, input_name=input_name)
    return {"filters": np.asarray(grid["filters"]), "eta": np.asarray(grid["eta"]), "phi": np.asarray(grid["phi"]),
            "extent": np.asarray(extent), "input": np.asarray(input_name), "columns": np.asarray(columns)}


def _feature_maps(model: Any, test: dict) -> dict[str, np.ndarray]:
    if not conv_layers(model):
        raise ViewUnavailable("the model has no convolution layer")
    labels = np.asarray(test["label"], dtype=int)
    if not len(labels):  # explain() takes at least one jet
        raise ViewUnavailable("the test split has no jets")
    pick = np.arange(min(FEATURE_MAP_JETS, len(labels)))
    x = {n: np.asarray(test["data"][n], dtype=np.float32)[pick] for n in test["spec"].names}
    expl = explain(model, x, method="feature_maps", task=test["task"], labels=labels[pick])
    extra = expl.extra
    out = {"filters": np.asarray(extra["filters"]), "filters_layer": np.asarray(extra["filters_layer"]),
           "layers": np.asarray(list(extra["layers"])), "classes": np.asarray(extra["classes"]),
           "n_jets": np.asarray(expl.n_jets)}
    for i in range(len(extra["layers"])):
        out[f"mean_maps_{i}"] = np.asarray(extra[f"mean_maps_{i}"])
    return out


def _latent(model: Any, test: dict) -> dict[str, np.ndarray]:
    try:
        enc = encoder(model)
    except (ValueError, KeyError) as err:
        raise ViewUnavailable(str(err)) from err
    x = {n: np.asarray(test["data"][n], dtype=np.float32) for n in test["spec"].names}
    # hepnn's forward in fixed batches, not Keras' predict with its own tf.data pipeline (hepnn._tfdata)
    latent = predict(enc, x, batch_size=test["config"].evaluation.batch_size)
    return {"latent": latent.reshape(len(latent), -1)}


def _has_efn_branch(model: Any, test: dict) -> bool:
    return any(layer.name.endswith("_energy_flow") for layer in model.layers)


def _classifies_images(model: Any, test: dict) -> bool:
    return test["task"] in ("binary", "multiclass") and any(i.kind == "image" for i in test["spec"].inputs)


def _is_autoencoder(model: Any, test: dict) -> bool:
    return test["task"] == "autoencoder"


# view -> (does the run call for it: the report's figure of the view applies; how to compute it)
_VIEWS: dict[str, tuple[Callable[[Any, dict], bool], Callable[[Any, dict], dict]]] = {
    "efn_filters": (_has_efn_branch, _efn_filters),
    "feature_maps": (_classifies_images, _feature_maps),
    "latent": (_is_autoencoder, _latent),
}


def view_names() -> list[str]:
    """The views, in the order they are computed."""
    return list(_VIEWS)


def compute_view(name: str, model: Any, test: dict) -> dict[str, np.ndarray]:
    """The arrays of view ``name`` for ``model`` on its run's test split.

    ``test`` is :func:`hepnn.training.evaluate.split_data` (or ``predict_split``) of the
    test split. Raises :class:`ViewUnavailable` when the view does not apply.
    """
    if name not in _VIEWS:
        msg = f"unknown view {name!r}; views: {', '.join(_VIEWS)}"
        raise KeyError(msg)
    return _VIEWS[name][1](model, test)


def _path(run_dir: str | Path, name: str) -> Path:
    return RunDirectory(run_dir).predictions / f"{name}.npz"


def stored_view(run_dir: str | Path, name: str, key: str | None) -> dict[str, np.ndarray] | None:
    """The stored arrays of view ``name`` if stored under ``key``, else None.

    Raises :class:`ViewUnavailable` when the stored view says it does not apply.
    """
    if not key:
        return None
    try:
        with np.load(_path(run_dir, name), allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            arrays = {k: np.asarray(f[k]) for k in f.files if k != "key"}
    except (OSError, KeyError, ValueError):
        return None
    if "unavailable" in arrays:
        raise ViewUnavailable(str(arrays["unavailable"]))
    return arrays


def wanted_views(model: Any, task: str, spec: Any) -> list[str]:
    """The views the report draws for a run of ``task`` and ``spec`` (its RunSpec) with ``model``."""
    run = {"task": task, "spec": spec}
    return [name for name, (wanted, _) in _VIEWS.items() if wanted(model, run)]


def store_views(run_dir: str | Path, model: Any, test: dict, key: str | None) -> list[str]:
    """Compute and store every view the run's task and inputs call for (:func:`wanted_views`);
    returns their names. Nothing is stored without a ``key`` (the run's data are not its own).
    """
    if not key:
        return []
    folder = RunDirectory(run_dir).predictions
    stored = []
    for name in wanted_views(model, test["task"], test["spec"]):
        compute = _VIEWS[name][1]
        try:
            arrays = compute(model, test)
        except ViewUnavailable as err:
            arrays = {"unavailable": np.asarray(str(err))}
        folder.mkdir(exist_ok=True)
        with atomic_path(folder / f"{name}.npz", suffix=".part.npz") as tmp:
            np.savez(tmp, key=np.asarray(key), **arrays)
        stored.append(name)
    return stored
