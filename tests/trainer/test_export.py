"""The one signature builder (trainer/export.py): raw tf.Examples in, the extra signatures served."""
import math

import numpy as np
import tensorflow as tf

from trainer import contract, export

keras = tf.keras


def test_example_signatures_serve_raw_examples_and_the_extra_signatures(tmp_path):
    ids = keras.Input(shape=(1,), dtype=tf.int64)
    logit = keras.layers.Lambda(lambda t: tf.cast(t, tf.float32) - 1.0)(ids)
    model = keras.Model(ids, contract.probability_output(logit))
    spec = {"x": tf.io.FixedLenFeature([1], tf.int64, default_value=[1])}

    def parsed(examples):
        return tf.io.parse_example(examples, spec)["x"]

    logit_of = keras.Model(ids, logit)
    signatures = export.example_signatures(model, lambda e: model(parsed(e)),
                                           extra={"logit": lambda e: {"logit": logit_of(parsed(e))}})
    assert set(signatures) == {export.SERVING_SIGNATURE, "logit"}  # no Transform: no transform_features
    model.save(str(tmp_path), save_format="tf", signatures=signatures)
    loaded = tf.saved_model.load(str(tmp_path))
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))})).SerializeToString() for v in (1, 2)]
    examples.append(b"")  # every field absent: its default
    served = loaded.signatures[export.SERVING_SIGNATURE](examples=tf.constant(examples))
    np.testing.assert_allclose(served[export.OUTPUT_KEY].numpy()[:, 0], [0.5, 1 / (1 + math.exp(-1)), 0.5], rtol=1e-6)
    np.testing.assert_allclose(loaded.signatures["logit"](examples=tf.constant(examples))["logit"].numpy()[:, 0],
                               [0.0, 1.0, 0.0])
