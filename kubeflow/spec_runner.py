"""Runs a compiled pipeline spec (kubeflow.compile's PipelineJob JSON) on this machine, the way a KFP v2 backend
runs it: a dry run of exactly what the cluster would execute, with local folders in place of the bucket.

    python -m kubeflow.spec_runner pipeline.json [--parameter epochs=3] [--parameter input_base=/data/criteo]

What it does, task by task in the DAG's order (the spec parsed with kfp's pipeline-spec protos):
- a container task: its command and arguments run as a subprocess, unmodified (TFX's V2 entrypoint,
  `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, does the work), `{{$}}` filled
  with the task's ExecutorInput proto (parameters, input artifacts, output artifacts under
  `<pipeline root>/<run id>/<task>/<output>`, the executor-output file). A `lifecycle.preCacheCheck` command (the
  file-based ExampleGen's driver: span, version and input fingerprint) runs first, and its updated parameters enter
  the cache key, as on the backend. With `cachingOptions.enableCache`, a task whose executor, parameters and input
  artifacts match an earlier successful execution reuses its outputs (CACHED) instead of running.
- a resolver task: each `outputArtifactQueries` filter (`schema_title="tfx.ModelBlessing" AND state=LIVE AND
  metadata.blessed.number_value=1`, with `{{$.inputs.artifacts[...].metadata[...]}}` filled from its inputs) is
  evaluated over the artifacts this runner recorded under the same pipeline root (`_local_kfp/artifacts.json`);
  the latest match is the output, or nothing.
- an importer task: an artifact at `artifactUri` (a constant or a pipeline parameter), reused when `reimport` is
  off and the same URI and type were imported before.
- a task with a `triggerPolicy.condition` (TFX's `Cond`, compiled to CEL over input-artifact metadata) runs only
  when it holds; otherwise it and every task that consumes its outputs are SKIPPED.
Pipeline parameters: the job's runtimeConfig values, overridden by `--parameter NAME=VALUE`.

Differences from a cluster, on purpose: every task runs in this machine's Python environment (`python` is the
interpreter running this module: the project's virtual environment holds the image's locked packages; the image's
ENV lines of kubeflow/Dockerfile are set);
the artifact store is a JSON file under the pipeline root rather than Vertex ML Metadata (so, unlike Vertex, whose
resolver queries span every pipeline of the metadata store, the champion comes from this pipeline root only).
"""
from __future__ import annotations

import argparse
import dataclasses
import graphlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any, Callable

import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

DOCKERFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Dockerfile")
STORE_FOLDER = "_local_kfp"
EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
SUCCEEDED, CACHED, SKIPPED = "SUCCEEDED", "CACHED", "SKIPPED"
# TFX's value artifacts are files, every other artifact a folder (TFX's outputs_utils makes the same distinction).
VALUE_ARTIFACT_TITLES = {"tfx.String", "tfx.Integer", "tfx.Float", "tfx.Boolean", "tfx.Bytes", "tfx.JsonValue"}


class SpecError(RuntimeError):
    """The spec asks for something this runner does not do, or a task failed (the message says which and where its
    log is)."""


@dataclasses.dataclass
class Artifact:
    """One artifact of the local store: what a KFP backend keeps of it (RuntimeArtifact fields)."""

    name: str
    schema_title: str
    type_schema: dict[str, Any]  # the ArtifactTypeSchema as JSON (schemaTitle or instanceSchema)
    uri: str
    metadata: dict[str, Any]
    state: str = "LIVE"
    created: float = 0.0

    def runtime_artifact(self) -> pb.RuntimeArtifact:
        """As the ExecutorInput proto holds an artifact."""
        artifact = pb.RuntimeArtifact(name=self.name, uri=self.uri)
        json_format.ParseDict(self.type_schema, artifact.type)
        artifact.metadata.update(self.metadata)
        return artifact


def schema_title(type_schema: pb.ArtifactTypeSchema) -> str:
    """The artifact type's title: schemaTitle, or the `title` of an instanceSchema (TFX writes those)."""
    if type_schema.WhichOneof("kind") == "instance_schema":
        return str(yaml.safe_load(type_schema.instance_schema).get("title", "tfx.Artifact"))
    return type_schema.schema_title


class ArtifactStore:
    """The artifacts and cached executions of every run under one pipeline root: `<root>/_local_kfp/artifacts.json`."""

    def __init__(self, pipeline_root: str):
        self.path = os.path.join(pipeline_root, STORE_FOLDER, "artifacts.json")
        self.artifacts: list[Artifact] = []
        self.executions: dict[str, dict[str, list[str]]] = {}  # cache key -> output key -> artifact names
        if os.path.exists(self.path):
            with open(self.path) as f:
                saved = json.load(f)
            self.artifacts = [Artifact(**a) for a in saved["artifacts"]]
            self.executions = saved["executions"]

    def save(self) -> None:
        """Writes the store (atomically: a crash never leaves half a file)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            json.dump({"artifacts": [dataclasses.asdict(a) for a in self.artifacts],
                       "executions": self.executions}, f, indent=1)
        os.replace(self.path + ".tmp", self.path)

    def add(self, artifact: Artifact) -> None:
        """Records an artifact (a later one of the same name replaces it)."""
        artifact.created = time.time()
        self.artifacts = [a for a in self.artifacts if a.name != artifact.name] + [artifact]

    def by_name(self, name: str) -> Artifact | None:
        """The artifact called `name`, if recorded."""
        return next((a for a in self.artifacts if a.name == name), None)

    def query(self, filter_text: str) -> list[Artifact]:
        """The artifacts matching an ML-Metadata-style filter (terms joined by AND: schema_title="X", state=LIVE,
        name="X", metadata.KEY.number_value=N, metadata.KEY.string_value="S"), latest first.

        Raises:
            SpecError: a term of another form.
        """
        terms = [parse_filter_term(term) for term in re.split(r"\s+AND\s+", filter_text.strip())]
        matches = [a for a in self.artifacts if all(test(a) for test in terms)]
        return sorted(matches, key=lambda a: a.created, reverse=True)


def parse_filter_term(term: str) -> Callable[[Artifact], bool]:
    """One `field=value` term of a resolver's filter as a test of an Artifact.

    Raises:
        SpecError: a field or comparison this runner does not know.
    """
    match = re.fullmatch(r'([\w.]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))', term.strip())
    if not match:
        raise SpecError(f"resolver filter term {term!r}: only FIELD=VALUE terms joined by AND are supported")
    field, quoted, bare = match.group(1), match.group(2), match.group(3)
    value = quoted if quoted is not None else bare
    if field == "schema_title":
        return lambda a: a.schema_title == value
    if field == "state":
        return lambda a: a.state == value
    if field == "name":
        return lambda a: a.name == value
    metadata = re.fullmatch(r"metadata\.(\w+)\.(number_value|string_value|bool_value)", field)
    if metadata:
        key, kind = metadata.groups()
        if kind == "number_value":
            return lambda a: isinstance(a.metadata.get(key), (int, float)) and float(a.metadata[key]) == float(value)
        if kind == "bool_value":
            return lambda a: a.metadata.get(key) is (value == "true")
        return lambda a: a.metadata.get(key) == value
    raise SpecError(f"resolver filter field {field!r} is not supported (schema_title, state, name, metadata.K.*)")


def image_environment(dockerfile: str = DOCKERFILE) -> dict[str, str]:
    """The `ENV KEY=VALUE` settings of the pipeline image's Dockerfile (a container task sees them)."""
    env: dict[str, str] = {}
    if not os.path.exists(dockerfile):
        return env
    with open(dockerfile) as f:
        for line in f:
            if line.startswith("ENV "):
                for pair in line[4:].split():
                    key, _, value = pair.partition("=")
                    env[key] = value.strip('"')
    return env


def python_value(value: pb.Value | struct_pb2.Value) -> Any:
    """A pipeline-spec Value (intValue / doubleValue / stringValue) or a protobuf Value as Python."""
    which = value.WhichOneof("value") if isinstance(value, pb.Value) else value.WhichOneof("kind")
    return getattr(value, which)


def spec_value(value: Any) -> pb.Value:
    """A Python int, float or str as a pipeline-spec Value (what TFX's V2 entrypoint reads for schema 2.0.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"parameter value {value!r}: only int, float and str are supported")
    if isinstance(value, int):
        return pb.Value(int_value=value)
    if isinstance(value, float):
        return pb.Value(double_value=value)
    return pb.Value(string_value=value)


@dataclasses.dataclass(frozen=True)
class Job:
    """A compiled PipelineJob: the spec, its deployment config and the parameter values of its runtimeConfig."""

    spec: pb.PipelineSpec
    deployment: pb.PipelineDeploymentConfig
    pipeline_root: str
    parameters: dict[str, Any]


def load_job(path: str) -> Job:
    """Parses a compiled PipelineJob JSON with kfp's protos (unknown fields are errors).

    Raises:
        SpecError: no pipeline root (runtimeConfig.gcsOutputDirectory) in the job.
        google.protobuf.json_format.ParseError: a field the pipeline-spec protos do not have.
    """
    with open(path) as f:
        job = json_format.Parse(f.read(), pb.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec), pb.PipelineSpec())
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec),
                                       pb.PipelineDeploymentConfig())
    runtime = job.runtime_config
    if not runtime.gcs_output_directory:
        raise SpecError(f"{path}: no runtimeConfig.gcsOutputDirectory (the pipeline root)")
    parameters = {name: python_value(value) for name, value in runtime.parameters.items()}
    parameters.update({name: python_value(value) for name, value in runtime.parameter_values.items()})
    return Job(spec, deployment, runtime.gcs_output_directory, parameters)


def read_executor_output(path: str) -> pb.ExecutorOutput:
    """The ExecutorOutput a driver or an executor wrote (TFX's entrypoints write JSON)."""
    with open(path) as f:
        return json_format.Parse(f.read(), pb.ExecutorOutput(), ignore_unknown_fields=True)


def task_order(spec: pb.PipelineSpec) -> list[str]:
    """The root DAG's tasks, each after the tasks it depends on or reads an artifact of."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, task in spec.root.dag.tasks.items():
        producers = {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
                     if a.HasField("task_output_artifact")}
        sorter.add(name, *task.dependent_tasks, *producers)
    return list(sorter.static_order())


class _Namespace:
    """Attribute and item access over nested dicts and lists, for a trigger condition's CEL."""

    def __init__(self, value: Any):
        self._value = value

    def __getattr__(self, name: str) -> Any:
        return _wrap(self._value[name])

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._value[key])


def _wrap(value: Any) -> Any:
    return _Namespace(value) if isinstance(value, (dict, list)) else value


def condition_holds(condition: str, inputs: dict[str, list[Artifact]]) -> bool:
    """Evaluates a task's trigger condition: the CEL TFX compiles a `Cond` to (compiler_utils.placeholder_to_cel:
    `inputs.artifacts['KEY'].artifacts[0].metadata['NAME']` or `.uri`, numbers and quoted strings, ==, <, >, !,
    &&, ||, parentheses), over the task's input artifacts. A missing artifact makes it false.

    Raises:
        SpecError: text outside that subset.
    """
    # Code and string literals alternate; only the code is checked and translated to Python.
    parts = re.split(r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", condition)
    code = parts[::2]
    if any(re.search(r"[^\w\s.\[\]()=<>!&|+-]|__|\blambda\b", c) for c in code):
        raise SpecError(f"trigger condition {condition!r} is outside the CEL subset TFX compiles")
    parts[::2] = [re.sub(r"!(?!=)", " not ", c.replace("&&", " and ").replace("||", " or ")) for c in code]
    python = "".join(parts)
    artifacts = {key: {"artifacts": [{"metadata": a.metadata, "uri": a.uri} for a in found]}
                 for key, found in inputs.items()}
    try:
        return bool(eval(python, {"__builtins__": {}}, {"inputs": _Namespace({"artifacts": artifacts})}))  # noqa: S307
    except (KeyError, IndexError):
        return False


@dataclasses.dataclass
class RunResult:
    """What a spec run did: its id, each task's state (SUCCEEDED, CACHED or SKIPPED) and output artifacts."""

    run_id: str
    states: dict[str, str]
    outputs: dict[str, dict[str, list[Artifact]]]


class SpecRunner:
    """Runs one compiled job (see the module docstring); `run()` executes it once."""

    def __init__(self, job: Job, parameters: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 log: Callable[[str], None] = print):
        self.job = job
        self.parameters = {**job.parameters, **(parameters or {})}
        declared = job.spec.root.input_definitions.parameters
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise SpecError(f"unknown pipeline parameter(s) {sorted(unknown)}; the pipeline has {sorted(declared)}")
        missing = set(declared) - set(self.parameters)
        if missing:
            raise SpecError(f"pipeline parameter(s) {sorted(missing)} have no value: give --parameter NAME=VALUE")
        # `python` in a task's command is the image's interpreter: here, the one running this runner.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        self.env = {**os.environ, "PATH": path, **image_environment(), **(env or {})}
        self.log = log
        self.store = ArtifactStore(job.pipeline_root)
        self.run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"

    def run(self) -> RunResult:
        """Executes every task in DAG order; returns the run's states and outputs.

        Raises:
            SpecError: a task failed or asks for something unsupported; earlier tasks' outputs stay recorded.
        """
        result = RunResult(self.run_id, {}, {})
        for name in task_order(self.job.spec):
            task = self.job.spec.root.dag.tasks[name]
            inputs = self._input_artifacts(task, result)
            skipped_upstream = any(result.states.get(a.task_output_artifact.producer_task) == SKIPPED
                                   for a in task.inputs.artifacts.values() if a.HasField("task_output_artifact"))
            if skipped_upstream or (task.trigger_policy.condition
                                    and not condition_holds(task.trigger_policy.condition, inputs)):
                result.states[name], result.outputs[name] = SKIPPED, {}
                self.log(f"[{name}] SKIPPED ({'an input was skipped' if skipped_upstream else 'condition false'})")
                continue
            started = time.monotonic()
            state, outputs = self._run_task(name, task, inputs)
            result.states[name], result.outputs[name] = state, outputs
            self.store.save()
            self.log(f"[{name}] {state} in {time.monotonic() - started:.0f} s")
        return result

    def _input_artifacts(self, task: pb.PipelineTaskSpec, result: RunResult) -> dict[str, list[Artifact]]:
        inputs = {}
        for key, spec in task.inputs.artifacts.items():
            if not spec.HasField("task_output_artifact"):
                raise SpecError(f"input artifact {key!r}: only taskOutputArtifact inputs are supported")
            source = spec.task_output_artifact
            inputs[key] = result.outputs.get(source.producer_task, {}).get(source.output_artifact_key, [])
        return inputs

    def _parameter_values(self, task: pb.PipelineTaskSpec) -> dict[str, Any]:
        values = {}
        for key, spec in task.inputs.parameters.items():
            if spec.HasField("component_input_parameter"):
                values[key] = self.parameters[spec.component_input_parameter]
            elif spec.runtime_value.HasField("constant_value"):
                values[key] = python_value(spec.runtime_value.constant_value)
            elif spec.runtime_value.HasField("constant"):
                values[key] = python_value(spec.runtime_value.constant)
            else:
                raise SpecError(f"parameter {key!r}: only constants and pipeline parameters are supported")
        return values

    def _run_task(self, name: str, task: pb.PipelineTaskSpec, inputs: dict[str, list[Artifact]]
                  ) -> tuple[str, dict[str, list[Artifact]]]:
        component = self.job.spec.components[task.component_ref.name]
        executor = self.job.deployment.executors[component.executor_label]
        kind = executor.WhichOneof("spec")
        if kind == "resolver":
            return SUCCEEDED, self._resolve(executor.resolver, inputs)
        if kind == "importer":
            return SUCCEEDED, self._import(name, component, executor.importer)
        if kind != "container":
            raise SpecError(f"task {name}: executor kind {kind!r} is not supported")
        return self._run_container(name, task, component, executor.container, inputs)

    def _resolve(self, resolver: pb.PipelineDeploymentConfig.ResolverSpec, inputs: dict[str, list[Artifact]]
                 ) -> dict[str, list[Artifact]]:
        outputs = {}
        for key, query in resolver.output_artifact_queries.items():
            text, resolvable = query.filter, True

            def fill(match: re.Match[str]) -> str:
                nonlocal resolvable
                found = inputs.get(match.group(1), [])
                if not found or match.group(2) not in found[0].metadata:
                    resolvable = False  # nothing to resolve against: no output
                    return ""
                return str(found[0].metadata[match.group(2)])

            text = re.sub(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}", fill, text)
            if "{{$" in text:
                raise SpecError(f"resolver filter {query.filter!r}: unsupported placeholder")
            outputs[key] = self.store.query(text)[:1] if resolvable else []
        return outputs

    def _import(self, name: str, component: pb.ComponentSpec, importer: pb.PipelineDeploymentConfig.ImporterSpec
                ) -> dict[str, list[Artifact]]:
        uri_value = importer.artifact_uri
        uri = (self.parameters[uri_value.runtime_parameter] if uri_value.HasField("runtime_parameter")
               else python_value(uri_value.constant_value if uri_value.HasField("constant_value")
                                 else uri_value.constant))
        [key] = component.output_definitions.artifacts.keys()
        title = schema_title(importer.type_schema)
        if not importer.reimport:
            for previous in self.store.artifacts:
                if previous.uri == uri and previous.schema_title == title:
                    return {key: [previous]}
        artifact = Artifact(f"{self.run_id}/{name}/{key}", title, json_format.MessageToDict(importer.type_schema),
                            str(uri), json_format.MessageToDict(importer.metadata))
        self.store.add(artifact)
        return {key: [artifact]}

    def _run_container(self, name: str, task: pb.PipelineTaskSpec, component: pb.ComponentSpec,
                       container: pb.PipelineDeploymentConfig.PipelineContainerSpec,
                       inputs: dict[str, list[Artifact]]) -> tuple[str, dict[str, list[Artifact]]]:
        task_dir = os.path.join(self.job.pipeline_root, self.run_id, name)
        output_file = os.path.join(task_dir, "executor_output.json")
        outputs = {key: [Artifact(f"{self.run_id}/{name}/{key}", schema_title(definition.artifact_type),
                                  json_format.MessageToDict(definition.artifact_type),
                                  os.path.join(task_dir, key), {})]
                   for key, definition in component.output_definitions.artifacts.items()}
        parameters = self._parameter_values(task)
        os.makedirs(task_dir, exist_ok=True)
        if container.HasField("lifecycle") and container.lifecycle.HasField("pre_cache_check"):
            check = container.lifecycle.pre_cache_check
            self._execute(name, "driver", [*check.command, *check.args],
                          self._executor_input(parameters, inputs, outputs, output_file), task_dir)
            parameters, outputs = self._apply_driver_output(output_file, parameters, outputs)
        cache_key = self._cache_key(container, parameters, inputs)
        if task.caching_options.enable_cache and cache_key in self.store.executions:
            cached = {key: [self.store.by_name(n) for n in names]
                      for key, names in self.store.executions[cache_key].items()}
            if all(a is not None and os.path.exists(a.uri) for found in cached.values() for a in found):
                return CACHED, cached  # type: ignore[return-value]
        for found in outputs.values():
            for artifact in found:
                is_file = artifact.schema_title in VALUE_ARTIFACT_TITLES
                # A bucket has no folders to create; a disk does.
                os.makedirs(os.path.dirname(artifact.uri) if is_file else artifact.uri, exist_ok=True)
        self._execute(name, "executor", [*container.command, *container.args],
                      self._executor_input(parameters, inputs, outputs, output_file), task_dir)
        outputs = self._read_executor_output(output_file, outputs)
        for found in outputs.values():
            for artifact in found:
                self.store.add(artifact)
        self.store.executions[cache_key] = {key: [a.name for a in found] for key, found in outputs.items()}
        return SUCCEEDED, outputs

    @staticmethod
    def _executor_input(parameters: dict[str, Any], inputs: dict[str, list[Artifact]],
                        outputs: dict[str, list[Artifact]], output_file: str) -> pb.ExecutorInput:
        executor_input = pb.ExecutorInput()
        for key, value in parameters.items():
            executor_input.inputs.parameters[key].CopyFrom(spec_value(value))
            json_format.ParseDict(value, executor_input.inputs.parameter_values[key])
        for key, found in inputs.items():
            if found:
                executor_input.inputs.artifacts[key].artifacts.extend(a.runtime_artifact() for a in found)
        for key, found in outputs.items():
            executor_input.outputs.artifacts[key].artifacts.extend(a.runtime_artifact() for a in found)
        executor_input.outputs.output_file = output_file
        return executor_input

    @staticmethod
    def _apply_driver_output(output_file: str, parameters: dict[str, Any], outputs: dict[str, list[Artifact]]
                             ) -> tuple[dict[str, Any], dict[str, list[Artifact]]]:
        """The driver's updated parameters (span, version, fingerprint, resolved input_config) and output-artifact
        metadata, as the backend applies them before the cache check. The file stays for the executor, which reads
        it too (TFX's entrypoint merges its parameters)."""
        driver_output = read_executor_output(output_file)
        updated = {**{k: python_value(v) for k, v in driver_output.parameter_values.items()},
                   **{k: python_value(v) for k, v in driver_output.parameters.items()}}
        # A protobuf Value has numbers only as doubles: span and version are integers.
        parameters = {**parameters, **{k: int(v) if isinstance(v, float) and v.is_integer() else v
                                       for k, v in updated.items()}}
        for key, artifacts in driver_output.artifacts.items():
            for artifact, updated in zip(outputs.get(key, []), artifacts.artifacts):
                artifact.metadata.update(json_format.MessageToDict(updated.metadata))
        return parameters, outputs

    @staticmethod
    def _read_executor_output(output_file: str, outputs: dict[str, list[Artifact]]) -> dict[str, list[Artifact]]:
        """The output artifacts with the metadata the executor recorded (ExecutorOutput: split names, blessed,
        custom properties), as the backend records them."""
        if not os.path.exists(output_file):
            return outputs
        executor_output = read_executor_output(output_file)
        for key, artifacts in executor_output.artifacts.items():
            for artifact, written in zip(outputs.get(key, []), artifacts.artifacts):
                artifact.metadata.update(json_format.MessageToDict(written.metadata))
                artifact.uri = written.uri or artifact.uri
        return outputs

    def _cache_key(self, container: pb.PipelineDeploymentConfig.PipelineContainerSpec, parameters: dict[str, Any],
                   inputs: dict[str, list[Artifact]]) -> str:
        body = {"image": container.image, "command": list(container.command), "args": list(container.args),
                "parameters": parameters, "inputs": {k: [a.name for a in v] for k, v in sorted(inputs.items())}}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def _execute(self, name: str, role: str, argv: list[str], executor_input: pb.ExecutorInput, task_dir: str
                 ) -> None:
        """Runs one command of a task with `{{$}}` filled; its output goes to `<task dir>/<role>.log`.

        Raises:
            SpecError: another placeholder, or a non-zero exit (with the log's tail and path).
        """
        serialized = json_format.MessageToJson(executor_input, sort_keys=True)
        command = [serialized if arg == EXECUTOR_INPUT_PLACEHOLDER else arg for arg in argv]
        leftover = [arg for arg in command if arg is not serialized and "{{$" in arg]
        if leftover:
            raise SpecError(f"task {name}: unsupported placeholder(s) {leftover}")
        log_path = os.path.join(task_dir, f"{role}.log")
        self.log(f"[{name}] {role}: {' '.join(command[:3])} ...")
        with open(log_path, "w") as log_file:
            process = subprocess.run(command, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
                                     cwd=task_dir, check=False)
        if process.returncode != 0:
            with open(log_path) as f:
                tail = "".join(f.readlines()[-30:])
            raise SpecError(f"task {name}: the {role} exited with {process.returncode}; log {log_path}:\n{tail}")


def parse_parameter(text: str) -> tuple[str, Any]:
    """NAME=VALUE as (name, int / float / str value).

    Raises:
        argparse.ArgumentTypeError: no "=".
    """
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--parameter {text!r}: expected NAME=VALUE")
    for cast in (int, float):
        try:
            return name, cast(value)
        except ValueError:
            pass
    return name, value


def main(argv: list[str] | None = None) -> RunResult:
    """The command line: run a compiled job once, print each task's state."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", help="the compiled PipelineJob JSON (python -m kubeflow.compile --output ...)")
    parser.add_argument("--parameter", action="append", type=parse_parameter, default=[],
                        help="NAME=VALUE of a pipeline parameter (repeatable)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = SpecRunner(load_job(args.job), dict(args.parameter)).run()
    except SpecError as error:
        raise SystemExit(str(error)) from None
    print(json.dumps(result.states, indent=1))
    return result


if __name__ == "__main__":
    main()
