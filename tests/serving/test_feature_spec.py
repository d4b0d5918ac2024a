"""The model server reads a model's raw features from its serving signature (serving/feature_spec.py)."""
import pytest
import tensorflow as tf

from serving.feature_spec import FeatureSpec, signature_feature_spec

RAW_SPEC = {
    "I1": tf.io.VarLenFeature(tf.int64),
    "C1": tf.io.VarLenFeature(tf.string),
    "price": tf.io.VarLenFeature(tf.float32),
    "feature": tf.io.FixedLenFeature([3], tf.int64),  # OptFusion TFRecords: one id per field
}


def _saved_signature(tmp_path, parse):
    module = tf.Module()
    module.serve = tf.function(parse, input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    return tf.saved_model.load(str(tmp_path)).signatures["serving_default"]


def test_the_parse_spec_inside_a_saved_model_is_recovered(tmp_path):
    def serve(examples):
        parsed = tf.io.parse_example(examples, RAW_SPEC)
        return {"probability": tf.cast(parsed["feature"][:, :1], tf.float32)}

    assert signature_feature_spec(_saved_signature(tmp_path, serve)) == {
        "I1": FeatureSpec("int64"), "C1": FeatureSpec("string"), "price": FeatureSpec("float"),
        "feature": FeatureSpec("int64", 3)}


def test_a_signature_that_parses_no_example_says_to_send_b64(tmp_path):
    def serve(examples):
        return {"probability": tf.zeros([tf.shape(examples)[0], 1])}

    with pytest.raises(ValueError, match=r'no ParseExampleV2 op\): send serialized tf.Examples as \{"b64"'):
        signature_feature_spec(_saved_signature(tmp_path, serve))
