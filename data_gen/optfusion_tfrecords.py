"""Writes a Criteo-layout log as OptFusion-format TFRecords, as the reference's criteo2TF.py lays them out.

Each record: `label` float[1], `feature` int64[39] global ids (per-field vocabularies with a count
threshold of 2 over the whole file, one OOV id per field; integers bucketed by floor(ln(v)^2)), in
{train,validation,test}_0000.tfrecord (8:1:1, shuffled with the seed). Used to exercise the pipeline's
`--dataset tfrecord` path without the reference's own preprocessing.

    python -m data_gen.optfusion_tfrecords --log data.tsv --output-dir tfrecords/
"""
from __future__ import annotations

import argparse
import collections
import math
import os

import numpy as np
import tensorflow as tf

from transform import features
from transform.spec import Row

_SPEC = features.DATASETS["criteo"]


def _token(field: str, value) -> str:
    if value is None:
        return "__missing__"
    if field in _SPEC.integer_fields:
        return str(math.floor(math.log(value) ** 2) if value > 2 else value)
    return value


def encode(rows: list[Row]) -> np.ndarray:
    """Global ids [rows, 39]; integer fields are exempt from the threshold."""
    columns = []
    offset = 0
    for field in _SPEC.model_fields:
        tokens = [_token(field, row[field]) for row in rows]
        counts = collections.Counter(tokens)
        threshold = 1 if field in _SPEC.integer_fields else 2
        vocabulary = {t: i for i, t in enumerate(sorted(t for t, c in counts.items() if c >= threshold))}
        oov = len(vocabulary)
        columns.append([offset + vocabulary.get(t, oov) for t in tokens])
        offset += oov + 1
    return np.array(columns, dtype=np.int64).T


def write(log_path: str, output_dir: str, seed: int = 2022) -> dict[str, int]:
    with open(log_path) as f:
        rows = [features.parse_line("criteo", line.rstrip("\n")) for line in f]
    ids = encode(rows)
    order = np.random.default_rng(seed).permutation(len(rows))
    cut_train, cut_valid = int(0.8 * len(rows)), int(0.9 * len(rows))
    parts = {"train": order[:cut_train], "validation": order[cut_train:cut_valid], "test": order[cut_valid:]}
    os.makedirs(output_dir, exist_ok=True)
    for name, index in parts.items():
        with tf.io.TFRecordWriter(os.path.join(output_dir, f"{name}_0000.tfrecord")) as writer:
            for i in index:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "label": tf.train.Feature(float_list=tf.train.FloatList(value=[float(rows[i]["label"])])),
                    "feature": tf.train.Feature(int64_list=tf.train.Int64List(value=ids[i].tolist())),
                })).SerializeToString())
    return {name: len(index) for name, index in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True)
    parser.add_argument("--output-dir", required=True)
    args = parser.parse_args()
    print(write(args.log, args.output_dir))


if __name__ == "__main__":
    main()
