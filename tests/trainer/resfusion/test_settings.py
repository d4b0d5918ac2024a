"""ResFusionOptions: validation and a JSON round trip."""
import dataclasses
import json

import pytest

from tests.trainer.resfusion.helpers import TINY_GBDT
from trainer.resfusion.settings import ResFusionOptions


def test_options_validate_and_round_trip():
    options = ResFusionOptions(rounds=3, gbdt=TINY_GBDT)
    assert options.stage_kinds == ("gbdt", "nn", "gbdt", "nn")
    assert ResFusionOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert ResFusionOptions(rounds=0).stage_kinds == ("gbdt",)
    with pytest.raises(ValueError, match="folds"):
        ResFusionOptions(folds=1)
    with pytest.raises(ValueError, match="first_stage"):
        ResFusionOptions(first_stage="lr")
    assert dataclasses.replace(options, rounds=1).stage_kinds == ("gbdt", "nn")
