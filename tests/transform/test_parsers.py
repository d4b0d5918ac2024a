"""The shared parsing helpers (transform/parsers.py): a Row to a tf.Example."""
from transform import parsers


def test_row_to_example_leaves_missing_values_out():
    example = parsers.row_to_example({"label": 1, "I1": None, "I2": -3, "C1": "ab", "C2": None})
    feature = example.features.feature
    assert set(feature) == {"label", "I2", "C1"}
    assert feature["I2"].int64_list.value == [-3]
    assert feature["C1"].bytes_list.value == [b"ab"]
