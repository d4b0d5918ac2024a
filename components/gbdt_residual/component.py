"""GbdtResidual component: raw Examples -> Examples with `gbdt_logit` (+ `gbdt_fold`) and the GBDT Model.

Inputs: raw-log Examples (RawLogExampleGen: the log's fields) or OptFusion TFRecords (ImportExampleGen:
`label` float[1], `feature` int64[F]; the GBDT reads the F id columns as categorical features).

Outputs:
- `residual_examples`: the input splits, each tf.Example with two more features:
  `gbdt_logit` (float): the GBDT's raw score (log-odds). Training split: OUT-OF-FOLD, from the fold model
  that did not see the row; other splits: the model trained on every training row.
  `gbdt_fold` (int): the row's fold (training split), -1 elsewhere.
  Custom properties: `gbdt_folds`, `gbdt_fold_seed`, `gbdt_fold_rule`, `gbdt_logit_feature`,
  `gbdt_fold_feature`, and `<split>_count` / `<split>_logloss` (logloss of the written logits).
- `model`: the GBDT trained on all training rows, a TF-DF SavedModel in `Format-Serving/` with a raw
  tf.Example `serving_default` (-> `probability`) like every model of the project; the fold models are in
  `fold_models/fold-<j>/`. Custom properties: `num_trees`, `fold_num_trees`, `folds`, `eval_auc` and
  `eval_logloss` (the full model on the eval split), `train_seconds`; the same and the GBDT's inputs and
  params in `gbdt_metrics.json`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.gbdt_residual import executor


class GbdtResidualSpec(types.ComponentSpec):
    """GbdtResidual's parameters (gbdt_params: GbdtParams as JSON), its `examples` input and its
    `residual_examples` and `model` outputs; the keys are the executor's constants.
    """
    PARAMETERS = {
        executor.DATASET_KEY: ExecutionParameter(type=str),
        executor.FOLDS_KEY: ExecutionParameter(type=int),
        executor.FOLD_SEED_KEY: ExecutionParameter(type=int),
        executor.GBDT_PARAMS_KEY: ExecutionParameter(type=str),
        executor.TRAIN_SPLIT_KEY: ExecutionParameter(type=str),
        executor.EVAL_SPLIT_KEY: ExecutionParameter(type=str),
        # Digest of the project code: part of the cache key, so a change to the GBDT code re-runs it.
        "code_fingerprint": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {
        executor.RESIDUAL_EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
    }


class GbdtResidual(base_beam_component.BaseBeamComponent):
    """Trains the GBDT (and its k fold models) and writes the residual targets' offset into the examples.

    Args:
        examples: Examples (train, eval, test splits) of a raw-log dataset or of OptFusion TFRecords.
        dataset: the layout (transform.features.DATASETS), which says which fields are numerical.
        folds: k of the k-fold out-of-fold logits of the training split (>= 2); 0 writes in-sample
            training logits (only for the GBDT alone, never for a residual model).
        fold_seed: key of the deterministic fold hash.
        params: the GBDT's hyper-parameters, a dataclass (trainer.resfusion.gbdt.GbdtParams; None: its defaults),
            passed to the executor as JSON (its fields are the keyword arguments of GbdtParams).
        train_split / eval_split: the split trained on, and the one early stopping watches.
        code_fingerprint: digest of the project code.
    """

    SPEC_CLASS = GbdtResidualSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, dataset: str, folds: int = 5, fold_seed: int = 2022,
                 params: Any = None, train_split: str = "train", eval_split: str = "eval",
                 code_fingerprint: str = ""):
        if folds == 1 or folds < 0:
            raise ValueError(f"folds must be 0 (in-sample) or >= 2, got {folds}")
        spec = GbdtResidualSpec(
            examples=examples,
            dataset=dataset,
            folds=folds,
            fold_seed=fold_seed,
            gbdt_params=json.dumps(dataclasses.asdict(params) if params is not None else {}, sort_keys=True),
            train_split=train_split,
            eval_split=eval_split,
            code_fingerprint=code_fingerprint,
            residual_examples=types.Channel(type=standard_artifacts.Examples),
            model=types.Channel(type=standard_artifacts.Model),
        )
        super().__init__(spec=spec)
