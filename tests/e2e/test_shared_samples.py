"""The pipeline on the real shared samples (../shared/data, or FUSIONCTR_DATA_DIR).

Each sample's own test file is never given to the pipeline: the pushed model scores it, raw, in a
fresh process. The Criteo sample runs OptFusion-Hard (raw log -> search -> retrain -> evaluation -> push), the
others DeepFM (conftest.SAMPLE_MODELS). Without the data these tests skip; `FUSIONCTR_REQUIRE_DATA=1` turns that
into failure.
"""
import json
import os

import pytest

from components.raw_log_example_gen.component import RawLogExampleGen
from pipeline import lineage, run_summary
from tests import helpers
from tests.e2e import checks
from tests.e2e.conftest import sample_files

pytestmark = pytest.mark.e2e

SAMPLES = ("criteo", "avazu", "frappe")


def _data_rows(run) -> int:
    rows = 0
    for path in run.input_files:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        header = run.dataset == "avazu" and lines and lines[0].startswith(b"id,click")
        rows += len(lines) - int(bool(header))
    return rows


@pytest.mark.parametrize("name", SAMPLES)
def test_split_sizes_and_vocabularies(sample_run, name):
    run = sample_run(name)
    checks.check_split_sizes(run, expected_rows=_data_rows(run))
    checks.check_vocabulary_sizes(run)


@pytest.mark.parametrize("name", SAMPLES)
def test_pushed_model_scores_the_samples_own_test_file(sample_run, name):
    run = sample_run(name)
    checks.check_blessed_and_pushed(run)
    assert checks.score_heldout(run) > 0.6


@pytest.mark.parametrize("name", SAMPLES)
def test_serving_signature_equals_transform_then_model(sample_run, name):
    checks.check_serving_equals_transform_then_model(sample_run(name))


@pytest.mark.parametrize("name", SAMPLES)
def test_make_run_prints_a_line_per_step_and_ends_with_the_summary(sample_run, name):
    """Issue 14, the first run as a newcomer sees it: `make run` on a clone that is set up prints fewer than 100
    lines (make's command, a line as each step starts and ends, the training epochs, the summary) and
    ends with the run summary. On a fresh clone setup adds make's `./setup.sh` and at most 5 lines of its own
    (tests/test_setup_script.py): still fewer than 120."""
    run = sample_run(name)
    printed = run.console.splitlines()
    assert len(printed) < 100, run.console
    with open(os.path.join(run.output_dir, run_summary.SUMMARY_FILE)) as f:
        summary = run_summary.RunSummary(**json.load(f))
    full_log = f"  full log: {os.path.join(run.output_dir, 'run.log')}"
    assert run.console.rstrip("\n").endswith(f"{run_summary.render(summary)}\n{full_log}"), printed[-20:]
    assert summary.blessed and summary.pushed_to  # a first run is blessed against the floor alone, and pushed
    for node in ("RawLogExampleGen", "Transform", "Evaluator", "Pusher"):
        assert any(line.endswith(f" {node} ...") for line in printed), node
        assert any(f" {node} done in " in line for line in printed), node
    assert not [line for line in printed if "FutureWarning" in line or "Tables initialized" in line]


def test_injected_bad_lines_are_counted_on_a_copy_of_the_criteo_sample(tmp_path):
    train, _ = sample_files("criteo")
    with open(train[0], "rb") as f:
        lines = f.read().splitlines()[:2000]
    rows = len(lines)
    bad = [b"", b"1\t2", b"x" + lines[0][1:]]  # an empty line is skipped and counted, not rejected
    for i, line in enumerate(bad):
        lines.insert(100 * (i + 1), line)
    helpers.write_lines(str(tmp_path / "copy.tsv"), lines)
    gen = RawLogExampleGen(input_base=str(tmp_path), file_pattern="copy.tsv", log_format="criteo")
    store = lineage.open_store(helpers.run_components(str(tmp_path / "run"), [gen]))
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    assert examples.custom_properties["rejected_count"].int_value == 2
    assert examples.custom_properties["empty_line_count"].int_value == 1
    assert sum(examples.custom_properties[f"{split}_count"].int_value for split in ("train", "eval", "test")) == rows
    with open(os.path.join(examples.uri, "rejected_rows.tsv")) as f:
        reasons = [line.split("\t")[1:3] for line in f.read().splitlines()[1:]]
    assert sorted(reasons, key=lambda r: int(r[0])) == [
        ["201", "wrong column count: expected 40, got 2"], ["301", "bad label: label is 'x', expected one of 0, 1"]]
