"""A tiny OptFusion supernet, batches for it and grouped-Adam settings, shared by the OptFusion tests and the
mirrored-strategy subprocess of test_optim.py (which imports this module by its path)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer.optfusion import optim, training

keras = tf.keras


TABLE, FIELDS, DIM = 30, 3, 2  # D = 6


def _supernet(seed: int = 0) -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(seed)
    return training.build_supernet(training.SupernetConfig(TABLE, FIELDS, DIM))


def _batch(rows: int = 8, seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(10 * f, 10 * f + 10, rows) for f in range(FIELDS)], axis=1).astype(np.int64)
    return {"feature": ids}, rng.integers(0, 2, (rows, 1)).astype(np.float32)


SETTINGS = {"emb": optim.GroupSettings(1e-2, 1e-3), "nn": optim.GroupSettings(2e-3, 1e-4),
            "arch": optim.GroupSettings(3e-1)}
