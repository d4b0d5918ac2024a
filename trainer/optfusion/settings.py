"""Settings of the OptFusion search and retrain steps, as the components receive them (JSON execution parameters).

The pipeline's family module (pipeline/optfusion_steps.py) turns its user-facing options into one `SearchSettings`
and one `RetrainSettings`; each component gets only its own, so switching Hard <-> Soft (or inheritance) re-runs
the retrain step and reuses the cached search.
"""
from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, Mapping, TypeVar, cast

from trainer import contract, tuning
from trainer.layers.field_embedding import REFERENCE_INIT_STD
from trainer.optfusion import optim

RETRAIN_MODES: tuple[str, ...] = ("hard", "soft")
MODEL_MODES: dict[str, str] = {"optfusion-hard": "hard", "optfusion-soft": "soft"}
"""The OptFusion networks by name (`--model`, ResFusion's `--residual-model`) and their retrain mode."""
TRIAL_SETTINGS_KEY = "settings"  # where a Tuner trial (training.tuning_trial) finds the SearchSettings JSON

SOFT_RATES: tuple[str, ...] = ("hard", "reference")
"""Which learning rate / L2 the Soft retrain uses: the Hard row's (default) or retrain.sh's ("soft_reference")."""

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a step trains (shared by search and retrain).

    Attributes:
        batch_size: global batch size (256 on the small samples, 4096 on full data as the reference).
        epochs: at most this many passes over the train split (reference 5).
        early_stopping_patience: stop after this many epochs without a better validation AUC (reference 1: stop at
            the first non-improving epoch); the best epoch's weights are kept.
        max_steps_per_epoch: cap on training steps per epoch (None: the whole split), for smoke runs.
        steps_per_execution: training steps per tf.function call (progress is reported between calls).
        l2_mode: "dense" (the reference: coupled L2 on the whole embedding table every step) or "lazy" (only the
            table rows in the batch).
        embedding_update: "dense" (the reference: PyTorch's Adam moves every row of the embedding table and decays
            every row's moments each step) or "lazy" (only the rows in the batch, their L2 included: a step's cost
            follows the batch, not the vocabulary; trainer.optfusion.optim.lazy_adam_rows).
        precision: "float32", "mixed_bfloat16" or "mixed_float16" (float32 variables and loss; loss scaling for
            float16).
        jit_compile: XLA-compile the forward/backward pass.
        seed: seed of initialisation and shuffling (reference 2024).
    """

    batch_size: int = 256
    epochs: int = 5
    early_stopping_patience: int = contract.REFERENCE_PATIENCE
    max_steps_per_epoch: int | None = None
    steps_per_execution: int = 16
    l2_mode: str = "dense"
    embedding_update: str = "dense"
    precision: str = "float32"
    jit_compile: bool = False
    seed: int = contract.REFERENCE_SEED

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.epochs <= 0 or self.steps_per_execution <= 0:
            raise ValueError(f"batch_size, epochs and steps_per_execution must be positive: {self}")
        contract.EarlyStopping(self.early_stopping_patience)  # raises ValueError on a patience < 1
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch <= 0:
            raise ValueError(f"max_steps_per_epoch must be positive or None, got {self.max_steps_per_epoch}")
        if self.l2_mode not in optim.L2_MODES:
            raise ValueError(f"l2_mode must be one of {optim.L2_MODES}, got {self.l2_mode!r}")
        if self.embedding_update not in optim.EMBEDDING_UPDATES:
            raise ValueError(f"embedding_update must be one of {optim.EMBEDDING_UPDATES}, "
                             f"got {self.embedding_update!r}")
        if self.precision not in optim.PRECISIONS:
            raise ValueError(f"precision must be one of {optim.PRECISIONS}, got {self.precision!r}")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """The supernet search (algorithms.md §1.2–§1.4): three Adam groups from one training-batch gradient.

    Attributes:
        embedding_dim: E per field; the graph width is D = fields·E (also used by the retrain step).
        num_blocks: (cross, deep) blocks (reference 3).
        lr_emb, l2_emb: Adam lr and coupled L2 of the embedding table.
        lr_nn, l2_nn: the same for every other network weight.
        arch_lr: Adam lr of the architecture parameters β and α (no L2).
        beta_init: initial connection parameter (reference 0.5: fully connected at the start).
        emb_init_std: std of the Normal embedding initialiser (reference 0.01).
        export_supernet: also export the searched supernet as a serving Model artifact.
        run: batch size, epochs, precision, ...
    """

    embedding_dim: int = 40
    num_blocks: int = 3
    lr_emb: float = 3e-4
    lr_nn: float = 3e-4
    arch_lr: float = 3e-1
    l2_emb: float = 3e-6
    l2_nn: float = 3e-6
    beta_init: float = 0.5
    emb_init_std: float = REFERENCE_INIT_STD
    export_supernet: bool = True
    run: RunSettings = RunSettings()

    # Tunable names (trainer.tuning): learning_rate and l2 set both the emb and nn groups, as one rate and one
    # weight_decay do in the reference's search.
    HYPERPARAMETERS = ("learning_rate", "l2", "embedding_dim", "arch_learning_rate")

    def with_hyperparameters(self, values: Mapping[str, Any]) -> "SearchSettings":
        """These settings with tuned values (trainer.tuning.tuned_values) applied: `learning_rate` (lr_emb and
        lr_nn), `l2` (l2_emb and l2_nn), `embedding_dim` (the retrain inherits it) and `arch_learning_rate`
        (arch_lr); names absent from `values` keep their setting.

        Raises:
            ValueError: a name outside HYPERPARAMETERS.
        """
        tuning.check_names(values, self.HYPERPARAMETERS, "SearchSettings")
        changes: dict[str, Any] = {}
        if "learning_rate" in values:
            changes.update(lr_emb=float(values["learning_rate"]), lr_nn=float(values["learning_rate"]))
        if "l2" in values:
            changes.update(l2_emb=float(values["l2"]), l2_nn=float(values["l2"]))
        if "embedding_dim" in values:
            changes["embedding_dim"] = int(values["embedding_dim"])
        if "arch_learning_rate" in values:
            changes["arch_lr"] = float(values["arch_learning_rate"])
        return dataclasses.replace(self, **changes)

    def groups(self) -> dict[str, optim.GroupSettings]:
        """GroupedAdam settings of the search's groups emb, nn and arch (β and α, no L2; algorithms.md §1.4)."""
        return {"emb": optim.GroupSettings(self.lr_emb, self.l2_emb), "nn": optim.GroupSettings(self.lr_nn, self.l2_nn),
                "arch": optim.GroupSettings(self.arch_lr, 0.0)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the search component's `settings` parameter."""
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> "SearchSettings":
        """Inverse of `to_json`; raises ValueError on an unknown key or invalid run settings."""
        return from_dict(cls, json.loads(text))


@dataclasses.dataclass(frozen=True)
class RetrainSettings:
    """The retrain of the derived architecture (algorithms.md §1.5): two Adam groups (emb, nn).

    Attributes:
        mode: "hard" (argmax operation per node, OptFusion-Hard) or "soft" (frozen softmax(α) mixture).
        inherit_weights: start from the supernet's weights (reference initialize_mode 1) or from scratch.
        lr_emb, l2_emb, lr_nn, l2_nn: Adam lr and coupled L2 per group.
        evaluate_before_training: validate once before the first epoch (the reference does); the figure is
            reported beside the trained epochs, never kept (fit.fit keeps the best trained epoch).
        run: batch size, epochs, precision, ...
    """

    mode: str = "hard"
    inherit_weights: bool = True
    lr_emb: float = 3e-4
    lr_nn: float = 3e-4
    l2_emb: float = 3e-6
    l2_nn: float = 3e-6
    evaluate_before_training: bool = True
    run: RunSettings = RunSettings()

    def __post_init__(self) -> None:
        if self.mode not in RETRAIN_MODES:
            raise ValueError(f"mode must be one of {RETRAIN_MODES}, got {self.mode!r}")

    def groups(self) -> dict[str, optim.GroupSettings]:
        """GroupedAdam settings of the retrain's groups emb and nn (algorithms.md §1.5)."""
        return {"emb": optim.GroupSettings(self.lr_emb, self.l2_emb), "nn": optim.GroupSettings(self.lr_nn, self.l2_nn)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the retrain component's `settings` parameter."""
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> "RetrainSettings":
        """Inverse of `to_json`; raises ValueError on an unknown key, an unknown mode or invalid run settings."""
        return from_dict(cls, json.loads(text))


@dataclasses.dataclass(frozen=True)
class RetrainRates:
    """The Adam learning rate and coupled L2 of both retrain groups (embedding and network; algorithms.md §1.8)."""

    learning_rate: float = 3e-4
    l2: float = 3e-6


@dataclasses.dataclass(frozen=True)
class OptFusionSettings:
    """Everything an OptFusion run (`--model optfusion-hard | optfusion-soft`) is set by; the pipeline passes
    `search` to the search step unchanged and `retrain(mode)` to the retrain step.

    Attributes:
        search: the search's settings; its `run` (batch size, epochs, precision, seed, ...) is the retrain's too.
        hard: the Hard retrain's learning rate and L2 (algorithms.md §1.8), also the Soft retrain's by default.
        soft_reference: retrain.sh's Soft rate (1e-7 on Avazu/Frappe, 3e-8 on KDD12), used when soft_rates is
            "reference": at that rate the retrain is an evaluation of the supernet (algorithms.md §1.5 problem 3).
        soft_rates: which rates the Soft retrain takes, "hard" or "reference" (SOFT_RATES).
        mode: "hard" or "soft"; None: the --model name's.
        inherit_weights: retrain from the supernet's weights (the reference default) or from scratch.

    Raises:
        ValueError: an unknown soft_rates or mode.
    """

    search: SearchSettings = SearchSettings()
    hard: RetrainRates = RetrainRates()
    soft_reference: RetrainRates = RetrainRates()
    soft_rates: str = "hard"
    mode: str | None = None
    inherit_weights: bool = True

    def __post_init__(self) -> None:
        if self.soft_rates not in SOFT_RATES:
            raise ValueError(f"soft_rates must be one of {SOFT_RATES}, got {self.soft_rates!r}")
        if self.mode is not None and self.mode not in RETRAIN_MODES:
            raise ValueError(f"mode must be one of {RETRAIN_MODES} or None, got {self.mode!r}")

    def retrain(self, mode: str) -> RetrainSettings:
        """The retrain step's settings for `mode` ("hard" or "soft"), on the search's run settings.

        Raises:
            ValueError: an unknown mode.
        """
        rates = self.soft_reference if mode == "soft" and self.soft_rates == "reference" else self.hard
        return RetrainSettings(mode=mode, inherit_weights=self.inherit_weights, lr_emb=rates.learning_rate,
                               lr_nn=rates.learning_rate, l2_emb=rates.l2, l2_nn=rates.l2, run=self.search.run)


def to_json(settings: Any) -> str:
    """Canonical JSON (sorted keys): equal settings give equal execution parameters, hence cache hits."""
    return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
    """A (nested) settings dataclass from its asdict() form; unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
    kwargs = {}
    for name, value in values.items():
        default = fields[name].default
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            value = from_dict(cast(Any, type(default)), value)  # a nested settings dataclass
        kwargs[name] = value
    return cls(**kwargs)
