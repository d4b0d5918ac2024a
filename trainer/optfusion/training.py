"""The OptFusion search and retrain steps, on Transform's output (used by components/optfusion's executors).

search: builds the supernet (trainer.optfusion.network) under the chosen precision and device strategy, trains it
    with the grouped Adam (emb / nn / arch, one gradient per batch) with early stopping on validation AUC, derives
    the architecture from the best epoch and writes it, with the supernet's weights, into an architecture folder
    (`write_architecture_dir`); optionally exports the supernet for serving.
retrain: reads that folder, builds only the derived network (Hard or Soft), warm-starts it from the supernet
    (or not), trains it the same way (two groups: emb, nn) and exports it with the raw-tf.Example serving signature
    of trainer/export.py.

Architecture folder layout (the OptFusionArchitecture artifact's payload):
    architecture.json          Architecture.to_json: 0/1 connection matrix, op logits, chosen ops, best_val_auc
    supernet/config.json       how to rebuild the supernet: table_size, num_fields, embedding_dim, num_blocks, ...
    supernet/weights.*         the best epoch's supernet weights (a TF checkpoint, Keras save_weights format)
    search_result.json         best epoch, its validation AUC/logloss, the per-epoch history, examples/s
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from trainer import contract, data, export, tuning
from trainer.layers.field_embedding import REFERENCE_INIT_STD
from trainer.optfusion import fit, network, optim
from trainer.optfusion.network import Architecture
from trainer.optfusion.settings import TRIAL_SETTINGS_KEY, RetrainSettings, RunSettings, SearchSettings
from transform import features

keras = tf.keras

ARCHITECTURE_FILE = "architecture.json"
SUPERNET_DIR = "supernet"
SUPERNET_CONFIG_FILE = "config.json"
SUPERNET_WEIGHTS = "weights"
SEARCH_RESULT_FILE = "search_result.json"
RESULT_FILE = "result.json"


@dataclasses.dataclass(frozen=True)
class SupernetConfig:
    """What rebuilding the searched supernet (for weight inheritance) needs."""

    table_size: int
    num_fields: int
    embedding_dim: int
    num_blocks: int = network.NUM_BLOCKS
    beta_init: float = 0.5
    emb_init_std: float = REFERENCE_INIT_STD
    fusion_mode: str = "search"


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a step's data is: Transform's output and the train/eval file patterns, read through a DataAccessor
    (tfx.components.trainer.fn_args_utils), as the stock Trainer's run_fn reads them."""

    train_files: list[str]
    eval_files: list[str]
    data_accessor: Any
    transform_graph_path: str


# --- models -----------------------------------------------------------------------------------------------------

def _wrap(ids: tf.Tensor, logit: tf.Tensor, name: str) -> tuple[tf.keras.Model, tf.keras.Model]:
    """(logit model for training, probability model for serving) over the same layers, both on {`feature`: ids}."""
    probability = contract.probability_output(logit)
    inputs = {features.FEATURE_KEY: ids}
    return keras.Model(inputs, logit, name=f"{name}_logit"), keras.Model(inputs, probability, name=name)


def build_supernet(config: SupernetConfig) -> tuple[tf.keras.Model, tf.keras.Model]:
    """The search supernet as (logit model, probability model); layer regularisers off (the optimiser does L2)."""
    ids = keras.Input(shape=(config.num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    logit = network.supernet_logit(ids, config.table_size, config.embedding_dim, num_blocks=config.num_blocks,
                                   fusion_mode=config.fusion_mode, beta_init=config.beta_init,
                                   emb_init_std=config.emb_init_std)
    return _wrap(ids, logit, "optfusion_supernet")


def build_retrain(architecture: Architecture, config: SupernetConfig, mode: str
                  ) -> tuple[tf.keras.Model, tf.keras.Model]:
    """The derived network as (logit model, probability model): only the modules the architecture uses."""
    ids = keras.Input(shape=(config.num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    logit = network.retrain_logit(ids, config.table_size, config.embedding_dim, architecture, mode,
                                  emb_init_std=config.emb_init_std)
    return _wrap(ids, logit, f"optfusion_{mode}")


# --- the architecture folder ------------------------------------------------------------------------------------

def write_architecture_files(directory: str, architecture: Architecture, config: SupernetConfig) -> None:
    """architecture.json and supernet/config.json: enough for a retrain from scratch (inherit_weights=False)."""
    tf.io.gfile.makedirs(os.path.join(directory, SUPERNET_DIR))
    with tf.io.gfile.GFile(os.path.join(directory, ARCHITECTURE_FILE), "w") as f:
        f.write(architecture.to_json())
    with tf.io.gfile.GFile(os.path.join(directory, SUPERNET_DIR, SUPERNET_CONFIG_FILE), "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=1, sort_keys=True)


def write_architecture_dir(directory: str, architecture: Architecture, supernet: tf.keras.Model,
                           config: SupernetConfig, search_result: dict[str, Any] | None = None) -> None:
    """The whole OptFusionArchitecture payload (layout in the module docstring)."""
    write_architecture_files(directory, architecture, config)
    supernet.save_weights(os.path.join(directory, SUPERNET_DIR, SUPERNET_WEIGHTS))
    if search_result is not None:
        with tf.io.gfile.GFile(os.path.join(directory, SEARCH_RESULT_FILE), "w") as f:
            json.dump(search_result, f, indent=1)


def read_architecture(directory: str) -> Architecture:
    """The Architecture in an architecture folder's architecture.json (layout in the module docstring).

    Raises:
        tf.errors.NotFoundError: no architecture.json; ValueError: an invalid one (Architecture.from_json).
    """
    with tf.io.gfile.GFile(os.path.join(directory, ARCHITECTURE_FILE)) as f:
        return Architecture.from_json(f.read())


def read_supernet_config(directory: str) -> SupernetConfig:
    """The SupernetConfig in an architecture folder's supernet/config.json.

    Raises:
        tf.errors.NotFoundError: no supernet/config.json; TypeError: an unknown or missing field.
    """
    with tf.io.gfile.GFile(os.path.join(directory, SUPERNET_DIR, SUPERNET_CONFIG_FILE)) as f:
        return SupernetConfig(**json.load(f))


def load_supernet(directory: str) -> tf.keras.Model:
    """The searched supernet (float32 logit model) with its best-epoch weights."""
    with optim.precision_policy("float32"):
        model, _ = build_supernet(read_supernet_config(directory))
    model.load_weights(os.path.join(directory, SUPERNET_DIR, SUPERNET_WEIGHTS)).assert_existing_objects_matched()
    return model


# --- shared plumbing --------------------------------------------------------------------------------------------

def _datasets(source: DataSource, tft_output: tft.TFTransformOutput, run: RunSettings) -> tuple[tf.data.Dataset, ...]:
    train = data.make_dataset(source.train_files, source.data_accessor, tft_output, run.batch_size, shuffle=True,
                              seed=run.seed).prefetch(tf.data.AUTOTUNE)
    evaluation = data.make_dataset(source.eval_files, source.data_accessor, tft_output, run.batch_size,
                                   shuffle=False).prefetch(tf.data.AUTOTUNE)
    return train, evaluation


def fit_groups(name: str, logit_model: tf.keras.Model, groups: dict[str, list[tf.Variable]],
               settings: dict[str, optim.GroupSettings], run: RunSettings, strategy: tf.distribute.Strategy,
               train: tf.data.Dataset, evaluation: tf.data.Dataset, log_dir: str | None,
               evaluate_before_training: bool = False) -> fit.FitResult:
    """Trains `logit_model` (features -> logit [B, 1]) with the grouped Adam (one group per name of `groups`, each
    with its `settings`) under `strategy`, validating and early-stopping per epoch (fit.fit) on (features, label)
    batches; the best trained epoch's weights are kept. Shared by the search, the retrain and ResFusion's OptFusion
    stage (trainer/resfusion/optfusion_stage.py)."""
    step = optim.make_train_step(logit_model, groups, settings, l2_mode=run.l2_mode, precision=run.precision,
                                 jit_compile=run.jit_compile, strategy=strategy,
                                 embedding_update=run.embedding_update)
    return fit.fit(step, train, evaluation, epochs=run.epochs, patience=run.early_stopping_patience,
                   max_steps_per_epoch=run.max_steps_per_epoch, steps_per_execution=run.steps_per_execution,
                   evaluate_before_training=evaluate_before_training, log_dir=log_dir, name=name)


def _write_json(path: str, value: Any) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(value, f, indent=1)


# --- the steps --------------------------------------------------------------------------------------------------

def search(source: DataSource, settings: SearchSettings, architecture_dir: str, model_run_dir: str,
           supernet_serving_dir: str | None = None) -> dict[str, Any]:
    """Searches the supernet; writes the architecture folder (and the supernet's SavedModel if asked).

    Returns the search result: best_epoch, best_val_auc, best_val_logloss, epochs_run, history, examples/s,
    and the derived architecture's ops and number of kept connections.
    """
    run = settings.run
    keras.utils.set_random_seed(run.seed)
    tft_output = tft.TFTransformOutput(source.transform_graph_path)
    num_fields, table_size = data.id_space(tft_output)
    config = SupernetConfig(table_size=table_size, num_fields=num_fields, embedding_dim=settings.embedding_dim,
                            num_blocks=settings.num_blocks, beta_init=settings.beta_init,
                            emb_init_std=settings.emb_init_std)
    strategy = optim.choose_strategy()
    logging.info("OptFusion search: %s; %s; %d replica(s)", config, settings, strategy.num_replicas_in_sync)
    with optim.precision_policy(run.precision), strategy.scope():
        logit_model, probability_model = build_supernet(config)
    logit_model.summary(print_fn=logging.info)
    train, evaluation = _datasets(source, tft_output, run)
    result = fit_groups("search", logit_model, network.variable_groups(logit_model), settings.groups(), run,
                        strategy, train, evaluation, log_dir=model_run_dir)
    architecture = Architecture.derive(logit_model, best_val_auc=result.best_val_auc)
    summary = {**result.to_dict(), "ops": architecture.ops,
               "kept_connections": int(sum(map(sum, architecture.connections))),
               "live_nodes": [network.node_names(architecture.num_blocks)[i] for i in architecture.live_nodes()],
               "supernet_parameters": int(logit_model.count_params())}
    write_architecture_dir(architecture_dir, architecture, logit_model, config, summary)
    _write_json(os.path.join(model_run_dir, SEARCH_RESULT_FILE), summary)
    if supernet_serving_dir:
        export.export_serving_model(probability_model, tft_output, supernet_serving_dir)
    logging.info("OptFusion search: best epoch %d, val AUC %.5f; architecture %s", result.best_epoch,
                 result.best_val_auc, architecture.to_json())
    return summary


def retrain(source: DataSource, settings: RetrainSettings, architecture_dir: str, serving_model_dir: str,
            model_run_dir: str) -> dict[str, Any]:
    """Retrains the derived architecture (Hard or Soft), warm-started from the supernet when asked; exports it.

    Returns: best_epoch (the best trained epoch, >= 1), best_val_auc, ..., val_auc_before_training (epoch 0,
    when inherited), parameters, inherited layers.
    """
    run = settings.run
    keras.utils.set_random_seed(run.seed)
    tft_output = tft.TFTransformOutput(source.transform_graph_path)
    num_fields, table_size = data.id_space(tft_output)
    architecture = read_architecture(architecture_dir)
    config = read_supernet_config(architecture_dir)
    if (config.num_fields, config.table_size) != (num_fields, table_size):
        raise ValueError(f"the architecture was searched on {config.num_fields} fields and {config.table_size} ids, "
                         f"but this Transform output has {num_fields} fields and {table_size} ids")
    strategy = optim.choose_strategy()
    logging.info("OptFusion retrain: %s; %s; %d replica(s)", architecture.to_json(), settings,
                 strategy.num_replicas_in_sync)
    with optim.precision_policy(run.precision), strategy.scope():
        logit_model, probability_model = build_retrain(architecture, config, settings.mode)
    inherited: list[str] = []
    if settings.inherit_weights:
        supernet = load_supernet(architecture_dir)
        inherited = network.inherit_weights(supernet, logit_model)
        del supernet
    logit_model.summary(print_fn=logging.info)
    train, evaluation = _datasets(source, tft_output, run)
    groups = network.variable_groups(logit_model)
    if groups["arch"]:
        raise AssertionError(f"a retrain model has no architecture parameters, got {[v.name for v in groups['arch']]}")
    result = fit_groups(f"retrain-{settings.mode}", logit_model, {"emb": groups["emb"], "nn": groups["nn"]},
                        settings.groups(), run, strategy, train, evaluation, log_dir=model_run_dir,
                        evaluate_before_training=settings.evaluate_before_training and settings.inherit_weights)
    export.export_serving_model(probability_model, tft_output, serving_model_dir)
    summary = {**result.to_dict(), "mode": settings.mode, "inherited_layers": inherited,
               "parameters": int(logit_model.count_params()), "ops": architecture.ops}
    _write_json(os.path.join(model_run_dir, RESULT_FILE), summary)
    logging.info("OptFusion retrain (%s): best epoch %d, val AUC %.5f, %d parameters", settings.mode,
                 result.best_epoch, result.best_val_auc, summary["parameters"])
    return summary



def tuning_trial(fn_args: Any, values: dict[str, Any], trial_dir: str) -> float:
    """A Tuner trial (trainer/tuner.py): the supernet search with the trial's values applied
    (SearchSettings.with_hyperparameters) on the Tuner's data; returns its best eval AUC. The supernet is not
    exported; the trial's architecture folder and logs stay in `trial_dir`.

    fn_args: the Tuner's FnArgs; custom_config[TRIAL_SETTINGS_KEY] holds the SearchSettings JSON.
    """
    settings = SearchSettings.from_json(fn_args.custom_config[TRIAL_SETTINGS_KEY]).with_hyperparameters(values)
    source = DataSource(train_files=fn_args.train_files, eval_files=fn_args.eval_files,
                        data_accessor=fn_args.data_accessor, transform_graph_path=fn_args.transform_graph_path)
    result = search(source, dataclasses.replace(settings, export_supernet=False),
                    os.path.join(trial_dir, "architecture"), os.path.join(trial_dir, "logs"))
    return tuning.trial_score([result["best_val_auc"]])
