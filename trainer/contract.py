"""The training contract every Keras CTR model of the project follows: baselines, OptFusion, ResFusion's stages.

- A network outputs a logit, float32 [batch, 1]. `probability_output` is the one sigmoid put on it: a float32
  layer named `probability` (PROBABILITY_KEY, also the output key of every serving signature), so mixed
  precision never reaches the prediction.
- Loss and metrics: `compile_model` (binary cross-entropy; `auc` and `logloss` metrics; Adam with PyTorch's
  ε). Offline metrics of a split's logits or probabilities: trainer.metrics (sklearn's ROC AUC, as the reference).
- Early stopping: `EarlyStopping`. Stop after `patience` epochs in a row without a higher eval AUC and keep the
  best epoch's weights (reference: patience 1, algorithms.md §1.4). `keras_callback()` applies it to
  `Model.fit`; OptFusion's own epoch loop (trainer.optfusion.fit) calls `is_improvement` / `should_stop`.
- Serving: trainer.export.example_signatures, the raw-tf.Example signatures of every exported model.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

keras = tf.keras

PROBABILITY_KEY = "probability"
MONITOR = "val_auc"  # the eval-split metric that early stopping and model selection maximise
REFERENCE_PATIENCE = 1  # the reference stops at the first epoch that does not beat the best (algorithms.md §1.4)
REFERENCE_SEED = 2024  # the reference runs' seed (initialisation, shuffling, the GBDT)


def probability_output(logit: tf.Tensor, name: str = PROBABILITY_KEY) -> tf.Tensor:
    """sigmoid(logit) as a float32 Keras layer: logit [batch, 1] (any float dtype) -> probability float32 [batch, 1]."""
    return keras.layers.Activation("sigmoid", dtype="float32", name=name)(logit)


def compile_model(model: tf.keras.Model, learning_rate: float) -> None:
    """Compiles a model whose output is a probability [batch, 1]: BCE loss, `auc` and `logloss` metrics.

    The optimiser is Adam with ε = 1e-8, as PyTorch's (Keras' default is 1e-7); L2 is the layers' regularisers.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryCrossentropy(name="logloss")],
    )


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """The one early-stopping policy: stop after `patience` epochs in a row without a higher eval AUC (a NaN AUC,
    from a one-class eval split, never improves), and keep the weights of the best epoch.

    Raises:
        ValueError: patience < 1.
    """

    patience: int = REFERENCE_PATIENCE

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"early-stopping patience must be >= 1, got {self.patience}")

    @staticmethod
    def is_improvement(auc: float, best_auc: float) -> bool:
        """True when `auc` beats the best so far (strictly; a NaN never does)."""
        return bool(np.isfinite(auc) and auc > best_auc)

    def should_stop(self, epochs_without_improvement: int) -> bool:
        """True once `patience` epochs in a row have not improved the eval AUC."""
        return epochs_without_improvement >= self.patience

    def keras_callback(self, verbose: int = 1) -> tf.keras.callbacks.Callback:
        """The policy for `Model.fit` (needs the `auc` metric and validation data). tf-keras restores the best
        epoch's weights at the end of training whether or not it stopped early."""
        return keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=self.patience,
                                             restore_best_weights=True, verbose=verbose)


def history_record(history: tf.keras.callbacks.History) -> dict[str, Any]:
    """What a `Model.fit` run is recorded as (history.json): {"epochs_run", "best_epoch" (1-based epoch of the best
    eval AUC, the kept weights; None without a finite one), "history": {metric: [float per epoch]}}."""
    val_auc = np.asarray(history.history.get(MONITOR, []), np.float64)
    return {"epochs_run": len(history.history["loss"]),
            "best_epoch": int(np.nanargmax(val_auc)) + 1 if np.isfinite(val_auc).any() else None,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
