"""What the results notebook (notebooks/results.ipynb) shows, read from a finished run's ML Metadata and files.

The notebook only plots; everything it plots comes from here, so it is tested without a notebook too
(tests/notebooks/test_results.py). Inputs are a run's output folder (`local_runner.py --output-dir`): its
metadata.sqlite, run_summary.json, artifacts and pushed model.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Any, Sequence

import numpy as np

from pipeline import lineage, run_summary

# Training steps and the record each writes into its model_run folder.
HISTORY_FILES = {"Trainer": "history.json", "OptFusionSearch": "search_result.json",
                 "OptFusionRetrain": "result.json"}


@dataclasses.dataclass(frozen=True)
class Curves:
    """Validation AUC and logloss per epoch of one training step (epoch 0: the weights before training)."""

    epochs: list[int]
    val_auc: list[float]
    val_logloss: list[float]


def validation_curves(record: dict[str, Any]) -> Curves | None:
    """The Curves of a training step's record: Keras' history.json ({"history": {metric: [per epoch]}}) or an
    OptFusion result ({"history": [{"epoch", "val_auc", "val_logloss", ...}]}); None for other records (ResFusion's
    stages are listed in its own history.json)."""
    history = record.get("history")
    if isinstance(history, dict) and "val_auc" in history:
        epochs = list(range(1, len(history["val_auc"]) + 1))
        return Curves(epochs, list(history["val_auc"]), list(history.get("val_logloss", [np.nan] * len(epochs))))
    if isinstance(history, list) and history and "val_auc" in history[0]:
        return Curves([h["epoch"] for h in history], [h["val_auc"] for h in history],
                      [h["val_logloss"] for h in history])
    return None


def load_summary(output_dir: str) -> run_summary.RunSummary:
    """The run's end-of-run summary (run_summary.json).

    Raises:
        FileNotFoundError: no summary: not a finished local run's output folder.
    """
    path = os.path.join(output_dir, run_summary.SUMMARY_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {path}: give the --output-dir of a finished local_runner.py run")
    with open(path) as f:
        return run_summary.RunSummary(**json.load(f))


def latest_outputs(output_dir: str) -> dict[tuple[str, str], Any]:
    """{(node, output key): MLMD artifact} of the run's newest pipeline run."""
    summary = load_summary(output_dir)
    store = lineage.open_store(os.path.join(output_dir, "metadata.sqlite"))
    return run_summary.latest_run_outputs(store, summary.pipeline_name)


def training_curves(outputs: dict[tuple[str, str], Any]) -> dict[str, Curves]:
    """{training step: its validation Curves}, for the steps of HISTORY_FILES that ran."""
    curves = {}
    for node, name in HISTORY_FILES.items():
        run = outputs.get((node, "model_run"))
        path = os.path.join(run.uri, name) if run is not None else ""
        if path and os.path.exists(path):
            with open(path) as f:
                parsed = validation_curves(json.load(f))
            if parsed is not None:
                curves[node] = parsed
    return curves


def roc_points(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(false positive rates, true positive rates, AUC) of the ROC curve, one point per distinct score (ties move
    together), from (0, 0) to (1, 1); AUC by the trapezoid rule (equal to the rank AUC with ties counted half).

    Raises:
        ValueError: labels of one class only (no curve).
    """
    labels = np.asarray(labels, np.float64).ravel()
    scores = np.asarray(probabilities, np.float64).ravel()
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC curve needs both classes in the labels")
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tpr = np.r_[0.0, np.cumsum(labels)[last_of_tie] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - labels)[last_of_tie] / negatives]
    return fpr, tpr, float(np.trapz(tpr, fpr))


def calibration_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
                     ) -> list[tuple[float, float, int]]:
    """Reliability diagram points: for each of `bins` equal-width probability bins that holds examples, (mean
    predicted probability, observed click rate, examples); a probability of 1 falls in the last bin."""
    labels = np.asarray(labels, np.float64).ravel()
    probabilities = np.asarray(probabilities, np.float64).ravel()
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    points = []
    for b in range(bins):
        members = index == b
        if members.any():
            points.append((float(probabilities[members].mean()), float(labels[members].mean()), int(members.sum())))
    return points


def test_split_predictions(examples_uri: str, model_dir: str, batch_size: int = 1024
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predicted click probabilities) of the raw test split of an ExampleGen output, scored by the pushed
    SavedModel's serving signature (raw tf.Examples in, as TF Serving scores them).

    Raises:
        FileNotFoundError: the Examples have no test split.
    """
    import tensorflow as tf

    from transform import features

    files = sorted(glob.glob(os.path.join(examples_uri, "Split-test", "*")))
    if not files:
        raise FileNotFoundError(f"{examples_uri} has no test split")
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    labels, probabilities = [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        labels.append([example_label(record, features.LABEL_KEY) for record in batch.numpy()])
        output = serve(examples=batch)
        probabilities.append(next(iter(output.values())).numpy().reshape(-1))
    return np.concatenate([np.asarray(b, np.float64) for b in labels]), np.concatenate(probabilities)


def example_label(serialized: bytes, label_key: str) -> float:
    """The label of a serialized raw tf.Example: int64 in the text layouts, float in OptFusion TFRecords.

    Raises:
        ValueError: the example has no label.
    """
    import tensorflow as tf

    feature = tf.train.Example.FromString(serialized).features.feature[label_key]
    values = list(feature.int64_list.value) or list(feature.float_list.value)
    if not values:
        raise ValueError(f"a test example has no {label_key!r}")
    return float(values[0])


def slice_metrics(evaluation_uri: str) -> list[tuple[str, float, int]]:
    """(slice value, candidate AUC, examples) of every slice of the TFMA evaluation, largest first."""
    import tensorflow_model_analysis as tfma

    rows = []
    for slice_metrics_proto in tfma.load_metrics(evaluation_uri):
        keys = slice_metrics_proto.slice_key.single_slice_keys
        if not keys:
            continue
        values = {entry.key.name: entry.value.double_value.value
                  for entry in slice_metrics_proto.metric_keys_and_values
                  if entry.key.model_name in run_summary.CANDIDATE_MODELS and not entry.key.is_diff}
        value = getattr(keys[0], keys[0].WhichOneof("kind"))  # bytes, int64 or float
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        rows.append((f"{keys[0].column}={text}", values.get("auc", np.nan), int(values.get("example_count", 0))))
    return sorted(rows, key=lambda row: -row[2])


def op_weights(op_logits: Sequence[Sequence[float]]) -> np.ndarray:
    """Softmax of each node's operation logits: float [nodes, operations], rows summing to 1."""
    logits = np.asarray(op_logits, np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def architecture_layout(num_blocks: int) -> dict[int, tuple[float, float]]:
    """(x, y) of each node of an OptFusion graph, by connection-matrix row: emb at the bottom, the cross layers on
    the left and the deep layers on the right by depth, the output on top."""
    from trainer.optfusion import network

    positions = {}
    for row, name in enumerate(network.node_names(num_blocks)):
        if name == "emb":
            positions[row] = (0.5, 0.0)
        elif name == "output":
            positions[row] = (0.5, num_blocks + 2.0)
        else:
            kind, depth = name.split("_")
            positions[row] = (0.0 if kind == "cross" else 1.0, int(depth) + 1.0)
    return positions


def draw_architecture(ax: Any, architecture: Any) -> None:
    """The searched architecture on a matplotlib Axes: kept connections solid, pruned candidates faint and dashed,
    each node labelled with its chosen operation (cross_0 has none)."""
    from trainer.optfusion import network

    blocks = architecture.num_blocks
    names = network.node_names(blocks)
    positions = architecture_layout(blocks)
    ops = dict(zip(network.op_rows(blocks), architecture.ops))
    for row in range(1, len(names)):
        for producer in network.candidate_inputs(row, blocks):
            kept = architecture.connections[row][producer] == 1
            (x0, y0), (x1, y1) = positions[producer], positions[row]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "->", "color": "black" if kept else "0.8",
                                    "linestyle": "-" if kept else "--", "lw": 1.6 if kept else 0.8,
                                    "shrinkA": 14, "shrinkB": 14, "connectionstyle": "arc3,rad=0.15"})
    for row, name in enumerate(names):
        x, y = positions[row]
        label = name + (f"\n{ops[row]}" if row in ops else "")
        ax.text(x, y, label, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "black"})
    ax.set_xlim(-0.4, 1.4)
    ax.set_ylim(-0.6, blocks + 2.6)
    ax.axis("off")


def served_model_dir(output_dir: str, summary: run_summary.RunSummary) -> str:
    """The model to look at: the version this run pushed, else the newest version under serving_model/.

    Raises:
        FileNotFoundError: no version was ever pushed.
    """
    if summary.pushed_to:
        return summary.pushed_to
    served = os.path.join(output_dir, "serving_model")
    versions = [name for name in (os.listdir(served) if os.path.isdir(served) else []) if name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"no model version under {served}: no run has pushed one")
    return os.path.join(served, max(versions, key=int))
