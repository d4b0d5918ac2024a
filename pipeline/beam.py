"""Beam presets: the `beam_pipeline_args` of each runner the pipeline's Beam steps (ExampleGen, StatisticsGen,
Transform, Evaluator, GbdtResidual's folds) can run on, chosen by one flag (`--beam-runner`).

    direct                 DirectRunner, one in-memory worker: the local default and the tests (TFX's own test
                           set-up forces in_memory: multi-process Beam made its tests slow, tfx.md §1.6)
    direct-multiprocessing DirectRunner, one worker process per core: one big machine
    dataflow               Google Cloud Dataflow (Runner v2) with the pipeline image as the SDK container, so the
                           workers run the project's own preprocessing code
    flink, spark           a portable job server (Flink's or Spark's Beam job service) and a Beam worker pool
                           (the SDK harness, started from the pipeline image: kubeflow/README.md)

Each preset is a pure function of BeamSettings; the runner flags and the Kubeflow compiler share them.
"""
from __future__ import annotations

import dataclasses

DIRECT, DIRECT_MULTIPROCESSING = "direct", "direct-multiprocessing"
DATAFLOW, FLINK, SPARK = "dataflow", "flink", "spark"
RUNNERS = (DIRECT, DIRECT_MULTIPROCESSING, DATAFLOW, FLINK, SPARK)
# The Beam worker pool of the portable runners: a sidecar of the job server's task managers (Beam's
# `--worker_pool` SDK harness) listens here by default.
DEFAULT_WORKER_POOL = "localhost:50000"


@dataclasses.dataclass(frozen=True)
class BeamSettings:
    """Where the Beam steps run (one of RUNNERS) and what that runner needs.

    Attributes:
        runner: one of RUNNERS.
        project, region: Dataflow's Google Cloud project and region.
        temp_location: Dataflow's staging and temp folder (a gs:// URI).
        sdk_container_image: Dataflow's worker image: the pipeline image (it holds the project and the locked
            stack, so the workers run the same preprocessing_fn as the pipeline).
        job_endpoint: flink/spark: the portable job server's host:port (Beam's job service, port 8099 by default).
        worker_pool: flink/spark: the Beam worker pool (SDK harness) the runner's workers call.
        extra_args: more Beam options, appended as given (e.g. "--max_num_workers=20").

    Raises:
        ValueError: an unknown runner, or a setting its runner needs missing (the message names the flag).
    """

    runner: str = DIRECT
    project: str | None = None
    region: str | None = None
    temp_location: str | None = None
    sdk_container_image: str | None = None
    job_endpoint: str | None = None
    worker_pool: str = DEFAULT_WORKER_POOL
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(f"unknown Beam runner {self.runner!r}; choose one of {', '.join(RUNNERS)}")
        needed = {DATAFLOW: ("project", "region", "temp_location", "sdk_container_image"),
                  FLINK: ("job_endpoint",), SPARK: ("job_endpoint",)}.get(self.runner, ())
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            flags = ", ".join("--beam-" + name.replace("_", "-") for name in missing)
            raise ValueError(f"--beam-runner {self.runner} needs {flags}")
        if self.runner == DATAFLOW and not str(self.temp_location).startswith("gs://"):
            raise ValueError(f"--beam-temp-location must be a gs:// folder for Dataflow, got {self.temp_location!r}")


def pipeline_args(settings: BeamSettings) -> tuple[str, ...]:
    """The `beam_pipeline_args` of `settings`: what every Beam step of the pipeline gets (Kubeflow: appended to
    each container's arguments, where TFX's entrypoint passes them to the executor)."""
    runner = settings.runner
    if runner == DIRECT:
        args = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    elif runner == DIRECT_MULTIPROCESSING:
        args = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]  # 0: one worker per core
    elif runner == DATAFLOW:
        args = ["--runner=DataflowRunner", f"--project={settings.project}", f"--region={settings.region}",
                f"--temp_location={settings.temp_location}", "--experiments=use_runner_v2",
                f"--sdk_container_image={settings.sdk_container_image}",
                # The image already holds the SDK and the project: nothing to stage.
                "--sdk_location=container"]
    else:  # flink, spark: Beam's portable runner against the engine's job server
        args = ["--runner=PortableRunner", f"--job_endpoint={settings.job_endpoint}",
                "--environment_type=EXTERNAL", f"--environment_config={settings.worker_pool}"]
    return (*args, *settings.extra_args)
