"""The `epochs` execution parameter of the training steps (a Kubeflow pipeline parameter): CtrTrainer's and the
OptFusion steps' executors apply it to the settings the training reads."""
import json

import pytest
from tfx import v1 as tfx

from components import ctr_trainer
from components.optfusion import executor as optfusion_executor
from trainer.optfusion.settings import RetrainSettings, SearchSettings


def test_the_trainer_writes_epochs_into_custom_config():
    properties = {"custom_config": json.dumps({"train": {"epochs": 5, "batch_size": 256}, "model": {"name": "fm"}}),
                  "epochs": 2}
    custom = json.loads(ctr_trainer.with_epochs(properties)["custom_config"])
    assert custom == {"train": {"epochs": 2, "batch_size": 256}, "model": {"name": "fm"}}
    unset = {"custom_config": properties["custom_config"], "epochs": None}
    assert ctr_trainer.with_epochs(unset) is unset  # a local run: the stock Trainer's input, unchanged
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        ctr_trainer.with_epochs({**properties, "epochs": 0})


def test_the_optfusion_steps_apply_epochs_to_their_run_settings():
    search = SearchSettings()
    assert optfusion_executor.with_epochs(search, {"epochs": 7}).run.epochs == 7
    assert optfusion_executor.with_epochs(search, {}) is search
    retrain = RetrainSettings()
    assert optfusion_executor.with_epochs(retrain, {"epochs": 1}).run == retrain.run.__class__(
        **{**retrain.run.__dict__, "epochs": 1})
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        optfusion_executor.with_epochs(search, {"epochs": -1})


def test_the_ctr_trainer_is_a_trainer_with_an_epochs_parameter():
    examples = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples)
    graph = tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformGraph)
    schema = tfx.dsl.Channel(type=tfx.types.standard_artifacts.Schema)
    epochs = tfx.dsl.experimental.RuntimeParameter(name="epochs", ptype=int, default=3)
    trainer = ctr_trainer.CtrTrainer(run_fn="trainer.train.run_fn", examples=examples, transform_graph=graph,
                                     schema=schema, train_args=tfx.proto.TrainArgs(splits=["train"]),
                                     eval_args=tfx.proto.EvalArgs(splits=["eval"]),
                                     custom_config={"train": {"epochs": 5}}, epochs=epochs)
    assert isinstance(trainer, tfx.components.Trainer) and trainer.id == "Trainer"
    assert trainer.exec_properties["epochs"] is epochs
    assert json.loads(trainer.exec_properties["custom_config"]) == {"train": {"epochs": 5}}
    assert trainer.executor_spec.executor_class is ctr_trainer.Executor
