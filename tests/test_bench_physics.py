"""bench/physics.py --quick: learning curves of every tagger, end to end on tiny generated samples."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_physics", ROOT / "bench" / "physics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pool_is_large_enough_for_the_largest_size():
    bench = load_bench()
    for size in (100, 5000, 20000, 80000):
        n = bench.pool_size(size)
        assert n % 100 == 0 and n * bench.SPLIT["train"] >= 1.04 * size


def test_targets_are_checked_per_size():
    bench = load_bench()
    row = lambda auc, rej: {"auc": auc, "rejection_50": rej}  # noqa: E731
    results = {"bdt": {"5": row(0.980, 100)}, "dense": {"5": row(0.979, 90)}, "deepsets": {"5": row(0.970, 50)},
               "particlenet": {"5": row(0.975, 80)}, "transformer": {"5": row(0.9731, 70)},
               "particlenet_fused": {"5": row(0.983, 130)}}
    t = bench.check_targets(results, [5])["5"]
    assert t["best"] == "particlenet_fused" and t["best_auc_minus_bdt"] == pytest.approx(0.003)
    assert t["best_rejection_over_bdt"] == pytest.approx(1.3) and t["beats_bdt"]
    assert t["graph_minus_deepsets"] == pytest.approx(0.005) and t["graph_beats_deepsets"]
    assert t["fused_minus_best_part"] == pytest.approx(0.004) and t["fused_at_least_parts"]
    results["particlenet_fused"]["5"] = row(0.981, 110)  # AUC +0.001 over the BDT, 1.1x its rejection
    assert not bench.check_targets(results, [5])["5"]["beats_bdt"]


@pytest.mark.slow
def test_quick_run_writes_sane_numbers(tmp_path):
    bench = load_bench()
    out = tmp_path / "out"
    report = bench.main(["--quick", "--cache", str(tmp_path / "cache"), "--out", str(out), "--jobs", "1"])
    saved = json.loads((out / "physics.json").read_text())
    assert saved["results"] == report["results"]
    assert set(saved["results"]) == set(bench.QUICK_MODELS) and saved["sizes"] == [150, 300]
    for name, per_size in saved["results"].items():
        assert sorted(per_size) == ["150", "300"], name
        for size, r in per_size.items():
            assert 0.5 < r["auc"] <= 1.0, (name, size, r)
            assert r["rejection_50"] is None or r["rejection_50"] > 1.0, (name, size, r)  # None: no background left
            assert r["n_test"] == saved["n_test"]  # one test set for every size
    assert set(saved["targets"]) == {"150", "300"}
    # one pool per class in the cache, named by seed and size (reused by the next run)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files == [f"qcd_seed12_n{bench.pool_size(300)}.root", f"top_seed11_n{bench.pool_size(300)}.root"]
    table = (out / "physics.md").read_text().splitlines()
    assert len(table) == 2 + len(bench.QUICK_MODELS) and "ParticleNet-Lite + jet features" in table[-1]
    assert (out / "physics.png").stat().st_size > 10_000
