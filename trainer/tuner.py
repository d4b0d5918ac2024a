"""TFX Tuner entry point (`tuner_fn`) of every model family: keras-tuner trials that run the family's own training.

    Tuner(custom_config={"trial_fn", "search_space", "tuning", "trials_dir", <the family's training config>})
      -> tuner_fn -> TrialTuner.search(): per trial, trial_fn(fn_args, values, trial_dir) -> eval AUC
      -> best_hyperparameters (HyperParameters artifact) -> Trainer / OptFusionSearch `hyperparameters`

A trial trains exactly as the training step will (the same code path, the trial's values applied by the family's
`with_hyperparameters`), so the tuned values mean the same thing in the trial and in the real run. Trial functions:
`trainer.train.tuning_trial` (Keras baselines), `trainer.resfusion.run.tuning_trial` (ResFusion's deep stage on the
GBDT's logit), `trainer.optfusion.training.tuning_trial` (the OptFusion supernet search).

Resumable: the trials live in `trials_dir`/<project>, where the project name is a digest of the inputs, the
search space and the training config (not the budget). A run interrupted mid-search and started again keeps its
completed trials and re-runs the interrupted one; a larger `max_trials` runs only the extra trials.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
from typing import Any, Callable

import attr
import keras_tuner as kt
from tfx import v1 as tfx

from trainer import tuning
from trainer.tuning import SEARCH_SPACE_KEY, TRIAL_FN_KEY, TRIALS_DIR_KEY, TUNER_KEYS, TUNING_KEY

TrialFn = Callable[[Any, dict[str, Any], str], float]


def declare(space: tuning.SearchSpace) -> kt.HyperParameters:
    """keras-tuner HyperParameters holding `space` (Choice -> hp.Choice, ordered; LogRange -> hp.Float, log)."""
    hp = kt.HyperParameters()
    for item in space:
        if isinstance(item, tuning.Choice):
            hp.Choice(item.name, list(item.values), ordered=True)
        else:
            hp.Float(item.name, item.low, item.high, sampling="log")
    return hp


def project_name(fn_args: Any, custom_config: dict[str, Any]) -> str:
    """Digest of what makes two searches the same one: the input files and models, the trial function, the search
    space, the algorithm and seed, and the training config; not the trial budget (so a larger one resumes)."""
    budgetless = {**custom_config.get(TUNING_KEY, {}), "max_trials": None}
    key = {"train": sorted(fn_args.train_files), "eval": sorted(fn_args.eval_files),
           "transform": fn_args.transform_graph_path, "base_model": fn_args.base_model,
           "config": {**{k: v for k, v in custom_config.items() if k != TRIALS_DIR_KEY}, TUNING_KEY: budgetless}}
    return "search_" + hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _import(dotted: str) -> TrialFn:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _oracle(config: tuning.TuningConfig, hp: kt.HyperParameters) -> kt.Oracle:
    common = {"objective": kt.Objective(tuning.OBJECTIVE, "max"), "max_trials": config.max_trials,
              "hyperparameters": hp, "seed": config.seed, "allow_new_entries": False, "tune_new_entries": False}
    if config.algorithm == "random":
        return kt.oracles.RandomSearchOracle(**common)
    return kt.oracles.BayesianOptimizationOracle(**common)


class TrialTuner(kt.engine.base_tuner.BaseTuner):
    """A keras-tuner tuner whose trial is a call of `trial_fn(fn_args, values, trial_dir)` returning the trial's
    best eval AUC (no hypermodel: the family's training code builds and fits the model)."""

    def __init__(self, trial_fn: TrialFn, fn_args: Any, **kwargs: Any):
        self._trial_fn, self._fn_args = trial_fn, fn_args
        super().__init__(**kwargs)

    def run_trial(self, trial: kt.engine.trial.Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Trains with the trial's values; {OBJECTIVE: the best eval AUC}."""
        del args, kwargs
        values = dict(trial.hyperparameters.values)
        logging.info("Tuner: trial %s with %s", trial.trial_id, values)
        score = float(self._trial_fn(self._fn_args, values, self.get_trial_dir(trial.trial_id)))
        logging.info("Tuner: trial %s: eval AUC %.5f", trial.trial_id, score)
        return {tuning.OBJECTIVE: score}


def tuner_fn(fn_args: Any) -> tfx.components.TunerFnResult:
    """The TFX Tuner's entry point: a TrialTuner over the Tuner's custom_config (module docstring); the stock Tuner
    executor runs its search and writes the best values as `best_hyperparameters`."""
    custom = dict(fn_args.custom_config)
    config = tuning.TuningConfig(**custom[TUNING_KEY])
    family_config = {k: v for k, v in custom.items() if k not in TUNER_KEYS}
    trial_args = attr.evolve(fn_args, custom_config=family_config)
    tuner = TrialTuner(
        _import(custom[TRIAL_FN_KEY]), trial_args,
        oracle=_oracle(config, declare(tuning.space_from_json(custom[SEARCH_SPACE_KEY]))),
        directory=custom[TRIALS_DIR_KEY], project_name=project_name(fn_args, custom), overwrite=False)
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={})
