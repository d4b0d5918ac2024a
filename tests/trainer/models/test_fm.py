"""FM: first order plus the pairwise dot products, against numpy."""
from __future__ import annotations

import numpy as np

from tests.trainer.models.helpers import NUM_FIELDS, TABLE_SIZE, _build, _ids


def test_fm_is_first_order_plus_pairwise_dot_products():
    model = _build("fm")
    rng = np.random.default_rng(1)
    w = rng.normal(size=(TABLE_SIZE, 1)).astype(np.float32)
    model.get_layer("first_order").set_weights([w, np.array([0.3], np.float32)])
    table = model.get_layer("embedding").embeddings.numpy()
    ids = _ids().numpy()
    v = table[ids]  # [batch, F, E]
    pairs = sum((v[:, i] * v[:, j]).sum(-1) for i in range(NUM_FIELDS) for j in range(i + 1, NUM_FIELDS))
    logit = w[ids, 0].sum(1) + 0.3 + pairs
    np.testing.assert_allclose(model({"feature": ids}).numpy()[:, 0], 1 / (1 + np.exp(-logit)), rtol=1e-5)
