"""The reading plan and chunk processing behind :func:`hepnn.io.iterate`.

For every file the config is resolved against the file's branch names (a name that is
a branch is read; otherwise it must be a registered derived variable), then the file is
read ``data.step_size`` at a time. Each chunk becomes a dict of numpy arrays with the
keys of :func:`hepnn.io.load` (before standardisation): ``<input>``, ``<input>_mask``,
``label``, ``weight``, ``split`` and ``spec_<var>``.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np

from ..config import Config, DataConfig, JetAxisConfig, load_config
from ..config.schema import step_size_problem
from ..exceptions import ConfigError, InputDataError, PluginOutputError, suggest
from . import libm
from .derived import DERIVED, Momenta, compute_derived
from .labels import LabelCounts, check_class_indices, map_labels
from .layouts import (Elements, associate_by_dr, flatten_jagged, group_by_jet, link_to_jets, scalar_branches,
                      whole_numbers)
from .representations import input_kind
from .selection import analysis_mask, apply_cuts, call_hook, plugin_name
from .sources import SourceFile, check_names, is_url, iterate_tree, open_tree, resolve_files, skip_or_raise, tree_keys
from .split import assign_split, event_fold_key, fold_key

__all__ = ["data_config", "iterate_chunks", "Plan", "make_plan", "ChunkInputs", "ReferencePlan"]

_MOMENTUM_KEYS = ("px", "py", "pz", "energy", "pt", "eta", "phi", "mass", "theta", "qoverp")


def data_config(config: Any) -> Any:
    """The ``DataConfig`` of a Config, DataConfig, mapping or config-file path."""
    if isinstance(config, DataConfig):
        return config
    if isinstance(config, Config):
        return config.data
    return load_config(config).data


@dataclass
class Group:
    """Elements (constituents or tracks) of one sequence or image input."""

    input: str
    kind: str
    collection: str | None = None
    link: str | None = None
    radius: float | None = None
    variables: list = field(default_factory=list)  # (name, is_branch)
    sort: tuple | None = None  # (name, is_branch, descending, absolute)
    momentum: dict = field(default_factory=dict)  # component -> branch
    charge: str | None = None
    needs_momentum: bool = False

    def branches(self) -> list[str]:
        names = [v for v, is_branch in self.variables if is_branch]
        if self.sort is not None and self.sort[1]:
            names.append(self.sort[0])
        if self.needs_momentum:
            names.extend(self.momentum.values())
        if self.charge:
            names.append(self.charge)
        if self.link:
            names.append(self.link)
        return list(dict.fromkeys(names))


@dataclass
class Plan:
    """What to read from one file and how to turn it into arrays."""

    layout: str
    jet_branches: dict  # branch -> where it is used
    axis: dict  # pt, eta, phi[, energy, mass] -> branch
    groups: dict  # input name -> Group
    element_where: dict  # branch -> where
    event_branch: str | None = None  # data.event_key: one value per entry
    #: branches found by their conventional names (no data.jet_axis / data.constituents for them):
    #: what they are used as (``data.jet_axis.energy``) -> branch, None where the file has none
    guessed: dict = field(default_factory=dict)

    def read_list(self) -> list[str]:
        names = list(self.jet_branches)
        if self.event_branch:
            names.append(self.event_branch)
        for g in self.groups.values():
            names.extend(g.branches())
        return list(dict.fromkeys(names))


def _guess(keys: set, prefix: str, options: tuple) -> str | None:
    for comp in options:
        for sep in ("_", ":", "."):
            name = f"{prefix}{sep}{comp}"
            if name in keys:
                return name
    return None


def _collections(keys: set) -> list[str]:
    """Names ``X`` of the per-event collections of a file: those with an ``X_pt``, ``X_eta`` or ``X_phi``
    branch (or ``:``, ``.`` as separator)."""
    found = set()
    for key in keys:
        for sep in ("_", ":", "."):
            prefix, _, comp = key.rpartition(sep)
            if prefix and comp in ("pt", "eta", "phi"):
                found.add(prefix)
    return sorted(found)


def _no_collection(source: SourceFile, have: set, name: str, where: str) -> InputDataError | None:
    """The error for a collection ``name`` no branch of the file belongs to (None: some branch does)."""
    if any(k.startswith(f"{name}{sep}") for k in have for sep in ("_", ":", ".")):
        return None
    found = _collections(have)
    msg = (f"{source.path}: tree {source.tree!r} has no branch of collection {name!r} (used by {where})"
           f"{suggest(name, found)}; collections with pt, eta or phi branches: {', '.join(found) or '(none)'}")
    return InputDataError(msg)


def _momentum_of(constituents: Any) -> dict:
    if constituents is None:
        return {}
    return {k: getattr(constituents, k) for k in _MOMENTUM_KEYS if getattr(constituents, k)}


def make_plan(config: Any, keys: list[str], source: SourceFile) -> Plan:
    """Resolve the config against the branch names ``keys`` of one file."""
    have = set(keys)
    per_event = config.layout == "per_event"
    jet_where: dict[str, str] = {}
    for i, cut in enumerate(config.cuts):
        jet_where.setdefault(cut.variable, f"data.cuts[{i}]")
    if config.label is not None:
        jet_where.setdefault(config.label.branch, "data.label.branch")
    if config.weight:
        jet_where.setdefault(config.weight, "data.weight")
    for var in config.spectators:
        jet_where.setdefault(var, "data.spectators")
    groups: dict[str, Group] = {}
    element_where: dict[str, str] = {}
    guessed: dict[str, str | None] = {}
    needs_axis = False
    cons = config.constituents
    def resolve(var: str, where: str) -> bool:
        return _resolve(var, have, source, where)

    for name, inp in config.inputs.items():
        where = f"data.inputs.{name}"
        kind = input_kind(inp)
        for j, var in enumerate(kind.jet_variables(inp)):
            jet_where.setdefault(var, f"{where}.variables[{j}]")
        if not kind.elements:
            continue
        group = Group(name, inp.kind)
        group_guess: dict[str, str | None] = {}
        if per_event:
            group.collection = getattr(inp, "collection", None) or (cons.collection if cons else None)
            same = cons is not None and (cons.collection is None or cons.collection == group.collection)
            own_link, own_dr = getattr(inp, "link", None), getattr(inp, "associate_dr", None)
            if own_link or own_dr:
                group.link, group.radius = own_link, own_dr
            elif same:
                group.link = cons.link
                group.radius = None if cons.link else cons.associate_dr
            if group.collection is None:
                msg = f"{where}: per_event layout needs a collection (set {where}.collection or data.constituents.collection)"
                raise ConfigError(msg)
            if not group.link and not group.radius:
                msg = (
                    f"{where}: elements of collection {group.collection!r} are not attached to jets; "
                    f"set {where}.link (index branch) or {where}.associate_dr (dR cone)"
                )
                raise ConfigError(msg)
            momentum = _momentum_of(cons) if same else {}
            if not momentum:
                momentum = _guess_components(have, group.collection, ("energy", "e", "E"))
                group_guess = {f"{where} ({group.collection}) {comp}": momentum.get(comp) for comp in _GUESSED}
        else:
            momentum = _momentum_of(cons)
        group.momentum = momentum
        kind.plan(group, inp, resolve, where)
        if group.needs_momentum:
            needs_axis = True
            if not momentum and per_event:
                source_of = f"{where}.collection" if getattr(inp, "collection", None) else "data.constituents.collection"
                err = _no_collection(source, have, group.collection, source_of)
                if err is not None:
                    raise err
            if not momentum:
                msg = (
                    f"{where}: derived variables, images and dR association need the element four-momentum; "
                    "set data.constituents (px, py, pz, energy or pt, eta, phi[, energy or mass] or theta, qoverp, phi)"
                )
                raise ConfigError(msg)
        if group.needs_momentum:
            guessed.update(group_guess)
        for b in group.branches():
            element_where.setdefault(b, where)
        groups[name] = group
    axis = _jet_axis(config, have, per_event)
    if needs_axis or (per_event and not jet_where):
        if "pt" not in axis or "eta" not in axis or "phi" not in axis:
            err = _no_collection(source, have, config.jets, "data.jets") if per_event and config.jet_axis is None else None
            if err is not None:
                raise err
            msg = (
                f"{source.path}: cannot find the jet axis of collection {config.jets!r}; "
                "set data.jet_axis: {pt: ..., eta: ..., phi: ...}"
            )
            raise InputDataError(msg)
        for comp, b in axis.items():
            jet_where.setdefault(b, f"data.jet_axis.{comp}")
        if per_event and config.jet_axis is None:
            guessed.update({f"data.jet_axis.{comp} ({config.jets})": axis.get(comp) for comp in _GUESSED})
    else:
        axis = {}
    for name, group in groups.items():
        _check_energy_needs(group, axis, f"data.inputs.{name}")
    _check_not_derived(source, have, jet_where)
    check_names(source, have, jet_where)
    check_names(source, have, element_where)
    event_branch = getattr(config, "event_key", None)
    if event_branch:
        check_names(source, have, {event_branch: "data.event_key"})
    return Plan(config.layout, jet_where, axis, groups, element_where, event_branch, guessed)


def _jet_axis(config: Any, have: set, per_event: bool) -> dict:
    ax = config.jet_axis
    if ax is not None or not per_event:
        ax = ax or JetAxisConfig()
        return {k: getattr(ax, k) for k in ("pt", "eta", "phi", "energy", "mass") if getattr(ax, k)}
    return _guess_components(have, config.jets, ("energy", "e"))


#: the four-momentum components whose branches are guessed from a collection's name
_GUESSED = ("pt", "eta", "phi", "energy", "mass")


def _guess_components(have: set, collection: str, energy_names: tuple) -> dict:
    """``{component: branch}`` of the components of ``collection`` found by their conventional names."""
    out = {}
    for comp, options in (("pt", ("pt",)), ("eta", ("eta",)), ("phi", ("phi",)), ("energy", energy_names),
                          ("mass", ("mass", "m"))):
        guess = _guess(have, collection, options)
        if guess:
            out[comp] = guess
    return out


def _check_same_guesses(first: tuple[SourceFile, Plan], source: SourceFile, plan: Plan) -> None:
    """The branches guessed from conventional names (per_event layout without data.jet_axis or
    data.constituents) are the ones guessed in the dataset's first file: otherwise two files of one
    dataset would silently compute the energy (log_e_frac, ...) from different branches.

    Raises
    ------
    InputDataError
        Naming both files, what differs, and the config key that fixes the choice.
    """
    first_source, first_plan = first
    for what in sorted(set(first_plan.guessed) | set(plan.guessed)):
        a, b = first_plan.guessed.get(what), plan.guessed.get(what)
        if a != b:
            key = what.split(" ", 1)[0].rsplit(".", 1)[0] if what.startswith("data.jet_axis") else "data.constituents"
            msg = (
                f"{source.path}: {what} would be read from {b or 'no branch'}, while the dataset's first file "
                f"{first_source.path} gives {a or 'no branch'}: the files of a dataset must have the same branches "
                f"for it; set {key} explicitly (the same branch names in every file), or make the files alike"
            )
            raise InputDataError(msg)


def _check_energy_needs(group: Group, axis: Mapping[str, str], where: str) -> None:
    """Constituents as pt, eta, phi without energy or mass serve images and most derived variables;
    one that uses the energy (energy, log_e, log_e_frac) is named here, before any file is read.

    Each derived variable is tried on zero elements: one that asks for the missing energy raises
    ``ConfigError`` naming it; anything else it raises is left for the reading to report.
    """
    if not group.needs_momentum or not group.momentum or {"energy", "mass", "px"} & set(group.momentum):
        return
    probe = Momenta({k: np.zeros(0) for k in group.momentum}, where=where)
    jet = ("pt", "eta", "phi", "energy") if {"energy", "mass"} & set(axis) else ("pt", "eta", "phi")
    probe.set_jet_axis({k: np.zeros(0) for k in jet}, np.zeros(0, dtype=np.int64))
    names = [(f"{where}.variables[{j}]", var) for j, (var, is_branch) in enumerate(group.variables) if not is_branch]
    if group.sort is not None and not group.sort[1]:
        names.append((f"{where}.sort_by", group.sort[0]))
    for key, var in names:
        try:
            compute_derived(var, probe, 0, where)
        except ConfigError as err:
            if "energy" not in str(err):
                continue  # another missing piece: the reading names it
            given = ", ".join(f"{k}: {b}" for k, b in group.momentum.items())
            msg = (f"{key}: {var!r} needs the constituent energy, and the constituents have no energy or mass "
                   f"branch ({given}); set data.constituents.energy or data.constituents.mass, or remove {var!r} "
                   "(jet images and the other derived variables need pt, eta and phi only)")
            raise ConfigError(msg) from None
        except Exception:  # noqa: BLE001, S112 - not about the energy: the reading reports it with the data
            continue


def _check_not_derived(source: SourceFile, have: set, jet_where: Mapping[str, str]) -> None:
    """A jet-level name (cut, flat variable, spectator) that is no branch but a derived variable: those are
    per constituent, so the name cannot be read per jet (``ConfigError`` saying what to use)."""
    for name, where in jet_where.items():
        if name in have or name not in DERIVED:
            continue
        msg = (
            f"{where}: {name!r} is a derived variable, computed per constituent, and {where} takes jet-level "
            f"branches only ({source.path}, tree {source.tree!r}, has no branch {name!r}"
            f"{suggest(name, sorted(have))}); name a jet-level branch, use {name!r} in a sequence input, or "
            "select jets on it in an analysis plugin's select(jets) hook"
        )
        raise ConfigError(msg)


def _resolve(var: str, have: set, source: SourceFile, where: str) -> bool:
    """True when ``var`` is a branch, False when it is a registered derived variable."""
    if var in have:
        return True
    if var in DERIVED:
        return False
    msg = (
        f"{source.path}: tree {source.tree!r} has no branch {var!r} (used by {where}) and no derived "
        f"variable has that name{suggest(var, list(have) + DERIVED.names())}; "
        f"derived variables: {', '.join(DERIVED.names())}"
    )
    raise InputDataError(msg)


# --- chunk processing -----------------------------------------------------------


#: float64 magnitudes from which a value rounds to inf in float32, the dtype of every array hepnn gives
_FLOAT32_OVERFLOW = 2.0**128 - 2.0**103


def _finite(values: np.ndarray, name: str, where: str, config: Any, path: str, keep_float32: bool = False) -> np.ndarray:
    """``values`` as float64 (float32 stays float32 with ``keep_float32``: same values after the final cast).

    NaN, infinite and float64 values too large for float32 (which would become infinite in hepnn's
    float32 arrays) are an error or replaced, as ``data.on_nan`` says.
    """
    values = np.asarray(values)
    if not (keep_float32 and values.dtype == np.float32):
        values = values.astype(np.float64, copy=False)
    if values.dtype == np.float32:
        ok = bool(np.isfinite(values).all())
    else:  # two reductions, through which NaN propagates: no NaN, no inf, nothing past float32's range
        ok = not values.size or bool(-_FLOAT32_OVERFLOW < values.min() and values.max() < _FLOAT32_OVERFLOW)
    if not ok:
        bad = ~(np.abs(values) < _FLOAT32_OVERFLOW)  # NaN and inf too
        if config.on_nan == "error":
            huge = np.flatnonzero(bad & np.isfinite(values))
            what = "NaN or infinite values" if not len(huge) else (
                f"NaN, infinite or too large values ({len(huge)} beyond float32's range, e.g. "
                f"{float(values[huge[0]]):g}: hepnn's arrays are float32, so rescale the branch)")
            msg = (
                f"{path}: {name!r} (used by {where}) has {int(bad.sum())} {what}; "
                "fix the input, or set data.on_nan: replace (and data.nan_value)"
            )
            raise InputDataError(msg)
        values = np.where(bad, config.nan_value, values)
    return values


def _cut_columns(jets: Mapping[str, np.ndarray], config: Any, path: str) -> Mapping[str, np.ndarray]:
    """The jet columns the cuts compare, after the NaN policy: a NaN fails every comparison, so
    without this a NaN in a cut variable would drop its jet silently."""
    out = jets
    for i, cut in enumerate(config.cuts):
        x = np.asarray(jets[cut.variable])
        if x.dtype.kind != "f":
            continue
        nan = np.isnan(x)
        if not nan.any():
            continue
        if config.on_nan == "error":
            msg = (
                f"{path}: {cut.variable!r} (used by data.cuts[{i}]) has {int(nan.sum())} NaN values, which fail "
                "every cut and would drop their jets silently; fix the input, or set data.on_nan: replace "
                "(NaN cut as data.nan_value)"
            )
            raise InputDataError(msg)
        out = dict(out) if out is jets else out
        out[cut.variable] = np.where(nan, config.nan_value, x)
    return out


def _check_label_values(values: Any, selected: np.ndarray, config: Any, path: str) -> None:
    """NaN or infinite labels of the jets that pass data.cuts are an error under ``data.on_nan: error``
    (under ``replace`` they are dropped as values not in data.label.classes, and counted)."""
    values = np.asarray(values)
    if config.on_nan != "error" or values.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(values) & selected
    if bad.any():
        msg = (
            f"{path}: label branch {config.label.branch!r} (data.label.branch) has {int(bad.sum())} NaN or infinite "
            f"value(s) among the jets that pass data.cuts, which belong to no class; fix the input, cut those jets "
            "away, or set data.on_nan: replace to drop them (they are counted in the dropped-labels warning)"
        )
        raise InputDataError(msg)


def _check_dr_inputs(values: Mapping[str, np.ndarray], on_nan: str, path: str, where: str) -> None:
    """NaN or infinite coordinates of a dR association are an error (``data.on_nan: error``): such an
    element (or jet) is never within the cone, so it would be dropped silently."""
    if on_nan != "error":
        return  # replace: elements without a coordinate stay unattached (nothing to replace them with)
    for name, x in values.items():
        if len(x) and not np.isfinite(x).all():
            msg = (
                f"{path}: {name!r} (used by the dR association of {where}) has {int((~np.isfinite(x)).sum())} NaN "
                "or infinite values, which match no jet and would be dropped silently; fix the input, or set "
                "data.on_nan: replace (such elements are then not attached to any jet)"
            )
            raise InputDataError(msg)


def _event_numbers(column: Any, branch: str, path: str, entry_start: int) -> np.ndarray:
    """The ``data.event_key`` branch as int64, one whole number per entry (else ``InputDataError``)."""
    import awkward as ak

    if getattr(column, "ndim", 1) != 1:
        msg = (f"{path}: branch {branch!r} (used by data.event_key) should hold one event number per entry, "
               f"found type {column.type}; name a per-event integer branch such as 'event'")
        raise InputDataError(msg)
    try:
        values = ak.to_numpy(column)
    except (TypeError, ValueError) as err:
        msg = f"{path}: branch {branch!r} (used by data.event_key) cannot be read as numbers ({err})"
        raise InputDataError(msg) from None
    if values.dtype.kind not in "iub":
        whole = whole_numbers(values)
        if not whole.all():
            i = int(np.flatnonzero(~whole)[0])
            msg = (f"{path}: branch {branch!r} (used by data.event_key) must hold whole event numbers, found "
                   f"{values[i].item()!r} at entry {entry_start + i} ({int((~whole).sum())} entries); events would "
                   "share folds at random: name the integer event-number branch")
            raise InputDataError(msg)
    return values.astype(np.int64)


def _jet_and_event_branches(plan: Plan, arrays: Any, path: str) -> tuple[list[str], list[str]]:
    """The per-event layout's jet-level branches: lists with one value per jet, and branches with
    one value per entry (``genWeight``, ``MET_pt``, ``fixedGridRhoFastjetAll``) that each jet of the
    event takes. The jet axis must be lists, and at least one branch must give the jet count."""
    axis = set(plan.axis.values())
    jagged = [b for b in plan.jet_branches if b in axis or getattr(arrays[b], "ndim", 2) != 1]
    per_entry = [b for b in plan.jet_branches if b not in jagged]
    if per_entry and not jagged:
        msg = (f"{path}: every jet-level branch ({', '.join(per_entry)}) holds one value per entry, so the jets of "
               "an event cannot be counted: use a branch of the jet collection too (e.g. its pt), or layout: "
               "per_jet if each entry is one jet")
        raise InputDataError(msg)
    return jagged, per_entry


def _jets_and_groups(plan: Plan, arrays: Any, source: SourceFile, entry_start: int, on_nan: str = "error"):
    n_entries = len(arrays)
    if plan.layout == "per_jet":
        jets = scalar_branches(arrays, list(plan.jet_branches), plan.jet_branches, source.path)
        n_jets = n_entries
        entry = entry_start + np.arange(n_entries, dtype=np.int64)
        jet_idx = np.zeros(n_entries, dtype=np.int64)
        groups = {}
        for name, g in plan.groups.items():
            counts, flat = flatten_jagged(arrays, g.branches(), source.path, f"data.inputs.{name}", entry_start,
                                          plan.element_where)
            groups[name] = Elements(counts, flat)
        return jets, n_jets, entry, jet_idx, groups
    jagged, per_entry = _jet_and_event_branches(plan, arrays, source.path)
    counts_ev, jets = flatten_jagged(arrays, jagged, source.path, "the jet collection", entry_start, plan.jet_branches)
    for name, values in scalar_branches(arrays, per_entry, plan.jet_branches, source.path).items():
        jets[name] = np.repeat(values, counts_ev)  # an event's value, for each of its jets
    n_jets = int(counts_ev.sum())
    starts = np.concatenate([[0], np.cumsum(counts_ev)[:-1]]).astype(np.int64)
    event_of_jet = np.repeat(np.arange(n_entries, dtype=np.int64), counts_ev)
    entry = entry_start + event_of_jet
    jet_idx = np.arange(n_jets, dtype=np.int64) - starts[event_of_jet]
    groups = {}
    for name, g in plan.groups.items():
        where = f"data.inputs.{name} (collection {g.collection!r})"
        counts_el, flat = flatten_jagged(arrays, g.branches(), source.path, where, entry_start, plan.element_where)
        event = np.repeat(np.arange(n_entries, dtype=np.int64), counts_el)
        if g.link:
            jet_of = link_to_jets(flat[g.link], event, counts_ev, g.link, source.path, entry_start)
        else:
            m = Momenta({k: flat[b] for k, b in g.momentum.items()}, where=f"data.inputs.{name}")
            jet_eta = np.asarray(jets[plan.axis["eta"]], dtype=np.float64)
            jet_phi = np.asarray(jets[plan.axis["phi"]], dtype=np.float64)
            _check_dr_inputs({g.momentum.get("eta", "eta"): m.eta, g.momentum.get("phi", "phi"): m.phi,
                              plan.axis["eta"]: jet_eta, plan.axis["phi"]: jet_phi}, on_nan, source.path, where)
            jet_of = associate_by_dr(m.eta, m.phi, event, jet_eta, jet_phi, counts_ev, g.radius)
        groups[name] = group_by_jet(jet_of, flat, n_jets)
    return jets, n_jets, entry, jet_idx, groups


def _momenta(plan: Plan, group: Group, elements: Elements, jets: Mapping, name: str) -> Momenta:
    jet_index = elements.jet_index()
    comps = {k: elements.arrays[b] for k, b in group.momentum.items()}
    m = Momenta(comps, where=f"data.inputs.{name}")
    axis = {k: np.asarray(jets[plan.axis[k]], dtype=np.float64) for k in ("pt", "eta", "phi")}
    if "energy" in plan.axis:
        axis["energy"] = np.asarray(jets[plan.axis["energy"]], dtype=np.float64)
    elif "mass" in plan.axis:
        p = axis["pt"] * libm.cosh(axis["eta"])  # the same bits on every CPU
        axis["energy"] = np.sqrt(p**2 + np.asarray(jets[plan.axis["mass"]], dtype=np.float64) ** 2)
    else:
        try:
            axis["energy"] = np.bincount(jet_index, weights=m.energy, minlength=len(elements.counts))
        except ConfigError:
            pass
    m.set_jet_axis(axis, jet_index)
    return m


@dataclass
class ChunkInputs:
    """What an :class:`~hepnn.io.representations.InputKind` builds its arrays of one chunk from."""

    config: Any
    plan: Plan
    path: str
    jets: Mapping[str, np.ndarray]  # jet-level columns of the selected jets
    groups: Mapping[str, Elements]  # input name -> its elements, jet by jet
    #: False (for :func:`hepnn.io.load`): a kind may give its array unbuilt, a sequence kind its elements
    #: unpadded (an ``ElementRows``, or a ``DeferredElements`` whose features load computes into its
    #: padded rows), an image kind a ``DeferredRows`` that load builds into one array
    pad: bool = True

    def group(self, name: str) -> Group:
        """The planned :class:`Group` (branches, sort, charge) of element input ``name``."""
        return self.plan.groups[name]

    def elements(self, name: str) -> Elements:
        """The elements of input ``name`` grouped by selected jet."""
        return self.groups[name]

    def momenta(self, name: str, elements: Elements | None = None) -> Momenta:
        """Four-momenta of ``elements`` (default: all of input ``name``) with the jet axis set."""
        return _momenta(self.plan, self.plan.groups[name], self.groups[name] if elements is None else elements, self.jets, name)

    def finite(self, values: Any, name: str, where: str, keep_float32: bool = False) -> np.ndarray:
        """``values`` as float64 after the NaN policy (``data.on_nan``), see :func:`_finite`."""
        return _finite(values, name, where, self.config, self.path, keep_float32=keep_float32)


def process_chunk(config: Any, plan: Plan, source: SourceFile, arrays: Any, entry_start: int, analysis: Any = None,
                  split: int | None = None, counts: LabelCounts | None = None, pad: bool = True) -> dict:
    """Turn one chunk of awkward arrays into the reader's numpy arrays (before standardisation).

    With ``split`` (0 train, 1 val, 2 test) only the jets of that split are kept, and
    dropped before their sequences and images are built. ``counts`` collects the label
    values of selected jets dropped because they are not in ``data.label.classes``.
    ``pad=False`` lets sequence inputs give their real elements as
    :class:`~hepnn.io.representations.ElementRows` (or, not computed yet,
    :class:`~hepnn.io.representations.DeferredElements`) instead of padded arrays and masks, and other
    kinds (images) a :class:`~hepnn.io.representations.DeferredRows` instead of their array.
    """
    path = source.path
    jets, n_jets, entry, jet_idx, groups = _jets_and_groups(plan, arrays, source, entry_start, config.on_nan)
    s = config.split
    within = jet_idx if s.by == "jet" else np.zeros_like(jet_idx)  # by event: one draw per entry
    split_code = assign_split(path, entry, within, (s.train, s.val, s.test), s.seed)
    keep = apply_cuts(_cut_columns(jets, config, path), config.cuts, n_jets)
    if config.label is not None:
        _check_label_values(jets[config.label.branch], keep, config, path)
    if split is not None:
        keep &= split_code == split
    mask = analysis_mask(analysis, jets, n_jets, path)
    if mask is not None:
        keep &= mask
    custom = call_hook(analysis, "labels", jets, path) if analysis is not None and hasattr(analysis, "labels") else None
    if custom is not None:
        label = np.asarray(custom)
        who = f"{path}: analysis plugin {plugin_name(analysis)}: its labels(jets) hook"
        if label.shape != (n_jets,):
            msg = f"{who} must return ({n_jets},) ints, received shape {label.shape}"
            raise PluginOutputError(msg)
        try:
            check_class_indices(label[keep], f"{path}: {type(analysis).__name__}.labels")
        except InputDataError as err:
            raise PluginOutputError(f"{err} (analysis plugin {plugin_name(analysis)}: its labels(jets) hook)") from None
        label = label.astype(np.int32)
    elif config.label is not None:
        values = np.asarray(jets[config.label.branch])
        label, known = map_labels(values, config.label.classes)
        if counts is not None:
            counts.add_dropped(values[keep & ~known])
        keep &= known
    else:
        label = np.full(n_jets, source.label, dtype=np.int32)
    weight = np.full(n_jets, source.weight, dtype=np.float64)
    if config.weight:
        weight = weight * np.asarray(jets[config.weight], dtype=np.float64)
    if not keep.all():
        jets = {k: v[keep] for k, v in jets.items()}
        groups = {k: e.select(keep) for k, e in groups.items()}
    chunk = ChunkInputs(config, plan, path, jets, groups, pad)
    out: dict[str, np.ndarray] = {}
    for name, inp in config.inputs.items():
        out.update(input_kind(inp).build(name, inp, chunk))
    out["label"] = label[keep].astype(np.int32)
    weight = weight[keep]
    if config.weight:  # NaN weights would poison the loss; a float64 weight may overflow float32
        weight = _finite(weight, config.weight, "data.weight", config, path)
    out["weight"] = weight.astype(np.float32)
    out["split"] = split_code[keep]
    if plan.event_branch:  # k-fold key: all jets of an event share it
        events = _event_numbers(arrays[plan.event_branch], plan.event_branch, path, entry_start)
        out["fold_key"] = event_fold_key(events[entry[keep] - entry_start], s.seed)
    else:
        # by event: one key per entry, so k-fold keeps an event's jets in one fold as the split does
        out["fold_key"] = fold_key(path, entry[keep], within[keep], s.seed)
    for var in config.spectators:
        out[f"spec_{var}"] = _finite(jets[var], var, "data.spectators", config, path).astype(np.float32)
    return out


def _step_size(value: Any) -> Any:
    """A ``step_size`` argument checked as ``data.step_size`` is (a bad one failed per file, as if the
    file were truncated, or gave no chunks at all)."""
    if isinstance(value, np.integer):
        value = int(value)
    problem = step_size_problem(value)
    if problem:
        raise ConfigError(f"step_size: {problem}")
    return value


class ReferencePlan:
    """The dataset's first file (of ``data.files``, in config order) and its plan, found once.

    Every file whose branches are guessed from conventional names must guess the first file's
    (:func:`_check_same_guesses`). A pass that reads one file per :func:`iterate_chunks` call (the
    streaming pipeline) shares one ``ReferencePlan``: the files are globbed and the first file's
    header is opened once per pass, not once per file (which made a pass's cost grow with the
    square of the number of files).

    Parameters
    ----------
    config : DataConfig (or anything :func:`data_config` takes)
    first : SourceFile, optional
        The first file, when the caller has resolved the files already (else globbed when needed).
    """

    def __init__(self, config: Any, first: SourceFile | None = None):
        self.config = data_config(config)
        self.first = first
        self._globbed = first is not None
        self._plan: Plan | None = None
        self._planned = False

    def _first_file(self) -> SourceFile | None:
        if not self._globbed:
            self._globbed = True
            try:
                self.first = resolve_files(self.config)[0]
            except InputDataError:  # no file to compare with: each file is its own reference
                self.first = None
        return self.first

    def get(self, source: SourceFile, plan: Plan) -> tuple[SourceFile, Plan]:
        """The first file and its plan; ``(source, plan)`` when ``source`` is that file or it cannot be read."""
        first = self._first_file()
        if first is None:
            return source, plan
        if _same_path(first.path, source.path):
            if not self._planned:  # the first file itself: its plan serves the files read after it
                self._plan, self._planned = plan, True
            return source, plan
        if not self._planned:
            self._planned = True
            try:
                self._plan = make_plan(self.config, tree_keys(open_tree(first)), first)
            except InputDataError:  # unreadable (skipped) first file: each file is its own reference
                self._plan = None
        return (source, plan) if self._plan is None else (first, self._plan)


def _same_path(a: str, b: str) -> bool:
    """Whether two data file names are one file: URLs as written (``//`` matters there), paths absolute."""
    if is_url(a) or is_url(b):
        return a == b
    return os.path.abspath(a) == os.path.abspath(b)


def _first_plan(config: Any, source: SourceFile, plan: Plan, full_pass: bool,
                reference: ReferencePlan | None = None) -> tuple[SourceFile, Plan]:
    """The dataset's first file and its plan: ``source`` on a full pass (the first file read), else
    (a subset of the files, e.g. one file of the streaming pipeline) the first file of data.files,
    from ``reference`` when the caller shares one across calls."""
    if full_pass:
        return source, plan
    return (reference or ReferencePlan(config)).get(source, plan)


def iterate_chunks(
    config: Any, analysis: Any = None, step_size: Any = None, files: list[SourceFile] | None = None,
    summary: dict | None = None, split: int | None = None, pad: bool = True, *, whole_files: bool = False,
    reference: ReferencePlan | None = None,
) -> Iterator[dict]:
    """Yield processed chunks of every file in order (see :func:`hepnn.io.iterate`).

    ``split`` (0, 1, 2) keeps only that split's jets and ``pad=False`` leaves sequence inputs
    unpadded (see :func:`process_chunk`).

    With ``data.skip_bad_files``, a file's jets are all in or all out, as in :func:`hepnn.io.load`:
    a file that fails part-way through (a corrupt basket after some chunks were read) is skipped
    whole. Without ``whole_files`` this holds a file's processed chunks back until the file has
    been read to the end, so memory grows by one file's chunks (the split's jets, as arrays)
    while that option is on; without the option chunks are yielded as they are read.
    ``whole_files`` (for :func:`hepnn.io.load`, which keeps every chunk anyway): yield ``(file
    index, chunk)`` as read, and ``(file index, None)`` when ``data.skip_bad_files`` skips a file
    after some of its chunks were yielded, which the caller then drops. Either way the jet and
    label counts of the summary and of the checks are those of the files read to the end.

    ``reference``: a :class:`ReferencePlan` shared by the calls of one pass that read a subset
    of the files each (``files``), so that the dataset's first file is found once per pass.
    A full pass over the config's files (``files`` not given) also fills ``summary["dropped_labels"]``
    (jets per label value not in ``data.label.classes``, logged too) and, for all or the training
    jets, raises ``ConfigError`` when a file group or a class has no jets.
    """
    config = data_config(config)
    full_pass = files is None
    counts = LabelCounts()
    if not config.inputs:
        msg = "data.inputs is empty: define at least one input, e.g. inputs: {jet: {kind: flat, variables: [jet_pt]}}"
        raise ConfigError(msg)
    files = resolve_files(config) if files is None else files
    summary = {} if summary is None else summary
    summary.update(n_files=len(files), n_skipped=0, skipped=[], n_jets=0)
    step = _step_size(step_size) if step_size is not None else config.step_size
    first: tuple[SourceFile, Plan] | None = None  # the file whose guessed branches every file must have
    reading = _FileReading(config, analysis, step, split, pad, counts, summary)
    for index, source in enumerate(files):
        try:
            tree = open_tree(source)
        except InputDataError as err:
            if "no tree or RNTuple" in str(err):
                raise
            reading.skip(err, source)
            continue
        plan = make_plan(config, tree_keys(tree), source)
        if plan.guessed:
            first = first or _first_plan(config, source, plan, full_pass, reference)
            _check_same_guesses(first, source, plan)
        if whole_files:
            yield from reading.as_read(index, source, tree, plan)
        elif config.skip_bad_files:
            yield from reading.held_back(source, tree, plan)
        else:
            yield from reading.streamed(source, tree, plan)
    if full_pass:
        summary["dropped_labels"] = counts.dropped()
        what = "jets" if split is None else f"{('training', 'validation', 'test')[split]} jets"
        counts.log(config, what)
        if split in (None, 0) and summary["n_jets"]:
            custom = analysis is not None and hasattr(analysis, "labels")
            counts.check(config, files, summary["skipped"], what, classes=not custom)


@dataclass
class _FileReading:
    """The chunks of one file at a time for :func:`iterate_chunks`, and the pass's counts."""

    config: Any
    analysis: Any
    step: Any
    split: int | None
    pad: bool
    counts: LabelCounts  # the pass's label counts
    summary: dict

    def skip(self, err: InputDataError, source: SourceFile) -> None:
        """Skip ``source`` (``data.skip_bad_files``) or raise ``err``."""
        skip_or_raise(err, self.config.skip_bad_files, self.summary["skipped"], source.path)
        self.summary["n_skipped"] = len(self.summary["skipped"])

    def _chunks(self, source: SourceFile, tree: Any, plan: Plan, counts: LabelCounts) -> Iterator[dict]:
        for arrays, entry_start in iterate_tree(source, tree, plan.read_list(), self.step):
            chunk = process_chunk(self.config, plan, source, arrays, entry_start, self.analysis, self.split,
                                  counts, self.pad)
            del arrays  # not alive while the consumer holds this chunk and the next one is read
            counts.add(source.group, chunk["label"])
            yield chunk
            del chunk

    def _failed(self, err: InputDataError, source: SourceFile) -> None:
        """A read error part-way through: the file is skipped (``data.skip_bad_files``) or ``err`` raised."""
        if err.__cause__ is None or not self.config.skip_bad_files:
            raise err
        self.skip(err, source)

    def _read_to_the_end(self, counts: LabelCounts, n_jets: int) -> None:
        self.counts.merge(counts)
        self.summary["n_jets"] += n_jets

    def streamed(self, source: SourceFile, tree: Any, plan: Plan) -> Iterator[dict]:
        """The file's chunks as they are read (``data.skip_bad_files`` off: a read error is raised)."""
        for chunk in self._chunks(source, tree, plan, self.counts):
            self.summary["n_jets"] += len(chunk["label"])
            yield chunk

    def held_back(self, source: SourceFile, tree: Any, plan: Plan) -> Iterator[dict]:
        """The file's chunks once the whole file has been read; none when it fails part-way through."""
        counts, held, n_jets = LabelCounts(), deque(), 0
        try:
            for chunk in self._chunks(source, tree, plan, counts):
                held.append(chunk)
                n_jets += len(chunk["label"])
                del chunk
        except InputDataError as err:
            held.clear()
            self._failed(err, source)
            return
        self._read_to_the_end(counts, n_jets)
        while held:
            yield held.popleft()  # let go of each chunk as it is handed over

    def as_read(self, index: int, source: SourceFile, tree: Any, plan: Plan) -> Iterator[tuple]:
        """``(index, chunk)`` as read, then ``(index, None)`` when the file fails part-way through."""
        counts, n_jets = LabelCounts(), 0
        try:
            for chunk in self._chunks(source, tree, plan, counts):
                n_jets += len(chunk["label"])
                yield index, chunk
                del chunk
        except InputDataError as err:
            self._failed(err, source)
            yield index, None  # the chunks of this file already yielded are dropped
            return
        self._read_to_the_end(counts, n_jets)
