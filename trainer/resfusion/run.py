"""The TFX Trainer entry point of the ResFusion family (pipeline/resfusion_steps.py: RUN_FN)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from typing import Any, Sequence

import attr
import tensorflow as tf

from trainer import tuning
from trainer.config import TrainerConfig
from trainer.resfusion import comparators, export, gbdt
from trainer.resfusion.residual import FitContext, SplitRows, TransformIdEncoder, fit_stages, select_served
from trainer.resfusion.settings import ResFusionOptions
from transform import features

keras = tf.keras

HISTORY_FILE = "history.json"


def _expand(patterns: Sequence[str]) -> list[str]:
    files = sorted({f for pattern in patterns for f in tf.io.gfile.glob(pattern)})
    return [f for f in files if not os.path.basename(f).startswith((".", "_"))]


def _write_json(path: str, value: Any) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(value, f, indent=1, default=str)


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry point of the ResFusion family.

    Trainer inputs: `examples` = the examples with `gbdt_logit`/`gbdt_fold` (components/gbdt_residual) or
    plain examples (a deep first stage), raw-log or OptFusion TFRecord layout; `transform_graph`;
    `base_model` = the stage-0 GBDT Model (a GBDT first stage). custom_config: TrainerConfig fields,
    `resfusion` (ResFusionOptions), `dataset`, `variant`. `hyperparameters` (a Tuner's best values) apply to the
    deep stages' TrainerConfig.

    Outputs: the served model in fn_args.serving_model_dir: the prefix of stages with the lowest eval
    logloss (select_served; a comparator's one model); in fn_args.model_run_dir: result.json (export.summarize),
    history.json (the same plus every stage's full record and per-epoch history, the tuned values and the deep
    stages' TrainerConfig), all_stages/ (every fitted
    stage, only when the served prefix is shorter), TensorBoard logs.
    """
    import tensorflow_transform as tft
    custom = dict(fn_args.custom_config or {})
    options = ResFusionOptions.from_dict(custom.pop("resfusion"))
    spec = features.get_dataset(custom.pop("dataset"))
    variant = custom.pop("variant", "resfusion")
    tuned = tuning.tuned_values(getattr(fn_args, "hyperparameters", None))
    config = TrainerConfig.from_custom_config({k: custom[k] for k in ("model", "train") if k in custom}
                                              ).with_hyperparameters(tuned)
    keras.utils.set_random_seed(config.train.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)  # the Tuner sets no transform_output alias
    comparator = variant in comparators.COMPARATORS
    encoder = TransformIdEncoder(tft_output) if "nn" in options.stage_kinds or comparator else None
    train_files, eval_files = _expand(fn_args.train_files), _expand(fn_args.eval_files)
    first_gbdt = None
    if options.stage_kinds[0] == "gbdt":
        if not fn_args.base_model:
            raise ValueError("a GBDT first stage needs the GBDT Model as the Trainer's base_model")
        first_gbdt = gbdt.GbdtModel.load(fn_args.base_model)
        inputs = first_gbdt.inputs
    else:
        inputs = gbdt.GbdtInputs.from_files(spec, train_files)
    logging.info("ResFusion: stages %s, deep network %s, %s", options.stage_kinds, options.residual_model, options)
    batch = config.train.batch_size
    train = SplitRows("train", train_files, inputs, batch)
    valid = SplitRows("eval", eval_files, inputs, batch)
    cache_dir = tempfile.mkdtemp(prefix="resfusion_ids_")
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    try:
        if encoder is not None:
            train.cache_ids(encoder, cache_dir)
            valid.cache_ids(encoder, cache_dir)
        ctx = FitContext(inputs, options, config, encoder, log_dir=fn_args.model_run_dir)
        if comparator:
            if first_gbdt is None:
                raise ValueError(f"the {variant} comparator needs the stage-0 GBDT (GbdtResidual's model)")
            model, record = comparators.fit_comparator(variant, ctx, train, valid, first_gbdt)
            export.save_model(model, encoder, inputs, fn_args.serving_model_dir, tft_output)
            records = [record]
            result = export.summarize(variant, options, records, comparator=True)
        else:
            stages = fit_stages(ctx, train, valid, first_gbdt)
            served = select_served(stages)
            export.export_model(served, encoder, inputs, fn_args.serving_model_dir, tft_output)
            records = [s.record for s in stages]
            result = export.summarize(variant, options, records)
            result["all_stages_model"] = None
            if len(served) < len(stages):
                logging.warning("ResFusion: serving K = %d of %d (eval logloss %s)", len(served) - 1,
                                len(stages) - 1, [round(r["eval_logloss"], 4) for r in records])
                export.export_model(stages, encoder, inputs, os.path.join(fn_args.model_run_dir, export.ALL_STAGES_DIR),
                             tft_output)
                result["all_stages_model"] = export.ALL_STAGES_DIR
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    _write_json(os.path.join(fn_args.model_run_dir, export.RESULT_FILE), result)
    _write_json(os.path.join(fn_args.model_run_dir, HISTORY_FILE),
                {**result, "stages": records, "hyperparameters": tuned, "trainer": config.to_custom_config()})


def tuning_trial(fn_args: Any, values: dict[str, Any], trial_dir: str) -> float:
    """A Tuner trial (trainer/tuner.py): `run_fn` with the trial's values as its hyper-parameters, into `trial_dir`;
    returns the eval AUC of its last stage (a comparator: of its one model). The pipeline gives the Tuner the
    variant with one deep stage (pipeline/resfusion_steps.py: tuning_options), so the score is that of the deep
    model on the GBDT's logit, whichever prefix would be served.
    """
    run_dir = os.path.join(trial_dir, "logs")
    run_fn(attr.evolve(fn_args, hyperparameters={"values": values}, model_run_dir=run_dir,
                       serving_model_dir=os.path.join(trial_dir, "model")))
    with tf.io.gfile.GFile(os.path.join(run_dir, export.RESULT_FILE)) as f:
        result = json.load(f)
    return tuning.trial_score([result["stages"][-1]["eval_auc"] if result["stages"] else result["eval_auc"]])
