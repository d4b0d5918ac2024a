"""The ResFusion family (pipeline.families.FamilySteps): a TF-DF GBDT and residual deep models.

    raw Examples -> GbdtResidual (GBDT + k fold models; `gbdt_logit`, out-of-fold on train) -> Transform
                 -> [Tuner (--tune)] -> Trainer (trainer.resfusion.run.run_fn: the residual stages; one fused
                    SavedModel) -> Evaluator

Models (`--model`):
- `resfusion`: GBDTRes+NN with K = options.rounds residual rounds (default 2, the paper's best): GBDT,
  then the deep model (options.residual_model, DeepFM by default) on the GBDT's logit as fixed offset,
  then a GBDT on the residual of both (LogitBoost step). `--residual-model optfusion-hard` makes each deep stage
  an OptFusion search and Hard retrain on the offset (trainer/resfusion/optfusion_stage.py), with the dataset's
  OptFusion settings (optfusion_steps.preset). Every K is fitted and reported; the pushed model is
  the prefix with the lowest eval logloss (the Model artifact's `served_rounds`).
- `gbdt`: the GBDT alone (K = 0): GbdtResidual's Model, no Trainer (the training logits it writes are
  in-sample, as nothing trains on them).
- `nnres-gbdt`: NNres+GBDT, the reverse order: the deep model, then a GBDT on its residual.
- `gbdt-lr`, `gbdt2dnn`, `gbdt2deepfm`, `gbdt+deepfm`: the paper's Table 2 fusion comparators
  (trainer/resfusion/comparators.py), each on the same stage-0 GBDT.

Every variant runs on raw logs and on OptFusion TFRecords (`--dataset tfrecord`: the GBDT reads the F id
columns as categorical features).
"""
from __future__ import annotations

import dataclasses

from tfx import v1 as tfx

from components.ctr_trainer import CtrTrainer
from components.gbdt_residual import trainer_executor
from components.gbdt_residual.component import GbdtResidual
from pipeline import configs, keras_steps, optfusion_steps, runtime_parameters, tuner_step
from trainer.config import TrainConfig
from trainer.optfusion.settings import MODEL_MODES as OPTFUSION_NETWORKS
from trainer.resfusion.gbdt import GbdtParams
from trainer.resfusion.settings import ResFusionOptions

RUN_FN = "trainer.resfusion.run.run_fn"
TRIAL_FN = "trainer.resfusion.run.tuning_trial"
# `--tune` searches the deep stages' network as for a Keras baseline (names: TrainerConfig.HYPERPARAMETERS).
SEARCH_SPACE = keras_steps.SEARCH_SPACE

@dataclasses.dataclass(frozen=True)
class Variant:
    """What a `--model` name of this family runs.

    Attributes:
        summary: what it trains, in a few words (for --help and errors).
        first_stage: "gbdt" (GbdtResidual runs before Transform) or "nn".
        rounds: K; None takes the options' (`--rounds`).
        comparator: a Table 2 fusion comparator (trainer/resfusion/comparators.py) rather than residual stages.
        out_of_fold: the training rows' `gbdt_logit` must be out-of-fold (something trains on it).
    """

    summary: str
    first_stage: str = "gbdt"
    rounds: int | None = None
    comparator: bool = False
    out_of_fold: bool = True


VARIANTS: dict[str, Variant] = {
    "resfusion": Variant("ResFusion: a TF-DF GBDT, then K residual rounds (GBDTRes+NN)"),
    "gbdt": Variant("the TF-DF GBDT alone", rounds=0, out_of_fold=False),
    "nnres-gbdt": Variant("NNres+GBDT: the deep model, then a GBDT on its residual", first_stage="nn", rounds=1),
    "gbdt-lr": Variant("GBDT+LR: logistic regression on the GBDT's leaves", rounds=0, comparator=True,
                       out_of_fold=False),  # LR on the full GBDT's leaves
    "gbdt2dnn": Variant("GBDT2DNN: the GBDT's prediction as a DNN input", rounds=0, comparator=True),
    "gbdt2deepfm": Variant("GBDT2DeepFM: the GBDT's prediction as a DeepFM input", rounds=0, comparator=True),
    "gbdt+deepfm": Variant("GBDT+DeepFM: a weighted sum of both logits", rounds=0,
                           comparator=True),  # weights fitted on out-of-fold training logits
}

_GBDT_PRESETS = {
    "test": GbdtParams(num_trees=20, max_depth=4, early_stopping_look_ahead=5, batch_size=1024),
    "small": GbdtParams(num_trees=300, max_depth=6),
    "full": GbdtParams(num_trees=1000, max_depth=8, batch_size=8192),
}


def default_options(dataset: str, size: str, train: TrainConfig) -> ResFusionOptions:
    """K = 2 with DeepFM; `test`: few trees, 2 folds (the trainer preset gives one short epoch). The GBDT's
    vocabulary cut follows the input layout (trainer.resfusion.gbdt.GbdtParams.vocabulary: every id of OptFusion
    TFRecords is kept), so the same preset serves a raw log and the TFRecords of the same dataset. The OptFusion
    settings of the dataset (optfusion_steps.preset) come along for `--residual-model optfusion-hard`;
    resolve_options drops them for any other residual network.

    Raises:
        ValueError: an unknown preset size.
    """
    if size not in _GBDT_PRESETS:
        raise ValueError(f"unknown preset size {size!r}; choose one of {', '.join(_GBDT_PRESETS)}")
    return ResFusionOptions(rounds=2, folds=2 if size == "test" else 5, gbdt=_GBDT_PRESETS[size],
                            optfusion=optfusion_steps.preset(dataset, size, train))


def residual_networks() -> tuple[str, ...]:
    """The names `--residual-model` takes: every Keras baseline network and the OptFusion networks."""
    from trainer.models import registry
    return (*registry.LOGIT_BUILDERS, *OPTFUSION_NETWORKS)


def resolve_options(config: configs.PipelineConfig) -> ResFusionOptions:
    """The options of the selected model: the family options with the variant's stage order and K, and the OptFusion
    settings only when the residual network is OptFusion's.

    Raises:
        ValueError: a model outside the family, or an unknown residual network.
        TypeError: model_options of another family.
    """
    name = config.trainer.model.name
    if name not in VARIANTS:
        raise ValueError(f"--model {name!r} is not implemented in the ResFusion family (have: {', '.join(VARIANTS)})")
    options = config.model_options
    if options is None:
        options = ResFusionOptions()
    elif not isinstance(options, ResFusionOptions):
        raise TypeError(f"model_options of --model {name} must be ResFusionOptions, got {type(options).__name__}")
    if options.residual_model not in residual_networks():
        raise ValueError(f"unknown residual model {options.residual_model!r}; choose one of "
                         f"{', '.join(residual_networks())}")
    variant = VARIANTS[name]
    return dataclasses.replace(options, first_stage=variant.first_stage,
                               rounds=options.rounds if variant.rounds is None else variant.rounds,
                               optfusion=options.optfusion if options.uses_optfusion else None)


def tuning_options(name: str, options: ResFusionOptions) -> ResFusionOptions:
    """What a Tuner trial of `--model name` fits: the first stage and one deep stage (a GBDT first: K = 1, GBDTRes+NN;
    a deep first: K = 0), so a trial costs one deep training and is scored on the deep model; a comparator as it is.

    Raises:
        ValueError: a variant without a deep model (`gbdt`, `gbdt-lr`): nothing to tune; an OptFusion residual
            network (its search has its own Tuner: `--model optfusion-hard --tune`).
    """
    variant = VARIANTS[name]
    if name in ("gbdt", "gbdt-lr"):
        raise ValueError(f"--tune: --model {name} trains no deep model, so the Tuner has nothing to tune "
                         "(tune the GBDT through GbdtParams)")
    if options.uses_optfusion:
        raise ValueError(f"--tune: the {options.residual_model} residual stages take the OptFusion search's settings; "
                         f"tune them with `--model {options.residual_model} --tune` and set them in "
                         "ResFusionOptions.optfusion")
    if variant.comparator:
        return options
    return dataclasses.replace(options, rounds=1 if options.first_stage == "gbdt" else 0)


def pre_transform(config: configs.PipelineConfig, examples: tfx.dsl.Channel
                  ) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:
    """A GBDT first stage: GbdtResidual writes its logit into the examples that Transform (and the Trainer) read.

    Raises:
        ValueError: a window of several spans with a GBDT first stage (it reads one Examples artifact).
    """
    options = resolve_options(config)
    if options.stage_kinds[0] != "gbdt":
        return [], examples
    if config.dataset.span_window > 1:
        raise ValueError("ResFusion's GBDT stage trains on one span: run it with a span window of 1")
    out_of_fold = VARIANTS[config.trainer.model.name].out_of_fold
    residual = GbdtResidual(
        examples=examples, dataset=config.dataset.name,
        folds=options.folds if out_of_fold else 0,  # out-of-fold logits only matter when a stage trains on them
        fold_seed=options.fold_seed, params=options.gbdt, code_fingerprint=config.code_fingerprint)
    return [residual], residual.outputs["residual_examples"]


def train(config: configs.PipelineConfig, transform: tfx.components.Transform, schema: tfx.dsl.Channel,
          champion: tfx.dsl.Channel) -> tuple[list[tfx.types.BaseNode], tfx.dsl.Channel]:  # noqa: ARG001 - the family interface
    """The family interface: one Trainer running trainer.resfusion.run.run_fn (the residual stages, algorithms.md
    §2.3-§2.5) on the examples Transform read, with the stage-0 GBDT's Model as base_model (none for an "nn" first
    stage); returns the Trainer's Model channel. The GBDT alone (K = 0, no comparator) has no Trainer: GbdtResidual's
    Model is returned. Tuned (`--tune`): a Tuner first, each trial the variant with one deep stage (tuning_options);
    the Trainer applies the best values to every deep stage.

    Raises:
        ValueError, TypeError: as resolve_options; warm start asked for.
    """
    configs.refuse_warm_start(config, "ResFusion")
    options = resolve_options(config)
    # Checked before the GBDT-alone return below: --tune on a variant without a deep model is refused.
    trial_options = tuning_options(config.trainer.model.name, options) if config.tuning is not None else None
    examples = transform.inputs["examples"]  # what pre_transform returned: GbdtResidual's examples, or the raw ones
    gbdt_model = None
    if options.stage_kinds[0] == "gbdt":
        gbdt_model = examples.producer_component.outputs["model"]
        if options.rounds == 0 and not VARIANTS[config.trainer.model.name].comparator:
            return [], gbdt_model  # the GBDT alone: its Model already serves raw tf.Examples
    custom_config = {**config.trainer.to_custom_config(), "resfusion": options.to_dict(),
                     "variant": config.trainer.model.name,
                     "dataset": config.dataset.name, "code_fingerprint": config.code_fingerprint}
    tuners, hyperparameters = [], None
    if trial_options is not None:
        trial_config = {**custom_config, **tuner_step.trainer_config_for_trials(config),
                        "resfusion": trial_options.to_dict()}
        tuner = tuner_step.tuner_component(
            config, examples=examples, transform_graph=transform.outputs["transform_graph"], schema=schema,
            trial_fn=TRIAL_FN, space=SEARCH_SPACE, family_config=trial_config, base_model=gbdt_model)
        tuners, hyperparameters = [tuner], tuner.outputs["best_hyperparameters"]
    trainer = CtrTrainer(
        run_fn=RUN_FN,
        # CtrTrainer's executor + the run's result.json (served K, per-stage eval metrics) as MLMD properties.
        executor_class=trainer_executor.Executor,
        examples=examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        base_model=gbdt_model,
        hyperparameters=hyperparameters,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),  # the test split is never seen by training
        custom_config=custom_config,
        epochs=runtime_parameters.epochs(config),
    )
    return [*tuners, trainer], trainer.outputs["model"]
