"""Serving export: every model of the project is a SavedModel that scores serialized raw tf.Examples.

`example_signatures` is the one builder of those signatures (baselines, OptFusion, ResFusion, the GBDT):
- `serving_default`: `examples` (string [batch], serialized tf.Examples of the dataset's layout, label absent, any
  field may be absent) -> `probability` (float32 [batch, 1]).
- `transform_features` (models trained on Transform's output): the same input, label included -> the transformed
  features (for TFMA and debugging).
- any extra signature a model adds (ResFusion's `stage_logits`, the GBDT's `logit`), on the same input.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from trainer.contract import PROBABILITY_KEY
from transform import features

keras = tf.keras

SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
OUTPUT_KEY = PROBABILITY_KEY
EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name="examples")
# Raw features a client never sends: the label, and ResFusion's offset (computed inside the model).
NOT_SERVING_INPUTS = (features.LABEL_KEY, features.GBDT_LOGIT_KEY)

ExamplesFn = Callable[[tf.Tensor], Mapping[str, tf.Tensor]]


def serving_feature_spec(tft_output: tft.TFTransformOutput) -> dict[str, tf.io.FixedLenFeature | tf.io.VarLenFeature]:
    """The raw feature spec a serving client's tf.Examples follow: Transform's raw spec without NOT_SERVING_INPUTS."""
    return {name: spec for name, spec in tft_output.raw_feature_spec().items() if name not in NOT_SERVING_INPUTS}


def example_signatures(holder: tf.Module, probability: Callable[[tf.Tensor], tf.Tensor],
                       tft_output: tft.TFTransformOutput | None = None,
                       extra: Mapping[str, ExamplesFn] | None = None) -> dict[str, Any]:
    """The SavedModel signatures of a model, each a function of `examples` (string [batch]).

    Args:
        holder: the object saved (the Keras model); Transform's layer is tracked on it so the graph is saved.
        probability: examples -> probability float32 [batch, 1].
        tft_output: Transform's output, when the model reads transformed features: adds `transform_features`.
        extra: more signatures by name, each examples -> {output name: tensor}.

    Returns:
        {signature name: concrete function}, for `model.save(..., signatures=...)`.
    """
    def serve(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_KEY: probability(examples)}

    functions: dict[str, ExamplesFn] = {SERVING_SIGNATURE: serve, **(extra or {})}
    if tft_output is not None:
        # Its own layer attribute (tensorflow/tfx#2920): serving parses without the label, this one with it.
        holder.tft_layer_eval = tft_output.transform_features_layer()
        eval_spec = tft_output.raw_feature_spec()

        def transform_features(examples: tf.Tensor) -> Mapping[str, tf.Tensor]:
            return holder.tft_layer_eval(tf.io.parse_example(examples, eval_spec))

        functions[TRANSFORM_SIGNATURE] = transform_features
    return {name: tf.function(fn, input_signature=[EXAMPLES_SPEC]).get_concrete_function()
            for name, fn in functions.items()}


def make_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput) -> dict[str, Any]:
    """The signatures of a model over Transform's `feature` ids ({`feature`: int64 [batch, fields]} ->
    probability): the raw tf.Examples go through the Transform graph inside the SavedModel."""
    model.tft_layer_inference = tft_output.transform_features_layer()
    serving_spec = serving_feature_spec(tft_output)

    def probability(examples: tf.Tensor) -> tf.Tensor:
        transformed = model.tft_layer_inference(tf.io.parse_example(examples, serving_spec))
        return model({features.FEATURE_KEY: transformed[features.FEATURE_KEY]})

    return example_signatures(model, probability, tft_output)


def export_serving_model(model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str) -> None:
    """Saves a model over Transform's ids as a SavedModel with make_signatures' signatures."""
    model.save(export_dir, save_format="tf", signatures=make_signatures(model, tft_output))
