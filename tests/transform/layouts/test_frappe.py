"""The Frappe (libFM) line parser on hand-written rows, including every kind of malformed row."""
import pytest

from transform import features, parsers

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


def test_extra_spaces_and_tabs_between_libfm_tokens_are_one_separator():
    spaced = "  " + FRAPPE_OK.replace(" ", " \t  ", 4) + " \t"
    assert features.parse_line("frappe", spaced) == features.parse_line("frappe", FRAPPE_OK)
