"""The ResFusion family's Trainer executor: TFX's GenericExecutor, then the run's result into MLMD.

trainer.resfusion.run.run_fn writes `result.json` into the `model_run` artifact (which K was served, every stage's
eval AUC / logloss). A run_fn cannot reach the output artifacts, so this executor (the Trainer's
`custom_executor_spec`, pipeline/resfusion_steps.py) copies the result onto the `model` artifact as custom
properties after the run (record_result), where MLMD queries and the lineage helpers see them:

    variant               str    the `--model` name
    eval_auc, eval_logloss float the served model on the eval split
    served_rounds          int   K of the exported model (the prefix with the lowest eval logloss); absent
                                 for a comparator
    fitted_rounds          int   K of the last stage fitted (every K up to it is in stage_metrics)
    best_epoch             int   best eval-AUC epoch of the first deep stage (absent without one)
    stage_metrics          str   JSON list, one per stage: {rounds, kind, eval_auc, eval_logloss, served}
"""
from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils

from components import ctr_trainer


def record_result(model: types.Artifact, result: dict[str, Any]) -> None:
    """Sets the custom properties above on `model` from a result.json dict (trainer.resfusion.export.summarize)."""
    model.set_string_custom_property("variant", str(result["variant"]))
    model.set_float_custom_property("eval_auc", float(result["eval_auc"]))
    model.set_float_custom_property("eval_logloss", float(result["eval_logloss"]))
    if result.get("served_rounds") is not None:
        model.set_int_custom_property("served_rounds", int(result["served_rounds"]))
        model.set_int_custom_property("fitted_rounds", int(result["fitted_rounds"]))
    if result.get("best_epoch") is not None:
        model.set_int_custom_property("best_epoch", int(result["best_epoch"]))
    model.set_string_custom_property("stage_metrics", json.dumps([
        {k: stage.get(k) for k in ("rounds", "kind", "eval_auc", "eval_logloss", "served")}
        for stage in result.get("stages", [])]))


class Executor(ctr_trainer.Executor):
    """CtrTrainer's executor (GenericExecutor: trainer.resfusion.run.run_fn), then record_result from result.json."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Runs the Trainer (GenericExecutor.Do), then sets `model`'s custom properties from model_run/result.json."""
        super().Do(input_dict, output_dict, exec_properties)
        from trainer.resfusion import export
        model_run = artifact_utils.get_single_instance(output_dict["model_run"])
        with tf.io.gfile.GFile(os.path.join(model_run.uri, export.RESULT_FILE)) as f:
            result = json.load(f)
        record_result(artifact_utils.get_single_instance(output_dict["model"]), result)
