"""RawLogExampleGen: deterministic splits, kept rejected rows, and the rejected-fraction limit.

The component tests run the real component under LocalDagRunner with MLMD.
"""
import io
import os

import pytest

from components.raw_log_example_gen import executor
from components.raw_log_example_gen.component import RawLogExampleGen
from data_gen import synthetic_criteo
from pipeline import lineage
from tests import helpers


def test_split_is_deterministic_for_a_seed_and_close_to_8_1_1():
    buckets = [8, 9, 10]
    first = [executor.split_index(7, "a.tsv", n, buckets) for n in range(1, 20_001)]
    assert first == [executor.split_index(7, "a.tsv", n, buckets) for n in range(1, 20_001)]
    other_seed = [executor.split_index(8, "a.tsv", n, buckets) for n in range(1, 20_001)]
    assert sum(a != b for a, b in zip(first, other_seed)) > 5000
    fractions = [first.count(i) / len(first) for i in range(3)]
    # Binomial standard deviation at n = 20000 is <= 0.0029; allow 4 of them.
    assert fractions == pytest.approx([0.8, 0.1, 0.1], abs=0.012)


def test_rejected_fraction_limit_message_names_the_file_and_first_rows(tmp_path):
    path = tmp_path / "rejected.tsv"
    path.write_text(executor.REJECTED_HEADER + "\nlog.tsv\t3\tempty line\t\nlog.tsv\t9\tbad label: label is '7'\t7\n")
    executor.check_rejected_fraction({"train": 190, "eval": 8, "rejected": 2}, 0.01, str(path))
    with pytest.raises(executor.TooManyRejectedRowsError) as error:
        executor.check_rejected_fraction({"train": 90, "eval": 8, "rejected": 2}, 0.01, str(path))
    message = str(error.value)
    assert "2 of 100 rows (2.00%) are malformed, above the limit of 1.00%" in message
    assert str(path) in message and "log.tsv\t3\tempty line" in message and "log.tsv\t9\tbad label" in message


def _synthetic_lines(rows: int, seed: int) -> list[bytes]:
    out = io.StringIO()
    synthetic_criteo.write_synthetic_criteo(out, rows, seed)
    return [line.encode() for line in out.getvalue().splitlines()]


BAD_LINES = {  # line content -> reason recorded
    b"": "empty line",
    b"1\t2\t3": "wrong column count: expected 40, got 3",
    b"3" + b"\t" * 39: "bad label: label is '3', expected one of 0, 1",
    b"1\tx" + b"\t" * 38: "non-numeric integer field: I1 is 'x'",
    b"\xff\xfe" + b"\t" * 39: "not valid UTF-8 at byte 0",
}


@pytest.mark.e2e
def test_folder_input_keeps_every_row_and_lists_rejected_ones(tmp_path):
    data = tmp_path / "log"
    data.mkdir()
    plain = _synthetic_lines(600, seed=1)
    bad = list(BAD_LINES)
    # Bad lines at known positions (1-based line numbers 11, 22, 33, 44, 55) of the plain file.
    for i, line in enumerate(bad):
        plain.insert(10 + 11 * i, line)
    helpers.write_lines(str(data / "part-0.tsv"), plain)
    helpers.write_lines(str(data / "part-1.tsv.gz"), _synthetic_lines(400, seed=2))
    (data / "_SUCCESS").write_text("")  # side files of Spark/Hadoop writers are not data

    gen = RawLogExampleGen(input_base=str(data), log_format="criteo", max_rejected_fraction=0.01)
    metadata = helpers.run_components(str(tmp_path), [gen])

    store = lineage.open_store(metadata)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    props = examples.custom_properties
    assert props["rejected_count"].int_value == len(BAD_LINES)
    counts = {split: props[f"{split}_count"].int_value for split in ("train", "eval", "test")}
    assert sum(counts.values()) == 1000
    for split, count in counts.items():
        assert len(helpers.read_examples(os.path.join(examples.uri, f"Split-{split}"))) == count
    with open(os.path.join(examples.uri, executor.REJECTED_FILE), encoding="utf-8") as f:
        rejected = [line.rstrip("\n").split("\t", 3) for line in f]
    assert rejected[0] == ["file", "line", "reason", "row"]
    assert sorted((r[0], int(r[1]), r[2]) for r in rejected[1:]) == [
        ("part-0.tsv", 11 + 11 * i, reason) for i, reason in enumerate(BAD_LINES.values())]


@pytest.mark.e2e
def test_run_fails_when_too_many_rows_are_malformed(tmp_path):
    lines = _synthetic_lines(100, seed=3) + [b"1\t2\t3"] * 3
    path = helpers.write_lines(str(tmp_path / "log.tsv"), lines)
    gen = RawLogExampleGen(input_base=str(tmp_path), file_pattern="log.tsv", log_format="criteo",
                           max_rejected_fraction=0.01)
    with pytest.raises(Exception) as error:
        helpers.run_components(str(tmp_path / "run"), [gen])
    assert "3 of 103 rows (2.91%) are malformed, above the limit of 1.00%" in str(error.value)
    assert "log.tsv\t101\twrong column count: expected 40, got 3" in str(error.value)
    assert path.endswith("log.tsv")
