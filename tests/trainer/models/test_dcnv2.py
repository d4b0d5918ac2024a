"""DCNv2's full-rank cross network (and DCN's rank-1 one, for contrast)."""
from __future__ import annotations

from tests.trainer.models.helpers import DIM, HIDDEN, NUM_FIELDS, _build


def test_cross_networks_have_three_layers_of_the_right_rank():
    width = NUM_FIELDS * DIM
    dcn = _build("dcn")
    assert [dcn.get_layer(f"cross_{i}").kernel.shape.as_list() for i in range(3)] == [[width, 1]] * 3
    dcnv2 = _build("dcnv2")
    kernels = [w for i in range(3) for w in dcnv2.get_layer(f"cross_{i}").trainable_weights]
    assert [w.shape.as_list() for w in kernels] == [[width, width], [width]] * 3  # full-rank W_l, b_l
    assert dcnv2.get_layer("output").kernel.shape.as_list() == [width + HIDDEN[-1], 1]  # concat(x_3, MLP) -> Linear
