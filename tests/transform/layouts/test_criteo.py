"""The Criteo line parser on hand-written rows, including every kind of malformed row."""
import pytest

from transform import features, parsers

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
    (CRITEO_OK.replace("\t5\t", "\tfive\t", 1), "non-numeric integer field: I1 is 'five'"),
    (CRITEO_OK.replace("\t3\t", "\t3.5\t", 1), "non-numeric integer field: I4 is '3.5'"),
])
def test_criteo_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError) as error:
        features.parse_line("criteo", line)
    assert str(error.value) == reason
