"""Search spaces, the trial budget and applying tuned values to each family's settings (trainer/tuning.py)."""
import dataclasses
import math

import pytest

from pipeline import keras_steps, optfusion_steps, resfusion_steps
from trainer import tuning
from trainer.config import ModelConfig, TrainConfig, TrainerConfig
from trainer.optfusion.settings import SearchSettings


@pytest.mark.parametrize("space", [keras_steps.SEARCH_SPACE, optfusion_steps.SEARCH_SPACE])
def test_a_search_space_survives_its_json_form(space):
    assert tuning.space_from_json(tuning.space_to_json(space)) == space


def test_every_family_space_names_only_what_its_settings_can_tune():
    assert {h.name for h in keras_steps.SEARCH_SPACE} <= set(TrainerConfig.HYPERPARAMETERS)
    assert {h.name for h in resfusion_steps.SEARCH_SPACE} <= set(TrainerConfig.HYPERPARAMETERS)
    assert {h.name for h in optfusion_steps.SEARCH_SPACE} <= set(SearchSettings.HYPERPARAMETERS)
    assert "arch_learning_rate" in {h.name for h in optfusion_steps.SEARCH_SPACE}


def test_tuned_values_go_where_each_family_reads_them():
    trainer = TrainerConfig(ModelConfig(embedding_dim=16), TrainConfig(learning_rate=3e-4, l2_embedding=1e-6,
                                                                       l2_dense=2e-6, epochs=4))
    tuned = trainer.with_hyperparameters({"learning_rate": 1e-3, "l2": 0.0, "embedding_dim": 8})
    assert (tuned.train.learning_rate, tuned.train.l2_embedding, tuned.train.l2_dense) == (1e-3, 0.0, 0.0)
    assert tuned.model.embedding_dim == 8 and isinstance(tuned.model.embedding_dim, int)
    assert tuned.train.epochs == 4 and tuned.model.name == trainer.model.name  # the rest is untouched
    assert trainer.with_hyperparameters({}) == trainer

    search = SearchSettings().with_hyperparameters({"learning_rate": 1e-3, "l2": 1e-5, "arch_learning_rate": 0.05,
                                                    "embedding_dim": 16})
    assert (search.lr_emb, search.lr_nn, search.l2_emb, search.l2_nn, search.arch_lr, search.embedding_dim) == (
        1e-3, 1e-3, 1e-5, 1e-5, 0.05, 16)
    assert dataclasses.replace(search, lr_emb=3e-4, lr_nn=3e-4, l2_emb=3e-6, l2_nn=3e-6, arch_lr=3e-1,
                               embedding_dim=40) == SearchSettings()


def test_an_unknown_hyperparameter_is_refused_with_the_tunable_names():
    with pytest.raises(ValueError, match=r"TrainerConfig has no hyper-parameter 'dropout'; tunable: learning_rate"):
        TrainerConfig().with_hyperparameters({"dropout": 0.1, "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="SearchSettings has no hyper-parameter 'arch_lr'"):
        SearchSettings().with_hyperparameters({"arch_lr": 0.1})


def test_the_best_values_are_read_from_keras_tuners_config():
    assert tuning.tuned_values(None) == {}
    assert tuning.tuned_values({"space": [], "values": {"l2": 0.0}}) == {"l2": 0.0}
    with pytest.raises(ValueError, match="no 'values'"):
        tuning.tuned_values({"space": []})


def test_a_trial_scores_its_best_finite_auc_and_a_diverged_one_ranks_last():
    assert tuning.trial_score([0.61, math.nan, 0.64, 0.63]) == 0.64
    assert tuning.trial_score([math.nan, math.inf]) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"max_trials": 0}, "max_trials must be >= 1"),
    ({"trial_epochs": 0}, "trial_epochs must be >= 1"),
    ({"algorithm": "grid"}, "unknown tuning algorithm 'grid'; choose one of bayesian, random"),
])
def test_an_invalid_budget_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tuning.TuningConfig(**kwargs)


def test_an_invalid_space_is_refused():
    with pytest.raises(ValueError, match="need 0 < low < high"):
        tuning.LogRange("learning_rate", 1e-2, 1e-4)
    with pytest.raises(ValueError, match="no values"):
        tuning.Choice("l2", ())
    with pytest.raises(ValueError, match="unknown hyper-parameter kind 'Int'"):
        tuning.space_from_json([{"kind": "Int", "name": "units"}])
