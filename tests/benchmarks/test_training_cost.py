"""benchmarks/training_cost.py's tables and growth ratios on hand-made results (no training)."""
import pytest

from benchmarks import training_cost as tc


def _deep(step, rows, seconds_per_step, peak, imports=1000.0, ids=50_000, parameters=9_000_000, steps=200):
    return {"step": step, "rows": rows, "ids": ids, "parameters": parameters, "batch": 256, "steps": steps,
            "examples": 256 * steps, "seconds": seconds_per_step * steps,
            "examples_per_second": 256 / seconds_per_step, "seconds_per_step": seconds_per_step,
            "setup_seconds": 12.5, "peak_rss_mb": peak, "rss_after_imports_mb": imports}


def _gbdt(rows, seconds, peak):
    train_rows = rows * 8 // 10
    return {"step": "gbdt", "rows": rows, "ids": None, "parameters": None, "trees": 100, "kept_trees": 80,
            "max_depth": 6, "train_rows": train_rows, "read_seconds": 3.25, "steps": 1, "examples": train_rows,
            "seconds": seconds, "examples_per_second": train_rows / seconds, "seconds_per_step": seconds,
            "setup_seconds": 5.0, "peak_rss_mb": peak, "rss_after_imports_mb": 1200.0}


def _prepared(rows):
    seconds = {"RawLogExampleGen": 4.0, "StatisticsGen": 7.0, "SchemaGen": 0.1, "GbdtResidual": None,
               "Transform": 24.8}
    return {"rows": rows, "input_mb": 2.3, "wall_seconds": 60.0, "node_seconds": seconds}


def test_growth_gives_the_ratios_of_consecutive_sizes_per_step():
    results = [_deep("deepfm", 10_000, 0.10, 1500.0), _deep("deepfm", 100_000, 0.11, 1600.0),
               _deep("deepfm", 1_000_000, 0.22, 2200.0), _gbdt(10_000, 2.0, 1300.0), _gbdt(100_000, 20.0, 1700.0)]
    growth = tc.growth(results)
    assert [(g["step"], g["rows"]) for g in growth] == [
        ("deepfm", (10_000, 100_000)), ("deepfm", (100_000, 1_000_000)), ("gbdt", (10_000, 100_000))]
    first, second, gbdt = growth
    assert first["data"] == 10 and first["time"] == pytest.approx(1.1) and first["peak"] == pytest.approx(1600 / 1500)
    # peak over imports: 500 MB -> 600 MB -> 1,200 MB
    assert first["over_imports"] == pytest.approx(1.2) and second["over_imports"] == pytest.approx(2.0)
    assert second["time"] == pytest.approx(2.0)
    assert gbdt["time"] == pytest.approx(10.0) and gbdt["over_imports"] == pytest.approx(500 / 100)


def test_growth_leaves_out_failed_runs_and_a_base_without_growth():
    results = [_deep("search", 10_000, 3.0, 1000.0), {"step": "search", "rows": 100_000, "error": "exit 137"},
               _deep("search", 1_000_000, 4.5, 3000.0)]
    (only,) = tc.growth(results)
    assert only["rows"] == (10_000, 1_000_000) and only["time"] == pytest.approx(1.5)
    assert only["over_imports"] is None  # the smaller run's peak is its RSS after imports: no ratio to take


def test_the_tables_show_each_step_and_size_with_its_growth():
    results = {"prepared": {"10000": _prepared(10_000)},
               "steps": [_gbdt(10_000, 2.0, 1300.0), _deep("deepfm", 10_000, 0.125, 1500.0),
                         _deep("deepfm", 100_000, 0.25, 1750.0), {"step": "residual", "rows": 10_000,
                                                                 "error": "timed out"}]}
    text = tc.render(results, "python -m benchmarks.training_cost", {"preset": "small", "gbdt_trees": 100})
    assert text.startswith(tc.SECTION_HEADING + "\n")
    # DeepFM first (STEPS order), then the GBDT: 8,000 training rows in 2 s
    assert ("| DeepFM (Keras Trainer) | 10,000 | 50,000 | 9,000,000 | 200 steps of 256 | 2,048.0 | 0.125 | 12.5 | - "
            "| 1,500 | 1,000 | 500 |") in text
    assert ("| TF-DF GBDT | 10,000 | - | - | fit: 100 trees of depth 6 on 8,000 rows (kept 80) | 4,000.0 | 2.000 "
            "| 5.0 | 3.2 | 1,300 | 1,200 | 100 |") in text
    assert text.index("| DeepFM (Keras Trainer) | 10,000") < text.index("| TF-DF GBDT | 10,000")
    assert "| Residual stage (DeepFM on the GBDT offset) | 10,000 | failed (timed out) |" in text
    assert "| DeepFM (Keras Trainer) | 100,000 / 10,000 | 10x | 2.00x | 1.17x | 1.50x |" in text
    # the preparation's MLMD seconds; a cached node has none
    assert "| 10,000 | 2.3 | 4.0 | 7.0 | 0.1 | cached | 24.8 | 60.0 |" in text
    without_gbdt = {**_prepared(1_000_000), "node_seconds": {"RawLogExampleGen": 4.0}}
    lines = tc.ingestion_lines({"1000000": without_gbdt})
    assert "| 1,000,000 | 2.3 | 4.0 | - | - | - | - | 60.0 |" in lines
    assert "DeepFM (Keras Trainer) 200 (+5)" in text


def test_a_steps_override_is_what_the_section_says_was_measured():
    text = tc.render({"prepared": {}, "steps": []}, "cmd", {"preset": "small", "gbdt_trees": 5, "steps": 4,
                                                            "warmup": 1})
    assert "OptFusion search 4 (+1)" in text and "5 trees" in text


def test_the_dictionary_sweep_is_its_own_table_and_stays_out_of_the_steps_tables():
    sweep = {"step": tc.SWEEP, "rows": 100_000, "trees": 4, "max_depth": 6, "seconds": 60.0, "setup_seconds": 0.1,
             "peak_rss_mb": 1500.0, "rss_after_imports_mb": 900.0,
             "sweep": [{"max_vocab_count": 64, "dictionary_items": 1_600, "seconds_1_tree": 9.5, "seconds_4_trees": 9.8,
                        "seconds_per_tree": 0.1, "fixed_seconds": 9.4},
                       {"max_vocab_count": 2000, "dictionary_items": 40_000, "seconds_1_tree": 24.3,
                        "seconds_4_trees": 44.7, "seconds_per_tree": 6.8, "fixed_seconds": 17.5}]}
    steps = [_gbdt(10_000, 2.0, 1300.0), _gbdt(100_000, 200.0, 1700.0), sweep]
    text = tc.render({"prepared": {"1000000": _prepared(1_000_000)}, "steps": steps}, "cmd",
                     {"preset": "small", "gbdt_trees": 100, "gbdt_max_rows": 100_000})
    assert "| rows | max_vocab_count | dictionary items | 1-tree fit s | 4-tree fit s | s per tree | fixed s |" in text
    assert "| 100,000 | 64 | 1,600 | 9.5 | 9.8 | 0.10 | 9.4 |" in text
    assert "| 100,000 | 2,000 | 40,000 | 24.3 | 44.7 | 6.80 | 17.5 |" in text
    assert "TF-DF GBDT by dictionary size" not in text  # no row in the steps' table
    assert [g["rows"] for g in tc.growth(steps)] == [(10_000, 100_000)]
    assert "Above 100,000 rows the run is `--model deepfm`" in text
    assert tc.sweep_lines([_gbdt(10_000, 2.0, 1300.0)]) == []
