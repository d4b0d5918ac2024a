"""LR: with zero weights the output is the sigmoid of the bias."""
from __future__ import annotations

import math

import numpy as np

from tests.trainer.models.helpers import _build, _ids


def test_lr_with_zero_weights_outputs_sigmoid_of_bias():
    model = _build("lr")
    layer = model.get_layer("first_order")
    assert not layer.weights_per_id.numpy().any()  # zero-initialised
    layer.bias.assign([0.7])
    np.testing.assert_allclose(model({"feature": _ids()}).numpy(), np.full((8, 1), 1 / (1 + math.exp(-0.7))),
                               rtol=1e-6)
