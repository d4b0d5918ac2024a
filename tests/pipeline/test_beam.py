"""Beam presets (--beam-runner): each preset's arguments as Beam itself parses them, and the errors that name a
missing flag."""
import pytest
from apache_beam.options import pipeline_options as po

import local_runner
from pipeline import beam


def _options(settings):
    return po.PipelineOptions(list(beam.pipeline_args(settings)))


def test_direct_presets():
    local = _options(beam.BeamSettings()).view_as(po.DirectOptions)
    assert (local.direct_running_mode, local.direct_num_workers) == ("in_memory", 1)
    big = _options(beam.BeamSettings(beam.DIRECT_MULTIPROCESSING)).view_as(po.DirectOptions)
    assert (big.direct_running_mode, big.direct_num_workers) == ("multi_processing", 0)  # 0: one per core


def test_dataflow_preset():
    options = _options(beam.BeamSettings(beam.DATAFLOW, project="p", region="europe-west4",
                                         temp_location="gs://b/tmp", sdk_container_image="reg/img:1",
                                         extra_args=("--max_num_workers=20",)))
    cloud = options.view_as(po.GoogleCloudOptions)
    assert options.view_as(po.StandardOptions).runner == "DataflowRunner"
    assert (cloud.project, cloud.region, cloud.temp_location) == ("p", "europe-west4", "gs://b/tmp")
    worker = options.view_as(po.WorkerOptions)
    assert (worker.sdk_container_image, worker.max_num_workers) == ("reg/img:1", 20)
    assert options.view_as(po.SetupOptions).sdk_location == "container"
    assert "use_runner_v2" in options.view_as(po.DebugOptions).experiments


@pytest.mark.parametrize("runner", [beam.FLINK, beam.SPARK])
def test_portable_presets(runner):
    options = _options(beam.BeamSettings(runner, job_endpoint="flink-jobserver:8099"))
    portable = options.view_as(po.PortableOptions)
    assert options.view_as(po.StandardOptions).runner == "PortableRunner"
    assert (portable.job_endpoint, portable.environment_type, portable.environment_config) == (
        "flink-jobserver:8099", "EXTERNAL", beam.DEFAULT_WORKER_POOL)


def test_missing_settings_name_their_flags():
    with pytest.raises(ValueError, match="--beam-runner dataflow needs --beam-project, --beam-region"):
        beam.BeamSettings(beam.DATAFLOW, temp_location="gs://b/t", sdk_container_image="i")
    with pytest.raises(ValueError, match="must be a gs:// folder"):
        beam.BeamSettings(beam.DATAFLOW, project="p", region="r", temp_location="/tmp", sdk_container_image="i")
    with pytest.raises(ValueError, match="unknown Beam runner 'samza'"):
        beam.BeamSettings("samza")
    with pytest.raises(SystemExit, match="--beam-runner spark needs --beam-job-endpoint"):
        local_runner.beam_pipeline_args(local_runner.parse_args(["--beam-runner", "spark"]))


def test_the_local_default_is_unchanged():
    args = local_runner.parse_args([])
    assert local_runner.beam_pipeline_args(args) == ("--direct_running_mode=in_memory", "--direct_num_workers=1")
