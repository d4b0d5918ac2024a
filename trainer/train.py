"""TFX Trainer entry point (`run_fn`) for every Keras CTR model of the project."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from trainer import contract, data, export, tuning, warm_start
from trainer.config import TrainerConfig
from trainer.models import registry
from transform import features

keras = tf.keras
DATASET_KEY = "dataset"  # custom_config's dataset layout name (the field order of a warm start)


def fit_model(fn_args: tfx.components.FnArgs, config: TrainerConfig, log_dir: str
              ) -> tuple[tf.keras.Model, tf.keras.callbacks.History, tft.TFTransformOutput]:
    """Builds `config`'s model and fits it on the train split, early-stopping on eval AUC (the training contract,
    trainer/contract.py); TensorBoard logs go to `log_dir`. Returns the model (best epoch's weights), the Keras
    history and the Transform output."""
    keras.utils.set_random_seed(config.train.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)  # the Tuner sets no transform_output alias
    num_fields, table_size = data.id_space(tft_output)
    logging.info("Trainer: %s on %d fields, %d ids; %s", config.model.name, num_fields, table_size, config)

    train = data.make_dataset(fn_args.train_files, fn_args.data_accessor, tft_output, config.train.batch_size,
                              shuffle=True, seed=config.train.seed)
    evaluation = data.make_dataset(fn_args.eval_files, fn_args.data_accessor, tft_output,
                                   config.train.batch_size, shuffle=False)
    model = registry.build_model(config.model, config.train, num_fields, table_size)
    if config.train.warm_start and fn_args.base_model:
        vocabularies = warm_start.field_vocabularies(features.get_dataset(fn_args.custom_config[DATASET_KEY]),
                                                     tft_output)
        report = warm_start.warm_start(model, fn_args.base_model, vocabularies, table_size)
        tf.io.gfile.makedirs(log_dir)
        with tf.io.gfile.GFile(os.path.join(log_dir, warm_start.REPORT_FILE), "w") as f:
            json.dump(dataclasses.asdict(report), f, indent=1)
    contract.compile_model(model, config.train.learning_rate)
    model.summary(print_fn=logging.info)
    history = model.fit(
        train,
        validation_data=evaluation,
        epochs=config.train.epochs,
        verbose=1 if sys.stdout.isatty() else 2,
        callbacks=[
            contract.EarlyStopping(config.train.early_stopping_patience).keras_callback(),
            keras.callbacks.TensorBoard(log_dir=log_dir),
        ],
    )
    return model, history, tft_output


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the configured model (with the Tuner's best hyper-parameters, when a Tuner feeds the Trainer's
    `hyperparameters`) on the train split, early-stops on eval AUC, exports for serving; history.json (per-epoch
    metrics and the tuned values) goes to the model run folder."""
    tuned = tuning.tuned_values(fn_args.hyperparameters)
    config = TrainerConfig.from_custom_config(fn_args.custom_config).with_hyperparameters(tuned)
    model, history, tft_output = fit_model(fn_args, config, fn_args.model_run_dir)
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "history.json"), "w") as f:
        json.dump({**contract.history_record(history), "hyperparameters": tuned}, f, indent=1)
    export.export_serving_model(model, tft_output, fn_args.serving_model_dir)


def tuning_trial(fn_args: tfx.components.FnArgs, values: dict[str, Any], trial_dir: str) -> float:
    """A Tuner trial (trainer/tuner.py): `fit_model` with the trial's values applied; returns the best eval AUC.
    Nothing is exported."""
    config = TrainerConfig.from_custom_config(fn_args.custom_config).with_hyperparameters(values)
    _, history, _ = fit_model(fn_args, config, trial_dir)
    return tuning.trial_score(history.history[tuning.OBJECTIVE])
