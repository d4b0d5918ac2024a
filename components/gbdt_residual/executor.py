"""Beam executor of GbdtResidual.

1. Train the GBDT on every training row (early stopping on the eval split) -> `model/Format-Serving`.
   Its inputs (trainer.resfusion.gbdt.GbdtInputs): a raw log's fields, or the F id columns of an OptFusion TFRecord
   (`feature` int64[F], each column a categorical feature; F read from the first training record).
2. Train k fold models, fold j on the training rows outside fold j -> `model/fold_models/fold-<j>`.
   A row's fold is a keyed hash of its serialized bytes (trainer.resfusion.gbdt.assign_folds): deterministic,
   independent of file order and runner, and recorded in each example as `gbdt_fold`.
3. Score every split in a Beam pipeline (streaming, batched): a training row gets the logit of the fold
   model that did not see it; eval/test rows get the full model's logit. Each raw tf.Example is written
   back with `gbdt_logit` and `gbdt_fold` added, split by split, into a new Examples artifact.

TF-DF trains in memory (it loads its training set), so steps 1-2 read the training split into the
learner; step 3, the pass over every split, streams.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any, Iterator

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import path_utils

from transform import features

# trainer/ (TF-DF) is imported when the step runs, not when the pipeline is built (docs/architecture.md).

EXAMPLES_KEY = "examples"
RESIDUAL_EXAMPLES_KEY = "residual_examples"
MODEL_KEY = "model"
DATASET_KEY = "dataset"
FOLDS_KEY = "folds"
FOLD_SEED_KEY = "fold_seed"
GBDT_PARAMS_KEY = "gbdt_params"
TRAIN_SPLIT_KEY = "train_split"
EVAL_SPLIT_KEY = "eval_split"

FOLD_MODELS_DIR = "fold_models"
METRICS_FILE = "gbdt_metrics.json"
_LOGIT_CLIP = 30.0  # for the logloss summary only


def fold_model_dir(model_uri: str, fold: int) -> str:
    """Where fold model `fold` is saved in the Model artifact: <model_uri>/fold_models/fold-<fold>."""
    return os.path.join(model_uri, FOLD_MODELS_DIR, f"fold-{fold}")


def split_files(examples: types.Artifact, split: str) -> list[str]:
    """The data files of split `split` of an Examples artifact, sorted; hidden and underscore-prefixed files skipped.

    Raises:
        FileNotFoundError: the split holds no data file.
    """
    pattern = os.path.join(artifact_utils.get_split_uri([examples], split), "*")
    files = sorted(f for f in tf.io.gfile.glob(pattern) if not os.path.basename(f).startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"split {split!r} of {examples.uri} holds no files")
    return files


def add_residual_features(serialized: bytes, logit: float, fold: int) -> bytes:
    """The raw tf.Example with `gbdt_logit` (float) and `gbdt_fold` (int) set."""
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    feature[features.GBDT_LOGIT_KEY].float_list.value[:] = [logit]
    feature[features.FOLD_FEATURE].int64_list.value[:] = [fold]
    return example.SerializeToString()


class _ScoreBatch(beam.DoFn):
    """A batch of serialized raw examples -> the same examples with their GBDT logit and fold."""

    SCORES = "scores"

    def __init__(self, full_model_dir: str, fold_model_dirs: list[str], out_of_fold: bool,
                 folds: int, fold_seed: int, split: str):
        self._full_model_dir = full_model_dir
        self._fold_model_dirs = fold_model_dirs
        self._out_of_fold = out_of_fold
        self._folds = folds
        self._fold_seed = fold_seed
        self._split = split

    def setup(self) -> None:
        from trainer.resfusion import gbdt
        self._assign_folds = gbdt.assign_folds
        if self._out_of_fold:
            self._models = [gbdt.GbdtModel.load(d) for d in self._fold_model_dirs]
        else:
            self._models = [gbdt.GbdtModel.load(self._full_model_dir)]
        self._inputs = self._models[0].inputs

    def process(self, batch: list[bytes]) -> Iterator[Any]:
        serialized = tf.constant(batch)
        parsed = tf.io.parse_example(serialized, {**self._inputs.parse_spec(),
                                                  features.LABEL_KEY: tf.io.VarLenFeature(self._inputs.label_dtype)})
        inputs = self._inputs.from_parsed(parsed)
        labels = tf.sparse.to_dense(parsed[features.LABEL_KEY], default_value=-1).numpy()
        if self._out_of_fold:
            folds = self._assign_folds(serialized, self._folds, self._fold_seed).numpy()
            logits = np.zeros([len(batch)], np.float32)
            for j, model in enumerate(self._models):
                rows = folds == j
                if rows.any():
                    logits[rows] = model.predict_logits({k: tf.boolean_mask(v, rows) for k, v in inputs.items()})
        else:
            folds = np.full([len(batch)], features.NO_FOLD, np.int64)
            logits = self._models[0].predict_logits(inputs)
        for row, logit, fold, label in zip(batch, logits, folds, labels):
            yield add_residual_features(row, float(logit), int(fold))
            if label.size and label[0] in (0, 1):
                yield beam.pvalue.TaggedOutput(self.SCORES, (float(label[0]), float(logit)))


def _logloss(label_and_logit: tuple[float, float]) -> float:
    label, logit = label_and_logit
    logit = min(max(logit, -_LOGIT_CLIP), _LOGIT_CLIP)
    # log(1 + exp(-s)) for the label's sign s: numerically stable.
    signed = logit if label == 1.0 else -logit
    return math.log1p(math.exp(-signed)) if signed > 0 else -signed + math.log1p(math.exp(signed))


class Executor(base_beam_executor.BaseBeamExecutor):
    """Trains the GBDT and its fold models, then writes the logits into every split of the examples."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Reads `examples` (the train and eval splits are required); writes the GBDT, its fold models and
        gbdt_metrics.json to `model`, and every split with `gbdt_logit` and `gbdt_fold` to `residual_examples`, each
        artifact with the custom properties of the module docstring (algorithms.md §2.3-§2.5).

        Raises:
            ValueError: the train or eval split is missing.
            FileNotFoundError: the train or eval split holds no data file.
        """
        from trainer import metrics
        from trainer.resfusion import gbdt

        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        residual = artifact_utils.get_single_instance(output_dict[RESIDUAL_EXAMPLES_KEY])
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        spec = features.get_dataset(exec_properties[DATASET_KEY])
        params = gbdt.GbdtParams(**json.loads(exec_properties[GBDT_PARAMS_KEY]))
        folds = int(exec_properties[FOLDS_KEY])
        fold_seed = int(exec_properties[FOLD_SEED_KEY])
        train_split, eval_split = exec_properties[TRAIN_SPLIT_KEY], exec_properties[EVAL_SPLIT_KEY]
        split_names = artifact_utils.decode_split_names(examples.split_names)
        for required in (train_split, eval_split):
            if required not in split_names:
                raise ValueError(f"the examples have no {required!r} split (they have {split_names})")
        train_files, eval_files = split_files(examples, train_split), split_files(examples, eval_split)
        inputs = gbdt.GbdtInputs.from_files(spec, train_files)  # prebuilt ids: F id columns, categorical
        learner = gbdt.GbdtLearner(inputs, params, task="classification")

        def eval_data() -> tf.data.Dataset:
            return gbdt.examples_dataset(eval_files, inputs, params.batch_size)

        def sampled(serialized: tf.Tensor) -> tf.Tensor:
            return gbdt.in_training_sample(serialized, params.training_fraction, params.seed)

        sample = sampled if params.training_fraction < 1.0 else None
        logging.info("GbdtResidual: training the GBDT on %s %r rows (early stopping on %r), %d features",
                     "every" if sample is None else f"a {params.training_fraction:g} sample of the", train_split,
                     eval_split, len(inputs.feature_names))
        started = time.time()
        full = learner.fit(gbdt.examples_dataset(train_files, inputs, params.batch_size, row_filter=sample),
                           eval_data())
        train_seconds = time.time() - started
        eval_labels = np.concatenate([labels.numpy() for _, labels in eval_data()])
        eval_logits = full.logits(eval_data())
        eval_metrics = {"eval_auc": metrics.auc(eval_labels, eval_logits),
                        "eval_logloss": metrics.logloss(eval_labels, eval_logits)}
        full_dir = path_utils.serving_model_path(model.uri)
        full.save(full_dir, with_serving_signature=True)
        fold_dirs, fold_trees = [], []
        for j in range(folds):
            logging.info("GbdtResidual: training fold model %d/%d (rows outside fold %d)", j + 1, folds, j)
            def outside_fold(serialized: tf.Tensor, fold: int = j) -> tf.Tensor:
                outside = gbdt.assign_folds(serialized, folds, fold_seed) != fold
                return outside if sample is None else outside & sample(serialized)

            outside = gbdt.examples_dataset(train_files, inputs, params.batch_size, row_filter=outside_fold)
            fold_model = learner.fit(outside, eval_data())
            fold_dirs.append(fold_model_dir(model.uri, j))
            fold_model.save(fold_dirs[-1])
            fold_trees.append(fold_model.num_trees)

        residual.split_names = artifact_utils.encode_split_names(split_names)
        scores_prefix = os.path.join(residual.uri, "gbdt_scores")
        with self._make_beam_pipeline() as pipeline:
            for split in split_names:
                out_of_fold = split == train_split and folds > 0
                scored = (
                    pipeline
                    | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
                        os.path.join(artifact_utils.get_split_uri([examples], split), "*"),
                        coder=beam.coders.BytesCoder())
                    | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=64, max_batch_size=params.batch_size)
                    | f"Score[{split}]" >> beam.ParDo(_ScoreBatch(
                        full_dir, fold_dirs, out_of_fold, folds, fold_seed, split))
                    .with_outputs(_ScoreBatch.SCORES, main="examples"))
                _ = (scored.examples
                     | f"Write[{split}]" >> write_split.WriteSplit(
                         artifact_utils.get_split_uri([residual], split), example_gen_pb2.FORMAT_TFRECORDS_GZIP))
                _ = (scored[_ScoreBatch.SCORES]
                     | f"Logloss[{split}]" >> beam.Map(_logloss)
                     | f"Summary[{split}]" >> beam.combiners.Mean.Globally()
                     | f"Json[{split}]" >> beam.Map(
                         lambda mean, split=split: json.dumps({"split": split, "logloss": mean}))
                     | f"WriteSummary[{split}]" >> beam.io.WriteToText(
                         f"{scores_prefix}-{split}", shard_name_template="", file_name_suffix=".json"))

        summary: dict[str, Any] = {
            "num_trees": full.num_trees, "fold_num_trees": fold_trees, "folds": folds, "fold_seed": fold_seed,
            "fold_rule": gbdt.FOLD_RULE, "train_logits": "out-of-fold" if folds > 0 else "in-sample",
            "training_fraction": params.training_fraction,
            "training_sample_rule": gbdt.SAMPLE_RULE if sample is not None else None,
            "inputs": inputs.to_dict(), "params": json.loads(exec_properties[GBDT_PARAMS_KEY]),
            "train_seconds": round(train_seconds, 1), **eval_metrics}
        for split in split_names:
            with tf.io.gfile.GFile(f"{scores_prefix}-{split}.json") as f:
                text = f.read().strip()
            summary[f"{split}_logloss"] = json.loads(text)["logloss"] if text else float("nan")
            residual.set_float_custom_property(f"{split}_logloss", summary[f"{split}_logloss"])
            if examples.has_custom_property(f"{split}_count"):
                residual.set_int_custom_property(f"{split}_count", examples.get_int_custom_property(f"{split}_count"))
        residual.set_int_custom_property("gbdt_folds", folds)
        residual.set_int_custom_property("gbdt_fold_seed", fold_seed)
        residual.set_string_custom_property("gbdt_fold_rule", gbdt.FOLD_RULE)
        residual.set_string_custom_property("gbdt_logit_feature", features.GBDT_LOGIT_KEY)
        residual.set_string_custom_property("gbdt_fold_feature", features.FOLD_FEATURE)
        residual.set_string_custom_property("gbdt_train_logits", summary["train_logits"])
        examples_utils.set_payload_format(residual, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(residual, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))

        model.set_int_custom_property("num_trees", full.num_trees)
        model.set_string_custom_property("fold_num_trees", json.dumps(fold_trees))
        model.set_int_custom_property("folds", folds)
        model.set_string_custom_property("model_family", "gbdt")
        model.set_float_custom_property("eval_auc", eval_metrics["eval_auc"])
        model.set_float_custom_property("eval_logloss", eval_metrics["eval_logloss"])
        model.set_float_custom_property("train_seconds", round(train_seconds, 1))
        model.set_float_custom_property("training_fraction", params.training_fraction)
        with tf.io.gfile.GFile(os.path.join(model.uri, METRICS_FILE), "w") as f:
            json.dump(summary, f, indent=1)
        logging.info("GbdtResidual: %s", summary)
