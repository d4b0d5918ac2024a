"""ChampionEvaluator: TFX's Evaluator whose executor drops a baseline that is the candidate itself (executor.py).

Same inputs, outputs and parameters as `tfx.components.Evaluator`.
"""
from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.champion_evaluator import executor


class ChampionEvaluator(tfx.components.Evaluator):
    """tfx.components.Evaluator that judges a re-run's cached model without comparing it with itself."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
