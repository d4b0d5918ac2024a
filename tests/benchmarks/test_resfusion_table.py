"""benchmarks/resfusion_table.py: the statistics and the document section (no pipeline runs)."""
import math

import pytest

from benchmarks import report
from benchmarks import resfusion_table as bench


def test_mean_and_standard_error():
    mean, se = bench.mean_se([0.70, 0.72, 0.74])
    assert mean == pytest.approx(0.72)
    assert se == pytest.approx(0.02 / math.sqrt(3))
    assert math.isnan(bench.mean_se([0.7])[1])


def test_claims_an_ordering_only_beyond_two_standard_errors():
    seeds = [1, 2, 3]
    base = {"logloss": 0.5, "epochs": 2.0, "seconds": 10.0}
    results = {"criteo": {
        "GBDT": [{**base, "auc": a} for a in (0.70, 0.71, 0.72)],
        "DeepFM": [{**base, "auc": a} for a in (0.76, 0.70, 0.78)],
        "GBDTRes+NN (K=1)": [{**base, "auc": a} for a in (0.75, 0.76, 0.77)],
    }}
    text = bench.render(results, seeds, "test")
    assert "GBDTRes+NN vs GBDT: test AUC +0.0500 ± 0.0000 (better)" in text
    assert "GBDTRes+NN vs DeepFM: test AUC +0.0133" in text and "(no difference claimed)" in text
    assert "| GBDT | 0.7100 ± 0.0058 |" in text


def test_section_is_replaced_and_other_sections_kept(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkeep me\n")
    report.write_section(str(doc), bench.SECTION_HEADING + "\n\nfirst\n")
    report.write_section(str(doc), bench.SECTION_HEADING + "\n\nsecond\n")
    text = doc.read_text()
    assert "keep me" in text and "second" in text and "first" not in text
    assert text.count(bench.SECTION_HEADING) == 1


def test_every_entry_names_a_model_of_the_project():
    labels = {e.label for e in bench.available_entries()}
    assert {"GBDT", "DeepFM", "GBDTRes+NN (K=1)", "K=2", "K=3", "GBDT+LR", "NNres+GBDT"} <= labels
