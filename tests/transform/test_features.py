"""The layout registry (transform/features.py): a new layout is one spec; a layout without a parser is no
text log."""
import pytest

from transform import features, parsers


def test_a_new_layout_is_one_spec_with_its_parser_registered_in_datasets(monkeypatch):
    def parse_pipes(line):
        label, a, b = line.split("|")
        return {"label": parsers.parse_label(label), "a": parsers.category(a), "b": parsers.category(b)}

    monkeypatch.setitem(features.DATASETS, "pipes", features.DatasetSpec(name="pipes", categorical_fields=("a", "b"),
                                                                          parse=parse_pipes))
    assert "pipes" in features.text_layouts()
    assert features.parse_line("pipes", "1|x|") == {"label": 1, "a": "x", "b": None}
    assert not features.is_header("pipes", "label|a|b")  # no is_header: never a header
    with pytest.raises(parsers.RowError, match="^empty line$"):
        features.parse_line("pipes", "")


def test_a_layout_without_a_parser_is_not_a_text_log():
    with pytest.raises(ValueError, match="'tfrecord' is not a text log; choose one of criteo, avazu, kdd12, frappe"):
        features.parse_line("tfrecord", "1\t2")
