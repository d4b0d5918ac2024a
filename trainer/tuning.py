"""Hyper-parameter tuning, the typed half: search spaces, the trial budget, and reading the tuned values.

Each model family declares its search space beside its pipeline steps (pipeline/keras_steps.py, optfusion_steps.py,
resfusion_steps.py) as a tuple of `Choice` / `LogRange`; the TFX Tuner (trainer/tuner.py: `tuner_fn`) runs the trials
with keras-tuner and writes the best values as its `best_hyperparameters` artifact, which the Trainer (baselines,
ResFusion's deep stages) and OptFusionSearch read through the standard `hyperparameters` channel. The names are the
family's knobs, applied by `TrainerConfig.with_hyperparameters` and `SearchSettings.with_hyperparameters`.

No keras_tuner import here: the pipeline builds its graph from these types without loading the tuner.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping, Sequence, Union

from trainer import contract

# The metric every trial reports and the tuner maximises: the best eval-split AUC of the trial's training (the
# metric early stopping monitors).
OBJECTIVE = contract.MONITOR
ALGORITHMS = ("bayesian", "random")
# The Tuner's custom_config keys (trainer/tuner.py); every other key is the family's training config, for the trial.
TRIAL_FN_KEY, SEARCH_SPACE_KEY, TUNING_KEY, TRIALS_DIR_KEY = "trial_fn", "search_space", "tuning", "trials_dir"
TUNER_KEYS = (TRIAL_FN_KEY, SEARCH_SPACE_KEY, TUNING_KEY, TRIALS_DIR_KEY)


@dataclasses.dataclass(frozen=True)
class Choice:
    """A hyper-parameter taking one of `values` (keras-tuner `hp.Choice`; ordered, so Bayesian search can use the
    order)."""

    name: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"hyper-parameter {self.name!r}: no values")


@dataclasses.dataclass(frozen=True)
class LogRange:
    """A float hyper-parameter between `low` and `high`, sampled uniformly in log space (keras-tuner `hp.Float` with
    sampling="log"): learning rates and L2 strengths, which matter by order of magnitude."""

    name: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"hyper-parameter {self.name!r}: need 0 < low < high, got {self.low}, {self.high}")


Hyperparameter = Union[Choice, LogRange]
SearchSpace = tuple[Hyperparameter, ...]


def space_to_json(space: SearchSpace) -> list[dict[str, Any]]:
    """The JSON-able form of `space` (a list of {"kind", "name", ...}), for the Tuner's custom_config."""
    return [{"kind": type(h).__name__, **dataclasses.asdict(h)} for h in space]


def space_from_json(items: Sequence[Mapping[str, Any]]) -> SearchSpace:
    """Inverse of `space_to_json`.

    Raises:
        ValueError: an unknown kind.
    """
    kinds = {"Choice": Choice, "LogRange": LogRange}
    space = []
    for item in items:
        fields = dict(item)
        kind = fields.pop("kind")
        if kind not in kinds:
            raise ValueError(f"unknown hyper-parameter kind {kind!r}; choose one of {', '.join(kinds)}")
        if kind == "Choice":
            fields["values"] = tuple(fields["values"])
        space.append(kinds[kind](**fields))
    return tuple(space)


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """The Tuner's budget and algorithm (`--tune`, `--tune-trials`, `--tune-epochs`).

    Attributes:
        max_trials: trials in all. A re-run with the same inputs and search space resumes the earlier trials
            (completed ones are kept, an interrupted one is re-run), so raising the budget only runs the new trials.
        algorithm: "bayesian" (keras-tuner's Gaussian-process search: a trial is a whole training, so each one
            should learn from the last) or "random".
        trial_epochs: epochs of each trial's training (early stopping still applies); None: the family's own.
        seed: seed of the search algorithm's sampling.

    Raises:
        ValueError: max_trials < 1, trial_epochs < 1 or an unknown algorithm.
    """

    max_trials: int = 10
    algorithm: str = "bayesian"
    trial_epochs: int | None = None
    seed: int = contract.REFERENCE_SEED

    def __post_init__(self) -> None:
        if self.max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {self.max_trials}")
        if self.trial_epochs is not None and self.trial_epochs < 1:
            raise ValueError(f"trial_epochs must be >= 1, got {self.trial_epochs}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown tuning algorithm {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def trial_score(eval_aucs: Sequence[float]) -> float:
    """A trial's score: its best finite eval AUC, or 0.0 when none is finite (a diverged trial ranks last)."""
    finite = [float(a) for a in eval_aucs if math.isfinite(a)]
    return max(finite) if finite else 0.0


def tuned_values(hyperparameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tuned {name: value} of a `best_hyperparameters` artifact, as TFX hands it to a Trainer
    (`fn_args.hyperparameters`: keras-tuner's `HyperParameters.get_config()`, {"space": [...], "values": {...}});
    {} for None (no Tuner upstream).

    Raises:
        ValueError: a config without "values".
    """
    if not hyperparameters:
        return {}
    if "values" not in hyperparameters:
        raise ValueError(f"not a keras-tuner HyperParameters config (no 'values'): {json.dumps(hyperparameters)[:200]}")
    return dict(hyperparameters["values"])


def check_names(values: Mapping[str, Any], known: Sequence[str], owner: str) -> None:
    """Raises ValueError naming the unknown names of `values` and the `known` ones of `owner` (a settings class)."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{owner} has no hyper-parameter {', '.join(map(repr, unknown))}; "
                         f"tunable: {', '.join(known)}")
