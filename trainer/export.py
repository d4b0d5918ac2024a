"""Serving export: a SavedModel that scores serialized raw tf.Examples with the Transform graph inside.

Signatures:
- `serving_default`: `examples` (string [batch], serialized raw tf.Examples, any field may be absent)
  -> `probability` (float32 [batch, 1]).
- `transform_features`: the same input -> the transformed features (for TFMA and debugging).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from transform import features

keras = tf.keras

SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
OUTPUT_KEY = "probability"
# Raw features a client never sends: the label, and ResFusion's offset (computed inside the model).
NOT_SERVING_INPUTS = (features.LABEL_KEY, features.GBDT_LOGIT_KEY)


def serving_feature_spec(tft_output: tft.TFTransformOutput) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    return {name: spec for name, spec in tft_output.raw_feature_spec().items() if name not in NOT_SERVING_INPUTS}


def make_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput
                    ) -> dict[str, tf.types.experimental.ConcreteFunction]:
    # Two separate layer attributes (tensorflow/tfx#2920): serving parses without the label, eval with it.
    model.tft_layer_inference = tft_output.transform_features_layer()
    model.tft_layer_eval = tft_output.transform_features_layer()
    serving_spec = serving_feature_spec(tft_output)
    eval_spec = tft_output.raw_feature_spec()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer_inference(tf.io.parse_example(examples, serving_spec))
        return {OUTPUT_KEY: model({features.FEATURE_KEY: transformed[features.FEATURE_KEY]})}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer_eval(tf.io.parse_example(examples, eval_spec))

    return {SERVING_SIGNATURE: serve.get_concrete_function(),
            TRANSFORM_SIGNATURE: transform_features.get_concrete_function()}


def export_serving_model(model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str) -> None:
    model.save(export_dir, save_format="tf", signatures=make_signatures(model, tft_output))
