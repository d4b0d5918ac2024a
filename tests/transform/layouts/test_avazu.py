"""The Avazu line parser and header rule on hand-written rows, including every kind of malformed row."""
import pytest

from transform import features, parsers
from transform.layouts import avazu

AVAZU_OK = "1000009418151094273,0,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22," \
           "a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79"


def test_avazu_row_drops_id_and_keeps_hour():
    row = features.parse_line("avazu", AVAZU_OK)
    assert "id" not in row
    assert row["label"] == 0 and row["hour"] == 14102100
    assert row["C1"] == "1005" and row["site_id"] == "1fbe01fe" and row["C21"] == "79"
    assert len(row) == 1 + 1 + 21


def test_avazu_header_rows_labelled_unlabelled_and_quoted():
    header = ",".join(avazu.HEADER)
    assert features.is_header("avazu", header)
    assert features.is_header("avazu", ",".join(h for h in avazu.HEADER if h != "click"))  # test.csv's header
    assert features.is_header("avazu", ",".join(f'"{h}"' for h in avazu.HEADER))
    assert not features.is_header("avazu", AVAZU_OK)
    assert not features.is_header("criteo", header)


@pytest.mark.parametrize("line, reason", [
    (AVAZU_OK.replace(",0,14102100", ",yes,14102100"), "bad label: click is 'yes', expected one of 0, 1"),
    (AVAZU_OK.replace("14102100", "14102124"), "bad hour: hour is '14102124', expected YYMMDDHH"),
    (AVAZU_OK.replace("14102100", "1410210"), "bad hour: hour is '1410210', expected YYMMDDHH"),
    (AVAZU_OK.replace("14102100", "14133100"), "bad hour: hour is '14133100', expected YYMMDDHH"),
    (AVAZU_OK + ",extra", "wrong column count: expected 24, got 25"),
])
def test_avazu_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError, match="^" + reason.replace("(", r"\(") + "$"):
        features.parse_line("avazu", line)


def test_avazu_quoted_fields_parse_as_unquoted():
    quoted = ",".join(f'"{c}"' for c in AVAZU_OK.split(","))
    assert features.parse_line("avazu", quoted) == features.parse_line("avazu", AVAZU_OK)
    with_comma = AVAZU_OK.replace("1fbe01fe", '"site, with comma"')
    assert features.parse_line("avazu", with_comma)["site_id"] == "site, with comma"


def test_avazu_unlabelled_test_layout_has_no_click_column():
    columns = AVAZU_OK.split(",")
    row = features.parse_line("avazu", ",".join(columns[:1] + columns[2:]), labelled=False)
    labelled = features.parse_line("avazu", AVAZU_OK)
    del labelled["label"]
    assert row == labelled
    with pytest.raises(parsers.RowError, match="wrong column count: expected 23, got 24"):
        features.parse_line("avazu", AVAZU_OK, labelled=False)
