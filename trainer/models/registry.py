"""Model names (as given to `--model`) -> Keras model builders with one signature."""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from trainer import contract
from trainer.config import ModelConfig, TrainConfig
from trainer.models import dcn, dcnv2, deepfm, dnn, fm, ipnn, lr, xdeepfm
from transform import features

keras = tf.keras

LogitBuilder = Callable[[tf.Tensor, int, ModelConfig, TrainConfig], tf.Tensor]

LOGIT_BUILDERS: dict[str, LogitBuilder] = {
    "lr": lr.build_lr_logit,
    "fm": fm.build_fm_logit,
    "dnn": dnn.build_dnn_logit,
    "deepfm": deepfm.build_deepfm_logit,
    "dcn": dcn.build_dcn_logit,
    "dcnv2": dcnv2.build_dcnv2_logit,
    "xdeepfm": xdeepfm.build_xdeepfm_logit,
    "ipnn": ipnn.build_ipnn_logit,
}


def build_model(model: ModelConfig, train: TrainConfig, num_fields: int, table_size: int) -> tf.keras.Model:
    """A Keras model {`feature`: int64 [batch, fields]} -> `probability` float32 [batch, 1]."""
    try:
        builder = LOGIT_BUILDERS[model.name]
    except KeyError:
        raise ValueError(f"unknown model {model.name!r}; choose one of {', '.join(LOGIT_BUILDERS)}") from None
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    logit = builder(ids, table_size, model, train)
    return keras.Model(inputs={features.FEATURE_KEY: ids}, outputs=contract.probability_output(logit), name=model.name)
