"""kubeflow.compile: the compiled PipelineJob, parsed with kfp's pipeline-spec protos, for each model family: every
component with its dependencies, the image, the pipeline parameters, the Beam arguments, the accelerator requests."""
import json

import pytest
from google.protobuf import json_format

from kubeflow import compile as kubeflow_compile
from kubeflow import spec_runner
from pipeline import configs

IMAGE = "europe-docker.pkg.dev/proj/ctr/fusionctr:1.0"
BEAM_STEPS = ("RawLogExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Evaluator")
# The steps of each family after Transform, and those that request the accelerator.
TRAINING = {"deepfm": ({"Trainer"}, {"Trainer"}),
            "optfusion-hard": ({"OptFusionSearch", "OptFusionRetrain"}, {"OptFusionSearch", "OptFusionRetrain"}),
            "resfusion": ({"GbdtResidual", "Trainer"}, {"Trainer"})}


DATAFLOW = ("--beam-runner", "dataflow", "--beam-project", "proj", "--beam-region", "europe-west4",
            "--beam-temp-location", "gs://bucket/tmp")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Each family compiled once with the Dataflow preset and a Tuner (the compiler is the costly part)."""
    root = tmp_path_factory.mktemp("compiled")
    return {model: _compile(root, model, *DATAFLOW, "--tune") for model in TRAINING}


def _compile(tmp_path, model, *flags):
    output = tmp_path / f"{model}.json"
    kubeflow_compile.compile_pipeline([
        "--output", str(output), "--image", IMAGE, "--data", "gs://bucket/criteo", "--dataset", "criteo",
        "--output-dir", "gs://bucket/fusionctr", "--model", model, *flags])
    return spec_runner.load_job(str(output)), json.loads(output.read_text())


def _container(job, task):
    component = job.spec.components[job.spec.root.dag.tasks[task].component_ref.name]
    return job.deployment.executors[component.executor_label].container


@pytest.mark.parametrize("model", sorted(TRAINING))
def test_the_compiled_job_of_each_family(compiled, model):
    job, raw = compiled[model]
    tasks = job.spec.root.dag.tasks
    steps, accelerated = TRAINING[model]
    steps, accelerated = steps | {"Tuner"}, accelerated | {"Tuner"}
    trainer = "OptFusionRetrain" if model == "optfusion-hard" else "Trainer"
    assert set(tasks) == {*BEAM_STEPS, "AnomalyGate", "ChampionResolver-model-blessing-resolver",
                          "ChampionResolver-model-resolver", "Pusher", *steps}
    # The Tuner feeds the family's training step; the custom executors are named by their dotted class paths.
    assert "Tuner" in tasks["OptFusionSearch" if model == "optfusion-hard" else "Trainer"].dependent_tasks
    classes = {name: (args := list(_container(job, name).args))[args.index("--executor_class_path") + 1]
               for name in ("Evaluator", "Pusher", "Tuner", "Trainer") if name in tasks}
    assert classes["Evaluator"] == "components.champion_evaluator.executor.Executor"
    assert classes["Pusher"] == "components.versioned_pusher.executor.Executor"
    assert classes["Tuner"] == "components.tuner.Executor"
    if "Trainer" in classes:
        assert classes["Trainer"] == ("components.gbdt_residual.trainer_executor.Executor" if model == "resfusion"
                                      else "components.ctr_trainer.Executor")
    # ResFusion's Transform reads GbdtResidual's examples (the raw ones with the GBDT's out-of-fold logit).
    examples_from = "GbdtResidual" if model == "resfusion" else "RawLogExampleGen"
    assert set(tasks["Transform"].dependent_tasks) == {examples_from, "SchemaGen", "AnomalyGate"}
    assert {"AnomalyGate", "Transform"} <= set(tasks[trainer].dependent_tasks)
    assert set(tasks["Evaluator"].dependent_tasks) >= {trainer, "ChampionResolver-model-resolver"}
    assert set(tasks["Pusher"].dependent_tasks) == {"Evaluator", trainer}
    containers = {name: _container(job, name) for name in tasks if "Resolver" not in name}
    assert {c.image for c in containers.values()} == {IMAGE}
    # Pipeline parameters: declared at the root, defaulted in runtimeConfig, read by ExampleGen and the trainers.
    assert {k: v.type for k, v in job.spec.root.input_definitions.parameters.items()} == {
        "input_base": 3, "epochs": 1}  # STRING, INT (PrimitiveType)
    epochs = configs.trainer_preset("criteo", model, "small").train.epochs
    assert job.parameters == {"input_base": "gs://bucket/criteo", "epochs": epochs}
    assert tasks["RawLogExampleGen"].inputs.parameters["input_base"].component_input_parameter == "input_base"
    readers = {name for name, task in tasks.items() if "epochs" in task.inputs.parameters}
    assert readers == steps - {"GbdtResidual", "Tuner"}  # a Tuner's trials keep their compile-time epochs
    assert all(tasks[r].inputs.parameters["epochs"].component_input_parameter == "epochs" for r in readers)
    # Beam: the Dataflow preset on every Beam step, with the pipeline image as the worker image.
    for name in BEAM_STEPS:
        args = list(containers[name].args)
        assert {"--runner=DataflowRunner", "--project=proj", "--region=europe-west4",
                "--temp_location=gs://bucket/tmp", f"--sdk_container_image={IMAGE}"} <= set(args), name
    assert containers["RawLogExampleGen"].lifecycle.pre_cache_check.command[-1].endswith(
        "file_based_example_gen.driver")
    # Accelerators: the training steps only (TF-DF, Transform and the Beam steps stay on CPU).
    requests = {name: (c.resources.accelerator.type, c.resources.accelerator.count)
                for name, c in containers.items() if c.resources.accelerator.count}
    assert requests == {name: ("NVIDIA_TESLA_T4", 1) for name in accelerated}
    assert raw["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/fusionctr/pipeline_root"
    pusher = json.loads(tasks["Pusher"].inputs.parameters["push_destination"].runtime_value.constant_value
                        .string_value)
    assert pusher["filesystem"]["base_directory"] == "gs://bucket/fusionctr/serving_model"


@pytest.mark.parametrize("model", sorted(TRAINING))
def test_every_artifact_type_imports_from_its_schema_title(compiled, model):
    """TFX's V2 entrypoint imports a custom artifact class from its schema title ("fusionctr.X")."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.types.artifact import Artifact
    from tfx.utils import import_utils
    job, _ = compiled[model]
    titles = {spec_runner.schema_title(definition.artifact_type)
              for component in job.spec.components.values()
              for definitions in (component.input_definitions, component.output_definitions)
              for definition in definitions.artifacts.values()}
    for title in titles:  # as kubeflow_v2_entrypoint_utils._retrieve_class_path resolves them
        artifact_class = import_utils.import_class_by_path(compiler_utils.TITLE_TO_CLASS_PATH.get(title, title))
        assert issubclass(artifact_class, Artifact)
        assert title.startswith("tfx.") or artifact_class.TYPE_NAME == title
    assert ("fusionctr.OptFusionArchitecture" in titles) == (model == "optfusion-hard")


def test_accelerator_and_resource_flags(tmp_path):
    job, _ = _compile(tmp_path, "deepfm", "--accelerator-type", "nvidia.com/gpu", "--accelerator-count", "2",
                      "--training-cpu", "8", "--training-memory-gb", "30")
    resources = _container(job, "Trainer").resources
    assert (resources.accelerator.type, resources.accelerator.count) == ("nvidia.com/gpu", 2)
    assert (resources.cpu_limit, resources.memory_limit) == (8, 30)
    job, _ = _compile(tmp_path, "deepfm", "--accelerator-count", "0")
    assert not _container(job, "Trainer").HasField("resources")


def test_local_runs_keep_values_not_parameters(tmp_path):
    """Without runtime_parameters (LocalDagRunner), ExampleGen and the trainers get the values themselves."""
    import local_runner
    from pipeline.pipeline import create_pipeline
    config = local_runner.build_config(local_runner.parse_args(
        ["--data", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--model", "optfusion-hard"]))
    nodes = {node.id: node for node in create_pipeline(config).components}
    assert nodes["RawLogExampleGen"].exec_properties["input_base"] == str(tmp_path)
    assert all(nodes[n].exec_properties.get("epochs") is None for n in ("OptFusionSearch", "OptFusionRetrain"))


def test_a_repository_schema_is_read_from_the_image_and_other_local_files_are_refused(tmp_path):
    from local_runner import REPO_ROOT
    assert kubeflow_compile.image_path(f"{REPO_ROOT}/schemas/criteo.pbtxt") == "/fusionctr/schemas/criteo.pbtxt"
    assert kubeflow_compile.image_path("gs://b/schema.pbtxt") == "gs://b/schema.pbtxt"
    with pytest.raises(SystemExit, match="cannot read this machine's files"):
        kubeflow_compile.image_path(str(tmp_path / "schema.pbtxt"))


def test_flag_errors(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="--data is required"):
        kubeflow_compile.compile_pipeline(["--output", str(tmp_path / "p.json"), "--image", IMAGE])
    with pytest.raises(SystemExit, match="--beam-runner flink needs --beam-job-endpoint"):
        _compile(tmp_path, "deepfm", "--beam-runner", "flink")
    # Continuous training's MLMD resolvers and local folder deletion do not run on Kubeflow.
    with pytest.raises(SystemExit, match="--span-window over 1 picks its spans with an MLMD query"):
        _compile(tmp_path, "deepfm", "--file-pattern", "day={SPAN}/*", "--span-window", "2")
    with pytest.raises(SystemExit, match="--keep-runs deletes a local pipeline root's folders"):
        _compile(tmp_path, "deepfm", "--keep-runs", "3")
    # OptFusion TFRecords in a bucket this machine cannot read (no network or no credentials here, whatever the
    # machine): their layout must be given.
    import tensorflow as tf

    def unreachable(path):
        raise tf.errors.FailedPreconditionError(None, None, f"Could not resolve host\nwhen reading {path}")
    monkeypatch.setattr(tf.io.gfile, "exists", unreachable)
    with pytest.raises(SystemExit, match=r"cannot read gs://b/tfrecords/meta.json \(Could not resolve host\): give "
                                         r"--layout"):
        kubeflow_compile.compile_pipeline(["--output", str(tmp_path / "p.json"), "--image", IMAGE, "--dataset",
                                           "tfrecord", "--data", "gs://b/tfrecords"])


def test_the_job_parses_as_a_pipeline_job_proto(compiled):
    from kfp.pipeline_spec import pipeline_spec_pb2
    _, raw = compiled["deepfm"]
    lines = kubeflow_compile.summary(raw, "/out/pipeline.json").splitlines()
    assert lines[0] == "Compiled fusionctr-criteo to /out/pipeline.json"
    assert "  pipeline parameters: epochs, input_base" in lines
    assert "  accelerator requested by: Trainer, Tuner" in lines
    job = json_format.ParseDict(raw, pipeline_spec_pb2.PipelineJob())  # unknown fields would raise
    assert job.display_name == "fusionctr-criteo"
    assert raw["pipelineSpec"]["schemaVersion"] == "2.0.0"
