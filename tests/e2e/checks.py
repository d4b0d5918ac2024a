"""Assertions on a finished pipeline run, shared by the generated-data and shared-sample tests."""
from __future__ import annotations

import collections
import datetime
import glob
import math
import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from pipeline import lineage
from tests import helpers
from trainer import data
from transform import features

SPLITS = ("train", "eval", "test")
MISSING = "__missing__"


def split_counts(run) -> dict[str, int]:
    store = lineage.open_store(run.metadata_path)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    return {split: examples.custom_properties[f"{split}_count"].int_value for split in SPLITS}


def check_split_sizes(run, expected_rows: int) -> dict[str, int]:
    store = lineage.open_store(run.metadata_path)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    counts = split_counts(run)
    assert sum(counts.values()) + examples.custom_properties["rejected_count"].int_value == expected_rows
    for split in SPLITS:
        assert len(helpers.read_examples(os.path.join(examples.uri, f"Split-{split}"))) == counts[split]
    total = sum(counts.values())
    for split, share in zip(SPLITS, (0.8, 0.1, 0.1)):
        tolerance = 5 * math.sqrt(share * (1 - share) / total)  # five binomial standard deviations
        assert abs(counts[split] / total - share) < tolerance, (split, counts)
    return counts


def _value(feature: tf.train.Feature):
    if feature.int64_list.value:
        return feature.int64_list.value[0]
    return feature.bytes_list.value[0].decode()


def _tokens(spec: features.DatasetSpec, example: tf.train.Example) -> dict[str, str]:
    """The preprocessing rules re-stated in plain Python, for an independent recount."""
    raw = {name: _value(f) for name, f in example.features.feature.items()}
    tokens = {}
    for field in spec.integer_fields:
        v = raw.get(field)
        tokens[field] = MISSING if v is None else str(math.floor(math.log(v) ** 2) if v > 2 else v)
    for field in spec.categorical_fields:
        tokens[field] = raw.get(field, MISSING) or MISSING
    if spec.hour_field:
        stamp = datetime.datetime.strptime(str(raw[spec.hour_field]), "%y%m%d%H")
        weekday = stamp.strftime("%w")  # Sunday = 0, as the reference
        tokens.update(hour=str(stamp.hour), weekday=weekday, is_weekend=str(int(weekday in ("0", "6"))))
    return tokens


def check_vocabulary_sizes(run) -> dict[str, int]:
    """Per-field vocabulary sizes of Transform equal a recount over the training split (+1 OOV id)."""
    spec = features.get_dataset(run.dataset)
    store = lineage.open_store(run.metadata_path)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    counts = {field: collections.Counter() for field in spec.model_fields}
    for example in helpers.read_examples(os.path.join(examples.uri, "Split-train")):
        for field, token in _tokens(spec, example).items():
            counts[field][token] += 1
    expected = {}
    for field in spec.model_fields:
        threshold = 1 if field in spec.integer_fields else 2
        expected[field] = sum(1 for c in counts[field].values() if c >= threshold) + 1
    graph = lineage.latest_output(store, "Transform", "transform_graph")
    tft_output = tft.TFTransformOutput(graph.uri)
    actual = data.field_vocabulary_sizes(tft_output, spec)
    assert actual == expected
    return actual


_HELDOUT_AUC: dict[tuple[str, ...], float] = {}


def score_heldout(run) -> float:
    """Scores the held-out raw file with the pushed model (the newest version) in a fresh process; returns the AUC.
    Computed once per set of pushed versions and file (several tests compare with the same run's score)."""
    key = (run.serving_model_dir, *sorted(os.listdir(run.serving_model_dir)), run.dataset, run.heldout_file)
    if key not in _HELDOUT_AUC:
        _HELDOUT_AUC[key] = _score_heldout(run)
    return _HELDOUT_AUC[key]


def _score_heldout(run) -> float:
    result = subprocess.run(
        [sys.executable, "-m", "serving.batch_score", "--model", run.serving_model_dir, "--dataset", run.dataset,
         "--data", run.heldout_file], capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return float(re.search(r"auc=([0-9.]+)", result.stdout).group(1))


def check_serving_equals_transform_then_model(run, rows: int = 200) -> None:
    """serving_default(raw) == Keras model(transform_features(raw)), on raw test-split examples."""
    store = lineage.open_store(run.metadata_path)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    serialized = [e.SerializeToString() for e in helpers.read_examples(os.path.join(examples.uri, "Split-test"))[:rows]]
    model_dir = glob.glob(os.path.join(run.serving_model_dir, "*"))[0]
    loaded = tf.saved_model.load(model_dir)
    served = loaded.signatures["serving_default"](examples=tf.constant(serialized))["probability"].numpy()
    transformed = loaded.signatures["transform_features"](examples=tf.constant(serialized))
    keras_model = tf.keras.models.load_model(model_dir)
    direct = keras_model({features.FEATURE_KEY: transformed[features.FEATURE_KEY]}).numpy()
    assert served.shape == (len(serialized), 1) and served.dtype == np.float32
    np.testing.assert_allclose(served, direct, rtol=1e-6, atol=1e-7)


def check_blessed_and_pushed(run) -> dict[str, float]:
    """Blessed on eval metrics; pushed to serving_model/<version>/; returns the eval metrics."""
    import tensorflow_model_analysis as tfma
    store = lineage.open_store(run.metadata_path)
    blessing = lineage.latest_output(store, "Evaluator", "blessing")
    assert blessing.custom_properties["blessed"].int_value == 1
    pushed = lineage.latest_output(store, "Pusher", "pushed_model")
    assert pushed.custom_properties["pushed"].int_value == 1
    destination = pushed.custom_properties["pushed_destination"].string_value
    assert os.path.dirname(destination) == run.serving_model_dir
    assert os.path.exists(os.path.join(destination, "saved_model.pb"))
    evaluation = lineage.latest_output(store, "Evaluator", "evaluation")
    metrics, slice_counts = {}, {}
    for slice_metrics in tfma.load_metrics(evaluation.uri):
        keys = tuple((k.column, k.bytes_value) for k in slice_metrics.slice_key.single_slice_keys)
        for kv in slice_metrics.metric_keys_and_values:
            if kv.key.model_name not in ("", "candidate") or kv.key.is_diff:
                continue  # the champion's figures and the differences, when a champion was given ("": no champion)
            if not keys:
                metrics[kv.key.name] = kv.value.double_value.value
            elif kv.key.name == "example_count":
                slice_counts[keys] = kv.value.double_value.value
    assert metrics["example_count"] == split_counts(run)["eval"]  # eval split only: never test
    assert {"auc", "logloss", "calibration", "mean_prediction", "mean_label"} <= set(metrics)
    slice_field = features.get_dataset(run.dataset).slice_field
    if slice_field:  # one slice per value of the layout's slice field (rows without it are in no slice)
        assert slice_counts and {column for (column, _), in slice_counts} == {slice_field}
        assert sum(slice_counts.values()) <= metrics["example_count"]
    return metrics


def step_fn_args(run, examples: tuple[str, str], custom_config: dict, base_model: tuple[str, str] | None = None):
    """The FnArgs a training step (Trainer, Tuner, OptFusionSearch) of `run` gets, built as TFX builds them, from
    the latest output `examples` = (node, key) and Transform's graph (and `base_model` = (node, key)), training on
    the train split and validating on eval."""
    import json as json_module

    from tfx.components.trainer import fn_args_utils

    inputs = {"examples": [latest_artifact(run, *examples)],
              "transform_graph": [latest_artifact(run, "Transform", "transform_graph")]}
    if base_model:
        inputs["base_model"] = [latest_artifact(run, *base_model)]
    return fn_args_utils.get_common_fn_args(inputs, {
        "train_args": json_module.dumps({"splits": ["train"]}), "eval_args": json_module.dumps({"splits": ["eval"]}),
        "custom_config": json_module.dumps(custom_config)})


def latest_artifact(run, node: str, key: str):
    """The latest output `key` of `node` in `run`, as the TFX Artifact an executor receives."""
    from tfx.types import artifact_utils

    store = lineage.open_store(run.metadata_path)
    found = lineage.latest_output(store, node, key)
    (artifact_type,) = store.get_artifact_types_by_id([found.type_id])
    return artifact_utils.deserialize_artifact(artifact_type, found)


NOTEBOOK_FIGURES = ("validation_curves.png", "roc_calibration.png", "slices.png")


def execute_results_notebook(run, figures_dir: str):
    """Runs notebooks/results.ipynb top to bottom (nbclient, the project's kernel) on `run`, saving its figures in
    `figures_dir`; returns the executed notebook. Fails on any cell error (nbclient raises CellExecutionError)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(os.path.join(helpers.REPO_ROOT, "notebooks", "results.ipynb"), as_version=4)
    env = {"FUSIONCTR_OUTPUT_DIR": run.output_dir, "FUSIONCTR_FIGURES_DIR": figures_dir}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": os.path.join(helpers.REPO_ROOT, "notebooks")}}).execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def notebook_text(notebook) -> str:
    """Every text output of an executed notebook, joined."""
    return "\n".join(output.get("text", "") or output.get("data", {}).get("text/plain", "")
                     for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", []))
