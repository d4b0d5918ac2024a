"""Tuner: TFX's stock Tuner component (keras-tuner, `tuner_fn`), with an executor that also records the result in MLMD.

    Tuner(examples, transform_graph, schema[, base_model], tuner_fn="trainer.tuner.tuner_fn", custom_config)
      -> best_hyperparameters (HyperParameters: best_hyperparameters.txt, as the stock Tuner writes it, and the custom
         properties `hp.<name>` per tuned value, `best_val_auc`, `trials_completed`, `trials_failed`, `trials_dir`)
      -> tuner_results (TunerResults: every completed trial's values and score)

The stock executor writes the best values only into a file; the properties make them visible where users look (the
Kubeflow UI's artifact view, MLMD queries) without opening it. It also fails clearly when no trial completed, where
the stock executor would fail on an empty list.
"""
from __future__ import annotations

from typing import Any

from tfx import types
from tfx import v1 as tfx
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

BEST_HYPERPARAMETERS_KEY = standard_component_specs.BEST_HYPERPARAMETERS_KEY
OBJECTIVE_PROPERTY = "best_val_auc"


def record_result(artifact: types.Artifact, best_values: dict[str, Any], best_score: float, completed: int,
                  failed: int, trials_dir: str) -> None:
    """Sets the best_hyperparameters artifact's custom properties (module docstring)."""
    for name, value in best_values.items():
        if isinstance(value, int) and not isinstance(value, bool):
            artifact.set_int_custom_property(f"hp.{name}", value)
        else:
            artifact.set_float_custom_property(f"hp.{name}", float(value))
    artifact.set_float_custom_property(OBJECTIVE_PROPERTY, float(best_score))
    artifact.set_int_custom_property("trials_completed", completed)
    artifact.set_int_custom_property("trials_failed", failed)
    artifact.set_string_custom_property("trials_dir", trials_dir)


class Executor(tuner_executor.Executor):
    """The stock Tuner executor's search and outputs, then `record_result`.

    Raises:
        RuntimeError: no trial completed; the message quotes the last failed trial's error.
    """

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Runs the search (tuner_fn's tuner), writes best_hyperparameters and tuner_results, records the result."""
        if tuner_executor.get_tune_args(exec_properties):
            raise ValueError("TuneArgs (parallel tuning) is not supported by this Tuner's executor")
        tuner = tuner_executor.search(input_dict, exec_properties, self._get_tmp_dir())
        trials = list(tuner.oracle.trials.values())
        completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
        failed = [t for t in trials if t.status in ("INVALID", "FAILED")]
        if not completed:
            last_error = (failed[-1].message or "").strip().splitlines()[-1:] if failed else []
            raise RuntimeError(f"Tuner: none of {len(trials)} trials completed (trial folders under "
                               f"{tuner.project_dir}); last error: {' '.join(last_error) or 'none recorded'}")
        tuner_executor.write_best_hyperparameters(tuner, output_dict)
        best = tuner.oracle.get_best_trials(1)[0]
        record_result(artifact_utils.get_single_instance(output_dict[BEST_HYPERPARAMETERS_KEY]),
                      dict(best.hyperparameters.values), best.score, len(completed), len(failed), tuner.project_dir)


class Tuner(tfx.components.Tuner):
    """tfx.components.Tuner with this module's Executor (same inputs, outputs and parameters)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

