"""Selection-free representation of in-memory arrays: what a trained tagger is fed.

:func:`represent` runs the reader's per-chunk processing (:func:`hepnn.io.chunks.process_chunk`)
on arrays already in memory, with the config's cuts, labels, weights and spectators
switched off: every jet of the input gets a row, in input order (per-event input: event
by event, jets in collection order). Only the branches the inputs need must be present.

Inputs can be an awkward record array as ``uproot`` returns it (fields named as the
branches), a coffea NanoEvents-style array (``events.Jet.pt`` stands for the branch
``Jet_pt``), or a dict of numpy/awkward arrays.

Examples
--------
>>> import numpy as np
>>> from hepnn.io.represent import represent
>>> config = {"data": {"inputs": {"jet": {"kind": "flat", "variables": ["jet_pt", "jet_mass"]}}}}
>>> out = represent(config, {"jet_pt": np.array([500.0, 620.0]), "jet_mass": np.array([80.0, 170.0])})
>>> out["jet"].tolist()
[[500.0, 80.0], [620.0, 170.0]]
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from ..exceptions import InputDataError, suggest
from .chunks import Plan, data_config, make_plan, process_chunk
from .derived import DERIVED
from .sources import SourceFile

__all__ = ["represent", "selection_free", "Columns", "plan_for", "required_branches", "jets_per_entry"]

_BOOKKEEPING = ("label", "weight", "split")


def selection_free(config: Any) -> Any:
    """The ``DataConfig`` of ``config`` without cuts, labels, weights, spectators, files and event key."""
    config = data_config(config)
    return dataclasses.replace(config, cuts=(), label=None, weight=None, spectators=(), files=(), event_key=None)


def _numeric_column(column: np.ndarray, name: str) -> Any:
    """A numpy column as an awkward array of numbers: strings and None are named, object arrays
    of lists (ragged) read element by element."""
    import awkward as ak

    if column.dtype.kind in "USV":
        msg = (f"branch {name!r} holds {column.dtype} values (e.g. {str(column.flat[0])!r}), not numbers; "
               "convert it (e.g. np.asarray(values, dtype=float)) before predicting")
        raise InputDataError(msg)
    if column.dtype.kind != "O":
        return ak.Array(column)
    missing = np.array([v is None for v in column.flat], dtype=bool).reshape(column.shape)
    if missing.any():
        first = np.argwhere(missing)[0].tolist()
        msg = (f"branch {name!r} holds {int(missing.sum())} missing values (None, the first at entry {first[0]}); "
               "drop those entries or fill them before predicting")
        raise InputDataError(msg)
    try:
        return ak.from_iter(column.tolist(), highlevel=True)
    except (TypeError, ValueError) as err:
        msg = f"branch {name!r}: an object array that is not numbers or lists of numbers ({err})"
        raise InputDataError(msg) from None


class Columns:
    """Uniform access to the branches of an awkward record array or a dict of arrays.

    ``columns[name]`` is an awkward array; ``len(columns)`` the number of entries. A
    nested record (``events.Jet.pt``, as coffea NanoEvents builds) is reachable under the
    flat branch name ``Jet_pt``.
    """

    def __init__(self, arrays: Any):
        import awkward as ak

        self._arrays = arrays
        self._nested: dict[str, tuple[str, str]] = {}
        if isinstance(arrays, Mapping):
            self._flat = list(arrays)
        elif isinstance(arrays, ak.Array) and arrays.fields:
            self._flat = list(arrays.fields)
            record = arrays.layout.form
            for name in arrays.fields:
                try:  # the fields of a record (or list of records) field, from the form: no array access
                    sub = _record_fields(record.content(name)) if isinstance(record, ak.forms.RecordForm) \
                        else ak.fields(arrays[name])
                except Exception:  # noqa: BLE001 - a field that cannot be inspected is skipped
                    continue
                for var in sub:
                    self._nested.setdefault(f"{name}_{var}", (name, var))
        else:
            msg = (
                "expected an awkward record array (as uproot's tree.arrays() returns) or a dict of arrays, "
                f"received {type(arrays).__name__}"
                + (" without fields" if isinstance(arrays, ak.Array) else "")
            )
            raise InputDataError(msg)

    def keys(self) -> list[str]:
        return list(dict.fromkeys(self._flat + list(self._nested)))

    def __contains__(self, name: str) -> bool:
        return name in self._flat or name in self._nested

    def __getitem__(self, name: str) -> Any:
        import awkward as ak

        if name in self._flat:
            column = self._arrays[name]
        else:
            collection, var = self._nested[name]
            column = self._arrays[collection][var]
        if isinstance(column, ak.Array):
            return column
        if isinstance(column, list):
            return ak.Array(column)
        return _numeric_column(np.asarray(column), name)

    def __len__(self) -> int:
        import awkward as ak

        if isinstance(self._arrays, ak.Array):
            return len(self._arrays)
        if not self._flat:
            return 0
        return len(self._arrays[self._flat[0]])

    def select(self, names: list[str]) -> Any:
        """An awkward record array with just ``names`` (no copy of the contents)."""
        import awkward as ak

        layout = self._arrays.layout if isinstance(self._arrays, ak.Array) else None
        if (isinstance(layout, ak.contents.RecordArray) and not layout.is_tuple and names
                and all(n in self._flat for n in names)):
            contents = [layout.content(n) for n in names]
            if all(_plain(c.form) for c in contents):  # nothing to strip (uproot's arrays): no copy, no zip
                return ak.Array(ak.contents.RecordArray(contents, list(names), length=layout.length))
        columns = {n: _strip(self[n]) for n in names}
        lengths = {n: len(c) for n, c in columns.items()}
        if len(set(lengths.values())) > 1:
            msg = f"the input arrays have different lengths: {lengths}; give one entry per jet (per_jet) or per event (per_event)"
            raise InputDataError(msg)
        if not columns:
            return ak.Array(np.zeros(len(self), dtype=np.int8))
        return ak.zip(columns, depth_limit=1)


def _record_fields(form: Any) -> list[str]:
    """``ak.fields`` of an array of this form: the fields of the first record inside its lists and options."""
    import awkward as ak

    while not isinstance(form, ak.forms.RecordForm):
        form = getattr(form, "content", None)
        if form is None:
            return []
    return list(form.fields)


def _plain(form: Any) -> bool:
    """Whether a form carries no parameters or behaviours anywhere (nothing for :func:`_strip` to drop)."""
    if form.parameters:
        return False
    content = getattr(form, "content", None)
    if content is not None:
        return _plain(content)
    return all(_plain(c) for c in getattr(form, "contents", ()))


def _strip(column: Any) -> Any:
    """Drop behaviours and parameters (coffea NanoEvents) so awkward treats values as numbers."""
    import awkward as ak

    return ak.Array(ak.without_parameters(column, highlevel=False))


def plan_for(config: Any, keys: list[str], path: str = "<memory>", tree: str = "<memory>") -> Plan:
    """Resolve a (selection-free) config against the branch names ``keys``.

    Raises
    ------
    InputDataError
        Naming every missing branch, what the inputs need and the nearest available names.
    """
    config = selection_free(config)
    source = SourceFile(path, tree, 0, 0, 1.0)
    try:
        return make_plan(config, keys, source)
    except InputDataError as err:
        needed = required_branches(config)
        have = set(keys)
        missing = [n for n in needed if n not in have]
        if not missing:
            raise
        hints = "".join(f"\n  {n!r}{suggest(n, keys) or ': no similar name'}" for n in missing)
        msg = (
            f"{path}: the input lacks {len(missing)} branch(es) the tagger needs: "
            f"{', '.join(repr(n) for n in missing)}.{hints}\n"
            f"The tagger needs: {', '.join(needed)}.\n"
            "Read them with uproot (tree.arrays(filter_name=tagger.required_branches)) or rename the fields."
        )
        raise InputDataError(msg) from err


def required_branches(config: Any) -> list[str]:
    """Branches a selection-free config reads, assuming conventional names where it guesses.

    In per-event layout the jet axis and the element four-momenta default to
    ``<collection>_pt``, ``_eta``, ``_phi`` (energy and mass are used when present).
    """
    config = selection_free(config)
    names: set[str] = set()
    for inp in config.inputs.values():
        for var in getattr(inp, "variables", ()):
            if var not in DERIVED:
                names.add(var)
        sort = getattr(inp, "sort_by", None)
        if sort is not None and sort.variable not in DERIVED:
            names.add(sort.variable)
        for attr in ("link", "charge"):
            if getattr(inp, attr, None):
                names.add(getattr(inp, attr))
    cons = config.constituents
    if cons is not None:
        names.update(v for k in ("px", "py", "pz", "energy", "pt", "eta", "phi", "mass", "theta", "qoverp", "link")
                     if (v := getattr(cons, k)))
    if config.jet_axis is not None:
        names.update(v for k in ("pt", "eta", "phi", "energy", "mass") if (v := getattr(config.jet_axis, k)))
    if config.layout == "per_event":
        collections = {config.jets} | {c for i in config.inputs.values() if (c := getattr(i, "collection", None))}
        if cons is not None and cons.collection:
            collections.add(cons.collection)
        names.update(f"{c}_{comp}" for c in collections for comp in ("pt", "eta", "phi"))
    else:
        names.update(("jet_pt", "jet_eta", "jet_phi"))
    try:
        plan = make_plan(config, sorted(names), SourceFile("<required>", "<required>", 0, 0, 1.0))
    except InputDataError:
        return sorted(names)
    return plan.read_list()


def jets_per_entry(plan: Plan, arrays: Any) -> np.ndarray:
    """Jets in each entry: 1 per entry (per_jet), the jet collection's length (per_event)."""
    import awkward as ak

    if plan.layout == "per_jet":
        return np.ones(len(arrays), dtype=np.int64)
    # a branch of the jet collection (per-entry values such as genWeight give no count)
    names = list(dict.fromkeys([*plan.axis.values(), *plan.jet_branches]))
    first = next((b for b in names if getattr(arrays[b], "ndim", 1) == 2), names[0])
    column = arrays[first]
    if getattr(column, "ndim", 1) != 2:
        msg = (f"branch {first!r} (the jet collection) should hold one list per entry, found type "
               f"{getattr(column, 'type', type(column).__name__)}; a per-event tagger takes whole events "
               "(or a jet collection such as events.Jet)")
        raise InputDataError(msg)
    return ak.to_numpy(ak.num(column, axis=1)).astype(np.int64)


def represent(config: Any, arrays: Any, path: str = "<memory>", *, plan: Plan | None = None,
              entry_start: int = 0) -> dict[str, np.ndarray]:
    """The reader's arrays for every jet of ``arrays``: no cuts, no labels (before standardisation).

    Parameters
    ----------
    config : Config, DataConfig, mapping or path
        Only ``data.inputs``, ``data.layout``, ``data.jets``, ``data.jet_axis``,
        ``data.constituents`` and the NaN policy are used.
    arrays : awkward record array or dict of arrays
        One entry per jet (``per_jet``) or per event (``per_event``), fields named as the branches.
    path : str
        Name used in error messages.
    plan : Plan, optional
        From :func:`plan_for` (saves resolving the config again for every chunk).
    entry_start : int
        The file entry of ``arrays``' first entry, for a chunk of a file: the k-fold key
        (``fold_key``) and error messages count entries from it, as the reader does.

    Returns
    -------
    dict
        ``<input>`` float32 and ``<input>_mask`` (sequences), one row per jet in input order.

    Raises
    ------
    InputDataError
        When a needed branch is missing (naming it, the needed set and the nearest names),
        or for NaN values, bad links and mismatched jagged lengths.
    """
    config = selection_free(config)
    columns = arrays if isinstance(arrays, Columns) else Columns(arrays)
    if plan is None:
        plan = plan_for(config, columns.keys(), path)
    selected = columns.select(plan.read_list())
    source = SourceFile(path, "<memory>", 0, 0, 1.0)
    out = process_chunk(config, plan, source, selected, entry_start)
    for key in _BOOKKEEPING:
        out.pop(key, None)
    return out
