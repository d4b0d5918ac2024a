"""xDeepFM's CIN maps per layer (and the products IPNN feeds its MLP)."""
from __future__ import annotations

from tests.trainer.models.helpers import DIM, HIDDEN, NUM_FIELDS, _build


def test_xdeepfm_cin_has_num_fields_maps_per_layer_and_ipnn_feeds_products():
    assert _build("xdeepfm").get_layer("cin").layer_sizes == (NUM_FIELDS,) * 3
    ipnn = _build("ipnn")
    assert ipnn.get_layer("deep_0").kernel.shape.as_list() == [NUM_FIELDS * DIM + 6, HIDDEN[0]]  # F·E + F(F-1)/2
