"""Benchmark ``hepnn tune``: trials per hour with 1 and 2 worker processes sharing a SQLite study.

Writes a small synthetic per-jet sample (flat jet variables, signal shifted in mass), then runs
``python -m hepnn tune`` with ``--workers 1`` and ``--workers K`` on the same search space and
reports wall time (process start-up included) and trials/hour.

    python bench/tune.py --trials 6 --jets 4000 --epochs 2 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

CONFIG = """
name: bench-tune
data:
  layout: per_jet
  files:
    - {{path: top.root, tree: jets, label: 1}}
    - {{path: qcd.root, tree: jets, label: 0}}
  inputs:
    jet: {{kind: flat, variables: [jet_mass, jet_tau21, jet_tau32, jet_nparticles]}}
model: {{name: dense, units: [16]}}
training: {{epochs: {epochs}, batch_size: 128, verbose: 0}}
"""

SPACE = """
model.units: [[16], [32], [16, 16]]
training.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
"""


def write_sample(folder: Path, n_jets: int, seed: int = 0) -> None:
    import uproot

    rng = np.random.default_rng(seed)
    for name, shift in (("top", 1.0), ("qcd", 0.0)):
        n = n_jets // 2
        data = {
            "jet_mass": rng.normal(100 + 60 * shift, 30, n),
            "jet_tau21": rng.uniform(0, 1, n) - 0.2 * shift,
            "jet_tau32": rng.uniform(0, 1, n) - 0.2 * shift,
            "jet_nparticles": rng.poisson(30 + 10 * shift, n).astype(np.int32),
        }
        with uproot.recreate(folder / f"{name}.root") as f:
            f["jets"] = data


def run(folder: Path, trials: int, workers: int, objective: str) -> dict:
    out = folder / f"tune_w{workers}"
    cmd = [sys.executable, "-m", "hepnn", "tune", str(folder / "config.yaml"), "--space", str(folder / "space.yaml"),
           "--trials", str(trials), "--out", str(out), "--sampler", "random", "--workers", str(workers),
           "--objective", objective, "--no-prune"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rows = list(csv.DictReader(open(out / "trials.csv")))
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    per_trial = np.mean([float(r["duration_s"]) for r in complete])
    return {"workers": workers, "trials": len(rows), "complete": len(complete), "wall_s": wall,
            "trials_per_hour": 3600 * len(complete) / wall, "mean_trial_s": per_trial}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--jets", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--objective", default="val_loss")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_sample(folder, args.jets)
        (folder / "config.yaml").write_text(textwrap.dedent(CONFIG.format(epochs=args.epochs)))
        (folder / "space.yaml").write_text(textwrap.dedent(SPACE))
        results = [run(folder, args.trials, w, args.objective) for w in (1, args.workers)]
    print(f"{'workers':>7} {'trials':>6} {'wall s':>7} {'trials/h':>9} {'mean trial s':>12}")
    for r in results:
        print(f"{r['workers']:>7} {r['complete']:>6} {r['wall_s']:>7.1f} {r['trials_per_hour']:>9.0f} {r['mean_trial_s']:>12.1f}")
    print(f"speed-up: {results[1]['trials_per_hour'] / results[0]['trials_per_hour']:.2f}x")


if __name__ == "__main__":
    main()
