"""Checkpoint writes: a whole ``.keras`` model (hepnn before) against the variables as arrays (now).

Builds each model of the demo's quick configuration (``analyses/top_tagging``, ``--quick``)
as ``Trainer`` does (compiled, optimiser built), trains it one step so that its optimiser
holds moments, then writes its checkpoint both ways in turns, ``--repeats`` times each, in
one process: ``keras`` = ``RunDirectory.save_model`` (a ``.keras`` zip of JSON and HDF5, what
``Trainer`` wrote at every epoch), ``arrays`` = :func:`hepnn.training.checkpoint.save_variables`
(``last-NNNNNN.npz``). Printed per model: the number of variables (model + optimiser), the
best time of each and their ratio, and the time of restoring the arrays into a rebuilt model.
No data files are needed (random inputs of the shapes the quick configuration gives).

    python bench/checkpoint.py --repeats 7
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from hepnn.config import quick, variant  # noqa: E402
from hepnn.plugins import load_analysis  # noqa: E402
from hepnn.training.checkpoint import restore_variables, save_variables  # noqa: E402
from hepnn.training.rundir import RunDirectory  # noqa: E402
from hepnn.training.trainer import Trainer  # noqa: E402

ANALYSIS = Path(__file__).resolve().parent.parent / "analyses" / "top_tagging"
VARIANTS = "dense,cnn,gru,deepsets,efn,particlenet,transformer,autoencoder"


def _model(config, shapes: dict):
    trainer = Trainer(config, log=lambda *a: None)
    task, n_out = ("autoencoder", 1) if config.model.name == "autoencoder" else ("binary", 1)
    model = trainer.build_model(shapes, n_out, task, 0.0)
    trainer.compile(model, task, n_out)
    return model, task


def _shape(spec) -> tuple:
    """The tensor shape of one jet's input, as the reader makes it from the config."""
    if spec.kind == "flat":
        return (len(spec.variables),)
    if spec.kind == "image":
        return (spec.pixels, spec.pixels, len(spec.channels))
    return (spec.max_length, len(spec.variables))


def _inputs(model, n: int = 64) -> dict:
    rng = np.random.default_rng(0)
    return {t.name: rng.normal(size=(n, *t.shape[1:])).astype("float32") for t in model.inputs}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    analysis = load_analysis(str(ANALYSIS))
    analysis.config = quick(analysis.config)
    out = Path(tempfile.mkdtemp(prefix="hepnn_ckpt_bench_"))
    run = RunDirectory(out)
    print(f"{'model':<14} {'variables':>9} {'keras ms':>9} {'arrays ms':>9} {'ratio':>6} {'restore ms':>10}")
    for name in args.variants.split(","):
        config = variant(analysis.config, name)
        shapes = {n: _shape(config.data.inputs[n]) for n in config.model.inputs}
        model, task = _model(config, shapes)
        x = _inputs(model)
        y = x[next(iter(x))] if task == "autoencoder" else np.arange(len(next(iter(x.values())))) % 2
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        keras_s, arrays_s = [], []
        for i in range(args.repeats):
            t = time.perf_counter()
            run.save_model(model, out / f"last-{i:06d}.keras")
            keras_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            save_variables(out / f"last-{i:06d}.npz", model)
            arrays_s.append(time.perf_counter() - t)
        fresh, _ = _model(config, shapes)
        t = time.perf_counter()
        restore_variables(out / "last-000000.npz", fresh)
        restore_s = time.perf_counter() - t
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))
        n_vars = len(model.variables) + len(model.optimizer.variables)
        print(f"{name:<14} {n_vars:>9} {1e3 * min(keras_s):>9.1f} {1e3 * min(arrays_s):>9.1f} "
              f"{min(keras_s) / min(arrays_s):>6.1f} {1e3 * restore_s:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
