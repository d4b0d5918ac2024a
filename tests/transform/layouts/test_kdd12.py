"""The KDD12 line parser on hand-written rows, including every kind of malformed row."""
import pytest

from transform import features, parsers

KDD_OK = "2\t3\t4298118681424644510\t7686695\t385\t3\t3\t1601\t5521\t7709\t576\t490234"


def test_kdd12_label_is_clicks_above_zero():
    row = features.parse_line("kdd12", KDD_OK)
    assert row["label"] == 1
    assert row["I1"] == "3" and row["I11"] == "490234"
    assert features.parse_line("kdd12", "0" + KDD_OK[1:])["label"] == 0


@pytest.mark.parametrize("line, reason", [
    ("-1" + KDD_OK[1:], "bad label: clicks is '-1', expected a count >= 0"),
    ("x" + KDD_OK[1:], "non-numeric integer field: clicks is 'x', expected ASCII digits with an optional sign"),
    (KDD_OK.rsplit("\t", 1)[0], "wrong column count: expected 12, got 11"),
])
def test_kdd12_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError) as error:
        features.parse_line("kdd12", line)
    assert str(error.value) == reason


def test_kdd12_unlabelled_lines_have_no_click_count():
    row = features.parse_line("kdd12", KDD_OK.split("\t", 1)[1], labelled=False)
    labelled = features.parse_line("kdd12", KDD_OK)
    del labelled["label"]
    assert row == labelled
