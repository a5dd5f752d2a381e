"""Training with and without hepnn's malloc settings (``hepnn._memory``): page faults and time.

Trains variants of the demo (``hepnn run analyses/top_tagging --quick``) on its generated
sample (made once into ``--data`` and reused), each setting in its own process, the settings
taking turns ``--rounds`` times: ``glibc`` (``HEPNN_KEEP_MALLOC=1``: glibc's own thresholds),
``reader`` (the reader's two thresholds only, as training had them before the top pad) and
``hepnn`` (what ``Trainer.fit`` sets: the reader's thresholds and a 64 MiB top pad). Printed
per variant: wall, user and system seconds, minor page faults and peak memory of the fit, and
the wall-time ratio to ``glibc`` of the best round.

    python bench/allocator.py --variants particlenet,transformer,cnn --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hepnn._memory import _M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD, _READER, _USER_SETTINGS  # noqa: E402

ANALYSIS = Path(__file__).resolve().parent.parent / "analyses" / "top_tagging"
SETTINGS = {
    "glibc": {"HEPNN_KEEP_MALLOC": "1"},
    # the reader's thresholds, set by hand so that hepnn leaves them (and adds no pad)
    "reader": {"MALLOC_MMAP_THRESHOLD_": str(dict(_READER)[_M_MMAP_THRESHOLD]),
               "MALLOC_TRIM_THRESHOLD_": str(dict(_READER)[_M_TRIM_THRESHOLD])},
    "hepnn": {},
}

CHILD = r"""
import dataclasses, json, resource, sys, time
from pathlib import Path
from hepnn.config import quick, variant
from hepnn.io import load
from hepnn.plugins import load_analysis
from hepnn.training.trainer import Trainer

data_dir, out, names = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
analysis = load_analysis(sys.argv[4])
analysis.config = quick(analysis.config)
analysis.config = dataclasses.replace(analysis.config, data=dataclasses.replace(analysis.config.data, directory=data_dir))
data = load(variant(analysis.config, names[0]), analysis=analysis)
for name in names:
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    Trainer(variant(analysis.config, name), analysis=analysis, log=lambda *a: None).fit(out / name, data=data)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"variant": name, "wall": time.perf_counter() - start, "user": after.ru_utime - before.ru_utime,
                      "sys": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt,
                      "peak_mb": after.ru_maxrss / 1024}), flush=True)
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="particlenet,transformer,cnn")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", default="/tmp/hepnn_allocator_bench", help="sample cache and run folders")
    args = parser.parse_args(argv)
    root = Path(args.data)
    data_dir = root / "data"
    if not (data_dir / "qcd.root").is_file():
        subprocess.run([sys.executable, "-m", "hepnn", "run", str(ANALYSIS), "--quick", "--steps", "generate",
                        "--out", str(root), "--force", "--quiet"], check=True)
    env = {k: v for k, v in os.environ.items() if k not in _USER_SETTINGS}
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.rounds):
        for setting, extra in SETTINGS.items():
            out = root / f"runs_{setting}_{r}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            proc = subprocess.run([sys.executable, "-c", CHILD, str(data_dir), str(out), args.variants, str(ANALYSIS)],
                                  env={**env, **extra}, capture_output=True, text=True, check=True)
            for line in proc.stdout.splitlines():
                row = json.loads(line)
                rows.setdefault((row["variant"], setting), []).append(row)
                print(f"round {r + 1} {setting:6s} {row['variant']:12s} wall {row['wall']:6.1f} s  user "
                      f"{row['user']:6.1f}  sys {row['sys']:5.1f}  faults {row['faults']:>9,d}  "
                      f"peak {row['peak_mb']:6.0f} MB", flush=True)
    print("\nbest round per variant (wall s; ratio to glibc; minor faults of that round)")
    for name in args.variants.split(","):
        best = {s: min(rows[(name, s)], key=lambda row: row["wall"]) for s in SETTINGS}
        cells = "  ".join(f"{s} {b['wall']:5.1f} s ({b['wall'] / best['glibc']['wall']:.2f}x, {b['faults']:,d})"
                          for s, b in best.items())
        print(f"{name:12s} {cells}")


if __name__ == "__main__":
    main()
