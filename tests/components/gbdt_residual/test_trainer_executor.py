"""The ResFusion Trainer executor records the run's result (served K, stage metrics) on the Model artifact."""
import json

import pytest

from tests.trainer.resfusion.helpers import _options, _record
from trainer.resfusion import export, residual


def test_run_result_is_recorded_on_the_model_artifact():
    from tfx.types import standard_artifacts

    from components.gbdt_residual import trainer_executor
    stages = [residual.Stage("gbdt", None, _record(0, "gbdt", 0.70, 0.50)),
              residual.Stage("nn", None, _record(1, "nn", 0.75, 0.45, best_epoch=1))]
    residual.select_served(stages)
    model = standard_artifacts.Model()
    trainer_executor.record_result(model, export.summarize("resfusion", _options(1), [s.record for s in stages]))
    assert model.get_int_custom_property("served_rounds") == 1
    assert model.get_int_custom_property("fitted_rounds") == 1
    assert model.get_float_custom_property("eval_logloss") == pytest.approx(0.45)
    assert model.get_int_custom_property("best_epoch") == 1
    assert [s["served"] for s in json.loads(model.get_string_custom_property("stage_metrics"))] == [True, True]
