"""serving/batch_score.py without a model: reading labelled, unlabelled, compressed and empty logs, and which
metrics are defined (../shared/cases/05 and 06). The scoring itself: tests/e2e/test_pipeline_generated.py."""
import gzip

import numpy as np
import pytest

from serving import batch_score
from transform.layouts import criteo

ROW = "\t".join(["5", "-1"] + [""] * 11 + ["68fd1e64"] + [""] * 25)  # 39 feature columns, no label


def test_labelled_unlabelled_and_compressed_logs_read_the_same_rows(tmp_path):
    labelled = tmp_path / "train.tsv"
    labelled.write_text(f"1\t{ROW}\n0\t{ROW}\n")
    unlabelled = tmp_path / "test.txt.gz"  # Criteo's test.txt layout, compressed
    unlabelled.write_bytes(gzip.compress(f"{ROW}\n\n{ROW}".encode()))
    rows, labels = batch_score.read_raw_rows(str(labelled), "criteo")
    np.testing.assert_array_equal(labels, [1.0, 0.0])
    unlabelled_rows, no_labels = batch_score.read_raw_rows(str(unlabelled), "criteo")
    assert no_labels is None and unlabelled_rows == rows
    assert rows[0]["I1"] == 5 and rows[0]["C1"] == "68fd1e64" and "label" not in rows[0]


def test_a_malformed_line_names_the_file_line_and_field_in_either_form(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text(f"{ROW}\n{ROW.replace('5', 'five', 1)}\n")
    with pytest.raises(ValueError, match=rf"^{path}, line 2: non-numeric integer field: I1 is 'five', .* \(the log has "
                                         "no label column, as its first data line\\)$"):
        batch_score.read_raw_rows(str(path), "criteo")
    path.write_text("1\t2\t3\n")
    with pytest.raises(ValueError, match=rf"^{path}, line 1: wrong column count: expected 40, got 3$"):
        batch_score.read_raw_rows(str(path), "criteo")


def test_metrics_say_why_they_are_undefined():
    p = np.array([0.2, 0.7, 0.4], np.float32)
    assert batch_score.describe_metrics(None, p) == (
        "auc=undefined logloss=undefined (the log has no labels: scores only)")
    assert batch_score.describe_metrics(np.zeros(0), p[:0]) == "auc=undefined logloss=undefined (no rows)"
    expected_logloss = -np.mean(np.log([0.8, 0.3, 0.6]))
    assert batch_score.describe_metrics(np.zeros(3), p) == (
        f"auc=undefined logloss={expected_logloss:.4f} (AUC needs both classes; the labels hold 3 negative(s) and 0 "
        "positive(s))")
    assert batch_score.describe_metrics(np.array([0.0, 1.0, 0.0]), p).startswith("auc=1.0000 logloss=")


def test_an_empty_log_is_no_rows(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    rows, labels = batch_score.read_raw_rows(str(tmp_path / "empty.tsv"), "criteo")
    assert rows == [] and labels is not None and len(labels) == 0
    assert len(criteo.INTEGER_FIELDS) + len(criteo.CATEGORICAL_FIELDS) == len(ROW.split("\t"))
