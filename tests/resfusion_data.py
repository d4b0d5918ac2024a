"""Test data for ResFusion: generated Criteo-layout rows as a raw Examples artifact, and GbdtResidual's output."""
from __future__ import annotations

import dataclasses
import io
import json
import os

import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.gbdt_residual import executor
from components.raw_log_example_gen import executor as example_gen_executor
from components.raw_log_example_gen import parsers
from data_gen import synthetic_criteo
from trainer import gbdt


def write_raw_examples(root: str, split_rows: dict[str, int], seed: int = 5) -> standard_artifacts.Examples:
    """Generated Criteo-layout rows as RawLogExampleGen lays them out (Split-<name>/*.gz)."""
    out = io.StringIO()
    synthetic_criteo.write_synthetic_criteo(out, sum(split_rows.values()), seed=seed)
    lines = out.getvalue().splitlines()
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(root, "examples")
    examples.split_names = artifact_utils.encode_split_names(list(split_rows))
    start = 0
    for split, rows in split_rows.items():
        split_dir = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(split_dir)
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
            for line in lines[start:start + rows]:
                writer.write(example_gen_executor.row_to_example(parsers.parse_line("criteo", line)).SerializeToString())
        examples.set_int_custom_property(f"{split}_count", rows)
        start += rows
    return examples


@dataclasses.dataclass
class GbdtResidualOutput:
    examples: standard_artifacts.Examples
    residual: standard_artifacts.Examples
    model: standard_artifacts.Model

    def split_files(self, split: str) -> list[str]:
        return executor.split_files(self.residual, split)

    @property
    def full_model_dir(self) -> str:
        return os.path.join(self.model.uri, "Format-Serving")


def run_gbdt_residual(root: str, split_rows: dict[str, int], folds: int, fold_seed: int,
                      params: gbdt.GbdtParams, seed: int = 5) -> GbdtResidualOutput:
    """Runs the GbdtResidual executor (in process, DirectRunner) on generated rows."""
    examples = write_raw_examples(root, split_rows, seed)
    residual = standard_artifacts.Examples()
    residual.uri = os.path.join(root, "residual")
    model = standard_artifacts.Model()
    model.uri = os.path.join(root, "model")
    executor.Executor().Do(
        {executor.EXAMPLES_KEY: [examples]},
        {executor.RESIDUAL_EXAMPLES_KEY: [residual], executor.MODEL_KEY: [model]},
        {executor.DATASET_KEY: "criteo", executor.FOLDS_KEY: folds, executor.FOLD_SEED_KEY: fold_seed,
         executor.GBDT_PARAMS_KEY: json.dumps(dataclasses.asdict(params)), executor.TRAIN_SPLIT_KEY: "train",
         executor.EVAL_SPLIT_KEY: "eval"})
    return GbdtResidualOutput(examples, residual, model)
