"""ChampionEvaluator's executor: TFX's Evaluator, except that a baseline which is the candidate itself is dropped.

The pipeline feeds the Evaluator the champion (the latest blessed model) through TFX's stock
LatestBlessedModelStrategy resolver, the only kind Kubeflow V2 compiles. When a re-run reuses a cached model, that
champion is the candidate itself: comparing a model with itself would evaluate it twice to learn nothing, so the
baseline is left out and the model is judged on the absolute thresholds only, as on a first run (TFMA ignores
change thresholds without a baseline: the Evaluator's rubber stamp). It also registers TF-DF's ops, so GBDT-based
models load wherever the step runs.
"""
from __future__ import annotations

import logging
from typing import Any

from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs

BASELINE_KEY = standard_component_specs.BASELINE_MODEL_KEY
MODEL_KEY = standard_component_specs.MODEL_KEY


def without_self_baseline(input_dict: dict[str, list[types.Artifact]]) -> dict[str, list[types.Artifact]]:
    """input_dict without its baseline model when that is the candidate model (same MLMD artifact or same URI)."""
    baseline, model = input_dict.get(BASELINE_KEY) or [], input_dict.get(MODEL_KEY) or []
    if len(baseline) == 1 and len(model) == 1 and (
            (baseline[0].id and baseline[0].id == model[0].id) or baseline[0].uri == model[0].uri):
        logging.info("The champion is the candidate itself (%s): evaluating without a baseline", model[0].uri)
        return {key: value for key, value in input_dict.items() if key != BASELINE_KEY}
    return input_dict


class Executor(evaluator_executor.Executor):
    """tfx.components.evaluator.executor.Executor on without_self_baseline(input_dict)."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """TFMA on the `examples` with `model` (and `baseline_model` unless it is `model`): writes `evaluation`
        and `blessing` as the stock Evaluator does."""
        # The TF-DF ops of GBDT and ResFusion models (candidate or champion), also where this step runs in a
        # process of its own (Kubeflow) rather than beside the GBDT step.
        import tensorflow_decision_forests  # noqa: F401
        super().Do(without_self_baseline(input_dict), output_dict, exec_properties)
