"""Line parsers on hand-written rows of each layout, including every kind of malformed row."""
import pytest

from transform import features, parsers
from transform.layouts import avazu

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


AVAZU_OK = "1000009418151094273,0,14102100,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22," \
           "a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79"


def test_avazu_row_drops_id_and_keeps_hour():
    row = features.parse_line("avazu", AVAZU_OK)
    assert "id" not in row
    assert row["label"] == 0 and row["hour"] == 14102100
    assert row["C1"] == "1005" and row["site_id"] == "1fbe01fe" and row["C21"] == "79"
    assert len(row) == 1 + 1 + 21


def test_avazu_header_is_skipped_only_on_the_first_line():
    header = ",".join(avazu.HEADER)
    assert features.is_header("avazu", header, 1)
    assert not features.is_header("avazu", header, 2)
    assert not features.is_header("avazu", AVAZU_OK, 1)
    assert not features.is_header("criteo", header, 1)


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


KDD_OK = "2\t3\t4298118681424644510\t7686695\t385\t3\t3\t1601\t5521\t7709\t576\t490234"


def test_kdd12_label_is_clicks_above_zero():
    row = features.parse_line("kdd12", KDD_OK)
    assert row["label"] == 1
    assert row["I1"] == "3" and row["I11"] == "490234"
    assert features.parse_line("kdd12", "0" + KDD_OK[1:])["label"] == 0


@pytest.mark.parametrize("line, reason", [
    ("-1" + KDD_OK[1:], "bad label: clicks is '-1', expected a count >= 0"),
    ("x" + KDD_OK[1:], "non-numeric integer field: clicks is 'x'"),
    (KDD_OK.rsplit("\t", 1)[0], "wrong column count: expected 12, got 11"),
])
def test_kdd12_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError) as error:
        features.parse_line("kdd12", line)
    assert str(error.value) == reason


FRAPPE_OK = "-1 451:1 4149:1 5041:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5150:1"


def test_frappe_tokens_are_categories():
    row = features.parse_line("frappe", FRAPPE_OK)
    assert row["label"] == 0 and row["user"] == "451" and row["city"] == "5150"
    assert features.parse_line("frappe", "1" + FRAPPE_OK[2:])["label"] == 1


@pytest.mark.parametrize("line, reason", [
    ("0" + FRAPPE_OK[2:], "bad label: label is '0', expected one of -1, 1"),
    (FRAPPE_OK.replace("4149:1", "4149"), "bad libFM token: item is '4149', expected id:value"),
    (FRAPPE_OK.replace(" 5150:1", ""), "wrong column count: expected 11, got 10"),
])
def test_frappe_malformed_rows(line, reason):
    with pytest.raises(parsers.RowError) as error:
        features.parse_line("frappe", line)
    assert str(error.value) == reason


def test_row_to_example_leaves_missing_values_out():
    example = parsers.row_to_example({"label": 1, "I1": None, "I2": -3, "C1": "ab", "C2": None})
    feature = example.features.feature
    assert set(feature) == {"label", "I2", "C1"}
    assert feature["I2"].int64_list.value == [-3]
    assert feature["C1"].bytes_list.value == [b"ab"]


def test_a_new_layout_is_one_spec_with_its_parser_registered_in_datasets(monkeypatch):
    def parse_pipes(line):
        label, a, b = line.split("|")
        return {"label": parsers.parse_label(label), "a": parsers.category(a), "b": parsers.category(b)}

    monkeypatch.setitem(features.DATASETS, "pipes", features.DatasetSpec(name="pipes", categorical_fields=("a", "b"),
                                                                          parse=parse_pipes))
    assert "pipes" in features.text_layouts()
    assert features.parse_line("pipes", "1|x|") == {"label": 1, "a": "x", "b": None}
    assert not features.is_header("pipes", "label|a|b", 1)  # no is_header: never a header
    with pytest.raises(parsers.RowError, match="^empty line$"):
        features.parse_line("pipes", "")


def test_a_layout_without_a_parser_is_not_a_text_log():
    with pytest.raises(ValueError, match="'tfrecord' is not a text log; choose one of criteo, avazu, kdd12, frappe"):
        features.parse_line("tfrecord", "1\t2")
