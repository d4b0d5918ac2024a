"""RawLogExampleGen: deterministic splits, kept rejected rows, and the rejected-fraction limit.

The component tests run the real component under LocalDagRunner with MLMD.
"""
import gzip
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


DIGITS = "expected ASCII digits with an optional sign"
BAD_LINES = {  # line content -> reason recorded
    b"1\t2\t3": "wrong column count: expected 40, got 3",
    b"3" + b"\t" * 39: "bad label: label is '3', expected one of 0, 1",
    b"1\tx" + b"\t" * 38: f"non-numeric integer field: I1 is 'x', {DIGITS}",
    b"\xff\xfe" + b"\t" * 39: "not valid UTF-8 at byte 0",
    b"1\tnan" + b"\t" * 38: f"non-numeric integer field: I1 is 'nan', {DIGITS}",
    b"0\t99999999999999999999" + b"\t" * 38: ("integer out of range: I1 is 99999999999999999999, outside int64 "
                                              "[-2^63, 2^63-1]"),  # ../shared/cases/01
}
BOM = "\ufeff".encode()
LONG_CATEGORY = "x" * 5000


@pytest.mark.e2e
def test_folder_input_keeps_every_row_and_lists_rejected_ones(tmp_path):
    data = tmp_path / "log"
    data.mkdir()
    plain = _synthetic_lines(600, seed=1)
    bad = list(BAD_LINES)
    # Bad lines at known positions (1-based line numbers 11, 22, 33, 44, 55, 66) of the plain file.
    for i, line in enumerate(bad):
        plain.insert(10 + 11 * i, line)
    plain[100:100] = [b"", b"  "]  # empty lines (lines 101 and 102): skipped and counted
    helpers.write_lines(str(data / "part-0.tsv"), plain)
    # Two gzip members one after another (`cat a.gz b.gz`), Windows line ends in the second.
    second = _synthetic_lines(400, seed=2)
    with open(data / "part-1.tsv.gz", "wb") as f:
        f.write(gzip.compress(b"".join(line + b"\n" for line in second[:150])))
        f.write(gzip.compress(b"".join(line + b"\r\n" for line in second[150:])))
    # A byte-order mark, a negative integer, a very long category, and no newline after the last line.
    odd = [b"0\t-7" + b"\t" * 13 + LONG_CATEGORY.encode() + b"\t" * 25, b"1" + b"\t" * 39]
    (data / "part-2.tsv").write_bytes(BOM + b"\n".join(odd))
    (data / "_SUCCESS").write_text("")  # side files of Spark/Hadoop writers are not data

    gen = RawLogExampleGen(input_base=str(data), log_format="criteo", max_rejected_fraction=0.01)
    metadata = helpers.run_components(str(tmp_path), [gen])

    store = lineage.open_store(metadata)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    props = examples.custom_properties
    assert props["rejected_count"].int_value == len(BAD_LINES)
    assert props["empty_line_count"].int_value == 2 and props["header_line_count"].int_value == 0
    counts = {split: props[f"{split}_count"].int_value for split in ("train", "eval", "test")}
    assert sum(counts.values()) == 1002
    written = []
    for split, count in counts.items():
        split_examples = helpers.read_examples(os.path.join(examples.uri, f"Split-{split}"))
        assert len(split_examples) == count
        written += split_examples
    odd_rows = [e.features.feature for e in written if "C1" in e.features.feature
                and e.features.feature["C1"].bytes_list.value[0] == LONG_CATEGORY.encode()]
    assert len(odd_rows) == 1 and odd_rows[0]["I1"].int64_list.value == [-7]
    assert odd_rows[0]["label"].int64_list.value == [0]  # the mark is gone: "\ufeff0" would be a bad label
    assert not any(any(v.endswith(b"\r") for v in e.features.feature["C26"].bytes_list.value) for e in written)
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


@pytest.mark.e2e
def test_truncated_gzip_fails_the_run_naming_the_file(tmp_path):
    """../shared/cases/02: a third of the rows lost without a word, before."""
    whole = gzip.compress(b"".join(line + b"\n" for line in _synthetic_lines(300, seed=4)))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "day-1.tsv.gz").write_bytes(whole[:len(whole) * 2 // 3])
    gen = RawLogExampleGen(input_base=str(tmp_path / "data"), log_format="criteo")
    with pytest.raises(Exception) as error:
        helpers.run_components(str(tmp_path / "run"), [gen])
    assert "day-1.tsv.gz: the .gz stream ends before its end marker" in str(error.value)
