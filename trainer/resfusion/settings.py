"""Typed settings of the ResFusion family (GBDT + residual deep model, K rounds), JSON-able for custom_config."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from trainer.optfusion import settings as optfusion_settings
from trainer.optfusion.settings import OptFusionSettings
from trainer.resfusion.gbdt import GbdtParams

STAGE_KINDS = ("gbdt", "nn")


@dataclasses.dataclass(frozen=True)
class ResFusionOptions:
    """How the stages of a ResFusion model are chosen and fitted.

    Stage 0 is `first_stage`; then `rounds` (K) residual stages alternate kinds, each fitted with the sum of
    every earlier stage's logit as a fixed offset; the prediction is sigmoid(sum of the stages' logits).
    All K stages are fitted (every K is reported); the exported model is the prefix K' <= K with the lowest
    eval logloss (trainer.resfusion.residual.select_served).
    With first_stage = "gbdt" this is the paper's Table 3: K = 0 the GBDT alone, K = 1 GBDTRes+NN,
    K = 2 adds a GBDT fitted to the residual of GBDT+NN (the `--model resfusion` default), K = 3 another
    deep model, and so on. first_stage = "nn" with K = 1 is NNres+GBDT.

    Attributes:
        rounds: K, the number of residual stages after stage 0.
        first_stage: "gbdt" (GBDTRes+NN) or "nn" (NNres+GBDT).
        residual_model: the deep stages' network: a name of trainer.models.registry.LOGIT_BUILDERS (one Keras fit
            per deep stage), or an OptFusion network of trainer.optfusion.settings.MODEL_MODES ("optfusion-hard",
            "optfusion-soft": each deep stage is an OptFusion search and retrain on the offset,
            trainer/resfusion/optfusion_stage.py).
        folds: k of the k-fold out-of-fold offsets on training rows (>= 2): every stage that feeds a later
            one, GBDT or deep, hands it out-of-fold logits (k extra fits of that stage).
        fold_seed: key of the fold hash (trainer.resfusion.gbdt.assign_folds).
        gbdt: hyper-parameters of every GBDT stage.
        z_max: clip of the LogitBoost working response |z| (Friedman, Hastie & Tibshirani 2000 use 2..4).
        optfusion: the search and retrain settings of an OptFusion residual network (None for any other: they
            are then not part of the options, nor of the Trainer's cache key).

    Raises:
        ValueError: an invalid value, or an OptFusion residual network without `optfusion` settings.
    """

    rounds: int = 2
    first_stage: str = "gbdt"
    residual_model: str = "deepfm"
    folds: int = 5
    fold_seed: int = 2022
    gbdt: GbdtParams = GbdtParams()
    z_max: float = 4.0
    optfusion: OptFusionSettings | None = None

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.first_stage not in STAGE_KINDS:
            raise ValueError(f"first_stage must be one of {STAGE_KINDS}, got {self.first_stage!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if self.z_max <= 0:
            raise ValueError(f"z_max must be positive, got {self.z_max}")
        if self.uses_optfusion and self.optfusion is None:
            raise ValueError(f"residual model {self.residual_model!r} needs its OptFusion settings (`optfusion`)")

    @property
    def uses_optfusion(self) -> bool:
        """Whether the deep stages are OptFusion networks (searched, then retrained)."""
        return self.residual_model in optfusion_settings.MODEL_MODES

    @property
    def stage_kinds(self) -> tuple[str, ...]:
        """The kind of every stage, 0..K: alternating, starting with first_stage."""
        other = {"gbdt": "nn", "nn": "gbdt"}
        kinds = [self.first_stage]
        for _ in range(self.rounds):
            kinds.append(other[kinds[-1]])
        return tuple(kinds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (nested dicts), the `resfusion` entry of the Trainer's custom_config; `optfusion` only when
        set (so the options of runs without OptFusion read as before it was added)."""
        values = dataclasses.asdict(self)
        if self.optfusion is None:
            del values["optfusion"]
        return values

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "ResFusionOptions":
        """Inverse of `to_dict`; missing fields take their defaults.

        Raises:
            TypeError: an unknown field; ValueError: an invalid value.
        """
        config = dict(config)
        config["gbdt"] = GbdtParams(**config.get("gbdt", {}))
        if config.get("optfusion") is not None:
            config["optfusion"] = optfusion_settings.from_dict(OptFusionSettings, config["optfusion"])
        return cls(**config)
