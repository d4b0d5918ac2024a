"""What a compiled Kubeflow pipeline lets its user change per run, without recompiling: TFX RuntimeParameters.

    input_base  the folder of the click log (or of the OptFusion TFRecords)        ExampleGen's input_base
    epochs      the most epochs of every training step (Trainer, OptFusion search  their `epochs` parameter
                and retrain; a --tune Tuner's trials keep their compile-time epochs)

They appear as the pipeline's parameters in the Kubeflow / Vertex AI UI, with the compile-time values as defaults.
Everything else is a compile-time flag (kubeflow/README.md): TFX 1.16 accepts a RuntimeParameter only in a string
or integer execution property, not inside `custom_config` or a proto such as TrainArgs (tfx.md, "Kubeflow compile"),
and the model family and dataset layout decide which components exist. A local run (LocalDagRunner) takes the
values themselves: `PipelineConfig.runtime_parameters` is False there.
"""
from __future__ import annotations

from tfx.orchestration import data_types

from pipeline import configs

INPUT_BASE = "input_base"
EPOCHS = "epochs"


def input_base(config: configs.PipelineConfig) -> str | data_types.RuntimeParameter:
    """ExampleGen's input folder: `config.dataset.input_base`, or a parameter defaulting to it."""
    if not config.runtime_parameters:
        return config.dataset.input_base
    return data_types.RuntimeParameter(name=INPUT_BASE, ptype=str, default=config.dataset.input_base)


def epochs(config: configs.PipelineConfig) -> int | data_types.RuntimeParameter | None:
    """The `epochs` parameter of the training steps: None locally (they train `config.trainer.train.epochs`, from
    their settings), else a parameter defaulting to those epochs."""
    if not config.runtime_parameters:
        return None
    return data_types.RuntimeParameter(name=EPOCHS, ptype=int, default=config.trainer.train.epochs)


def defaults(config: configs.PipelineConfig) -> dict[str, str | int]:
    """The parameters' values for `config`: a compiled job's runtimeConfig (TFX 1.16's spec holds no defaults of its
    own), what a run gets unless it sets them."""
    return {INPUT_BASE: config.dataset.input_base, EPOCHS: config.trainer.train.epochs}
