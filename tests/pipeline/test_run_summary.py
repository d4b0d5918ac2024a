"""The end-of-run summary's text (pipeline/run_summary.py); its values are checked against a real run's artifacts in
tests/e2e/test_pipeline_generated.py and test_caching_and_cli.py."""
from pipeline.run_summary import RunSummary, render


def _summary(**changes) -> RunSummary:
    values = dict(pipeline_name="fusionctr-criteo", model="deepfm",
                  rows={"train": 3200, "eval": 400, "test": 380, "rejected": 20, "header_line": 1, "empty_line": 0},
                  rejected_rows_file="/out/rejected_rows.tsv",
                  eval_metrics={"auc": 0.71234, "logloss": 0.5, "calibration": 1.01, "example_count": 400.0},
                  champion_metrics={}, blessed=True, not_blessed_because=[], pushed_to="/out/serving_model/7",
                  next_commands=["python -m serving --model_base_path /out/serving_model"])
    return RunSummary(**{**values, **changes})


def test_a_blessed_run_says_what_it_ingested_how_good_it_is_and_where_it_went():
    assert render(_summary()).splitlines() == [
        "Run summary: fusionctr-criteo, model deepfm",
        "  rows      train 3,200, eval 400, test 380; rejected 20 (listed in /out/rejected_rows.tsv); skipped 1 header "
        "and 0 empty line(s)",
        "  eval      auc 0.7123, logloss 0.5000, calibration 1.0100, on 400 examples",
        "  blessing  blessed",
        "  pushed    /out/serving_model/7",
        "  next:",
        "    python -m serving --model_base_path /out/serving_model",
    ]


def test_a_model_that_was_not_blessed_says_which_threshold_failed_and_that_nothing_changed():
    lines = render(_summary(blessed=False, not_blessed_because=["auc 0.6000: below the champion's"],
                            champion_metrics={"auc": 0.7}, pushed_to=None)).splitlines()
    assert "  champion  auc 0.7000" in lines
    assert "  blessing  NOT blessed: auc 0.6000: below the champion's" in lines
    assert "  pushed    nothing: the served version is unchanged" in lines
    assert "  blessing  the run evaluated no model" in render(_summary(blessed=None, eval_metrics={})).splitlines()


def test_a_failed_threshold_is_said_in_words_with_both_models_values():
    import tensorflow_model_analysis as tfma

    from pipeline.run_summary import failure_text
    change = tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
        direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -0.001}))
    assert failure_text("auc", -0.1841, change, {"auc": 0.5051}, {"auc": 0.6892}) == (
        "auc 0.5051 is 0.1841 below the champion's 0.6892 (at most 0.001 allowed: --max-auc-drop)")
    floor = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.6}))
    assert failure_text("auc", 0.55, floor, {"auc": 0.55}, {}) == "auc 0.5500 is below the floor 0.6 (--min-auc)"
