"""A deployable ONNX tagger: the run's preprocessing inside the graph, its contract in the metadata.

:func:`embed_preprocessing` takes the ONNX model :func:`hepnn.training.export.export_onnx`
wrote (inputs: standardised tensors) and puts in front of it, as ONNX operators, what
:class:`hepnn.preprocessing.Preprocessor` does in numpy: per variable ``abs``, ``log`` or
``log1p``, ``clip``, then ``(x - mean) / scale``; for sequences the padded slots (every
feature equal to the input's ``pad_value``) are found in the raw tensor and set back to the
pad value after standardisation; image inputs get their per-pixel standardisation. The
model then takes the raw tensors a C++ framework builds from its own objects: same
variables, same order, same sorting and padding as the config says.

:func:`deploy_metadata` is the contract a CMSSW or Athena user needs, stored in the ONNX
model's ``metadata_props`` (each value a JSON string): input names and shapes, variable
names and order per input, sort key, max length, pad value, classes, task and the hepnn
version.

Examples
--------
>>> from hepnn.training.export import export_onnx
>>> export_onnx("runs/btag", with_preprocessing=True, opset=17)   # doctest: +SKIP
PosixPath('runs/btag/export/model.onnx')
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

from .._optional import require
from .._version import __version__
from ..exceptions import HepnnError, InputDataError
from ..io import iterate
from ..models.autoencoder import anomaly_score
from ..preprocessing import Preprocessor

__all__ = ["embed_preprocessing", "deploy_metadata", "add_metadata", "add_anomaly_score", "finish_export"]


def _const(name: str, value: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value), name=name)


class _Nodes:
    """ONNX nodes and initialisers added under one name prefix: ``c`` a constant, ``node`` an
    operation; both return the name of what they add."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.inits = prefix, [], []

    def c(self, key: str, value: np.ndarray) -> str:
        const = f"{self.prefix}/{key}"
        self.inits.append(_const(const, value))
        return const

    def node(self, op: str, inputs: list[str], key: str, **attrs) -> str:
        from onnx import helper

        output = f"{self.prefix}/{key}"
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _feature_params(preprocessing: Any, name: str, spec: Mapping, shape: tuple) -> dict[str, np.ndarray]:
    """Per-feature constants (broadcastable to the input's trailing shape) of one input."""
    variables = list(spec.get("variables", []))
    transforms = spec.get("transforms", {}) or {}
    n_features = int(np.prod(shape[-1:] if spec.get("kind") != "image" else shape))
    mean, scale = preprocessing.standardisation(name, spec, n_features, (1, *shape))
    params = {"mean": np.asarray(mean, np.float32), "scale": np.asarray(scale, np.float32)}
    if spec.get("kind") == "image":
        params = {k: v.reshape(shape) for k, v in params.items()}
        return params
    width = shape[-1]
    t = [transforms.get(v) or {} for v in variables] + [{}] * (width - len(variables))
    params["abs"] = np.array([bool(x.get("abs")) for x in t])
    params["log"] = np.array([bool(x.get("log") or x.get("log1p")) for x in t])
    params["shift"] = np.array([1.0 if x.get("log1p") else 0.0 for x in t], np.float32)
    params["lo"] = np.array([x["clip"][0] if x.get("clip") else -np.inf for x in t], np.float32)
    params["hi"] = np.array([x["clip"][1] if x.get("clip") else np.inf for x in t], np.float32)
    return params


def _input_nodes(preprocessing: Any, name: str, spec: Mapping, shape: tuple, raw: str, out: str, opset: int,
                 nan_value: float | None = None):
    """ONNX nodes and initialisers turning the raw input ``raw`` into the standardised ``out``
    (``nan_value``: NaN and infinite raw values become it first, as the reader does under
    ``data.on_nan: replace``)."""
    from onnx import helper

    p = _feature_params(preprocessing, name, spec, shape)
    built = _Nodes(f"hepnn_pre/{name}")
    nodes, inits, c, node = built.nodes, built.inits, built.c, built.node

    x = raw
    if spec.get("kind") != "image":
        if nan_value is not None:  # not finite: NaN or |x| = inf (Abs, Less and Where exist in every opset hepnn writes)
            finite = node("Less", [node("Abs", [x], "abs_raw"), c("inf", np.array(np.inf, np.float32))], "finite")
            x = node("Where", [finite, x, c("nan_value", np.array(nan_value, np.float32))], "after_nan")
        if p["abs"].any():
            x = node("Where", [c("abs_mask", p["abs"]), node("Abs", [x], "abs"), x], "after_abs")
        if p["log"].any():
            logged = node("Log", [node("Add", [x, c("shift", p["shift"])], "log_arg")], "log")
            x = node("Where", [c("log_mask", p["log"]), logged, x], "after_log")
        if np.isfinite(p["lo"]).any() or np.isfinite(p["hi"]).any():
            x = node("Min", [node("Max", [x, c("lo", p["lo"])], "clip_lo"), c("hi", p["hi"])], "after_clip")
    x = node("Div", [node("Sub", [x, c("mean", p["mean"])], "centred"), c("scale", p["scale"])], "standardised")
    if spec.get("kind") == "sequence":
        pad = np.float32(spec.get("pad_value", 0.0))
        differs = node("Not", [node("Equal", [raw, c("pad", np.array(pad, np.float32))], "is_pad")], "not_pad")
        not_pad = node("Cast", [differs], "not_pad_f", to=1)
        if opset >= 18:  # axes became an input in opset 18
            real = node("ReduceMax", [not_pad, c("last_axis", np.array([-1]))], "real_f", keepdims=1)
        else:
            real = node("ReduceMax", [not_pad], "real_f", keepdims=1, axes=[-1])
        is_real = node("Greater", [real, c("half", np.array(0.5, np.float32))], "real")
        x = node("Where", [is_real, x, c("pad_out", np.array(pad, np.float32))], "masked")
    nodes.append(helper.make_node("Identity", [x], [out], name=f"hepnn_pre/{name}/out"))
    return nodes, inits


def embed_preprocessing(model_proto: Any, preprocessing: Any, metadata: Mapping[str, Any] | None = None,
                        nan_value: float | None = None) -> Any:
    """Return ``model_proto`` with ``preprocessing`` as operators in front of it (and ``metadata``).

    The graph inputs keep their names and shapes; they now take raw (untransformed,
    unstandardised) tensors. ``nan_value`` (a run with ``data.on_nan: replace``): NaN and
    infinite raw values of flat and sequence inputs are replaced by it first, as hepnn's
    reader does.
    """
    import onnx

    graph = model_proto.graph
    opset = max((o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx")), default=13)
    specs = dict(preprocessing.inputs) if preprocessing is not None else {}
    new_nodes, new_inits = [], []
    for graph_input in graph.input:
        name = graph_input.name
        spec = specs.get(name)
        if spec is None or spec.get("kind") not in ("flat", "sequence", "image"):
            continue
        if spec.get("kind") == "image" and not spec.get("standardize"):
            continue
        dims = graph_input.type.tensor_type.shape.dim
        shape = tuple(int(d.dim_value) for d in dims[1:])
        inner = f"hepnn_pre/{name}/standardised_input"
        for node in graph.node:
            for i, value in enumerate(node.input):
                if value == name:
                    node.input[i] = inner
        nodes, inits = _input_nodes(preprocessing, name, spec, shape, name, inner, opset, nan_value)
        new_nodes += nodes
        new_inits += inits
    all_nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(all_nodes)
    graph.initializer.extend(new_inits)
    if metadata:
        add_metadata(model_proto, metadata)
    onnx.checker.check_model(model_proto)
    return model_proto


def add_metadata(model_proto: Any, metadata: Mapping[str, Any]) -> Any:
    """Store ``metadata`` in the model's ``metadata_props`` (one JSON string per key)."""
    for key, value in metadata.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    model_proto.producer_name = "hepnn"
    return model_proto


def first_test_jets(config: Any, n: int = 256) -> dict[str, np.ndarray] | None:
    """Up to ``n`` raw (not standardised) test-split jets of the run's files, from the first chunk read.

    None when the config names no files, they cannot be read, or the chunk has no test jets.
    """
    if not config.data.files:
        return None
    try:
        chunk = next(iterate(config.data, split="test"), None)
    except (InputDataError, OSError):
        return None
    if chunk is None or len(chunk.get("label", ())) == 0:
        return None
    return {k: v[:n] for k, v in chunk.items()}


def _raw_batch(config: Any, names: list[str], n: int = 256) -> dict[str, np.ndarray] | None:
    """Up to ``n`` raw test-split jets of the run's files, masks included; None if unreadable."""
    chunk = first_test_jets(config, n)
    if chunk is None:
        return None
    keys = [k for name in names for k in (name, f"{name}_mask") if k in chunk]
    return {k: np.asarray(chunk[k]) for k in keys}


#: the second output of an autoencoder's export: what :meth:`hepnn.Tagger.predict` returns for it
ANOMALY_OUTPUT = "anomaly_score"


def _reduce(op: str, inputs: list[str], axes: list[int], opset: int, c: Any, node: Any, key: str) -> str:
    """``op`` (``ReduceMean``, ``ReduceSum``, ``ReduceMax``) over ``axes``, dropping them (axes an
    attribute before opset 18, an input from 18; ReduceSum's from 13)."""
    as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    if as_input:
        return node(op, [*inputs, c(f"{key}_axes", np.array(axes, np.int64))], key, keepdims=0)
    return node(op, inputs, key, keepdims=0, axes=axes)


def add_anomaly_score(model_proto: Any, model: Any, name: str) -> Any:
    """Add the output ``anomaly_score`` (shape ``(n_jets,)``) to an autoencoder's ONNX graph.

    The score :func:`hepnn.models.autoencoder.anomaly_score` computes (what :meth:`hepnn.Tagger.predict`
    returns): the mean of ``(standardised input - reconstruction)**2`` over the features, for a
    masked sequence over the real slots only (0 for a jet without any). The standardised input is
    the one inside the graph when the preprocessing is embedded, so a deployment needs neither
    ``preprocessing.json`` nor its own formula.
    """
    from onnx import helper

    graph = model_proto.graph
    opset = max((o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx")), default=13)
    inner = f"hepnn_pre/{name}/standardised_input"
    x = inner if any(inner in n.output for n in graph.node) else name
    rank = len(next(i for i in graph.input if i.name == name).type.tensor_type.shape.dim)
    built = _Nodes("hepnn_score")
    nodes, inits, c, node = built.nodes, built.inits, built.c, built.node

    diff = node("Sub", [x, graph.output[0].name], "diff")
    error = node("Mul", [diff, diff], "error")
    masks = [layer for layer in model.layers if type(layer).__name__ == "ApplyMask"]
    if masks and rank == 3:
        per_slot = _reduce("ReduceMean", [error], [-1], opset, c, node, "per_slot")
        at_pad = node("Equal", [x, c("mask_value", np.array(masks[0].mask_value, np.float32))], "at_pad")
        real_f = node("Cast", [node("Not", [at_pad], "not_pad")], "not_pad_f", to=1)
        real = _reduce("ReduceMax", [real_f], [-1], opset, c, node, "real")
        total = _reduce("ReduceSum", [node("Mul", [per_slot, real], "real_error")], [1], opset, c, node, "total")
        n_real = _reduce("ReduceSum", [real], [1], opset, c, node, "n_real")
        score = node("Div", [total, node("Max", [n_real, c("one", np.array(1.0, np.float32))], "n_real_1")], "score")
    else:
        score = _reduce("ReduceMean", [error], list(range(1, rank)), opset, c, node, "score")
    nodes.append(helper.make_node("Identity", [score], [ANOMALY_OUTPUT], name=f"hepnn_score/{ANOMALY_OUTPUT}"))
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    graph.output.append(helper.make_tensor_value_info(ANOMALY_OUTPUT, 1, ["n_jets"]))
    return model_proto


def finish_export(path: Any, config: Any, names: list[str], classes: list[str], task: str, shapes: Mapping[str, list],
                  run: Any, with_preprocessing: bool, tolerance: float, model: Any) -> dict[str, float]:
    """Add the metadata (and the preprocessing; an autoencoder's ``anomaly_score`` output) to the ONNX
    file at ``path``; verify the raw-input graph, and an autoencoder's score against the Tagger's.

    Returns the measured differences (``{"test_data_raw": ...}`` when verified; ``"anomaly_score"``
    for an autoencoder whose test jets are readable).
    """
    import onnx

    proto = onnx.load(str(path))
    metadata = deploy_metadata(config, names, classes, task, shapes, with_preprocessing)
    preprocessing = None
    if with_preprocessing:
        if not run.preprocessing.is_file():
            msg = (f"{run.preprocessing}: the run has no preprocessing to put in the graph; "
                   "export without --with-preprocessing (the model then takes the inputs as they are)")
            raise HepnnError(msg)
        preprocessing = Preprocessor.load(run.preprocessing)
        embed_preprocessing(proto, preprocessing, nan_value=metadata["nan_value"])
    if task == "autoencoder":
        add_anomaly_score(proto, model, names[0])
    add_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    raw = _raw_batch(config, names)
    if raw is None:
        return {}
    diffs = {}
    if task == "autoencoder":
        diffs["anomaly_score"] = _check_anomaly_score(path, model, names[0], raw, run, preprocessing, tolerance)
    if not with_preprocessing:
        return diffs
    ort = require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = preprocessing.transform(raw)
    expected = np.asarray(model.predict({n: np.asarray(x[n], np.float32) for n in names}, verbose=0), np.float64)
    got = np.asarray(session.run(None, {i.name: np.asarray(raw[i.name], np.float32) for i in session.get_inputs()})[0])
    diff = float(np.max(np.abs(got.reshape(expected.shape) - expected))) if expected.size else 0.0
    if not diff <= tolerance:
        msg = (f"ONNX export with the preprocessing in the graph disagrees with Keras on raw test jets by {diff:.3g} "
               f"(> tolerance {tolerance:g}); no ONNX file written")
        ambiguous = _real_elements_at_pad_value(config, names, raw)
        if ambiguous:
            msg += (f". The graph takes a slot whose every raw feature equals the input's pad_value for padding, and "
                    f"the test jets have real elements like that ({ambiguous}), which hepnn's reader keeps: set "
                    "data.inputs.<name>.pad_value to a value no real element takes in every feature (e.g. -999) "
                    "and train again, or export without --with-preprocessing (the standardised inputs)")
        raise HepnnError(msg)
    return {**diffs, "test_data_raw": diff}


def _check_anomaly_score(path: Any, model: Any, name: str, raw: Mapping[str, np.ndarray], run: Any,
                         preprocessing: Any, tolerance: float) -> float:
    """Largest relative difference between the graph's ``anomaly_score`` and the Tagger's on raw test
    jets (fed raw with the preprocessing in the graph, standardised with ``preprocessing.json`` without);
    ``HepnnError`` above ``tolerance``."""
    ort = require("onnxruntime")
    prep = preprocessing
    if prep is None and run.preprocessing.is_file():
        prep = Preprocessor.load(run.preprocessing)
    x = np.asarray((prep.transform(dict(raw)) if prep is not None else raw)[name], np.float32)
    expected = np.asarray(anomaly_score(model, {name: x}), np.float64)
    feed = np.asarray(raw[name], np.float32) if preprocessing is not None else x
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = np.asarray(session.run([ANOMALY_OUTPUT], {name: feed})[0], np.float64).reshape(-1)
    diff = float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1.0))) if expected.size else 0.0
    if not diff <= tolerance:
        msg = (f"ONNX export of {run.model}: its anomaly_score output disagrees with the Tagger's score on raw test "
               f"jets by {diff:.3g} (relative, > tolerance {tolerance:g}); no ONNX file written")
        raise HepnnError(msg)
    return diff


def _real_elements_at_pad_value(config: Any, names: list[str], raw: Mapping[str, np.ndarray]) -> str:
    """Real sequence elements (the reader's mask) whose every raw feature equals the pad value, which
    the graph cannot tell from padding, per input in words (``"input 'cands': 77 of 183 real elements
    at pad_value 0 in every one of [...]"``); '' for none."""
    found = []
    for name in names:
        inp = config.data.inputs.get(name)
        mask = raw.get(f"{name}_mask")
        if inp is None or getattr(inp, "kind", None) != "sequence" or mask is None:
            continue
        x = np.asarray(raw[name], dtype=np.float32)
        at_pad = np.asarray(mask, dtype=bool) & np.all(x == np.float32(inp.pad_value), axis=-1)
        if at_pad.any():
            found.append(f"input {name!r}: {int(at_pad.sum())} of {int(np.sum(mask))} real elements at pad_value "
                         f"{inp.pad_value:g} in every one of {list(inp.variables)}")
    return "; ".join(found)


#: an autoencoder's outputs, also with the preprocessing in the graph (which then standardises the raw inputs inside)
AUTOENCODER_OUTPUT = ("output 0: reconstruction of the standardised inputs; output 'anomaly_score': the anomaly "
                      "score hepnn.Tagger gives, the mean over the features (and the real slots of a sequence) of "
                      "(standardised input - output)**2, the inputs standardised with preprocessing.json (inside "
                      "the graph with --with-preprocessing), not the raw inputs")


def deploy_metadata(config: Any, names: list[str], classes: list[str], task: str, shapes: Mapping[str, list],
                    with_preprocessing: bool) -> dict[str, Any]:
    """What a C++ caller needs to build the inputs and read the outputs (JSON-able)."""
    inputs = {}
    for name in names:
        inp = config.data.inputs[name]
        entry: dict[str, Any] = {"kind": inp.kind, "shape": shapes.get(name)}
        if inp.kind in ("flat", "sequence"):
            entry["variables"] = list(inp.variables)
        if inp.kind == "sequence":
            sort = inp.sort_by
            entry.update({
                "max_length": inp.max_length, "pad_value": inp.pad_value,
                "collection": inp.collection, "link": inp.link,
                "sort_by": None if sort is None else {"variable": sort.variable, "descending": sort.descending,
                                                       "absolute": sort.absolute},
            })
        if inp.kind == "image":
            entry.update({"pixels": inp.pixels, "extent": inp.extent, "channels": list(inp.channels),
                          "preprocess": list(inp.preprocess)})
        inputs[name] = entry
    return {
        "hepnn_version": __version__,
        "inputs": inputs,
        "input_names": list(names),
        "classes": list(classes),
        "task": task,
        "output": "sigmoid score of the last class" if task == "binary" else
                  ("softmax probabilities in class order" if task == "multiclass" else
                   AUTOENCODER_OUTPUT if task == "autoencoder" else "model output"),
        "preprocessing_in_graph": bool(with_preprocessing),
        # data.on_nan: replace -> the graph with the preprocessing replaces NaN and inf inputs by this value
        "nan_value": (float(config.data.nan_value)
                      if with_preprocessing and getattr(config.data, "on_nan", "error") == "replace" else None),
        "layout": config.data.layout,
        "jets": config.data.jets if config.data.layout == "per_event" else None,
    }
