"""kubeflow.spec_runner on small hand-written PipelineJobs whose tasks are one-line Python programs: parameters,
artifact passing, the executor-output file, caching, resolver queries, importers and trigger conditions."""
import json

import pytest

from kubeflow import spec_runner

# A container task's program: reads the ExecutorInput ({{$}}), writes its output artifact's file and an
# ExecutorOutput whose metadata records the parameter `x` and the input artifact's `x` (0 without one).
TASK_PROGRAM = r"""
import json, os, sys
ex = json.loads(sys.argv[1])
x = ex.get("inputs", {}).get("parameters", {}).get("x", {}).get("intValue", "0")
upstream = [a["metadata"]["x"] for a in ex.get("inputs", {}).get("artifacts", {}).get("data", {}).get("artifacts", [])]
if int(x) < 0:
    sys.exit("x must be >= 0")
out = {}
for key, found in ex["outputs"]["artifacts"].items():
    artifact = found["artifacts"][0]
    with open(os.path.join(artifact["uri"], "value"), "w") as f:
        f.write(x)
    out[key] = {"artifacts": [{"name": artifact["name"], "uri": artifact["uri"],
                               "metadata": {"x": int(x), "upstream": sum(upstream)}}]}
with open(ex["outputs"]["outputFile"], "w") as f:
    json.dump({"artifacts": out}, f)
"""
DATA_TYPE = {"schemaTitle": "system.Dataset"}


def _container_task(name, parameters=None, data_from=None, condition=None, cache=True):
    inputs = {}
    if parameters:
        inputs["parameters"] = parameters
    if data_from:
        inputs["artifacts"] = {"data": {"taskOutputArtifact": {"producerTask": data_from, "outputArtifactKey": "data"}}}
    task = {"taskInfo": {"name": name}, "componentRef": {"name": name}, "inputs": inputs,
            "dependentTasks": [data_from] if data_from else [], "cachingOptions": {"enableCache": cache}}
    if condition:
        task["triggerPolicy"] = {"condition": condition}
    component = {"executorLabel": f"{name}_executor",
                 "outputDefinitions": {"artifacts": {"data": {"artifactType": DATA_TYPE}}}}
    if data_from:
        component["inputDefinitions"] = {"artifacts": {"data": {"artifactType": DATA_TYPE}}}
    executor = {"container": {"image": "img", "command": ["python", "-c", TASK_PROGRAM], "args": ["{{$}}"]}}
    return task, component, executor


def _job(tmp_path, tasks, parameters=None):
    spec = {"pipelineInfo": {"name": "toy"}, "schemaVersion": "2.0.0", "sdkVersion": "test",
            "root": {"dag": {"tasks": {}}}, "components": {}, "deploymentSpec": {"executors": {}}}
    if parameters:
        spec["root"]["inputDefinitions"] = {"parameters": {k: {"type": "INT"} for k in parameters}}
    for name, (task, component, executor) in tasks.items():
        spec["root"]["dag"]["tasks"][name] = task
        spec["components"][name] = component
        spec["deploymentSpec"]["executors"][f"{name}_executor"] = executor
    job = {"displayName": "toy", "pipelineSpec": spec,
           "runtimeConfig": {"gcsOutputDirectory": str(tmp_path / "root"),
                             "parameters": {k: {"intValue": str(v)} for k, v in (parameters or {}).items()}}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return str(path)


def _run(path, **parameters):
    return spec_runner.SpecRunner(spec_runner.load_job(path), parameters, log=lambda _: None).run()


X_FROM_PIPELINE = {"x": {"componentInputParameter": "x"}}


def test_parameters_flow_into_tasks_and_artifacts_to_consumers(tmp_path):
    path = _job(tmp_path, {"a": _container_task("a", X_FROM_PIPELINE),
                           "b": _container_task("b", {"x": {"runtimeValue": {"constantValue": {"intValue": "5"}}}},
                                                data_from="a")}, parameters={"x": 3})
    result = _run(path)
    assert result.states == {"a": "SUCCEEDED", "b": "SUCCEEDED"}
    a, b = result.outputs["a"]["data"][0], result.outputs["b"]["data"][0]
    assert (a.metadata, b.metadata) == ({"x": 3, "upstream": 0}, {"x": 5, "upstream": 3})
    assert open(f"{a.uri}/value").read() == "3" and a.uri.startswith(str(tmp_path / "root" / result.run_id))
    assert _run(path, x=4).outputs["b"]["data"][0].metadata == {"x": 5, "upstream": 4}  # --parameter x=4


def test_an_unchanged_task_is_cached_and_a_changed_parameter_reruns_it(tmp_path):
    path = _job(tmp_path, {"a": _container_task("a", X_FROM_PIPELINE),
                           "b": _container_task("b", data_from="a", cache=False)}, parameters={"x": 1})
    first = _run(path)
    second = _run(path)
    assert second.states == {"a": "CACHED", "b": "SUCCEEDED"}  # b opts out of caching
    assert second.outputs["a"]["data"][0].name == first.outputs["a"]["data"][0].name
    assert _run(path, x=2).states["a"] == "SUCCEEDED"


def test_a_resolver_returns_the_latest_matching_artifact_of_earlier_runs(tmp_path):
    resolver = ({"taskInfo": {"name": "latest"}, "componentRef": {"name": "latest"}},
                {"executorLabel": "latest_executor",
                 "outputDefinitions": {"artifacts": {"data": {"artifactType": DATA_TYPE}}}},
                {"resolver": {"outputArtifactQueries": {"data": {
                    "filter": 'schema_title="system.Dataset" AND state=LIVE AND metadata.x.number_value=7'}}}})
    tasks = {"latest": resolver, "a": _container_task("a", X_FROM_PIPELINE, cache=False),
             "b": _container_task("b", data_from="latest", cache=False)}
    tasks["a"][0]["dependentTasks"] = ["latest"]
    path = _job(tmp_path, tasks, parameters={"x": 7})
    first = _run(path)
    assert first.outputs["latest"]["data"] == []  # nothing recorded yet: b reads no input
    assert first.outputs["b"]["data"][0].metadata["upstream"] == 0
    second = _run(path)
    assert second.outputs["latest"]["data"][0].name == first.outputs["a"]["data"][0].name
    assert second.outputs["b"]["data"][0].metadata["upstream"] == 7
    _run(path, x=8)  # x=8 does not match: the latest x=7 artifact is still the second run's
    assert _run(path).outputs["latest"]["data"][0].name == second.outputs["a"]["data"][0].name


def test_a_false_condition_skips_the_task_and_its_consumers(tmp_path):
    condition = "(inputs.artifacts['data'].artifacts[0].metadata['x'] == 1.0)"
    path = _job(tmp_path, {"a": _container_task("a", X_FROM_PIPELINE),
                           "b": _container_task("b", data_from="a", condition=condition),
                           "c": _container_task("c", data_from="b")}, parameters={"x": 1})
    assert _run(path).states == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "SUCCEEDED"}
    assert _run(path, x=2).states == {"a": "SUCCEEDED", "b": "SKIPPED", "c": "SKIPPED"}


def test_condition_language():
    artifact = spec_runner.Artifact("n", "t", {}, "gs://b/u", {"blessed": 1.0, "auc": 0.7})
    inputs = {"m": [artifact]}
    holds = lambda text: spec_runner.condition_holds(text, inputs)  # noqa: E731
    assert holds("(inputs.artifacts['m'].artifacts[0].metadata['blessed'] == 1.0)")
    assert holds("!((inputs.artifacts['m'].artifacts[0].metadata['auc'] > 0.75))")
    assert holds("((inputs.artifacts['m'].artifacts[0].metadata['auc'] < 0.5) || "
                 "(inputs.artifacts['m'].artifacts[0].uri == 'gs://b/u'))")
    assert not holds("(inputs.artifacts['missing'].artifacts[0].metadata['blessed'] == 1.0)")
    with pytest.raises(spec_runner.SpecError, match="outside the CEL subset"):
        holds("inputs.__class__")


def test_an_importer_reuses_an_earlier_import_unless_reimport_is_set(tmp_path):
    def importer(reimport):
        return ({"taskInfo": {"name": "imp"}, "componentRef": {"name": "imp"}},
                {"executorLabel": "imp_executor",
                 "outputDefinitions": {"artifacts": {"result": {"artifactType": DATA_TYPE}}}},
                {"importer": {"artifactUri": {"constantValue": {"stringValue": "gs://bucket/schema"}},
                              "typeSchema": DATA_TYPE, "metadata": {"origin": "user"}, "reimport": reimport}})
    path = _job(tmp_path, {"imp": importer(False)})
    first = _run(path).outputs["imp"]["result"][0]
    assert (first.uri, first.metadata, first.schema_title) == ("gs://bucket/schema", {"origin": "user"},
                                                                "system.Dataset")
    assert _run(path).outputs["imp"]["result"][0].name == first.name
    assert _run(_job(tmp_path, {"imp": importer(True)})).outputs["imp"]["result"][0].name != first.name


def test_a_failing_task_names_itself_and_its_log(tmp_path):
    path = _job(tmp_path, {"a": _container_task("a", X_FROM_PIPELINE)}, parameters={"x": -1})
    with pytest.raises(spec_runner.SpecError, match=r"task a: the executor exited with 1; log .*executor\.log"
                                                    r"(.|\n)*x must be >= 0"):
        _run(path)


def test_parameter_errors_name_the_parameter(tmp_path):
    path = _job(tmp_path, {"a": _container_task("a", X_FROM_PIPELINE)}, parameters={"x": 1})
    job = spec_runner.load_job(path)
    with pytest.raises(spec_runner.SpecError, match=r"unknown pipeline parameter\(s\) \['y'\]"):
        spec_runner.SpecRunner(job, {"y": 1})
    assert spec_runner.parse_parameter("epochs=3") == ("epochs", 3)
    assert spec_runner.parse_parameter("input_base=gs://b/x") == ("input_base", "gs://b/x")


def test_filter_terms_outside_the_supported_forms_are_refused():
    with pytest.raises(spec_runner.SpecError, match="only FIELD=VALUE terms"):
        spec_runner.parse_filter_term("create_time > 5")
