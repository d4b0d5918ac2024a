"""Issue 13, reproducibility: the same seed and data give identical splits, vocabularies, weights and metrics on CPU,
and the model records its seed, the data fingerprint and the package versions in MLMD (components/provenance.py)."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

import local_runner
from components.ctr_trainer import CtrTrainer
from components.raw_log_example_gen.component import RawLogExampleGen
from pipeline import configs, lineage
from tests import helpers
from trainer import data as trainer_data
from transform import features, field_vocabularies

pytestmark = pytest.mark.e2e

FRAPPE_FIELDS = 10


def _frappe_lines(rows: int) -> list[bytes]:
    """A libFM log of `rows` lines: labels and ids from a fixed arithmetic rule (no random generator)."""
    return [(f"{1 if i % 3 == 0 else -1} " + " ".join(f"{(i * (f + 3)) % (5 + f) + 100 * f}:1"
                                                     for f in range(FRAPPE_FIELDS))).encode() for i in range(rows)]


def test_same_data_and_seed_give_identical_splits_and_vocabularies(tmp_path):
    """Two ExampleGen + Transform runs over the same files, in one pipeline with the cache off."""
    data = tmp_path / "data"
    data.mkdir()
    helpers.write_lines(str(data / "log.libfm"), _frappe_lines(400))
    nodes = []
    for name in ("A", "B"):
        gen = RawLogExampleGen(input_base=str(data), log_format="frappe").with_id(f"ExampleGen{name}")
        statistics = tfx.components.StatisticsGen(examples=gen.outputs["examples"]).with_id(f"StatisticsGen{name}")
        schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"]).with_id(f"SchemaGen{name}")
        transform = tfx.components.Transform(
            examples=gen.outputs["examples"], schema=schema.outputs["schema"],
            preprocessing_fn=configs.PREPROCESSING_FN, custom_config={"dataset": "frappe"},
            disable_statistics=True, disable_analyzer_cache=True,
        ).with_id(f"Transform{name}")
        nodes += [gen, statistics, schema, transform]
    store = lineage.open_store(helpers.run_components(str(tmp_path / "run"), nodes))
    examples = {name: lineage.latest_output(store, f"ExampleGen{name}", "examples").uri for name in "AB"}
    for split in ("train", "eval", "test"):
        a, b = (helpers.read_examples(os.path.join(examples[name], f"Split-{split}")) for name in "AB")
        assert a and sorted(e.SerializeToString(deterministic=True) for e in a) == sorted(
            e.SerializeToString(deterministic=True) for e in b)
    graphs = {name: lineage.latest_output(store, f"Transform{name}", "transform_graph").uri for name in "AB"}
    # Every field's vocabulary is in one file, the global id table (transform/field_vocabularies.py).
    assert os.listdir(os.path.join(graphs["A"], "transform_fn", "assets")) == [field_vocabularies.GLOBAL_IDS_FILE]
    a, b = (trainer_data.field_vocabularies(tft.TFTransformOutput(graphs[name]), features.get_dataset("frappe"))
            for name in "AB")
    assert len(a) == FRAPPE_FIELDS and all(a.values()) and a == b


def _variables(model_dir: str) -> dict[str, np.ndarray]:
    return {v.name: v.numpy() for v in tf.saved_model.load(model_dir).variables}


def test_two_trainings_with_the_same_seed_give_identical_weights_and_metrics(generated_run, tmp_path):
    """The generated run's Trainer, twice more on its own Transform output (imported), with the cache off."""
    store = lineage.open_store(generated_run.metadata_path)
    examples = lineage.latest_output(store, "Transform", "transformed_examples")
    imports = {
        "examples": tfx.dsl.Importer(source_uri=examples.uri, artifact_type=tfx.types.standard_artifacts.Examples,
                                     properties={"split_names": examples.properties["split_names"].string_value}),
        "transform_graph": tfx.dsl.Importer(
            source_uri=lineage.latest_output(store, "Transform", "transform_graph").uri,
            artifact_type=tfx.types.standard_artifacts.TransformGraph),
        "schema": tfx.dsl.Importer(source_uri=lineage.latest_output(store, "SchemaGen", "schema").uri,
                                   artifact_type=tfx.types.standard_artifacts.Schema),
    }
    config = local_runner.build_config(local_runner.parse_args(list(generated_run.argv)))
    trainers = [CtrTrainer(run_fn=configs.RUN_FN, train_args=tfx.proto.TrainArgs(splits=["train"]),
                           eval_args=tfx.proto.EvalArgs(splits=["eval"]),
                           custom_config=config.trainer.to_custom_config(),
                           **{key: node.with_id(f"Import-{key}").outputs["result"] for key, node in imports.items()}
                           ).with_id(f"Trainer{name}") for name in "AB"]
    run_store = lineage.open_store(helpers.run_components(str(tmp_path), [*imports.values(), *trainers]))
    models = {name: lineage.latest_output(run_store, f"Trainer{name}", "model") for name in "AB"}
    a, b = (_variables(os.path.join(models[name].uri, "Format-Serving")) for name in "AB")
    assert a.keys() == b.keys() and len(a) > 3
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    history = {}
    for name in "AB":  # per-epoch train and eval metrics, best epoch (trainer/train.py)
        model_run = lineage.latest_output(run_store, f"Trainer{name}", "model_run")
        with open(os.path.join(model_run.uri, "history.json")) as f:
            history[name] = json.load(f)
    assert history["A"] == history["B"] and history["A"]["history"]["val_auc"]
    # What the model was made with, in MLMD: its seed and package versions, and the data fingerprint of its input.
    model = models["A"]
    assert model.custom_properties["seed"].int_value == config.trainer.train.seed
    versions = json.loads(model.custom_properties["package_versions"].string_value)
    assert versions["tensorflow"] == tf.__version__ and versions["tfx"] == tfx.__version__
    raw_examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    assert "content_blake2b:" in raw_examples.custom_properties["input_fingerprint"].string_value
