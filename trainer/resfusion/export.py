"""ResFusion's outputs: the serving SavedModel of the served stages (raw tf.Example in, `probability` out), every
K's logits from a run, and the run's result.json."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from trainer.resfusion import gbdt
from trainer.resfusion import models as residual_models
from trainer.resfusion.residual import IdEncoder, Stage
from trainer.resfusion.settings import ResFusionOptions
from transform import features

keras = tf.keras

STAGE_LOGITS_SIGNATURE = "stage_logits"
RESULT_FILE = "result.json"
ALL_STAGES_DIR = "all_stages"  # in model_run: the SavedModel with every fitted stage (stage_logits for each K)
SELECTION_RULE = "lowest eval logloss over the prefixes K = 0..rounds (earliest on a tie)"
_STAGE_SUMMARY_KEYS = ("index", "rounds", "kind", "name", "eval_auc", "eval_logloss", "train_logloss",
                       "best_epoch", "epochs_run", "num_trees", "train_offsets", "seconds", "served")


def summarize(variant: str, options: ResFusionOptions, records: Sequence[dict[str, Any]],
              comparator: bool = False) -> dict[str, Any]:
    """The run's result.json: what was served and every K's eval metrics, for a benchmark table.

    Args:
        variant: the `--model` name.
        options: the run's ResFusionOptions.
        records: one per stage (fit_stages, after select_served), or the comparator's single record.
        comparator: a Table 2 comparator (one record, no stages to choose from).

    Returns:
        {"variant", "served_rounds" (K of the exported model; None for a comparator), "fitted_rounds",
        "selection", "eval_auc", "eval_logloss" (the served model's), "best_epoch" (first deep stage's
        best eval-AUC epoch, None without one), "stages": [{index, rounds, kind, name, eval_auc, eval_logloss,
        train_logloss, best_epoch, epochs_run, num_trees, train_offsets, seconds, served}], "options"}.
    """
    if comparator:
        record = records[0]
        return {"variant": variant, "served_rounds": None, "fitted_rounds": None, "selection": None,
                "eval_auc": record["eval_auc"], "eval_logloss": record["eval_logloss"],
                "best_epoch": record.get("best_epoch"), "stages": [], "options": options.to_dict()}
    served = [r for r in records if r.get("served")]
    if not served:
        raise ValueError("no stage is marked served: call select_served first")
    best = served[-1]
    deep = [r for r in records if r["kind"] == "nn" and r.get("best_epoch")]
    return {"variant": variant, "served_rounds": best["index"], "fitted_rounds": len(records) - 1,
            "selection": SELECTION_RULE, "eval_auc": best["eval_auc"], "eval_logloss": best["eval_logloss"],
            "best_epoch": deep[0]["best_epoch"] if deep else None,
            "stages": [{k: r.get(k) for k in _STAGE_SUMMARY_KEYS} for r in records], "options": options.to_dict()}


# --- the fused model and its export -----------------------------------------------------------------------------

def build_serving_model(stages: Sequence[Stage], inputs: gbdt.GbdtInputs, num_fields: int) -> tf.keras.Model:
    """The stages fused into one unsaved Keras model (residual_models.build_fused_model): sigmoid(sum of the stage
    logits) float32 [B, 1] on {`feature`: int64 [B, num_fields]} and/or the GBDT inputs {name: [B]}.

    Raises:
        ValueError: no stages.
    """
    return residual_models.build_fused_model([(s.kind, s.keras_model) for s in stages], num_fields,
                                             inputs.input_signature())


def make_signatures(model: tf.keras.Model, encoder: IdEncoder | None, inputs: gbdt.GbdtInputs,
                    tft_output: Any = None) -> dict[str, Any]:
    """serving_default (-> `probability`), stage_logits, and transform_features when Transform is used.

    Every signature takes `examples`, string [B]: serialized tf.Examples of the dataset's layout (a raw log's
    fields, or OptFusion's `feature` int64[F]); the GBDT stages parse them with `inputs`, the deep stages
    with `encoder`.
    """
    from trainer import export
    if model.needs_ids and encoder is None:
        raise ValueError("the model has deep stages: give the id encoder")
    if encoder is not None and encoder.trackable is not None:
        model.id_encoder = encoder.trackable  # tracked, so the exported graph holds it

    def model_inputs(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        values = {}
        if model.needs_ids:
            assert encoder is not None  # checked above
            values[features.FEATURE_KEY] = encoder(examples)
        if model.needs_gbdt_inputs:
            values.update(inputs.parse(examples))
        return values

    return export.example_signatures(
        model, lambda examples: model(model_inputs(examples)), tft_output,
        extra={STAGE_LOGITS_SIGNATURE: lambda examples: model.stage_logits_model(model_inputs(examples))})


def export_model(stages: Sequence[Stage], encoder: IdEncoder | None, inputs: gbdt.GbdtInputs, export_dir: str,
                 tft_output: Any = None) -> tf.keras.Model:
    """Saves the fused model of the stages with its signatures as one SavedModel (TF-DF models inside)."""
    num_fields = encoder.num_fields if encoder is not None else 1
    model = build_serving_model(stages, inputs, num_fields)
    save_model(model, encoder, inputs, export_dir, tft_output)
    return model


def save_model(model: tf.keras.Model, encoder: IdEncoder | None, inputs: gbdt.GbdtInputs, export_dir: str,
               tft_output: Any = None) -> None:
    """Saves a fused model (residual_models.build_* : `needs_ids`, `needs_gbdt_inputs`, `stage_logits_model`)."""
    model.save(export_dir, save_format="tf", signatures=make_signatures(model, encoder, inputs, tft_output))


def logits_by_rounds(model_run_dir: str, serving_model_dir: str, serialized: Sequence[bytes]
                     ) -> dict[int, np.ndarray]:
    """Every fitted K's logits on serialized tf.Examples, from one ResFusion run (e.g. the test split, for a
    table of K = 0..rounds): {K: float32 [n] = sum of the logits of stages 0..K}.

    Reads result.json in model_run_dir; the stages come from model_run_dir/all_stages when the run served a
    shorter prefix, else from the served model (serving_model_dir, the Model artifact's Format-Serving).
    Needs `import tensorflow_decision_forests` (done here).

    Raises:
        ValueError: the run is a comparator (no stages).
    """
    import tensorflow_decision_forests  # noqa: F401 - the TF-DF ops
    with tf.io.gfile.GFile(os.path.join(model_run_dir, RESULT_FILE)) as f:
        result = json.load(f)
    if not result["stages"]:
        raise ValueError(f"{result['variant']} is a comparator: it has no residual stages")
    path = os.path.join(model_run_dir, result["all_stages_model"]) if result.get("all_stages_model") \
        else serving_model_dir
    outputs = tf.saved_model.load(path).signatures[STAGE_LOGITS_SIGNATURE](examples=tf.constant(list(serialized)))
    total = np.zeros(len(serialized), np.float32)
    by_rounds = {}
    for stage in result["stages"]:
        total = total + outputs[stage["name"]].numpy().reshape([-1])
        by_rounds[stage["rounds"]] = total
    return by_rounds
