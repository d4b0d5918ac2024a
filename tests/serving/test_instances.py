"""TF Serving's REST request format into serialized tf.Examples, and every client error it answers 400 to
(serving/instances.py)."""
import base64

import pytest
import tensorflow as tf

from serving.feature_spec import FeatureSpec
from serving.instances import RequestError, examples_of, parse_body

SPEC = {"I1": FeatureSpec("int64"), "C1": FeatureSpec("string"), "price": FeatureSpec("float"),
        "feature": FeatureSpec("int64", 3)}


def _b64(**features) -> dict:
    """{"b64": ...} of a tf.Example with the given {name: (kind, values)}."""
    example = tf.train.Example()
    for name, (kind, values) in features.items():
        getattr(example.features.feature[name], kind).value.extend(values)
    return {"b64": base64.b64encode(example.SerializeToString()).decode()}


def _features(serialized: bytes) -> dict:
    """{name: list of values} of a serialized tf.Example."""
    example = tf.train.Example.FromString(serialized)
    return {name: list(getattr(f, f.WhichOneof("kind")).value) for name, f in example.features.feature.items()}


def test_rows_become_the_tf_examples_training_reads():
    rows = [{"I1": 3, "C1": "68fd1e64", "price": 1.5, "feature": [4, 5, 6]},
            {"I1": None, "C1": 1005},  # null: absent; a numeric categorical id is its text
            {}]  # every feature absent: all missing values, as a log row can be
    assert [_features(s) for s in examples_of({"instances": rows}, SPEC, 8)] == [
        {"I1": [3], "C1": [b"68fd1e64"], "price": [1.5], "feature": [4, 5, 6]}, {"C1": [b"1005"]}, {}]


def test_a_row_is_the_same_tf_example_as_the_pipeline_builds_from_the_log_line():
    from transform import features
    from transform.parsers import row_to_example
    spec = {**{f"I{i}": FeatureSpec("int64") for i in range(1, 14)}, **{f"C{i}": FeatureSpec("string")
                                                                       for i in range(1, 27)}}
    line = "\t".join(["1", "5", "", "-3", "12000000000"] + [""] * 9 + ["68fd1e64", "", "ü-utf8"] + ["a1"] * 23)
    row = features.parse_line("criteo", line)
    row.pop(features.LABEL_KEY)
    ours = examples_of({"instances": [row, row]}, spec, 8)  # the second one from the cache
    assert [tf.train.Example.FromString(s) for s in ours] == [row_to_example(row)] * 2
    assert examples_of({"instances": [{}]}, spec, 8) == [tf.train.Example().SerializeToString()]


def test_b64_examples_pass_through_unchanged_in_every_tf_serving_form():
    example = tf.train.Example()
    example.features.feature["C1"].bytes_list.value.append(b"never-seen-in-training")  # valid: the OOV id
    serialized = example.SerializeToString()
    encoded = base64.b64encode(serialized).decode()
    for body in ({"instances": [{"b64": encoded}]}, {"instances": [{"examples": {"b64": encoded}}]},
                 {"inputs": [{"b64": encoded}]}, {"inputs": {"examples": [{"b64": encoded}]}},
                 {"signature_name": "serving_default", "instances": [{"b64": encoded}]}):
        assert examples_of(body, SPEC, 8) == [serialized], body
    assert examples_of(parse_body(b'{"instances": [{"I1": 7}]}'), SPEC, 8) == examples_of(
        {"instances": [{"I1": 7}]}, SPEC, 8)


@pytest.mark.parametrize("body, message", [
    ({"instances": [{"I1": 1}, {"C40": "x"}]}, "instance 1: unknown feature 'C40'; the model reads C1, I1, feature, "
                                                "price"),
    ({"instances": [{"I1": "abc"}]}, "instance 0: feature 'I1' is an integer field, got \"abc\""),
    ({"instances": [{"I1": 2.5}]}, "instance 0: feature 'I1' is an integer field, got 2.5"),
    ({"instances": [{"I1": True}]}, "instance 0: feature 'I1' is an integer field, got true"),
    ({"instances": [{"I1": 2 ** 63}]}, "does not fit in int64"),
    ({"instances": [{"price": "cheap"}]}, "instance 0: feature 'price' is a float field"),
    ({"instances": [{"C1": {"a": 1}}]}, "instance 0: feature 'C1' is a categorical (text) field"),
    ({"instances": [{"C1": ["a", "b"]}]}, "instance 0: feature 'C1' takes one value, got 2"),
    ({"instances": [{"feature": [1, 2]}]}, "instance 0: feature 'feature' takes 3 values, got 2"),
    ({"instances": [{"b64": "not base64!"}]}, 'instance 0: "b64" is not valid base64'),
    # ../shared/cases/07: a tf.Example with two values for C1 failed the whole batch inside the model.
    ({"instances": [_b64(C1=("bytes_list", [b"a"])), _b64(C1=("bytes_list", [b"68fd1e64", b"05db9164"]))]},
     "instance 1: feature 'C1' takes one value, got 2"),
    ({"instances": [_b64(I1=("bytes_list", [b"3"]))]}, "instance 0: feature 'I1' is int64, got a bytes_list"),
    ({"instances": [_b64(feature=("int64_list", [1, 2]))]}, "instance 0: feature 'feature' takes 3 values, got 2"),
    ({"instances": [{"b64": base64.b64encode(b"\xff\xff").decode()}]}, "not a serialized tf.Example"),
    ({"instances": ["row"]}, 'instance 0: expected a row of features or {"b64": ...}'),
    ({"instances": []}, '"instances" is empty'),
    ({"instances": {"I1": 1}}, '"instances" must be a list, got dict'),
    ({"rows": []}, 'the request has no "instances"'),
    ({"signature_name": "predict", "instances": [{}]}, "unknown signature_name 'predict'"),
    ({"instances": [{}] * 9}, "9 instances is over the server's limit of 8 per request"),
])
def test_a_request_the_model_cannot_score_is_refused_naming_what_and_where(body, message):
    with pytest.raises(RequestError, match=_literal(message)):
        examples_of(body, SPEC, max_batch_size=8)


def test_a_body_that_is_not_a_json_object_is_refused():
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_body(b'{"instances": [')
    with pytest.raises(RequestError, match="must be a JSON object"):
        parse_body(b"[1, 2]")


def test_b64_features_the_model_does_not_read_are_ignored_as_its_parser_ignores_them():
    body = {"instances": [_b64(label=("int64_list", [1, 0]), I1=("int64_list", [4]), feature=("int64_list", []))]}
    assert _features(examples_of(body, SPEC, 8)[0]) == {"label": [1, 0], "I1": [4], "feature": []}


def test_a_model_without_a_parse_spec_takes_b64_only():
    with pytest.raises(RequestError, match="takes serialized tf.Examples only"):
        examples_of({"instances": [{"I1": 1}]}, {}, 8)


def _literal(text: str) -> str:
    import re
    return re.escape(text)
