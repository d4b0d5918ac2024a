"""What a finished run did, in a dozen lines (issue 14): the rows it ingested and rejected, how good the model is,
whether it was blessed (and why not), where it was pushed, and what to do next. Read from the run's ML Metadata
(the latest pipeline run only), printed at the end of `local_runner.py` and written as `run_summary.json` beside
the metadata store.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import lineage

SUMMARY_FILE = "run_summary.json"
EXAMPLE_GENS = ("RawLogExampleGen", "ImportExampleGen")
ROW_COUNTS = ("train", "eval", "test", "rejected", "header_line", "empty_line")
SHOWN_METRICS = ("auc", "logloss", "calibration", "example_count")
CANDIDATE_MODELS = ("", "candidate")  # TFMA's model name of the judged model: "" when there is no champion


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One run's outcome (module docstring).

    Attributes:
        pipeline_name: the pipeline (the champion is the latest blessed model of the same name).
        model: the --model trained.
        rows: ingested rows per split, rejected rows, skipped header and empty lines (of today's span).
        rejected_rows_file: where the rejected rows are listed with file, line and reason; None: not a text log.
        eval_metrics: the candidate's AUC, logloss, calibration and example count on the whole eval split.
        champion_metrics: the same for the champion it was judged against; {} on a first run.
        blessed: whether the Evaluator blessed the model; None when the run did not evaluate one.
        not_blessed_because: the failed thresholds, one line each; [] when blessed.
        pushed_to: the new serving version's folder; None when nothing was pushed.
        next_commands: what a user runs next.
    """

    pipeline_name: str
    model: str
    rows: dict[str, int]
    rejected_rows_file: str | None
    eval_metrics: dict[str, float]
    champion_metrics: dict[str, float]
    blessed: bool | None
    not_blessed_because: list[str]
    pushed_to: str | None
    next_commands: list[str]


def latest_run_outputs(store: metadata_store.MetadataStore, pipeline_name: str
                       ) -> dict[tuple[str, str], metadata_store_pb2.Artifact]:
    """{(node, output key): artifact} of the executions of the pipeline's newest run (CACHED ones included: they name
    the artifacts they reuse)."""
    executions = store.get_executions_by_id(list(lineage.recent_run_executions(store, pipeline_name, 1)))
    nodes = {execution.id: lineage.node_id(store, execution) for execution in executions}
    outputs = {}
    for event in store.get_events_by_execution_ids(list(nodes)):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            outputs[(nodes[event.execution_id], event.path.steps[0].key)] = event.artifact_id
    artifacts = {artifact.id: artifact for artifact in store.get_artifacts_by_id(list(outputs.values()))}
    return {key: artifacts[artifact_id] for key, artifact_id in outputs.items()}


def overall_metrics(evaluation_uri: str) -> tuple[dict[str, float], dict[str, float]]:
    """(candidate's, champion's) SHOWN_METRICS on the whole eval split, from the Evaluator's output."""
    import tensorflow_model_analysis as tfma

    candidate: dict[str, float] = {}
    champion: dict[str, float] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue  # a slice of the slice field, not the whole split
        for entry in slice_metrics.metric_keys_and_values:
            if entry.key.is_diff or entry.key.name not in SHOWN_METRICS:
                continue
            target = candidate if entry.key.model_name in CANDIDATE_MODELS else champion
            target[entry.key.name] = entry.value.double_value.value
    return candidate, champion


def failed_thresholds(evaluation_uri: str, candidate: dict[str, float], champion: dict[str, float]) -> list[str]:
    """One line per threshold the candidate failed (TFMA's validation result): the floor (`--min-auc`), or the drop
    below the champion (`--max-auc-drop`), with the candidate's and the champion's values."""
    import tensorflow_model_analysis as tfma

    validation = tfma.load_validation_result(evaluation_uri)
    return [failure_text(failure.metric_key.name, failure.metric_value.double_value.value, failure.metric_threshold,
                         candidate, champion)
            for per_slice in validation.metric_validations_per_slice for failure in per_slice.failures]


def failure_text(name: str, value: float, threshold: Any, candidate: dict[str, float], champion: dict[str, float]
                 ) -> str:
    """A failed TFMA threshold in words. `value` is the metric, or for a change threshold the difference to the
    champion; `threshold` is the tfma.MetricThreshold."""
    mine = candidate.get(name, value)
    if threshold.HasField("change_threshold"):
        allowed = abs(threshold.change_threshold.absolute.value)
        return (f"{name} {mine:.4f} is {-value:.4f} below the champion's {champion.get(name, mine - value):.4f} "
                f"(at most {allowed:g} allowed: --max-auc-drop)")
    floor = threshold.value_threshold.lower_bound.value
    return f"{name} {mine:.4f} is below the floor {floor:g} (--min-auc)"


def summarize(store: metadata_store.MetadataStore, pipeline_name: str, model: str, serving_model_dir: str,
              output_dir: str) -> RunSummary:
    """The RunSummary of the pipeline's newest run in `store` (a run that trained `model`)."""
    outputs = latest_run_outputs(store, pipeline_name)
    examples = next((outputs[(node, "examples")] for node in EXAMPLE_GENS if (node, "examples") in outputs), None)
    rows = {name: examples.custom_properties[f"{name}_count"].int_value for name in ROW_COUNTS
            if examples is not None and f"{name}_count" in examples.custom_properties}
    rejected_file = (examples.custom_properties["rejected_rows_uri"].string_value
                     if examples is not None and "rejected_rows_uri" in examples.custom_properties else None)
    evaluation, blessing = outputs.get(("Evaluator", "evaluation")), outputs.get(("Evaluator", "blessing"))
    candidate, champion = overall_metrics(evaluation.uri) if evaluation else ({}, {})
    blessed = None if blessing is None else blessing.custom_properties["blessed"].int_value == 1
    reasons = failed_thresholds(evaluation.uri, candidate, champion) if evaluation and blessed is False else []
    pushed = outputs.get(("Pusher", "pushed_model"))
    pushed_to = (pushed.custom_properties["pushed_destination"].string_value
                 if pushed is not None and pushed.custom_properties["pushed"].int_value == 1 else None)
    return RunSummary(pipeline_name=pipeline_name, model=model, rows=rows, rejected_rows_file=rejected_file,
                      eval_metrics=candidate, champion_metrics=champion, blessed=blessed,
                      not_blessed_because=reasons, pushed_to=pushed_to,
                      next_commands=next_commands(serving_model_dir, output_dir, pushed_to is not None))


def next_commands(serving_model_dir: str, output_dir: str, pushed: bool) -> list[str]:
    """Serving the pushed model, looking at the run."""
    commands = [f"make notebook OUTPUT_DIR={output_dir}   # plots of this run (notebooks/results.ipynb)",
                f"tensorboard --logdir {os.path.join(output_dir, 'pipeline_root')}   # training curves"]
    if pushed or os.path.isdir(serving_model_dir):
        commands.insert(0, f"python -m serving --model_base_path {serving_model_dir}   # serve the newest version "
                           "(TF Serving's REST API on :8501)")
    return commands


def render(summary: RunSummary) -> str:
    """The summary as the lines printed at the end of a run."""
    rows = summary.rows
    lines = [f"Run summary: {summary.pipeline_name}, model {summary.model}"]
    if rows:
        lines.append(f"  rows      train {rows.get('train', 0):,}, eval {rows.get('eval', 0):,}, "
                     f"test {rows.get('test', 0):,}; rejected {rows.get('rejected', 0):,}"
                     + (f" (listed in {summary.rejected_rows_file})" if rows.get("rejected") else "")
                     + f"; skipped {rows.get('header_line', 0):,} header and {rows.get('empty_line', 0):,} empty "
                       "line(s)")
    if summary.eval_metrics:
        lines.append("  eval      " + _metrics_text(summary.eval_metrics))
    if summary.champion_metrics:
        lines.append("  champion  " + _metrics_text(summary.champion_metrics))
    if summary.blessed is None:
        lines.append("  blessing  the run evaluated no model")
    elif summary.blessed:
        lines.append("  blessing  blessed")
    else:
        lines.append("  blessing  NOT blessed: " + "; ".join(summary.not_blessed_because))
    lines.append(f"  pushed    {summary.pushed_to}" if summary.pushed_to
                 else "  pushed    nothing: the served version is unchanged")
    lines += ["  next:"] + [f"    {command}" for command in summary.next_commands]
    return "\n".join(lines)


def _metrics_text(metrics: dict[str, float]) -> str:
    parts = [f"{name} {metrics[name]:.4f}" for name in ("auc", "logloss", "calibration") if name in metrics]
    if "example_count" in metrics:
        parts.append(f"on {int(metrics['example_count']):,} examples")
    return ", ".join(parts)


def write(summary: RunSummary, path: str) -> None:
    """`summary` as JSON at `path`."""
    with open(path, "w") as f:
        json.dump(dataclasses.asdict(summary), f, indent=1)

