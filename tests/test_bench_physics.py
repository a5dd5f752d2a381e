"""bench/physics.py --quick: learning curves of every tagger, end to end on tiny generated samples."""

from __future__ import annotations

import json

import pytest
from script_helpers import load_script


def load_bench():
    return load_script("bench/physics.py", "bench_physics")


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
               "particlenet_fused": {"5": row(0.983, 130)}, "pfn_fused": {"5": row(0.978, 85)}}
    t = bench.check_targets(results, [5])["5"]
    assert t["best"] == "particlenet_fused" and t["best_auc_minus_bdt"] == pytest.approx(0.003)
    assert t["best_rejection_over_bdt"] == pytest.approx(1.3) and t["beats_bdt"]
    assert t["graph_minus_deepsets"] == pytest.approx(0.005) and t["graph_beats_deepsets"]
    fused = t["fused"]["particlenet_fused"]
    assert fused["best_part"] == "dense" and fused["minus_best_part"] == pytest.approx(0.004) and fused["at_least_parts"]
    assert "pfn_fused" not in t["fused"]  # its part "pfn" was not run
    assert t["fused_at_least_parts"] and "disco" not in t
    results["particlenet_fused"]["5"] = row(0.981, 110)  # AUC +0.001 over the BDT, 1.1x its rejection
    assert not bench.check_targets(results, [5])["5"]["beats_bdt"]
    # DisCo: 1/JSD of the decorrelated model over the same model's; decorrelated models are never "best"
    results["dense"]["5"]["inv_jsd_50"] = 4.0
    results["dense_disco10"] = {"5": {**row(0.99, 500), "inv_jsd_50": 30.0}}
    t = bench.check_targets(results, [5])["5"]
    assert t["disco"]["dense_disco10"]["inv_jsd_ratio"] == pytest.approx(7.5) and t["disco_5x_jsd"]
    assert t["disco"]["dense_disco10"]["strength"] == 10 and t["best"] == "particlenet_fused"
    results["dense_disco10"]["5"]["inv_jsd_50"] = 19.0
    assert not bench.check_targets(results, [5])["5"]["disco_5x_jsd"]


def test_result_names_and_epoch_caps():
    bench = load_bench()
    assert bench.disco_name("dense", 10.0) == "dense_disco10" and bench.split_name("dense_disco10") == ("dense", 10.0)
    assert bench.split_name("pfn_disco0.5") == ("pfn", 0.5) and bench.split_name("pfn_fused") == ("pfn_fused", None)
    assert bench.label("dense_disco10") == "dense (jet features) + DisCo (λ=10)"
    assert bench.order(["dense_disco10", "particlenet_fused", "bdt", "dense"]) == [
        "bdt", "dense", "dense_disco10", "particlenet_fused"]
    settings = {"epochs": 15, "batch_size": 256, "min_steps": 4000}
    assert bench.epochs_for(80000, settings) == 15  # 625 steps per epoch: the cap is enough
    assert bench.epochs_for(5000, settings) == 100  # 40 steps per epoch: 100 epochs at most
    assert bench.epochs_for(20000, settings) == 26  # 157 steps per epoch
    assert bench.epochs_for(5000, {**settings, "min_steps": 0}) == 15


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One generated pool for the slow tests (pool_size(300) jets per class)."""
    return tmp_path_factory.mktemp("physics_cache")


@pytest.mark.slow
def test_quick_run_writes_sane_numbers(tmp_path, cache):
    bench = load_bench()
    out = tmp_path / "out"
    # every model at one size (two sizes, and the results reused between runs: the next test)
    report = bench.main(["--quick", "--cache", str(cache), "--out", str(out), "--jobs", "1", "--sizes", "300"])
    saved = json.loads((out / "physics.json").read_text())
    assert saved["results"] == report["results"]
    assert set(saved["results"]) == set(bench.QUICK_MODELS) and saved["sizes"] == [300]
    for name, per_size in saved["results"].items():
        assert sorted(per_size) == ["300"], name
        for size, r in per_size.items():
            assert 0.5 < r["auc"] <= 1.0, (name, size, r)
            assert r["rejection_50"] is None or r["rejection_50"] > 1.0, (name, size, r)  # None: no background left
            assert r["n_test"] == saved["n_test"]  # one test set for every size
    assert set(saved["targets"]) == {"300"}
    # one pool per class in the cache, named by seed and size (reused by the next run)
    files = sorted(p.name for p in cache.iterdir())
    assert files == [f"qcd_seed12_n{bench.pool_size(300)}.root", f"top_seed11_n{bench.pool_size(300)}.root"]
    table = (out / "physics.md").read_text().splitlines()
    assert len(table) == 2 + len(bench.QUICK_MODELS) and "ParticleNet-Lite + jet features" in table[-1]
    assert (out / "physics.png").stat().st_size > 10_000
    assert (out / "physics_sculpting.png").stat().st_size > 10_000  # every result carries the mass sculpting
    # None only where no background jet of the tiny test split passes the cut
    inv_jsd = [r["inv_jsd_50"] for per_size in saved["results"].values() for r in per_size.values()]
    assert all(v is None or v > 0 for v in inv_jsd) and sum(v is not None for v in inv_jsd) >= len(inv_jsd) // 2
    stored = sorted(p.name for p in (out / "results").iterdir())
    assert stored == sorted(f"{m}_300.json" for m in bench.QUICK_MODELS)


@pytest.mark.slow
def test_results_are_stored_per_model_and_size_and_reused(tmp_path, cache):
    """A benchmark split into runs: stored results are skipped, --force retrains, missing cells are 'not run'."""
    bench = load_bench()
    out = tmp_path / "out"
    common = ["--quick", "--cache", str(cache), "--out", str(out), "--jobs", "1", "--pool-for", "300"]
    bench.main([*common, "--models", "bdt,dense", "--sizes", "150"])
    dense_150 = out / "results" / "dense_150.json"
    first = dense_150.read_text()
    stamp = dense_150.stat().st_mtime_ns
    # a result scored on other samples never enters the report
    alien = json.loads(first) | {"model": "deepsets", "samples": {"top": "top_seed99_n1.root", "qcd": "qcd_seed98_n1.root"}}
    (out / "results" / "deepsets_150.json").write_text(json.dumps(alien))

    report = bench.main([*common, "--models", "dense", "--sizes", "150,300", "--decorrelate", "5"])
    assert dense_150.stat().st_mtime_ns == stamp and dense_150.read_text() == first  # reused, not retrained
    assert report["results"]["dense"]["150"] == json.loads(first)
    assert set(report["results"]) == {"bdt", "dense", "dense_disco5"} and report["sizes"] == [150, 300]
    assert sorted(report["results"]["bdt"]) == ["150"] and sorted(report["results"]["dense_disco5"]) == ["150", "300"]
    dense = report["results"]["dense"]
    assert dense["150"]["n_test"] == dense["300"]["n_test"] == report["n_test"]  # one test set for every size
    disco = report["targets"]["300"]["disco"]["dense_disco5"]
    assert disco["strength"] == 5
    assert disco["inv_jsd_ratio"] == pytest.approx(report["results"]["dense_disco5"]["300"]["inv_jsd_50"]
                                                   / report["results"]["dense"]["300"]["inv_jsd_50"], rel=1e-2)
    assert report["results"]["dense_disco5"]["300"]["decorrelate"] == 5
    assert "--decorrelate 5" in report["results"]["dense_disco5"]["300"]["command"]
    table = (out / "physics.md").read_text().splitlines()
    bdt_row = next(line for line in table if line.startswith("| BDT"))
    assert bdt_row.count("not run") == 2  # AUC and 1/εB at 300
    assert any(line.startswith("| dense (jet features) + DisCo (λ=5) | 300 |") for line in table)

    # --report only rebuilds the report from the store
    again = bench.main([*common, "--sizes", "150", "--report"])
    assert again["results"] == report["results"] and dense_150.stat().st_mtime_ns == stamp

    bench.main([*common, "--models", "dense", "--sizes", "150", "--force"])
    assert dense_150.stat().st_mtime_ns != stamp
    # a run whose networks read no jet-level features (only the constituents are loaded)
    assert 0.5 < bench.main([*common, "--models", "efn", "--sizes", "150"])["results"]["efn"]["150"]["auc"] <= 1
