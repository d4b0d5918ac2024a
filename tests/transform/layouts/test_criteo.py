"""The Criteo line parser on hand-written rows, including every kind of malformed row."""
import pytest

from transform import features, parsers

DIGITS = "expected ASCII digits with an optional sign"
CRITEO_OK = "1\t5\t-1\t\t3" + "\t0" * 9 + "\t68fd1e64" + "\t" * 25  # C2..C26 empty


def test_criteo_row_values_and_missing():
    row = features.parse_line("criteo", CRITEO_OK)
    assert row["label"] == 1
    assert row["I1"] == 5 and row["I2"] == -1 and row["I3"] is None and row["I4"] == 3 and row["I13"] == 0
    assert row["C1"] == "68fd1e64" and row["C2"] is None and row["C26"] is None
    assert len(row) == 40


@pytest.mark.parametrize("line, reason", [
    ("", "empty line"),
    ("   ", "empty line"),
    ("1\t2\t3", "wrong column count: expected 40, got 3"),
    ("2" + CRITEO_OK[1:], "bad label: label is '2', expected one of 0, 1"),
    (CRITEO_OK.replace("\t5\t", "\tfive\t", 1), f"non-numeric integer field: I1 is 'five', {DIGITS}"),
    (CRITEO_OK.replace("\t3\t", "\t3.5\t", 1), f"non-numeric integer field: I4 is '3.5', {DIGITS}"),
    # What Python's int() would take but a log writer never means (../shared/cases/01 is the int64 one).
    (CRITEO_OK.replace("\t5\t", "\t1_000\t", 1), f"non-numeric integer field: I1 is '1_000', {DIGITS}"),
    (CRITEO_OK.replace("\t5\t", "\t 5\t", 1), f"non-numeric integer field: I1 is ' 5', {DIGITS}"),
    (CRITEO_OK.replace("\t5\t", "\t\u0663\t", 1), f"non-numeric integer field: I1 is '\u0663', {DIGITS}"),
    (CRITEO_OK.replace("\t5\t", "\tnan\t", 1), f"non-numeric integer field: I1 is 'nan', {DIGITS}"),
    (CRITEO_OK.replace("\t5\t", "\t-inf\t", 1), f"non-numeric integer field: I1 is '-inf', {DIGITS}"),
    (CRITEO_OK.replace("\t5\t", "\t9223372036854775808\t", 1),
     "integer out of range: I1 is 9223372036854775808, outside int64 [-2^63, 2^63-1]"),
    (CRITEO_OK.replace("\t-1\t", "\t-9223372036854775809\t", 1),
     "integer out of range: I2 is -9223372036854775809, outside int64 [-2^63, 2^63-1]"),
])
def test_criteo_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError) as error:
        features.parse_line("criteo", line)
    assert str(error.value) == reason


def test_criteo_int64_bounds_and_signs_are_kept():
    row = features.parse_line("criteo", CRITEO_OK.replace("\t5\t-1\t", "\t9223372036854775807\t-9223372036854775808\t"))
    assert row["I1"] == 2 ** 63 - 1 and row["I2"] == -(2 ** 63)
    assert parsers.row_to_example(row).features.feature["I2"].int64_list.value == [-(2 ** 63)]
    assert features.parse_line("criteo", CRITEO_OK.replace("\t5\t", "\t+5\t", 1))["I1"] == 5


def test_criteo_unlabelled_test_txt_layout():
    row = features.parse_line("criteo", CRITEO_OK[2:], labelled=False)
    labelled = features.parse_line("criteo", CRITEO_OK)
    del labelled["label"]
    assert row == labelled
    with pytest.raises(parsers.RowError, match="wrong column count: expected 39, got 40"):
        features.parse_line("criteo", CRITEO_OK, labelled=False)
    with pytest.raises(ValueError, match="'frappe' lines always hold a label"):
        features.parse_line("frappe", "1 1:1", labelled=False)
