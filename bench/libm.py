"""hepnn's log, asinh and atan2 (:mod:`hepnn.io.libm`) against numpy's, in one run.

For each function: nanoseconds per value of numpy's and of hepnn's compiled loop (best of
``--repeats``, one thread, float64), their ratio, the share of values where the two differ in the
last bit, and, where the machine's long double is extended precision, the largest error of each
in ulps against it.

    python bench/libm.py --values 4000000 --repeats 7
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np


def _best(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _ulps(got: np.ndarray, exact: np.ndarray) -> float:
    finite = np.isfinite(exact)
    err = np.abs((got[finite].astype(np.longdouble) - exact[finite]) / np.spacing(np.abs(exact[finite].astype(np.float64))))
    return float(err.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from hepnn.io import libm

    rng = np.random.default_rng(1)
    n = args.values
    # what the reader computes: eta of pz / pt, phi of (px, py), logs of momenta and fractions
    ratio = rng.normal(size=n) * np.exp(rng.uniform(-3, 3, n))
    px, py = rng.normal(size=(2, n)) * 30
    momentum = np.exp(rng.uniform(-6, 7, n))
    extended = np.finfo(np.longdouble).nmant >= 63
    cases = {
        "log": (lambda: np.log(momentum), lambda: libm.log(momentum), lambda: np.log(momentum.astype(np.longdouble))),
        "asinh": (lambda: np.arcsinh(ratio), lambda: libm.asinh(ratio), lambda: np.arcsinh(ratio.astype(np.longdouble))),
        "atan2": (lambda: np.arctan2(py, px), lambda: libm.atan2(py, px),
                  lambda: np.arctan2(py.astype(np.longdouble), px.astype(np.longdouble))),
    }
    print(json.dumps({"machine": platform.processor() or platform.machine(), "numpy": np.__version__, "values": n}))
    for name, (theirs, ours, exact) in cases.items():
        t_numpy, t_hepnn = _best(theirs, args.repeats), _best(ours, args.repeats)
        a, b = theirs(), ours()
        row = {
            "function": name,
            "numpy_ns": round(t_numpy / n * 1e9, 2),
            "hepnn_ns": round(t_hepnn / n * 1e9, 2),
            "numpy_over_hepnn": round(t_numpy / t_hepnn, 2),
            "differ_from_numpy": round(float(np.mean(a != b)), 4),
        }
        if extended:
            reference = exact()
            row["max_ulp_numpy"], row["max_ulp_hepnn"] = round(_ulps(a, reference), 3), round(_ulps(b, reference), 3)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
