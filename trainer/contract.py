"""The training contract every Keras CTR model of the project follows: baselines, OptFusion, ResFusion's stages.

- A network outputs a logit, float32 [batch, 1]. `probability_output` is the one sigmoid put on it: a float32
  layer named `probability` (PROBABILITY_KEY, also the output key of every serving signature), so mixed
  precision never reaches the prediction.
- Loss and metrics: `compile_model` (binary cross-entropy; `auc` and `logloss` metrics; Adam with PyTorch's
  ε). Offline metrics of a split's logits or probabilities: trainer.metrics (sklearn's ROC AUC, as the reference).
- Early stopping: `EarlyStopping`. Stop after `patience` epochs in a row without a higher eval AUC and keep the
  best epoch's weights (reference: patience 1, algorithms.md §1.4). `keras_callback()` applies it to
  `Model.fit`; OptFusion's own epoch loop (trainer.optfusion.fit) calls `is_improvement` / `should_stop`. Both
  keep the best epoch in one `BestWeights` copy, overwritten in place.
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
        """The policy for `Model.fit` (needs the `auc` metric and validation data): a BestEpochCallback."""
        return BestEpochCallback(self, verbose=verbose)


class BestWeights:
    """A copy of a model's weights (the best epoch's), in host buffers allocated on the first `keep` and overwritten
    in place after that.

    `model.get_weights()` per improved epoch (as Keras's EarlyStopping(restore_best_weights=True) does) allocates a
    new copy while the previous one is still held: two copies of the model at that moment, 1.9 GB at Criteo's
    supernet (docs/scaling.md, "The search's memory"). Here there is one, plus one variable's temporary.
    """

    def __init__(self, model: tf.keras.Model) -> None:
        self._model = model
        self._buffers: list[np.ndarray] | None = None

    @property
    def kept(self) -> bool:
        """Whether `keep` has been called."""
        return self._buffers is not None

    def keep(self) -> None:
        """Copies the model's current weights (model.weights order) into the buffers."""
        if self._buffers is None:
            self._buffers = [np.empty(v.shape, v.dtype.as_numpy_dtype) for v in self._model.weights]
        for buffer, variable in zip(self._buffers, self._model.weights):
            np.copyto(buffer, variable.numpy())

    def restore(self) -> None:
        """Sets the model's weights to the kept copy.

        Raises:
            ValueError: nothing was kept.
        """
        if self._buffers is None:
            raise ValueError("no weights were kept")
        self._model.set_weights(self._buffers)


class BestEpochCallback(tf.keras.callbacks.Callback):
    """EarlyStopping's policy in `Model.fit`, with the best epoch's weights in one BestWeights copy.

    It does what `keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", restore_best_weights=True)` does
    (the first epoch's weights are kept even without a finite AUC; no stop before the second epoch; the kept weights
    are restored when training ends, stopped early or not) without Keras's `get_weights()` per improved epoch,
    which holds two copies of the model at once: 2 x 1.1 GB for DeepFM's table at full Criteo.

    Raises:
        KeyError: at an epoch's end without `val_auc` in the logs (no validation data or no `auc` metric).
    """

    def __init__(self, policy: EarlyStopping, verbose: int = 1) -> None:
        super().__init__()
        self.policy = policy
        self.verbose = verbose
        self.best_auc = -np.inf
        self.stopped_epoch: int | None = None
        self._best: BestWeights | None = None
        self._without_improvement = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Starts a fit with nothing kept (the buffers are allocated at the first kept epoch)."""
        self.best_auc, self.stopped_epoch, self._without_improvement = -np.inf, None, 0
        self._best = BestWeights(self.model)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Keeps the weights of an improved epoch; stops after `patience` epochs in a row without one."""
        assert self._best is not None
        logs = logs or {}
        if MONITOR not in logs:
            raise KeyError(f"early stopping needs `{MONITOR}` in the epoch's logs (validation data and the `auc` "
                           f"metric of compile_model); got {sorted(logs)}")
        auc = float(logs[MONITOR])
        if self.policy.is_improvement(auc, self.best_auc):
            self.best_auc, self._without_improvement = auc, 0
            self._best.keep()
            return
        if not self._best.kept:  # no finite AUC yet (a one-class eval split): keep the first epoch, as Keras does
            self._best.keep()
        self._without_improvement += 1
        if self.policy.should_stop(self._without_improvement) and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Restores the kept weights."""
        if self._best is not None and self._best.kept:
            self._best.restore()
        if self.stopped_epoch is not None and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)


def history_record(history: tf.keras.callbacks.History) -> dict[str, Any]:
    """What a `Model.fit` run is recorded as (history.json): {"epochs_run", "best_epoch" (1-based epoch of the best
    eval AUC, the kept weights; None without a finite one), "history": {metric: [float per epoch]}}."""
    val_auc = np.asarray(history.history.get(MONITOR, []), np.float64)
    return {"epochs_run": len(history.history["loss"]),
            "best_epoch": int(np.nanargmax(val_auc)) + 1 if np.isfinite(val_auc).any() else None,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
