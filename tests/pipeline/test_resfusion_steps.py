"""The ResFusion family's pipeline wiring (built, never run)."""
import json

import pytest

from pipeline import configs, families, resfusion_steps
from pipeline.pipeline import create_pipeline
from trainer.config import TrainConfig
from trainer.resfusion.settings import ResFusionOptions


def _config(tmp_path, model: str, size: str = "test", dataset: str = "criteo"):
    return configs.PipelineConfig(
        pipeline_root=str(tmp_path / "root"), metadata_path=str(tmp_path / "m.sqlite"),
        serving_model_dir=str(tmp_path / "serving"),
        dataset=configs.DatasetConfig(name=dataset, input_base="/nonexistent/input"),
        trainer=configs.trainer_preset(dataset, model, size),
        model_options=families.get_family(model).steps.default_options(dataset, size, TrainConfig()))


def _nodes(pipeline):
    return {node.id: node for node in pipeline.components}


def test_resfusion_runs_the_gbdt_before_transform_and_the_residual_trainer_after(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, "resfusion")))
    residual, transform, trainer = nodes["GbdtResidual"], nodes["Transform"], nodes["Trainer"]
    assert transform.inputs["examples"].producer_component is residual
    assert trainer.inputs["examples"].producer_component is residual
    assert trainer.inputs["base_model"].producer_component is residual  # the stage-0 GBDT
    assert trainer.exec_properties["run_fn"] == resfusion_steps.RUN_FN
    custom = json.loads(trainer.exec_properties["custom_config"])
    options = ResFusionOptions.from_dict(custom["resfusion"])
    assert options.stage_kinds == ("gbdt", "nn", "gbdt") and options.residual_model == "deepfm"
    assert residual.exec_properties["folds"] == options.folds == 2  # the test preset
    assert json.loads(trainer.exec_properties["train_args"])["splits"] == ["train"]
    assert nodes["Evaluator"].inputs["model"].producer_component is trainer
    assert nodes["AnomalyGate"] in residual.upstream_nodes


def test_gbdt_alone_is_evaluated_and_pushed_without_a_trainer(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, "gbdt")))
    assert "Trainer" not in nodes
    assert nodes["GbdtResidual"].exec_properties["folds"] == 0
    assert nodes["Evaluator"].inputs["model"].producer_component is nodes["GbdtResidual"]


def test_nnres_gbdt_starts_with_the_deep_model(tmp_path):
    nodes = _nodes(create_pipeline(_config(tmp_path, "nnres-gbdt")))
    assert "GbdtResidual" not in nodes
    options = ResFusionOptions.from_dict(json.loads(nodes["Trainer"].exec_properties["custom_config"])["resfusion"])
    assert options.stage_kinds == ("nn", "gbdt")


def test_presets():
    assert resfusion_steps.default_options("criteo", "small", TrainConfig()).folds == 5
    assert resfusion_steps.default_options("criteo", "test", TrainConfig()).gbdt.num_trees <= 20
    with pytest.raises(ValueError):
        resfusion_steps.default_options("criteo", "huge", TrainConfig())


def test_unknown_residual_model_fails_at_pipeline_construction(tmp_path):
    import dataclasses
    config = _config(tmp_path, "resfusion")
    config = dataclasses.replace(config, model_options=dataclasses.replace(config.model_options,
                                                                           residual_model="nope"))
    with pytest.raises(ValueError, match="unknown residual model 'nope'"):
        create_pipeline(config)


@pytest.mark.parametrize("model, folds", [("gbdt-lr", 0), ("gbdt2dnn", 2), ("gbdt2deepfm", 2), ("gbdt+deepfm", 2)])
def test_table2_comparators_train_on_the_gbdt_stage(tmp_path, model, folds):
    nodes = _nodes(create_pipeline(_config(tmp_path, model)))
    trainer = nodes["Trainer"]
    assert trainer.inputs["base_model"].producer_component is nodes["GbdtResidual"]
    # Out-of-fold only where a model trains on it: GBDT+DeepFM fits its weights on out-of-fold training logits.
    assert nodes["GbdtResidual"].exec_properties["folds"] == folds
    assert json.loads(trainer.exec_properties["custom_config"])["variant"] == model


def test_every_routed_name_is_implemented():
    routed = {name for name, family in families.FAMILIES.items() if family.steps is resfusion_steps}
    assert routed == set(resfusion_steps.VARIANTS)


@pytest.mark.parametrize("model", sorted(resfusion_steps.VARIANTS))
def test_every_variant_builds_on_optfusion_tfrecords(tmp_path, model):
    """`--dataset tfrecord`: ImportExampleGen's examples feed the GBDT (the id columns) and the Trainer."""
    nodes = _nodes(create_pipeline(_config(tmp_path, model, dataset="tfrecord")))
    options = resfusion_steps.resolve_options(_config(tmp_path, model, dataset="tfrecord"))
    if options.stage_kinds[0] == "gbdt":
        residual = nodes["GbdtResidual"]
        assert residual.exec_properties["dataset"] == "tfrecord"
        assert residual.inputs["examples"].producer_component is nodes["ImportExampleGen"]
    if "Trainer" in nodes:
        custom = json.loads(nodes["Trainer"].exec_properties["custom_config"])
        assert custom["dataset"] == "tfrecord" and custom["variant"] == model


def test_trainer_records_the_run_result_in_mlmd(tmp_path):
    """The Trainer runs the family's executor, which copies result.json (served K, stage metrics) onto the Model."""
    from components.gbdt_residual import trainer_executor
    trainer = _nodes(create_pipeline(_config(tmp_path, "resfusion")))["Trainer"]
    assert trainer.executor_spec.executor_class is trainer_executor.Executor


def _with_residual(tmp_path, network: str, **config_changes):
    import dataclasses
    config = _config(tmp_path, "resfusion")
    options = dataclasses.replace(config.model_options, residual_model=network)
    return dataclasses.replace(config, model_options=options, **config_changes)


def test_optfusion_residual_network_gets_the_datasets_optfusion_settings(tmp_path):
    """`--residual-model optfusion-hard`: the Trainer's options carry the dataset's OptFusion settings (the preset's),
    which a DeepFM residual run leaves out of its custom_config (and so of its cache key)."""
    from pipeline import optfusion_steps
    trainer = _nodes(create_pipeline(_with_residual(tmp_path, "optfusion-hard")))["Trainer"]
    options = ResFusionOptions.from_dict(json.loads(trainer.exec_properties["custom_config"])["resfusion"])
    assert options.residual_model == "optfusion-hard"
    assert options.optfusion == optfusion_steps.preset("criteo", "test", TrainConfig())
    deepfm = _nodes(create_pipeline(_config(tmp_path, "resfusion")))["Trainer"]
    assert "optfusion" not in json.loads(deepfm.exec_properties["custom_config"])["resfusion"]


def test_optfusion_residual_network_refuses_the_tuner(tmp_path):
    from trainer.tuning import TuningConfig
    with pytest.raises(ValueError, match="tune them with `--model optfusion-hard --tune`"):
        create_pipeline(_with_residual(tmp_path, "optfusion-hard", tuning=TuningConfig()))
