"""The whole pipeline on generated Criteo-layout data: LocalDagRunner, SQLite MLMD, real components."""
import pytest

from tests.e2e import checks

pytestmark = pytest.mark.e2e


def test_split_sizes(generated_run):
    checks.check_split_sizes(generated_run, expected_rows=4000)


def test_vocabulary_sizes_equal_an_independent_recount(generated_run):
    sizes = checks.check_vocabulary_sizes(generated_run)
    assert len(sizes) == 39


def test_pushed_model_scores_heldout_raw_rows_in_a_fresh_process(generated_run):
    assert checks.score_heldout(generated_run) > 0.6


def test_serving_signature_equals_transform_then_model(generated_run):
    checks.check_serving_equals_transform_then_model(generated_run)


def test_model_is_blessed_on_eval_metrics_and_pushed(generated_run):
    metrics = checks.check_blessed_and_pushed(generated_run)
    assert metrics["auc"] > 0.5
    assert 0.5 < metrics["calibration"] < 2.0
