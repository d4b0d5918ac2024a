"""Test data for ResFusion: generated rows as an Examples artifact in either layout, and GbdtResidual's output.

Layouts:
- "criteo": raw Criteo-layout rows as RawLogExampleGen lays them out (int64 `label`, one feature per field);
- "tfrecord": the same generated rows as OptFusion TFRecords (data_gen.optfusion_tfrecords: `label` float[1],
  `feature` int64[39] global ids), as ImportExampleGen lays them out.

`shared_gbdt_residual(layout)` runs the GbdtResidual executor once per layout and test process; the component
tests and the trainer tests read the same run (a run costs tens of seconds).
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import io
import json
import os
import shutil
import tempfile

import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.gbdt_residual import executor
from data_gen import optfusion_tfrecords, synthetic_criteo
from trainer.resfusion import gbdt
from transform import features, parsers
from transform.spec import Row

LAYOUTS = ("criteo", "tfrecord")
SPLIT_ROWS = {"criteo": {"train": 1600, "eval": 400, "test": 300},
              "tfrecord": {"train": 1000, "eval": 300, "test": 200}}
FOLDS = 2
FOLD_SEED = 7
TINY_GBDT = gbdt.GbdtParams(num_trees=12, max_depth=4, early_stopping_look_ahead=5, batch_size=256)
TFRECORD_FIELDS = 39  # data_gen.optfusion_tfrecords: Criteo's 13 + 26 fields


def _generated_rows(total: int, seed: int) -> list[Row]:
    out = io.StringIO()
    synthetic_criteo.write_synthetic_criteo(out, total, seed=seed)
    return [features.parse_line("criteo", line) for line in out.getvalue().splitlines()]


def tfrecord_example(label: float, ids: list[int]) -> tf.train.Example:
    """One OptFusion TFRecord row: `label` float[1], `feature` int64[F]."""
    return tf.train.Example(features=tf.train.Features(feature={
        "label": tf.train.Feature(float_list=tf.train.FloatList(value=[float(label)])),
        "feature": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(i) for i in ids])),
    }))


def write_examples(root: str, split_rows: dict[str, int], layout: str = "criteo",
                   seed: int = 5) -> standard_artifacts.Examples:
    """Generated rows as an Examples artifact (Split-<name>/*.gz) in the given layout (module docstring)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rows = _generated_rows(sum(split_rows.values()), seed)
    if layout == "tfrecord":
        ids = optfusion_tfrecords.encode(rows)
        serialized = [tfrecord_example(row["label"], ids[i].tolist()).SerializeToString() for i, row in enumerate(rows)]
    else:
        serialized = [parsers.row_to_example(row).SerializeToString() for row in rows]
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(root, "examples")
    examples.split_names = artifact_utils.encode_split_names(list(split_rows))
    start = 0
    for split, count in split_rows.items():
        split_dir = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(split_dir)
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
            for record in serialized[start:start + count]:
                writer.write(record)
        examples.set_int_custom_property(f"{split}_count", count)
        start += count
    return examples


def write_raw_examples(root: str, split_rows: dict[str, int], seed: int = 5) -> standard_artifacts.Examples:
    """Generated Criteo-layout rows as RawLogExampleGen lays them out (Split-<name>/*.gz)."""
    return write_examples(root, split_rows, "criteo", seed)


@dataclasses.dataclass
class GbdtResidualOutput:
    layout: str
    examples: standard_artifacts.Examples
    residual: standard_artifacts.Examples
    model: standard_artifacts.Model

    def split_files(self, split: str) -> list[str]:
        return executor.split_files(self.residual, split)

    def raw_records(self, split: str) -> list[bytes]:
        """The split's records as the pipeline's input holds them (no gbdt_logit / gbdt_fold)."""
        files = executor.split_files(self.examples, split)
        return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]

    @property
    def full_model_dir(self) -> str:
        return os.path.join(self.model.uri, "Format-Serving")


def run_gbdt_residual(root: str, split_rows: dict[str, int], folds: int, fold_seed: int,
                      params: gbdt.GbdtParams, seed: int = 5, layout: str = "criteo") -> GbdtResidualOutput:
    """Runs the GbdtResidual executor (in process, DirectRunner) on generated rows of a layout."""
    examples = write_examples(root, split_rows, layout, seed)
    residual = standard_artifacts.Examples()
    residual.uri = os.path.join(root, "residual")
    model = standard_artifacts.Model()
    model.uri = os.path.join(root, "model")
    executor.Executor().Do(
        {executor.EXAMPLES_KEY: [examples]},
        {executor.RESIDUAL_EXAMPLES_KEY: [residual], executor.MODEL_KEY: [model]},
        {executor.DATASET_KEY: layout, executor.FOLDS_KEY: folds, executor.FOLD_SEED_KEY: fold_seed,
         executor.GBDT_PARAMS_KEY: json.dumps(dataclasses.asdict(params)), executor.TRAIN_SPLIT_KEY: "train",
         executor.EVAL_SPLIT_KEY: "eval"})
    return GbdtResidualOutput(layout, examples, residual, model)


@functools.lru_cache(maxsize=None)
def shared_gbdt_residual(layout: str) -> GbdtResidualOutput:
    """One GbdtResidual run per layout per test process (SPLIT_ROWS[layout], FOLDS, FOLD_SEED, TINY_GBDT), in a
    temporary folder removed at exit. Read-only for its users."""
    root = tempfile.mkdtemp(prefix=f"resfusion_{layout}_")
    atexit.register(shutil.rmtree, root, True)
    return run_gbdt_residual(root, SPLIT_ROWS[layout], FOLDS, FOLD_SEED, TINY_GBDT, layout=layout)


def largest_id(output: GbdtResidualOutput) -> int:
    """The largest `feature` id over every split of a tfrecord-layout run."""
    largest = 0
    for split in SPLIT_ROWS["tfrecord"]:
        for record in output.raw_records(split):
            ids = tf.train.Example.FromString(record).features.feature["feature"].int64_list.value
            largest = max(largest, max(ids))
    return int(largest)
