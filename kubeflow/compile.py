"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines: a pipeline-spec JSON (TFX's
KubeflowV2DagRunner; the PipelineJob format Vertex runs and the Kubeflow UI uploads).

    python -m kubeflow.compile --output pipeline.json --image REGISTRY/fusionctr:TAG \\
        --data gs://BUCKET/criteo --output-dir gs://BUCKET/fusionctr --dataset criteo --model optfusion-hard

Every flag of local_runner.py applies. The model family (--model) and the dataset layout (--dataset) decide which
components exist, so they are compile-time: one compiled spec per family and layout. Two values are pipeline
parameters a run can change (pipeline/runtime_parameters.py): `input_base` (the data folder, default --data) and
`epochs` (default the preset's or --epochs). The training steps (Trainer, Tuner, OptFusion search and retrain)
request an accelerator (--accelerator-type, --accelerator-count); ExampleGen, Transform, TF-DF's GBDT stage and the
other Beam steps stay on CPU, their Beam runner chosen by --beam-runner. User code is referenced by dotted names, so
nothing is uploaded at compile time: the image holds the project (kubeflow/Dockerfile).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import local_runner  # noqa: E402 - after the Keras switch above

# Where kubeflow/Dockerfile puts the project in the image: files of the repository (a curated schema) are read
# there at run time.
IMAGE_PROJECT_DIR = "/fusionctr"
# Vertex AI's name of a T4; open-source KFP takes the Kubernetes resource name instead ("nvidia.com/gpu").
DEFAULT_ACCELERATOR = "NVIDIA_TESLA_T4"


def build_parser() -> argparse.ArgumentParser:
    """local_runner.py's flags plus the compiler's own."""
    parser = local_runner.build_parser(__doc__)
    group = parser.add_argument_group("Kubeflow")
    group.add_argument("--output", required=True, help="the compiled spec: FILE.json (or .yaml)")
    group.add_argument("--image", required=True,
                       help="the pipeline image every step runs in (kubeflow/Dockerfile, pushed to a registry)")
    group.add_argument("--accelerator-type", default=DEFAULT_ACCELERATOR,
                       help=f"accelerator of the training steps (default {DEFAULT_ACCELERATOR}: Vertex AI's name; "
                            "open-source KFP: nvidia.com/gpu)")
    group.add_argument("--accelerator-count", type=int, default=1,
                       help="accelerators per training step (default 1; 0: no request, CPU only)")
    group.add_argument("--training-cpu", type=float, help="vCPU limit of the training steps")
    group.add_argument("--training-memory-gb", type=float, help="memory limit of the training steps, GB")
    return parser


@dataclasses.dataclass(frozen=True)
class Resources:
    """What each training step requests: `accelerator_count` accelerators of `accelerator_type` (none at 0) and
    optional vCPU / memory limits.

    Raises:
        ValueError: a negative count or limit, or a count without a type.
    """

    accelerator_type: str = DEFAULT_ACCELERATOR
    accelerator_count: int = 1
    cpu_limit: float | None = None
    memory_limit_gb: float | None = None

    def __post_init__(self) -> None:
        if self.accelerator_count < 0 or (self.cpu_limit or 0) < 0 or (self.memory_limit_gb or 0) < 0:
            raise ValueError(f"accelerator count and CPU / memory limits must be >= 0: {self}")
        if self.accelerator_count and not self.accelerator_type:
            raise ValueError("--accelerator-count needs --accelerator-type")

    def resource_spec(self) -> Any:
        """As the pipeline spec's ResourceSpec (TFX's `platform_config` of a component), or None for no request."""
        from kfp.pipeline_spec import pipeline_spec_pb2

        if not (self.accelerator_count or self.cpu_limit or self.memory_limit_gb):
            return None
        spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
        if self.accelerator_count:
            spec.accelerator.type = self.accelerator_type
            spec.accelerator.count = self.accelerator_count
        if self.cpu_limit:
            spec.cpu_limit = self.cpu_limit
        if self.memory_limit_gb:
            spec.memory_limit = self.memory_limit_gb
        return spec


def is_training_step(node: Any) -> bool:
    """True for the steps that train a network, the ones worth an accelerator: the Trainer (CtrTrainer; ResFusion's
    deep stages), the Tuner, OptFusionSearch and OptFusionRetrain. GbdtResidual (TF-DF trains on CPU), Transform and
    the Beam steps are not."""
    from tfx import v1 as tfx

    from components.optfusion import OptFusionRetrain, OptFusionSearch
    return isinstance(node, (tfx.components.Trainer, tfx.components.Tuner, OptFusionSearch, OptFusionRetrain))


def image_path(path: str | None, repo_root: str = local_runner.REPO_ROOT) -> str | None:
    """A file of this repository (a curated schema) as the image holds it (IMAGE_PROJECT_DIR); other paths as
    given (a gs:// URI is read from there).

    Raises:
        SystemExit: a local file outside the repository (a container cannot read the compiling machine's disk).
    """
    if path is None or local_runner.is_uri(path):
        return path
    relative = os.path.relpath(os.path.abspath(path), repo_root)
    if relative.startswith(".."):
        raise SystemExit(f"{path}: a Kubeflow step cannot read this machine's files; put it in the repository "
                         "(it is then in the image) or in a bucket (gs://...)")
    return f"{IMAGE_PROJECT_DIR}/{relative}"


def kubeflow_config(args: argparse.Namespace) -> Any:
    """The PipelineConfig of the flags, for Kubeflow: pipeline parameters on, no local metadata store (the backend
    keeps it), no checks against earlier runs' data (their resolvers query MLMD; pin a schema with --schema), the
    Beam workers of Dataflow on the pipeline image unless --beam-sdk-container-image says otherwise,
    repository files at their image paths.

    Raises:
        SystemExit: no --data (a Kubeflow run reads its data from a bucket; nothing is generated), --span-window over
            1 or --keep-runs (local runs only), or a flag error.
    """
    if not args.data:
        raise SystemExit("--data is required: the folder (gs://...) the Kubeflow run reads (default of the "
                         "input_base pipeline parameter)")
    if args.span_window > 1:
        raise SystemExit("--span-window over 1 picks its spans with an MLMD query, which Kubeflow V2 does not "
                         "compile: local runs only (kubeflow/README.md)")
    if args.keep_runs is not None:
        raise SystemExit("--keep-runs deletes a local pipeline root's folders: on Kubeflow, give the bucket a "
                         "lifecycle rule instead (kubeflow/README.md)")
    if args.beam_sdk_container_image is None:
        args = argparse.Namespace(**{**vars(args), "beam_sdk_container_image": args.image})
    config = local_runner.build_config(args)
    dataset = dataclasses.replace(config.dataset, schema_path=image_path(config.dataset.schema_path))
    data_checks = dataclasses.replace(config.data_checks, against_history=False)  # MLMD queries: local runs only
    return dataclasses.replace(config, dataset=dataset, metadata_path=None, runtime_parameters=True,
                               data_checks=data_checks)


def compile_pipeline(argv: list[str]) -> dict[str, Any]:
    """Compiles the pipeline of `argv` (build_parser's flags) to `--output`; returns the PipelineJob dict.

    Raises:
        SystemExit: a flag error.
    """
    from tfx import v1 as tfx

    from pipeline import runtime_parameters
    from pipeline.pipeline import create_pipeline

    args = build_parser().parse_args(argv)
    try:
        resources = Resources(args.accelerator_type, args.accelerator_count, args.training_cpu,
                              args.training_memory_gb)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    config = kubeflow_config(args)
    pipeline = create_pipeline(config)
    resource_spec = resources.resource_spec()
    if resource_spec is not None:
        for node in pipeline.components:
            if is_training_step(node):
                node.with_platform_config(resource_spec)
    output = os.path.abspath(args.output)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_dir=os.path.dirname(output), output_filename=os.path.basename(output))
    return runner.run(pipeline, parameter_values=runtime_parameters.defaults(config), write_out=True)


def summary(job: dict[str, Any], output: str) -> str:
    """A few lines on the compiled job: where it is, its steps, its parameters and its accelerator requests."""
    spec = job["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    accelerated = [task for task, body in tasks.items()
                   if spec["deploymentSpec"]["executors"].get(
                       spec["components"][body["componentRef"]["name"]]["executorLabel"], {}
                   ).get("container", {}).get("resources", {}).get("accelerator")]
    return "\n".join([
        f"Compiled {job['displayName']} to {output}",
        f"  steps ({len(tasks)}): {', '.join(sorted(tasks))}",
        f"  pipeline parameters: {', '.join(sorted(parameters)) or 'none'}",
        f"  accelerator requested by: {', '.join(sorted(accelerated)) or 'none'}",
        "  next: upload it in the Kubeflow Pipelines UI, or submit it to Vertex AI Pipelines (kubeflow/README.md)",
    ])


def main(argv: list[str] | None = None) -> None:
    """The command line: compile, then print the summary."""
    argv = sys.argv[1:] if argv is None else argv
    job = compile_pipeline(argv)
    print(summary(job, os.path.abspath(build_parser().parse_args(argv).output)), flush=True)


if __name__ == "__main__":
    main()
