"""The GbdtResidual component: outputs and exec properties (built, never run)."""
import json

import pytest
from tfx.types import standard_artifacts

from components.gbdt_residual.component import GbdtResidual
from trainer.resfusion import gbdt


def test_component_wiring():
    source = standard_artifacts.Examples
    from tfx.types import channel_utils
    component = GbdtResidual(examples=channel_utils.as_channel([source()]), dataset="criteo", folds=3)
    assert set(component.outputs) == {"residual_examples", "model"}
    assert component.exec_properties["folds"] == 3
    assert gbdt.GbdtParams(**json.loads(component.exec_properties["gbdt_params"])) == gbdt.GbdtParams()
    with pytest.raises(ValueError, match="folds must be 0"):
        GbdtResidual(examples=channel_utils.as_channel([source()]), dataset="criteo", folds=1)
