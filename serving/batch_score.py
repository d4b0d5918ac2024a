"""Scores a raw click log with a pushed SavedModel, through its `serving_default` signature.

    python -m serving.batch_score --model tfx_output/serving_model --dataset criteo --data test.txt

--model is a version folder or the Pusher's base folder (the highest version is used). --data is plain or compressed
(.gz, .bz2, .xz), labelled or in the layout's unlabelled test-file form (Criteo's test.txt, Avazu's test.csv): the
first data line tells. Prints the example count, and AUC and logloss where they are defined (labels present, both
classes for the AUC; otherwise "undefined" and why); --output writes one probability per row. Malformed rows stop
the scoring with the file, line and reason (nothing is skipped silently).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np
import tensorflow as tf

from trainer import metrics
from transform import features, log_files
from transform.parsers import RowError, row_to_example
from transform.spec import Row


def version_folders(base_path: str) -> dict[int, str]:
    """{version: folder} of the numeric children of `base_path` (TF Serving's layout; the Pusher's hidden
    `.<version>.incomplete` folders are not versions); {} when it does not exist."""
    if not tf.io.gfile.isdir(base_path):
        return {}
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_path))
    return {int(name): os.path.join(base_path, name) for name in names if name.isdigit()}


def latest_version(model_dir: str) -> str:
    """A SavedModel folder itself, or the highest numeric version below a serving base folder."""
    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    versions = version_folders(model_dir)
    if not versions:
        raise FileNotFoundError(f"{model_dir} holds neither saved_model.pb nor numbered versions")
    return versions[max(versions)]


def _log_mode(log_format: str, line: str) -> bool:
    """Whether a log is labelled, from its first data line: the layout's labelled form, else its unlabelled one.

    Raises:
        RowError: the line is neither (the labelled form's reason, which names the field).
    """
    try:
        features.parse_line(log_format, line)
        return True
    except RowError as labelled_error:
        if features.get_dataset(log_format).parse_unlabelled is None:
            raise
        try:
            features.parse_line(log_format, line, labelled=False)
        except RowError:
            raise labelled_error from None
        return False


def read_raw_rows(path: str, log_format: str, limit: int | None = None) -> tuple[list[Row], np.ndarray | None]:
    """The rows of a log file as {field: value} without the label (absent values None), and their labels
    float32 [n], or None when the log has no label column (its first data line is the layout's unlabelled form:
    Criteo's test.txt, Avazu's test.csv); the first `limit` rows only, when given. Plain or compressed
    (transform/log_files.py); header and empty lines are skipped; an empty file is no rows.

    Raises:
        ValueError: a malformed line, naming the file and line.
        transform.log_files.InputFileError: a truncated or corrupt compressed file.
    """
    rows: list[Row] = []
    labels: list[Any] = []  # 0/1 as the layout parses them
    labelled: bool | None = None
    for line_number, raw in log_files.numbered_lines(path, allow_empty=True):
        if limit is not None and len(rows) == limit:
            break
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        if features.skipped_line(log_format, line):
            continue
        try:
            if labelled is None:
                labelled = _log_mode(log_format, line)
            row = features.parse_line(log_format, line, labelled)
        except RowError as error:
            form = "" if labelled is not False else " (the log has no label column, as its first data line)"
            raise ValueError(f"{path}, line {line_number}: {error}{form}") from None
        if labelled:
            labels.append(row.pop(features.LABEL_KEY))
        rows.append(row)
    return rows, (np.array(labels, dtype=np.float32) if labelled is not False else None)


def read_raw_examples(path: str, log_format: str) -> tuple[list[bytes], np.ndarray | None]:
    """Serialized raw tf.Examples (label left out, as a client sends them) and the labels of a log file (None:
    unlabelled), as read_raw_rows reads them."""
    rows, labels = read_raw_rows(path, log_format)
    return [row_to_example(row).SerializeToString() for row in rows], labels


def describe_metrics(labels: np.ndarray | None, probabilities: np.ndarray) -> str:
    """`auc=... logloss=...` of the scores, or what keeps each from being defined (no labels, no rows, one class)."""
    if labels is None:
        return "auc=undefined logloss=undefined (the log has no labels: scores only)"
    if len(labels) == 0:
        return "auc=undefined logloss=undefined (no rows)"
    logloss = f"logloss={metrics.logloss_of_probabilities(labels, probabilities):.4f}"
    positives = int(np.sum(labels == 1))
    if positives in (0, len(labels)):
        return (f"auc=undefined {logloss} (AUC needs both classes; the labels hold {len(labels) - positives} "
                f"negative(s) and {positives} positive(s))")
    return f"auc={metrics.auc(labels, probabilities):.4f} {logloss}"


def score(model_dir: str, serialized: list[bytes], batch_size: int = 1024) -> np.ndarray:
    """Probabilities float32 [n] of serialized raw tf.Examples [n], through the model's `serving_default`."""
    # Registers the TF-DF ops that the GBDT and ResFusion SavedModels hold (they load without them otherwise fail
    # with "Op type not registered 'SimpleMLCreateModelResource'").
    import tensorflow_decision_forests  # noqa: F401

    serve = tf.saved_model.load(latest_version(model_dir)).signatures["serving_default"]
    outputs = [serve(examples=tf.constant(serialized[i:i + batch_size]))["probability"].numpy()
               for i in range(0, len(serialized), batch_size)]
    return np.concatenate(outputs)[:, 0] if outputs else np.zeros([0], np.float32)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry (flags: the module docstring, --help): scores the --data log with --model, writes the
    probabilities to --output if given, and prints the example count, AUC, logloss and the SavedModel used.

    Raises:
        ValueError: a malformed row; FileNotFoundError: no SavedModel at --model. Bad flags exit (argparse).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="SavedModel folder or the Pusher's base folder")
    parser.add_argument("--dataset", required=True, choices=sorted(features.text_layouts()))
    parser.add_argument("--data", required=True, help="raw log file")
    parser.add_argument("--output", help="write one probability per line here")
    args = parser.parse_args(argv)
    serialized, labels = read_raw_examples(args.data, args.dataset)
    probabilities = score(args.model, serialized)
    if args.output:
        np.savetxt(args.output, probabilities, fmt="%.7f")
    print(f"examples={len(serialized)} {describe_metrics(labels, probabilities)} model={latest_version(args.model)}")


if __name__ == "__main__":
    main(sys.argv[1:])
