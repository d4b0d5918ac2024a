"""The OptFusion family's steps (pipeline/optfusion_steps.py): presets, the pipeline's TrainConfig, and the
search -> retrain wiring (built, never run)."""
import dataclasses
import json

from pipeline import configs, optfusion_steps
from pipeline.pipeline import create_pipeline
from trainer.config import TrainConfig
from trainer.optfusion.settings import RetrainRates, RetrainSettings, SearchSettings


def test_presets_follow_the_reference_table():
    criteo = optfusion_steps.preset("criteo", "small").search
    assert (criteo.embedding_dim, criteo.lr_emb, criteo.arch_lr, criteo.l2_nn) == (40, 3e-4, 3e-1, 3e-6)
    assert optfusion_steps.preset("criteo", "small").hard == RetrainRates(3e-4, 3e-6)
    avazu = optfusion_steps.preset("avazu", "full")
    assert (avazu.search.lr_nn, avazu.search.arch_lr, avazu.hard.learning_rate) == (1e-3, 1e-1, 1e-3)
    assert (avazu.search.run.batch_size, avazu.search.run.epochs) == (4096, 5)
    assert optfusion_steps.preset("frappe", "full") == avazu
    kdd = optfusion_steps.preset("kdd12", "small")
    assert (kdd.search.embedding_dim, kdd.search.lr_emb, kdd.hard.learning_rate) == (16, 3e-3, 2e-3)
    test = optfusion_steps.preset("criteo", "test").search
    assert test.embedding_dim == 4 and test.run.max_steps_per_epoch <= 300 and test.run.epochs == 1


def test_the_pipeline_train_config_sets_batch_size_epochs_and_seed_of_both_steps():
    train = TrainConfig(batch_size=512, epochs=3, seed=7)
    settings = optfusion_steps.default_options("criteo", "small", train)
    assert (settings.search.run.batch_size, settings.search.run.epochs, settings.search.run.seed) == (512, 3, 7)
    assert settings.retrain("hard").run == settings.search.run


def _pipeline(tmp_path, model: str, **options):
    train = configs.trainer_preset("criteo", model, "test")
    return create_pipeline(configs.PipelineConfig(
        pipeline_root=str(tmp_path / "root"), metadata_path=str(tmp_path / "m.sqlite"),
        serving_model_dir=str(tmp_path / "serving"),
        dataset=configs.DatasetConfig(name="criteo", input_base="/nonexistent/input"), trainer=train,
        model_options=dataclasses.replace(optfusion_steps.preset("criteo", "test"), **options),
        code_fingerprint="abc123"))


def test_pipeline_wires_search_then_retrain_into_evaluation_and_push(tmp_path):
    nodes = {node.id: node for node in _pipeline(tmp_path, "optfusion-hard").components}
    assert "Trainer" not in nodes
    search, retrain = nodes["OptFusionSearch"], nodes["OptFusionRetrain"]
    assert search in retrain.upstream_nodes and nodes["AnomalyGate"] in search.upstream_nodes
    assert retrain.inputs["architecture"] is search.outputs["architecture"]
    assert nodes["Evaluator"].inputs["model"] is retrain.outputs["model"]
    assert nodes["Pusher"].inputs["model"] is retrain.outputs["model"]
    for node in (search, retrain):
        assert json.loads(node.exec_properties["train_args"])["splits"] == ["train"]
        assert json.loads(node.exec_properties["eval_args"])["splits"] == ["eval"]  # never the test split
        assert node.exec_properties["code_fingerprint"] == "abc123"
    assert RetrainSettings.from_json(retrain.exec_properties["settings"]).mode == "hard"
    assert SearchSettings.from_json(search.exec_properties["settings"]).embedding_dim == 4


def test_hard_and_soft_share_the_search_settings(tmp_path):
    hard = {n.id: n for n in _pipeline(tmp_path, "optfusion-hard").components}
    soft = {n.id: n for n in _pipeline(tmp_path, "optfusion-soft", inherit_weights=False).components}
    assert hard["OptFusionSearch"].exec_properties == soft["OptFusionSearch"].exec_properties  # one cached search
    settings = RetrainSettings.from_json(soft["OptFusionRetrain"].exec_properties["settings"])
    assert (settings.mode, settings.inherit_weights) == ("soft", False)
