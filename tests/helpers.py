"""Test helpers: tiny pipelines, data files with injected bad lines, reading TFRecords."""
from __future__ import annotations

import glob
import gzip
import os

import tensorflow as tf
from tfx import v1 as tfx

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_components(tmp_path: str, components: list, name: str = "test", enable_cache: bool = False) -> str:
    """Runs components as a LocalDagRunner pipeline in tmp_path; returns the MLMD SQLite path."""
    metadata_path = os.path.join(tmp_path, "metadata.sqlite")
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=name, pipeline_root=os.path.join(tmp_path, "pipeline_root"), components=components,
        enable_cache=enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"]))
    return metadata_path


def read_examples(split_dir: str) -> list[tf.train.Example]:
    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def write_lines(path: str, lines: list[bytes]) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines))
    return path
