"""OptFusion settings (trainer/optfusion/settings.py): JSON round trips, validation, the Soft retrain's rates."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline import optfusion_steps
from trainer.optfusion.settings import RetrainSettings, RunSettings, SearchSettings


def test_settings_json_round_trip_and_validation():
    search = SearchSettings(embedding_dim=8, run=RunSettings(batch_size=32, precision="mixed_bfloat16"))
    assert SearchSettings.from_json(search.to_json()) == search
    retrain = RetrainSettings(mode="soft", inherit_weights=False, run=RunSettings(l2_mode="lazy"))
    assert RetrainSettings.from_json(retrain.to_json()) == retrain
    with pytest.raises(ValueError, match="mode"):
        RetrainSettings(mode="argmax")
    with pytest.raises(ValueError, match="precision"):
        RunSettings(precision="float64")
    with pytest.raises(ValueError, match="unknown"):
        SearchSettings.from_json(json.dumps({"learning_rate": 1}))


@pytest.mark.parametrize("dataset, reference_rate", [("criteo", 3e-4), ("avazu", 1e-7), ("frappe", 1e-7),
                                                     ("kdd12", 3e-8)])
def test_soft_retrains_at_the_hard_rate_unless_the_reference_rate_is_asked_for(dataset, reference_rate):
    """retrain.sh's Soft rates (1e-7 Avazu, 3e-8 KDD12) turn retraining into evaluation (algorithms.md §1.5,
    problem 3): the default is the Hard row's rate; the reference's stays a named option."""
    options = optfusion_steps.preset(dataset, "full")
    hard, soft = options.retrain("hard"), options.retrain("soft")
    assert (soft.lr_emb, soft.lr_nn, soft.l2_nn) == (hard.lr_emb, hard.lr_nn, hard.l2_nn)
    reference = dataclasses.replace(options, soft_rates="reference").retrain("soft")
    assert reference.lr_emb == reference.lr_nn == reference_rate
    assert dataclasses.replace(options, soft_rates="reference").retrain("hard") == hard
    with pytest.raises(ValueError, match="soft_rates must be one of"):
        dataclasses.replace(options, soft_rates="tiny")
