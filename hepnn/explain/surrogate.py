"""``surrogate``: a shallow decision tree trained to mimic the network, with fidelity and rules."""

from __future__ import annotations

import numpy as np

from .._optional import require
from .registry import positive_int_problem, raise_option_problems, register_explainer

__all__ = ["surrogate", "summarise"]


def summarise(target, inputs, feature_names=None):
    """Flat per-jet summary features: flat inputs as they are, sequences as the mean of
    each feature over real slots plus the number of real slots, images as the sum of
    each channel. Returns ``(matrix, names, groups)`` with ``groups[j] = (input, kind, index)``."""
    columns, names, groups = [], [], []

    def add(column, column_name, group):
        columns.append(column)
        names.append(column_name)
        groups.append(group)

    real = target.real_slots(inputs)
    for name in target.names:
        x = inputs[name]
        kind = target.kinds[name]
        fnames = (feature_names or {}).get(name) or [f"{name}_{i}" for i in range(target.shapes[name][-1])]
        if kind == "flat":
            for f in range(x.shape[1]):
                add(x[:, f], str(fnames[f]), (name, "flat", f))
        elif kind == "sequence":
            r = real[name]
            n_real = r.sum(axis=1)
            for f in range(x.shape[2]):
                mean = np.where(n_real > 0, (x[:, :, f] * r).sum(axis=1) / np.maximum(n_real, 1), 0.0)
                add(mean, f"mean_{fnames[f]}", (name, "mean", f))
            add(n_real.astype(float), f"n_{name}", (name, "count", -1))
        elif kind == "image":
            for c in range(x.shape[-1]):
                add(x[..., c].reshape(len(x), -1).sum(axis=1), f"sum_{name}_{c}" if x.shape[-1] > 1 else f"sum_{name}",
                    (name, "sum", c))
    return np.stack(columns, axis=1).astype(np.float64), names, groups


def _contributions(tree, X):
    """Per-jet, per-feature change of the node value along each decision path (Saabas)."""
    t = tree.tree_
    value = t.value[:, 0, 0]
    contrib = np.zeros(X.shape)
    node = np.zeros(len(X), dtype=int)
    for _ in range(tree.get_depth()):
        internal = t.children_left[node] != -1
        if not np.any(internal):
            break
        idx = np.flatnonzero(internal)
        feat = t.feature[node[idx]]
        go_left = X[idx, feat] <= t.threshold[node[idx]]
        child = np.where(go_left, t.children_left[node[idx]], t.children_right[node[idx]])
        contrib[idx, feat] += value[child] - value[node[idx]]
        node[idx] = child
    return contrib, float(value[0])


def _held_out(n: int, test_fraction: float) -> int:
    """Jets held out for the fidelity: ``round(test_fraction * n)`` when that leaves at least 2 of
    them (an R^2 needs two) and 2 to fit, else 0 (the fidelity is then measured on the fitted jets)."""
    n_test = int(round(test_fraction * n))
    return n_test if n_test >= 2 and n - n_test >= 2 else 0


def _check(options):
    problem = None if options["max_depth"] is None else positive_int_problem(options["max_depth"])
    if problem:
        yield "max_depth", problem
    fraction = options["test_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        yield "test_fraction", f"expected 0 <= value < 1, received {fraction!r}"


@register_explainer("surrogate", check=_check)
def surrogate(target, inputs, max_depth: int = 3, test_fraction: float = 0.3, random_state: int = 0,
              feature_names=None) -> dict:
    """Fit a ``DecisionTreeRegressor`` to the network's output on summary features.

    Fidelity on held-out jets goes to ``extra``: ``fidelity_r2`` (R^2 of the tree vs the
    network) and, for binary taggers, ``fidelity_agreement`` (same side of 0.5), with
    ``n_test`` (the held-out jets) and ``fidelity_on``: ``"held-out"``, or ``"training"``
    when ``test_fraction`` leaves fewer than 2 jets to hold out (or to fit): the fidelity is
    then that of the jets the tree was fitted on (``n_test`` 0), an optimistic figure. The
    tree's rules (``sklearn.tree.export_text``) are ``extra["rules"]``. Per jet, each
    summary feature gets the change of the tree's value at the splits on it (the values
    sum to ``tree prediction - base value``); a sequence summary is shared by the
    jet's real slots, an image sum by the channel's pixels.

    Parameters
    ----------
    max_depth : int
        Depth of the tree (keep it small to stay readable).
    test_fraction : float
        Share of the jets held out to measure fidelity.
    random_state : int
    feature_names : dict of str to list of str, optional
    """
    require("sklearn")
    from sklearn.metrics import r2_score
    from sklearn.tree import DecisionTreeRegressor, export_text

    raise_option_problems("surrogate", _check({"max_depth": max_depth, "test_fraction": test_fraction}))
    X, names, groups = summarise(target, inputs, feature_names)
    y = target.predict(inputs)
    n = len(y)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    n_test = _held_out(n, test_fraction)
    test, train = order[:n_test], order[n_test:]
    tree = DecisionTreeRegressor(max_depth=max_depth, random_state=random_state).fit(X[train], y[train])
    eval_idx = test if n_test else train
    pred = tree.predict(X[eval_idx])
    truth = y[eval_idx]
    r2 = float(r2_score(truth, pred)) if len(truth) > 1 and np.var(truth) > 0 else float("nan")
    extra = {"fidelity_r2": r2, "rules": export_text(tree, feature_names=names, decimals=3),
             "summary_feature_names": names, "max_depth": max_depth, "n_fit": int(len(train)),
             "n_test": int(n_test), "fidelity_on": "held-out" if n_test else "training"}
    if target.task == "binary":
        extra["fidelity_agreement"] = float(np.mean((pred >= 0.5) == (truth >= 0.5)))
    contrib, root = _contributions(tree, X)
    extra["summary_values"] = contrib
    extra["tree_outputs"] = tree.predict(X)
    real = target.real_slots(inputs)
    values = {k: np.zeros(v.shape, dtype=np.float64) for k, v in inputs.items()}
    for j, (name, kind, index) in enumerate(groups):
        c = contrib[:, j]
        if kind == "flat":
            values[name][:, index] += c
        elif kind in ("mean", "count"):
            r = real[name]
            share = c / np.maximum(r.sum(axis=1), 1)
            if kind == "mean":
                values[name][:, :, index] += r * share[:, None]
            else:
                values[name] += (r * share[:, None])[..., None] / inputs[name].shape[-1]
        else:
            pixels = np.prod(inputs[name].shape[1:3])
            values[name][..., index] += (c / pixels)[:, None, None]
    return {"values": values, "base_values": np.full(n, root), "outputs": y, "extra": extra}
