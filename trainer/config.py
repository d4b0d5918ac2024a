"""Typed trainer settings. The pipeline passes them to the Trainer as `custom_config` (a JSON-able dict)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from trainer import contract, tuning
from trainer.layers.field_embedding import REFERENCE_INIT_STD


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which model, and its shape.

    Attributes:
        name: model key (see trainer.models.registry.MODELS).
        embedding_dim: embedding width per field.
        hidden_units: widths of the deep part's hidden layers.
        embedding_init_std: std of the Normal embedding initialiser (reference: 0.01).
    """

    name: str = "deepfm"
    embedding_dim: int = 16
    hidden_units: tuple[int, ...] = (400, 400, 400)
    embedding_init_std: float = REFERENCE_INIT_STD


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Adam, eps 1e-8, coupled L2 as in PyTorch's Adam weight_decay).

    Attributes:
        batch_size: 256 on the small samples, 4096 for full data (the reference).
        epochs: at most this many passes over the training split.
        learning_rate: Adam learning rate of all weights.
        l2_embedding: coupled L2 on the embedding table (lambda; gradient lambda * w).
        l2_dense: coupled L2 on the other weights.
        early_stopping_patience: epochs without a better eval AUC before stopping (reference: 1).
        seed: seed of initialisation and shuffling.
        warm_start: start from the weights of the Trainer's `base_model` (the last blessed model), embedding rows
            matched by field value (trainer/warm_start.py); Keras baselines only.
    """

    batch_size: int = 256
    epochs: int = 5
    learning_rate: float = 3e-4
    l2_embedding: float = 1e-6
    l2_dense: float = 1e-6
    early_stopping_patience: int = contract.REFERENCE_PATIENCE
    seed: int = contract.REFERENCE_SEED
    warm_start: bool = False


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Every trainer setting: the model's shape and its optimisation; travels as the Trainer's `custom_config`."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    # Tunable names (trainer.tuning): one L2 sets both coupled L2s, as the reference's single weight_decay does.
    HYPERPARAMETERS = ("learning_rate", "l2", "embedding_dim")

    def with_hyperparameters(self, values: Mapping[str, Any]) -> "TrainerConfig":
        """This config with tuned values (trainer.tuning.tuned_values) applied: `learning_rate`, `l2` (both
        l2_embedding and l2_dense) and `embedding_dim`; names absent from `values` keep their setting.

        Raises:
            ValueError: a name outside HYPERPARAMETERS.
        """
        tuning.check_names(values, self.HYPERPARAMETERS, "TrainerConfig")
        train = self.train
        if "learning_rate" in values:
            train = dataclasses.replace(train, learning_rate=float(values["learning_rate"]))
        if "l2" in values:
            train = dataclasses.replace(train, l2_embedding=float(values["l2"]), l2_dense=float(values["l2"]))
        model = self.model
        if "embedding_dim" in values:
            model = dataclasses.replace(model, embedding_dim=int(values["embedding_dim"]))
        return TrainerConfig(model=model, train=train)

    def to_custom_config(self) -> dict[str, Any]:
        """The JSON-able nested dict ({"model": {...}, "train": {...}}) the pipeline passes as `custom_config`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, config: Mapping[str, Any] | None) -> "TrainerConfig":
        """Inverse of `to_custom_config`; a missing section or field (or a None config) takes its default;
        hidden_units comes back from a JSON list as a tuple.

        Raises:
            TypeError: an unknown field.
        """
        config = dict(config or {})
        model = dict(config.get("model", {}))
        if "hidden_units" in model:
            model["hidden_units"] = tuple(model["hidden_units"])
        return cls(model=ModelConfig(**model), train=TrainConfig(**config.get("train", {})))
