"""Settings and helpers shared by the ResFusion tests (trainer/resfusion/, components/gbdt_residual/)."""
import numpy as np

from tests import resfusion_data
from trainer.config import ModelConfig, TrainConfig, TrainerConfig
from trainer.resfusion import models as residual_models
from trainer.resfusion import residual
from trainer.resfusion.settings import ResFusionOptions
from transform import features

TINY_GBDT = resfusion_data.TINY_GBDT
TINY_TRAINER = TrainerConfig(ModelConfig(name="deepfm", embedding_dim=4, hidden_units=(16,)),
                             TrainConfig(batch_size=128, epochs=1, learning_rate=3e-3, l2_embedding=0.0, l2_dense=0.0))
SPEC = features.get_dataset("criteo")


def _options(rounds: int, **kwargs) -> ResFusionOptions:
    return ResFusionOptions(rounds=rounds, folds=resfusion_data.FOLDS, fold_seed=resfusion_data.FOLD_SEED,
                            gbdt=TINY_GBDT, **kwargs)


def _serialized(split: residual.SplitRows) -> list[bytes]:
    return [r.numpy() for r in split.records()]


def _stage_logits(split: residual.SplitRows, stage: residual.Stage) -> np.ndarray:
    return split.gbdt_logits(stage.model) if stage.kind == "gbdt" else split.nn_logits(stage.model)


def _record(index: int, kind: str, auc: float, loss: float, **extra) -> dict:
    return {"index": index, "rounds": index, "kind": kind, "name": residual_models.stage_name(index, kind),
            "eval_auc": auc, "eval_logloss": loss, "train_logloss": 0.3, **extra}
