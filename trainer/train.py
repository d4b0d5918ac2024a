"""TFX Trainer entry point (`run_fn`) for every Keras CTR model of the project."""
from __future__ import annotations

import json
import logging
import os
import sys

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from trainer import contract, data, export
from trainer.config import TrainerConfig
from trainer.models import registry

keras = tf.keras


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the configured model on the train split, early-stops on eval AUC, exports for serving."""
    config = TrainerConfig.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(config.train.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    num_fields, table_size = data.id_space(tft_output)
    logging.info("Trainer: %s on %d fields, %d ids; %s", config.model.name, num_fields, table_size, config)

    train = data.make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, config.train.batch_size,
                              shuffle=True, seed=config.train.seed)
    evaluation = data.make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output,
                                   config.train.batch_size, shuffle=False)
    model = registry.build_model(config.model, config.train, num_fields, table_size)
    contract.compile_model(model, config.train.learning_rate)
    model.summary(print_fn=logging.info)
    history = model.fit(
        train,
        validation_data=evaluation,
        epochs=config.train.epochs,
        verbose=1 if sys.stdout.isatty() else 2,
        callbacks=[
            contract.EarlyStopping(config.train.early_stopping_patience).keras_callback(),
            keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
        ],
    )
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "history.json"), "w") as f:
        json.dump(contract.history_record(history), f, indent=1)
    export.export_serving_model(model, tft_output, fn_args.serving_model_dir)
