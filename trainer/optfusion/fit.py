"""The epoch loop of the OptFusion steps: train, validate (AUC) each epoch, early-stop, keep the best epoch.

Reference behaviour (algorithms.md §1.4, §1.5): validation AUC (sklearn, over the whole split) once per epoch; stop
at the first epoch that does not beat the best so far (patience 1); the best *trained* epoch's weights are the
result. The retrain stage also validates once before training ("epoch 0"): the reference only logs that figure, so
here it is reported in the history beside the trained epochs but is never a candidate for the kept weights (a
retrain never ships the untrained, inherited weights).
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from trainer import contract, metrics
from trainer.contract import BestWeights
from trainer.optfusion.optim import TrainStep

keras = tf.keras


@dataclasses.dataclass
class FitResult:
    """best_epoch: 1-based epoch of the kept weights (always a trained epoch); history: one dict per evaluated
    epoch (epoch, loss, val_auc, val_logloss, examples, seconds, examples_per_second), including the epoch-0
    validation before training when it was asked for (reported, never kept)."""

    best_epoch: int
    best_val_auc: float
    best_val_logloss: float
    epochs_run: int
    history: list[dict[str, Any]]

    @property
    def train_examples_per_second(self) -> float:
        """Training throughput over every trained epoch (validation excluded)."""
        trained = [h for h in self.history if h["epoch"] > 0]
        seconds = sum(h["seconds"] for h in trained)
        return sum(h["examples"] for h in trained) / seconds if seconds else float("nan")

    @property
    def val_auc_before_training(self) -> float | None:
        """Validation AUC of the weights before training (epoch 0), when it was evaluated; reported only."""
        return next((h["val_auc"] for h in self.history if h["epoch"] == 0), None)

    def to_dict(self) -> dict[str, Any]:
        """The fields plus the two derived figures (train_examples_per_second, val_auc_before_training), for the
        steps' result files."""
        return {**dataclasses.asdict(self), "train_examples_per_second": self.train_examples_per_second,
                "val_auc_before_training": self.val_auc_before_training}


def fit(step: TrainStep, train: tf.data.Dataset, evaluation: tf.data.Dataset, *, epochs: int,
        patience: int = contract.REFERENCE_PATIENCE, max_steps_per_epoch: int | None = None,
        steps_per_execution: int = 16,
        evaluate_before_training: bool = False, verbose: int | None = None, log_dir: str | None = None,
        name: str = "train", on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Trains `step.model` on `train` for up to `epochs`, validating on `evaluation` after each.

    Early stopping is the project's one policy (trainer.contract.EarlyStopping): stops at the `patience`-th epoch in
    a row that does not improve the validation AUC and restores the weights of the best epoch. Progress is printed
    Keras-style (a progress bar on a terminal, one line per epoch otherwise).

    Args:
        step: the TrainStep (model, grouped optimiser, strategy).
        train, evaluation: (features, label) datasets of one pass each (batched, not repeated).
        epochs, patience: maximum epochs; epochs without improvement before stopping.
        max_steps_per_epoch: cap on training steps per epoch, None for the whole split.
        steps_per_execution: training steps per tf.function call.
        evaluate_before_training: validate once before training (epoch 0), as the reference's retrain does; the
            figure goes into the history (and TensorBoard) only: the kept weights are those of the best trained
            epoch, and early stopping compares trained epochs with each other.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch; default 1 on a terminal, else 2.
        log_dir: where to write TensorBoard scalars (loss, val_auc, val_logloss, examples/s), if given.
        name: a label for the log lines.
        on_epoch_end: called with each epoch's history entry.
    """
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    stopping = contract.EarlyStopping(patience)
    writer = tf.summary.create_file_writer(log_dir) if log_dir else None
    strategy = step.strategy
    model = step.model
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"auc": -np.inf, "logloss": float("nan"), "epoch": 0}
    best_weights = BestWeights(model)
    known_steps: int | None = None

    def validate() -> tuple[float, float]:
        logits, labels = step.predict(evaluation)
        return metrics.auc(labels, logits), metrics.logloss(labels, logits)

    def record(entry: dict[str, Any]) -> None:
        history.append(entry)
        if writer is not None:
            with writer.as_default(step=entry["epoch"]):
                for key in ("loss", "val_auc", "val_logloss", "examples_per_second"):
                    if entry.get(key) is not None and np.isfinite(entry[key]):
                        tf.summary.scalar(f"{name}/{key}", entry[key])
            writer.flush()
        if on_epoch_end is not None:
            on_epoch_end(entry)

    def consider(entry: dict[str, Any]) -> bool:
        """Keeps the weights if this epoch is the best so far; True when it improved."""
        auc = entry["val_auc"]
        if stopping.is_improvement(auc, best["auc"]):
            best.update(auc=auc, logloss=entry["val_logloss"], epoch=entry["epoch"])
            best_weights.keep()
            return True
        if not best_weights.kept:  # a single-class validation split: keep the latest weights
            best.update(epoch=entry["epoch"], logloss=entry["val_logloss"])
            best_weights.keep()
        return False

    if evaluate_before_training:
        auc, logloss = validate()
        entry = {"epoch": 0, "loss": None, "val_auc": auc, "val_logloss": logloss, "examples": 0, "seconds": 0.0,
                 "examples_per_second": None}
        record(entry)  # reported only: the reference logs epoch 0 and keeps the best trained epoch
        if verbose:
            print(f"{name} epoch 0 (before training): val_auc: {auc:.4f} - val_logloss: {logloss:.4f}", flush=True)

    stale = 0
    epochs_run = 0
    for epoch in range(1, epochs + 1):
        if verbose:
            print(f"{name} epoch {epoch}/{epochs}", flush=True)
        data = train.take(max_steps_per_epoch) if max_steps_per_epoch else train
        iterator = iter(strategy.experimental_distribute_dataset(data))
        progbar = keras.utils.Progbar(known_steps, verbose=verbose, stateful_metrics=["loss", "val_auc", "val_logloss"],
                                      unit_name="step")
        steps, loss_sum, examples = 0, 0.0, 0
        start = time.perf_counter()
        while True:
            done, total, count = step.run(iterator, steps_per_execution)
            if done == 0:
                break
            steps += done
            loss_sum += total
            examples += count
            progbar.update(steps, [("loss", loss_sum / steps)], finalize=False)
        seconds = time.perf_counter() - start
        epochs_run = epoch
        if steps == 0:
            raise ValueError(f"{name}: the training split yielded no batch")
        known_steps = steps
        auc, logloss = validate()
        progbar.target = steps
        progbar.update(steps, [("loss", loss_sum / steps), ("val_auc", auc), ("val_logloss", logloss)], finalize=True)
        entry = {"epoch": epoch, "loss": loss_sum / steps, "val_auc": auc, "val_logloss": logloss,
                 "examples": examples, "seconds": seconds, "examples_per_second": examples / seconds}
        record(entry)
        logging.info("%s epoch %d: loss %.5f, val_auc %.5f, val_logloss %.5f, %d examples in %.1f s (%.0f/s)",
                     name, epoch, entry["loss"], auc, logloss, examples, seconds, entry["examples_per_second"])
        if consider(entry):
            stale = 0
        else:
            stale += 1
            if stopping.should_stop(stale):
                if verbose:
                    print(f"{name}: val_auc did not improve on {best['auc']:.5f} (epoch {best['epoch']}); "
                          "stopping, keeping the best epoch", flush=True)
                break
    if best_weights.kept and best["epoch"] != epochs_run:
        best_weights.restore()
    return FitResult(best_epoch=best["epoch"], best_val_auc=float(best["auc"]), best_val_logloss=best["logloss"],
                     epochs_run=epochs_run, history=history)
