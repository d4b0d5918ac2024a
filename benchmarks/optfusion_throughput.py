"""OptFusion speed at Criteo dimensions: the pipeline's search step vs a bare train step, Hard retrain, serving.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.optfusion_throughput                  # float32 and bfloat16
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.optfusion_throughput --precisions float32 --steps 8 --no-doc
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.optfusion_throughput --l2-table 1000000   # + dense vs lazy L2
    make benchmark-optfusion

Model: the full search supernet at Criteo dimensions (39 fields x 40 = D 1560; all 4 operations on all 7 fusion
nodes, 33 straight-through gates; about 241M non-embedding weights), batch 256.

1. Data: a Transform output (39 fields) of a generated Criteo-layout log, made once by the pipeline itself
   (local_runner's config, create_pipeline, a partial run up to Transform) under --work-dir and reused.
2. Search. For each precision (float32, mixed_bfloat16) one child process measures, in this order, bare (fused
   Adam), bare (Keras Adam), search, bare (fused Adam); each phase builds its own model and frees it; the two
   fused bare runs bracket the search against drifts in machine load; each phase's peak RSS is sampled:
   - bare: the same supernet, one optimiser over every variable, a tf.function train step on one constant
     batch of synthetic ids (no input pipeline, no L2, no metrics);
   - search: `trainer.optfusion.training.search`, the code the OptFusionSearch executor runs (tfxio input pipeline
     from the transformed TFRecords, three Adam groups from one gradient, dense coupled L2 on every weight and
     the whole table, folded into the XLA-compiled Adam update, progress output, validation each epoch,
     checkpoint of the best epoch), 2 epochs of --steps steps each; reported: the 2nd epoch's training
     examples/s (the 1st includes tracing; validation is not counted).
   Then, per precision, where the coupled L2 costs time (`child_l2_cost`; skipped with --no-l2-cost): one
   supernet and GroupedAdam, the search's TrainStep on in-memory ids and the optimiser update alone, without
   L2, with the L2 as a separate pass (the previous path) and folded (the current one), interleaved; wall, CPU
   and system time and page faults per step.
3. Hard retrain: `trainer.optfusion.training.retrain` on one fixed architecture (HARD_OPS, all connections), from
   scratch, per precision.
4. Serving: the float32 supernet and Hard model as exported by the steps, each loaded in a fresh process: size
   on disk, batch-1 and batch-256 latency through the raw-tf.Example serving signature.
5. With --l2-table N: the search's TrainStep on synthetic in-memory ids with an N-row table, L2 "dense" (the
   reference: the whole table every step) vs "lazy" (rows in the batch), float32.

Output: tables on stdout and the section "## OptFusion speed" of docs/benchmarks.md (replaced if present; other
sections are left alone). Targets (issue 4): search >= 90 % of the bare step, float32 and bfloat16; Hard retrain
>= 800 examples/s.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import report  # noqa: E402 - after the path and environment set-up
from transform.layouts import criteo  # noqa: E402

SECTION_HEADING = "## OptFusion speed"
DEFAULT_DOC = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
DEFAULT_WORK_DIR = os.path.join(REPO_ROOT, "tfx_output", "bench_optfusion")
FIELDS, EMBEDDING_DIM, BATCH = 39, 40, 256
TARGET_RATIO = 0.9
# The reference's Criteo search settings (algorithms.md §1.8).
_CRITEO = criteo.REFERENCE.optfusion
LR, ARCH_LR, L2 = _CRITEO.search_lr, _CRITEO.arch_lr, _CRITEO.search_l2
RETRAIN_TARGET = 800.0  # examples/s of Hard retrain (issue 4), set on machines with REFERENCE_GFLOPS
# float32 GFLOP/s of one 256x1560 . 1560x1560 matmul on the machines the targets were set on (algorithms.md).
REFERENCE_GFLOPS = 420.0
# Hard retrain's fixed architecture: the operation of cross_1, deep_1, cross_2, deep_2, cross_3, deep_3, output.
HARD_OPS = ("attention", "concat", "product", "sum", "sum", "product", "concat")


# --- data -------------------------------------------------------------------------------------------------------

def prepare_data(work_dir: str, rows: int) -> dict[str, Any]:
    """Runs the pipeline up to Transform on generated data (cached in work_dir); returns the artifacts' uris."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    import local_runner
    from pipeline import lineage
    from pipeline.pipeline import create_pipeline

    config = local_runner.build_config(local_runner.parse_args(
        ["--output-dir", work_dir, "--rows", str(rows), "--preset", "test", "--pipeline-name", "optfusion_bench"]))
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config),
                                           run_options=tfx_pipeline.RunOptions(to_nodes=["Transform"]))
    store = lineage.open_store(config.metadata_path)
    examples = lineage.latest_output(store, "Transform", "transformed_examples")
    graph = lineage.latest_output(store, "Transform", "transform_graph")
    return {"examples_uri": examples.uri, "split_names": examples.properties["split_names"].string_value,
            "transform_uri": graph.uri}


def prepared_raw_file(work_dir: str, rows: int = 1000) -> str:
    """Raw Criteo-layout rows (not the training ones) for the serving requests."""
    from data_gen import synthetic_criteo
    return synthetic_criteo.generate(os.path.join(work_dir, "data", f"requests_{rows}.tsv"), rows, seed=7)


def _data_source(data: dict[str, Any]):
    from tfx.types import standard_artifacts

    from components.optfusion import executor
    examples = standard_artifacts.Examples()
    examples.uri = data["examples_uri"]
    examples.split_names = data["split_names"]
    graph = standard_artifacts.TransformGraph()
    graph.uri = data["transform_uri"]
    return executor.data_source({"examples": [examples], "transform_graph": [graph]},
                                {"train_args": json.dumps({"splits": ["train"]}),
                                 "eval_args": json.dumps({"splits": ["eval"]})})


def _table_size(data: dict[str, Any]) -> int:
    import tensorflow_transform as tft

    from trainer import data as trainer_data
    fields, table = trainer_data.id_space(tft.TFTransformOutput(data["transform_uri"]))
    if fields != FIELDS:
        raise RuntimeError(f"expected {FIELDS} fields, the Transform output has {fields}")
    return table


# --- children ---------------------------------------------------------------------------------------------------

class RssSampler:
    """Peak RSS of this process between mark() calls, sampled every 0.1 s by a thread (psutil)."""

    def __init__(self) -> None:
        import threading

        import psutil
        self._process = psutil.Process()
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def mark(self) -> float:
        """The peak RSS (MB) since the previous mark; starts a new interval at the current RSS."""
        peak = max(self._peak, self._process.memory_info().rss) / 2 ** 20
        self._peak = self._process.memory_info().rss
        return peak

    def stop(self) -> None:
        self._stop.set()


def child_bare(precision: str, table_size: int, steps: int, optimizer_kind: str = "fused") -> dict[str, Any]:
    """A plain tf-keras train step of the supernet on a constant batch of synthetic ids.

    optimizer_kind: "fused" (one `trainer.optfusion.optim.TorchAdam`, the search step's Adam kernel: the bare step
    differs from the search step only in what the pipeline adds) or "keras" (the stock Keras Adam).
    """
    import gc

    import numpy as np
    import tensorflow as tf

    from trainer.optfusion import optim, training
    keras = tf.keras
    keras.utils.set_random_seed(0)
    with optim.precision_policy(precision):
        model, _ = training.build_supernet(training.SupernetConfig(table_size, FIELDS, EMBEDDING_DIM))
    optimizer = optim.TorchAdam(LR) if optimizer_kind == "fused" else keras.optimizers.Adam(LR, epsilon=1e-8)
    rng = np.random.default_rng(0)
    ids = tf.constant(rng.integers(0, table_size, (BATCH, FIELDS)), tf.int64)
    labels = tf.constant(rng.integers(0, 2, (BATCH, 1)), tf.float32)

    @tf.function
    def step(ids, labels):
        with tf.GradientTape() as tape:
            logits = model({"feature": ids}, training=True)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    for _ in range(2):
        step(ids, labels).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(ids, labels)
    loss.numpy()
    seconds = time.perf_counter() - start
    result = {"examples_per_second": steps * BATCH / seconds, "seconds": seconds, "steps": steps,
              "parameters": int(model.count_params()), "optimizer": optimizer_kind}
    step = model = optimizer = None  # freed before the collection below
    gc.collect()
    return result


def child_pair(precision: str, data: dict[str, Any], table_size: int, steps: int,
               supernet_export_dir: str | None = None) -> dict[str, Any]:
    """In one process: bare (fused Adam), bare (Keras Adam), search, bare (fused Adam), models freed in between,
    with each phase's peak RSS. The search/bare ratio is against the two fused-Adam bare runs around the search."""
    sampler = RssSampler()
    sampler.mark()
    phases: list[tuple[str, dict[str, Any]]] = []
    for name in ("fused", "keras", "search", "fused"):
        if name == "search":
            result = child_search(precision, data, steps, supernet_export_dir)
        else:
            result = child_bare(precision, table_size, steps, name)
        result["peak_rss_mb"] = sampler.mark()
        phases.append((name, result))
    sampler.stop()
    return {"bare": [r for name, r in phases if name == "fused"], "bare_keras": phases[1][1], "search": phases[2][1]}


def child_search(precision: str, data: dict[str, Any], steps: int, export_dir: str | None = None) -> dict[str, Any]:
    """The pipeline's search step (trainer.optfusion.training.search), 2 epochs of `steps` steps; exports the
    supernet for serving to export_dir if given."""
    from trainer.optfusion import training
    from trainer.optfusion.settings import RunSettings, SearchSettings
    settings = SearchSettings(embedding_dim=EMBEDDING_DIM, lr_emb=LR, lr_nn=LR, arch_lr=ARCH_LR, l2_emb=L2,
                              l2_nn=L2, export_supernet=export_dir is not None,
                              run=RunSettings(batch_size=BATCH, epochs=2, early_stopping_patience=2,
                                              max_steps_per_epoch=steps, precision=precision, l2_mode="dense"))
    with tempfile.TemporaryDirectory() as tmp:
        result = training.search(_data_source(data), settings, os.path.join(tmp, "architecture"),
                                 os.path.join(tmp, "model_run"), export_dir)
    epoch = result["history"][-1]
    return {"examples_per_second": epoch["examples_per_second"], "seconds": epoch["seconds"],
            "steps": epoch["examples"] // BATCH, "first_epoch_seconds": result["history"][0]["seconds"],
            "parameters": result["supernet_parameters"]}


def hard_architecture():
    """The fixed architecture Hard retrain is measured on: every candidate connection kept; ops per node as
    HARD_OPS (17·D² multiply-adds per example beyond the cross layers: 3 deep layers, attention over 2 inputs,
    concat of 2 and of 8 inputs)."""
    from trainer.layers.fusion_ops import OPERATIONS
    from trainer.optfusion import network
    return network.Architecture(connections=network.candidate_mask().tolist(),
                                op_logits=[[float(op == name) for name in OPERATIONS] for op in HARD_OPS],
                                ops=list(HARD_OPS))


def child_retrain(precision: str, data: dict[str, Any], table_size: int, steps: int,
                  export_dir: str | None = None) -> dict[str, Any]:
    """The pipeline's Hard retrain step (trainer.optfusion.training.retrain) on `hard_architecture()`, from scratch,
    2 epochs of `steps` steps; exports the model for serving to export_dir if given."""
    from trainer.optfusion import training
    from trainer.optfusion.settings import RetrainSettings, RunSettings
    sampler = RssSampler()
    sampler.mark()
    settings = RetrainSettings(mode="hard", inherit_weights=False, lr_emb=LR, lr_nn=LR, l2_emb=L2, l2_nn=L2,
                               run=RunSettings(batch_size=BATCH, epochs=2, early_stopping_patience=2,
                                               max_steps_per_epoch=steps, precision=precision, l2_mode="dense"))
    with tempfile.TemporaryDirectory() as tmp:
        architecture_dir = os.path.join(tmp, "architecture")
        training.write_architecture_files(
            architecture_dir, hard_architecture(),
            training.SupernetConfig(table_size=table_size, num_fields=FIELDS, embedding_dim=EMBEDDING_DIM))
        result = training.retrain(_data_source(data), settings, architecture_dir,
                                  export_dir or os.path.join(tmp, "serving"), os.path.join(tmp, "model_run"))
    epoch = result["history"][-1]
    return {"examples_per_second": epoch["examples_per_second"], "seconds": epoch["seconds"],
            "steps": epoch["examples"] // BATCH, "parameters": result["parameters"], "peak_rss_mb": sampler.mark()}


def child_serving(model_dir: str, raw_file: str, calls: int) -> dict[str, Any]:
    """A SavedModel loaded in this fresh process: size on disk, load time, latency of batch-1 requests (one
    serialized raw tf.Example each, through the serving signature) and of batch-256 requests."""
    import numpy as np
    import tensorflow as tf

    from serving import batch_score
    size = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(model_dir) for name in names)
    start = time.perf_counter()
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    load_seconds = time.perf_counter() - start
    serialized, _ = batch_score.read_raw_examples(raw_file, "criteo")

    def latencies(batch: int, count: int) -> list[float]:
        times = []
        for i in range(count + 10):  # the first 10 calls warm up
            examples = tf.constant([serialized[(i * batch + k) % len(serialized)] for k in range(batch)])
            begin = time.perf_counter()
            serve(examples=examples)["probability"].numpy()
            times.append(time.perf_counter() - begin)
        return times[10:]

    one = latencies(1, calls)
    many = latencies(BATCH, max(calls // 10, 5))
    return {"size_mb": size / 2 ** 20, "load_seconds": load_seconds,
            "batch1_median_ms": float(np.median(one)) * 1e3, "batch1_p95_ms": float(np.percentile(one, 95)) * 1e3,
            "batch256_median_ms": float(np.median(many)) * 1e3}


def child_probe() -> dict[str, Any]:
    """GFLOP/s of one [256, 1560] x [1560, 1560] matmul (the supernet's typical product), float32 and bfloat16:
    this machine's compute rate, against which the throughputs are put in proportion."""
    import tensorflow as tf
    result = {}
    for dtype in (tf.float32, tf.bfloat16):
        x = tf.cast(tf.random.normal([BATCH, FIELDS * EMBEDDING_DIM]), dtype)
        w = tf.cast(tf.random.normal([FIELDS * EMBEDDING_DIM] * 2), dtype)
        matmul = tf.function(lambda: tf.matmul(x, w))  # noqa: B023 - used only within this iteration
        for _ in range(5):
            matmul()
        calls = 100
        start = time.perf_counter()
        for _ in range(calls):
            out = matmul()
        out.numpy()
        seconds = (time.perf_counter() - start) / calls
        result[f"{dtype.name}_gflops"] = 2 * BATCH * (FIELDS * EMBEDDING_DIM) ** 2 / seconds / 1e9
    return result


def ceiling(gflops: float, parameters: int, table_size: int) -> float:
    """Compute-bound examples/s: every non-embedding weight is one multiply-add forward and two backward."""
    return gflops * 1e9 / (6.0 * (parameters - table_size * EMBEDDING_DIM))


def child_l2(l2_mode: str, table_size: int, steps: int) -> dict[str, Any]:
    """The search TrainStep on in-memory synthetic ids with a large table: cost of dense vs lazy coupled L2."""
    import numpy as np
    import tensorflow as tf

    from trainer.optfusion import network, optim, training
    tf.keras.utils.set_random_seed(0)
    model, _ = training.build_supernet(training.SupernetConfig(table_size, FIELDS, EMBEDDING_DIM))
    settings = {"emb": optim.GroupSettings(LR, L2), "nn": optim.GroupSettings(LR, L2),
                "arch": optim.GroupSettings(ARCH_LR)}
    step = optim.make_train_step(model, network.variable_groups(model), settings, l2_mode=l2_mode)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, table_size, ((steps + 2) * BATCH, FIELDS)).astype(np.int64)
    labels = rng.integers(0, 2, ((steps + 2) * BATCH, 1)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(({"feature": ids}, labels)).batch(BATCH)
    iterator = iter(data)
    step.run(iterator, 2)  # warm-up (tracing)
    start = time.perf_counter()
    done, _, examples = step.run(iterator, steps)
    seconds = time.perf_counter() - start
    return {"examples_per_second": examples / seconds, "seconds": seconds, "steps": done}


L2_VARIANTS = ("no_l2", "separate", "folded")


def child_l2_cost(precision: str, table_size: int, steps: int, rounds: int = 2) -> dict[str, Any]:
    """Where the search step's coupled L2 costs time, at Criteo dimensions, in one process.

    One supernet and one GroupedAdam (the search's three groups and Criteo settings); three variants of the
    optimiser step: "no_l2" (λ = 0: the fused ResourceApplyAdam kernel only), "separate" (`fold_l2=False`: λ·w
    added to each gradient by `coupled_l2`, a pass before the kernel's, the previous path) and "folded" (the
    search's path: λ·w inside the XLA-fused update). Each variant is traced into its own functions (the settings
    are read at trace time) and measured as
    - step: the search's TrainStep on in-memory synthetic ids (no input pipeline), examples/s;
    - update: the optimiser step alone on fresh gradients of every variable (written each call, as a backward
      pass writes them), minus the cost of writing those gradients ("grads": the same function without the step).
    The variants run interleaved, `rounds` times; per phase the wall time, the process's CPU and system time and
    its minor page faults per step (getrusage), the cost of first touching freshly allocated memory.
    """
    import resource

    import numpy as np
    import tensorflow as tf

    from trainer.optfusion import network, optim, training
    tf.keras.utils.set_random_seed(0)
    with optim.precision_policy(precision):
        model, _ = training.build_supernet(training.SupernetConfig(table_size, FIELDS, EMBEDDING_DIM))
    groups = network.variable_groups(model)
    with_l2 = {"emb": optim.GroupSettings(LR, L2), "nn": optim.GroupSettings(LR, L2),
               "arch": optim.GroupSettings(ARCH_LR)}
    without_l2 = {name: optim.GroupSettings(s.learning_rate) for name, s in with_l2.items()}
    optimizer = optim.GroupedAdam(groups, with_l2, l2_mode="dense")
    optimizer.build()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, table_size, (64 * BATCH, FIELDS)).astype(np.int64)
    labels = rng.integers(0, 2, (64 * BATCH, 1)).astype(np.float32)
    iterator = iter(tf.data.Dataset.from_tensor_slices(({"feature": ids}, labels)).batch(BATCH).repeat())
    counter = tf.Variable(0.0)

    def make_update(apply: bool):
        @tf.function
        def update():
            value = counter.assign_add(1.0) * 1e-12 + 1e-6  # not a constant: the fills run every call
            gradients = [tf.fill(tf.shape(v), value) for v in optimizer.variables]
            if apply:
                optimizer.step(gradients)
                return tf.constant(0.0)
            return tf.add_n([tf.reduce_max(g) for g in gradients])  # keeps the fills
        return update

    phases: dict[str, Any] = {}
    for name in L2_VARIANTS:  # trace (and XLA-compile) every variant before any measurement
        optimizer.settings = without_l2 if name == "no_l2" else with_l2
        optimizer.fold_l2 = name == "folded"
        step = optim.TrainStep(model, optimizer)
        update = make_update(True)
        step.run(iterator, 2)
        update()
        phases[name] = (step, update)
    grads_only = make_update(False)
    grads_only()
    optimizer.settings, optimizer.fold_l2 = with_l2, True

    def measure(run, calls: int) -> dict[str, float]:
        before, cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
        run(calls)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        return {"ms": seconds / calls * 1e3, "cpu_ms": (time.process_time() - cpu) / calls * 1e3,
                "sys_ms": (after.ru_stime - before.ru_stime) / calls * 1e3,
                "minor_faults": (after.ru_minflt - before.ru_minflt) / calls}

    def calls_of(function):
        def run(calls: int) -> None:
            for _ in range(calls):
                out = function()
            np.asarray(out)
        return run

    runs: dict[str, dict[str, list]] = {name: {"step": [], "update": []} for name in L2_VARIANTS}
    runs["grads"] = {"update": []}
    for _ in range(rounds):
        for name, (step, update) in phases.items():
            runs[name]["step"].append(measure(lambda calls, step=step: step.run(iterator, calls), steps))
            runs[name]["update"].append(measure(calls_of(update), steps))
        runs["grads"]["update"].append(measure(calls_of(grads_only), steps))
    page_mb = resource.getpagesize() / 2 ** 20
    for parts in runs.values():
        for entries in parts.values():
            for entry in entries:
                entry["fault_mb"] = entry.pop("minor_faults") * page_mb
    for name in L2_VARIANTS:
        for entry in runs[name]["step"]:
            entry["examples_per_second"] = BATCH * 1e3 / entry["ms"]
    nn = sum(int(np.prod(v.shape)) for v in groups["nn"])
    return {"runs": runs, "steps": steps, "rounds": rounds, "nn_weights": nn,
            "table_weights": table_size * EMBEDDING_DIM, "xla_loops": xla_loops([1560, 1560])}


def xla_loops(shape: list[int]) -> dict[str, int]:
    """How XLA compiles the folded update (`trainer.optfusion.optim._xla_adam_with_coupled_l2`) for a float32 variable
    of `shape` on this machine, from its optimized HLO: the element-wise loops over the variable and the passes over
    memory of the variable's size they make (each loop's variable-sized operands read and its output written)."""
    import tensorflow as tf

    from trainer.optfusion import optim
    variables = [tf.Variable(tf.zeros(shape)) for _ in range(3)]
    scalar = tf.constant(0.5)
    hlo = optim._xla_adam_with_coupled_l2.experimental_get_compiler_ir(
        var=variables[0].handle, m=variables[1].handle, v=variables[2].handle, grad=tf.zeros(shape), l2=scalar,
        beta1_power=scalar, beta2_power=scalar, lr=scalar, beta1=scalar, beta2=scalar,
        epsilon=scalar)(stage="optimized_hlo")
    array = f"f32[{','.join(map(str, shape))}]"
    entry = hlo[hlo.index("ENTRY"):]
    # A loop: a fusion with a variable-sized result, or a call of one split over threads (%parallel_fusion).
    loops = [line for line in entry.splitlines() if "=" in line
             and line.split("=", 1)[1].strip().startswith(array) and (" fusion(" in line or "parallel_fusion" in line)]
    return {"loops": len(loops), "passes": sum(line.count(array) for line in loops),
            "multithreaded": sum("parallel_fusion" in line for line in loops)}


def run_child(args: argparse.Namespace) -> None:
    # psutil, not getrusage: Linux carries ru_maxrss over fork and exec, so a child would report the parent's peak.
    sampler = RssSampler()
    data = json.loads(args.data) if args.data else None
    if args.child == "pair":
        result = child_pair(args.precision, data, args.table_size, args.steps, args.export_dir)
    elif args.child == "retrain":
        result = child_retrain(args.precision, data, args.table_size, args.steps, args.export_dir)
    elif args.child == "probe":
        result = child_probe()
    elif args.child == "serving":
        result = child_serving(args.export_dir, args.raw_file, args.steps)
    elif args.child == "l2cost":
        result = child_l2_cost(args.precision, args.table_size, args.steps)
    else:
        result = child_l2(args.child.split("-", 1)[1], args.table_size, args.steps)
    result.setdefault("peak_rss_mb", sampler.mark())
    sampler.stop()
    with open(args.out, "w") as f:
        json.dump(result, f)


def launch(kind: str, out_dir: str, **kwargs: Any) -> dict[str, Any]:
    out = os.path.join(out_dir, f"{kind}_{kwargs.get('precision', '')}_{time.time_ns()}.json")
    command = [sys.executable, "-m", "benchmarks.optfusion_throughput", "--child", kind, "--out", out]
    for key, value in kwargs.items():
        if value is not None:  # an absent flag, not the string "null"
            command += [f"--{key.replace('_', '-')}", value if isinstance(value, str) else json.dumps(value)]
    print(f"[{datetime.datetime.now():%H:%M:%S}] {kind} {kwargs.get('precision', '')} ...", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    with open(out) as f:
        result = json.load(f)
    result["process_seconds"] = time.perf_counter() - started
    if "runs" in result:
        steps = {name: sum(e["ms"] for e in result["runs"][name]["step"]) / result["rounds"] for name in L2_VARIANTS}
        print("    step " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in steps.items()), flush=True)
    elif "bare" in result:
        print(f"    bare {[round(b['examples_per_second'], 1) for b in result['bare']]}, search "
              f"{result['search']['examples_per_second']:.1f} examples/s", flush=True)
    elif "examples_per_second" in result:
        print(f"    {result['examples_per_second']:.1f} examples/s, peak RSS {result['peak_rss_mb']:.0f} MB",
              flush=True)
    else:
        print(f"    {json.dumps({k: round(v, 2) for k, v in result.items()})}", flush=True)
    return result


# --- report -----------------------------------------------------------------------------------------------------

def render(results: dict[str, Any], args: argparse.Namespace, loads: list[float]) -> str:
    from benchmarks.pipeline_scaling import machine_description, versions
    probe = results["probe"]

    def rate(precision: str) -> float:
        return probe["bfloat16_gflops" if "bfloat16" in precision else "float32_gflops"]

    lines = [SECTION_HEADING, "",
             f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
             f"- Machine: {machine_description()}; 1-minute load average during the runs "
             f"{min(loads):.1f}-{max(loads):.1f} (other work on the machine slows every number)",
             f"- Software: {versions()}",
             f"- Command: `python -m benchmarks.optfusion_throughput {' '.join(sys.argv[1:])}`".rstrip(),
             f"- Model: OptFusion search supernet, {FIELDS} fields x {EMBEDDING_DIM} (D = {FIELDS * EMBEDDING_DIM}), "
             f"all operations on all nodes, {results['table_size']:,}-id table (Transform of {args.rows:,} generated "
             f"Criteo-layout rows), batch {BATCH}; Criteo search settings (lr {LR}, arch lr {ARCH_LR}, dense "
             f"coupled L2 {L2}, folded into the XLA-compiled Adam update).",
             "- bare: a tf.function train step of the same supernet on one constant batch of synthetic ids (no input "
             "pipeline, no L2, one optimiser), with the search step's fused Adam "
             "(`trainer.optfusion.optim.TorchAdam`) or "
             "with the stock Keras Adam. search: `trainer.optfusion.training.search` as the OptFusionSearch executor "
             "runs it (tfxio input pipeline from the transformed TFRecords, three Adam groups from one gradient, "
             "dense L2 on every weight and the whole table, folded into the Adam update, progress output, "
             "validation each epoch), the 2nd epoch's training "
             f"examples/s ({args.steps} steps). One process per precision runs bare (fused), bare (Keras), search, "
             "bare (fused), each with its own model, freed after it; the ratio is against the mean of the two "
             "fused bare runs around the search; peak RSS of each phase sampled every 0.1 s (psutil), in a process "
             "that ran the phases before it (memory a freed model leaves to the allocator counts in the next phase's "
             "peak; the search's own peak, measured in a fresh process: \"Search memory\" below).",
             "",
             f"- Compute rate of this machine, measured in the same run: one [256, 1560] x [1560, 1560] matmul at "
             f"{probe['float32_gflops']:.0f} GFLOP/s in float32 and {probe['bfloat16_gflops']:.0f} in bfloat16 (the "
             f"machines algorithms.md's targets were set on: {REFERENCE_GFLOPS:.0f} and about 740). Ceiling: "
             "examples/s if every non-embedding weight cost one multiply-add forward and two backward at that rate "
             "(a rough bound: the model's wider matmuls run faster than the probe, so a ratio can pass 100%).",
             "",
             "| precision | bare, fused Adam (runs) | bare, Keras Adam | search | search / bare (fused) | target "
             "| search / ceiling | bare peak RSS MB | search peak RSS MB |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for precision, r in results["precisions"].items():
        bare = [b["examples_per_second"] for b in r["bare"]]
        mean_bare = sum(bare) / len(bare)
        ratio = r["search"]["examples_per_second"] / mean_bare
        verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        search_ceiling = ceiling(rate(precision), r["search"]["parameters"], results["table_size"])
        lines.append(f"| {precision} | {mean_bare:.1f} ({', '.join(f'{b:.1f}' for b in bare)}) | "
                     f"{r['bare_keras']['examples_per_second']:.1f} | {r['search']['examples_per_second']:.1f} | "
                     f"{ratio:.2f} | {verdict} (>= {TARGET_RATIO:.2f}) | "
                     f"{r['search']['examples_per_second'] / search_ceiling:.0%} | "
                     f"{max(b['peak_rss_mb'] for b in r['bare']):,.0f} | {r['search']['peak_rss_mb']:,.0f} |")
    if results.get("l2_cost"):
        lines += [""] + render_l2_cost(results["l2_cost"])
    if results["retrain"]:
        scaled_target = RETRAIN_TARGET * probe["float32_gflops"] / REFERENCE_GFLOPS
        lines += ["", f"Hard retrain (`trainer.optfusion.training.retrain` as the OptFusionRetrain executor runs it, "
                      f"from scratch, the 2nd epoch's examples/s over {args.retrain_steps} steps of {BATCH}) on one "
                      "fixed architecture: all 33 connections kept, operations cross_1..output = "
                      f"{', '.join(HARD_OPS)}.", "",
                  f"Target: {RETRAIN_TARGET:.0f} examples/s was set on machines with {REFERENCE_GFLOPS:.0f} float32 "
                  f"GFLOP/s; scaled to this machine's measured rate it is {scaled_target:.0f}.", "",
                  "| precision | examples/s | target (absolute) | target (scaled to this machine) | retrain / ceiling "
                  "| parameters | peak RSS MB |", "|---|---:|---|---|---:|---:|---:|"]
        for precision, r in results["retrain"].items():
            speed = r["examples_per_second"]
            absolute = "PASS" if speed >= RETRAIN_TARGET else "FAIL"
            scaled = "PASS" if speed >= scaled_target else "FAIL"
            lines.append(f"| {precision} | {speed:.0f} | {absolute} (>= {RETRAIN_TARGET:.0f}) | {scaled} "
                         f"(>= {scaled_target:.0f}) | "
                         f"{speed / ceiling(rate(precision), r['parameters'], results['table_size']):.0%} | "
                         f"{r['parameters']:,} | {r['peak_rss_mb']:,.0f} |")
    if results["serving"]:
        lines += ["", "Exported SavedModels (float32; raw-tf.Example serving signature, Transform included), each "
                      f"loaded in a fresh process; latency of {args.latency_calls} batch-1 requests and of "
                      f"batch-{BATCH} "
                      "requests through `serving_default`:", "",
                  "| model | size MB | load s | batch-1 median ms | batch-1 p95 ms | batch-256 median ms | RSS MB |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, r in results["serving"].items():
            lines.append(f"| {name} | {r['size_mb']:,.0f} | {r['load_seconds']:.1f} | {r['batch1_median_ms']:.1f} | "
                         f"{r['batch1_p95_ms']:.1f} | {r['batch256_median_ms']:.0f} | {r['peak_rss_mb']:,.0f} |")
    if results["l2"]:
        lines += ["", f"Coupled L2 on a {args.l2_table:,}-row table (search TrainStep, synthetic in-memory ids, "
                      "float32, batch 256):", "", "| L2 mode | examples/s | peak RSS MB |", "|---|---:|---:|"]
        for entry in results["l2"]:
            lines.append(f"| {entry['mode']} | {entry['examples_per_second']:.1f} | {entry['peak_rss_mb']:,.0f} |")
        lines += ["", "Both modes run Adam over the whole table (PyTorch's semantics: the embedding gradient is "
                      "dense); "
                      "lazy only skips the λ·w term outside the batch."]
    lines += ["", f"Reference points (algorithms.md, measured on machines with about {REFERENCE_GFLOPS:.0f} float32 "
                  "GFLOP/s): the PyTorch reference reaches about 78 examples/s in search and 310-510 in Hard retrain "
                  "at these dimensions; a bare tf-keras step about 209 (float32) and 294 (bfloat16).", ""]
    return "\n".join(lines)


L2_LABELS = {"no_l2": "none (λ = 0): the ResourceApplyAdam kernel alone",
             "separate": "separate pass: `coupled_l2` (g + λ·w into a temporary), then the kernel (the previous "
                         "search step)",
             "folded": "folded: g + λ·w inside the XLA-compiled update (the search step now)"}


def render_l2_cost(l2_cost: dict[str, Any]) -> list[str]:
    """The table of where the coupled L2 costs time (child_l2_cost), per precision and variant."""
    first = next(iter(l2_cost.values()))
    loops = first["xla_loops"]
    lines = [f"Where the coupled L2 costs time: one process per precision, one supernet and one GroupedAdam (the "
             f"search's three groups, Criteo settings), each variant of the L2 traced into its own step; "
             f"{first['rounds']} interleaved rounds of {first['steps']} steps, means. step: the search's TrainStep "
             "on in-memory synthetic ids (no input pipeline). update: the optimiser step alone on fresh gradients "
             "of every variable, minus the cost of writing those gradients. Page faults: minor faults "
             "(getrusage) x page size, per step: memory touched for the first time (a new allocation).", "",
             "| precision | L2 | step examples/s | step ms | L2's share of the step | step page faults MB | update ms "
             "| update CPU ms | update system CPU ms | update page faults MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for precision, r in l2_cost.items():
        runs = r["runs"]

        def mean(name: str, part: str, key: str) -> float:
            return sum(e[key] for e in runs[name][part]) / len(runs[name][part])  # noqa: B023 - this iteration's

        base = mean("no_l2", "step", "ms")
        for name in L2_VARIANTS:
            step = mean(name, "step", "ms")
            share = "-" if name == "no_l2" else f"{(step - base) / step:.1%}"
            update = {key: mean(name, "update", key) - mean("grads", "update", key)
                      for key in ("ms", "cpu_ms", "sys_ms", "fault_mb")}
            lines.append(f"| {precision} | {L2_LABELS[name]} | {BATCH * 1e3 / step:.1f} | "
                         f"{step:.0f} | {share} | {mean(name, 'step', 'fault_mb'):,.0f} | {update['ms']:.0f} | "
                         f"{update['cpu_ms']:.0f} | {update['sys_ms']:.0f} | {update['fault_mb']:,.0f} |")
    lines += ["", "Writing the gradients alone (subtracted above): "
                  + "; ".join(f"{p} {sum(e['ms'] for e in r['runs']['grads']['update']) / r['rounds']:.0f} ms, "
                              f"{sum(e['fault_mb'] for e in r['runs']['grads']['update']) / r['rounds']:,.0f} MB of "
                              "page faults" for p, r in l2_cost.items())
                  + f" per step, for {first['nn_weights'] + first['table_weights']:,} weights "
                    f"({(first['nn_weights'] + first['table_weights']) * 4 / 2 ** 20:,.0f} MB in float32). "
                    f"The folded update of a [1560, 1560] variable compiles (optimized HLO, this machine) to "
                    f"{loops['loops']} element-wise loops over the variable ({loops['multithreaded']} split over "
                    f"threads) making {loops['passes']} passes of its size (XLA's CPU backend has no multi-output "
                    "fusion: "
                    "new m, new v and the new weights each get "
                    "a loop, which reads what it needs again); the kernel makes 7 in one loop (reads g, w, m, v; "
                    "writes w, m, v); the separate pass adds a multiply and an add over the variable (5 passes) and "
                    "a new temporary of its size."]
    return lines


def run_parent(args: argparse.Namespace) -> None:
    loads = [os.getloadavg()[0]]
    data = prepare_data(args.work_dir, args.rows)
    table_size = _table_size(data)
    raw_file = prepared_raw_file(args.work_dir)
    print(f"Transform output: {data['transform_uri']} ({table_size:,} ids)", flush=True)
    results: dict[str, Any] = {"table_size": table_size, "precisions": {}, "l2_cost": {}, "retrain": {},
                               "serving": {}, "l2": []}
    with tempfile.TemporaryDirectory(dir=args.work_dir) as out_dir:
        results["probe"] = launch("probe", out_dir)
        exports = {"supernet": os.path.join(out_dir, "supernet"), "hard": os.path.join(out_dir, "hard")}
        for precision in args.precisions:
            export = exports["supernet"] if precision == "float32" and args.latency_calls else None
            results["precisions"][precision] = launch("pair", out_dir, precision=precision, data=json.dumps(data),
                                                      table_size=table_size, steps=args.steps, export_dir=export)
            loads.append(os.getloadavg()[0])
        for precision in args.precisions if args.l2_cost else ():
            results["l2_cost"][precision] = launch("l2cost", out_dir, precision=precision, table_size=table_size,
                                                   steps=args.steps)
            loads.append(os.getloadavg()[0])
        for precision in args.precisions if args.retrain_steps else ():
            export = exports["hard"] if precision == "float32" and args.latency_calls else None
            results["retrain"][precision] = launch("retrain", out_dir, precision=precision, data=json.dumps(data),
                                                   table_size=table_size, steps=args.retrain_steps, export_dir=export)
            loads.append(os.getloadavg()[0])
        for name, export in exports.items():
            if os.path.exists(os.path.join(export, "saved_model.pb")):
                results["serving"][name] = launch("serving", out_dir, export_dir=export, raw_file=raw_file,
                                                  steps=args.latency_calls)
        for mode in ("dense", "lazy") if args.l2_table else ():
            results["l2"].append({"mode": mode, **launch(f"l2-{mode}", out_dir, table_size=args.l2_table,
                                                         steps=args.steps)})
            loads.append(os.getloadavg()[0])
    section = render(results, args, loads)
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)
        print(f"Wrote the section to {args.doc}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=12, help="measured search/bare training steps per run (batch 256)")
    parser.add_argument("--retrain-steps", type=int, default=60, help="measured Hard retrain steps per run")
    parser.add_argument("--latency-calls", type=int, default=200, help="batch-1 requests per served model")
    parser.add_argument("--rows", type=int, default=20_000, help="generated rows for the Transform output")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="where the (cached) Transform output lives")
    parser.add_argument("--l2-table", type=int, default=0, help="also compare dense vs lazy L2 on a table this big")
    parser.add_argument("--no-l2-cost", dest="l2_cost", action="store_false",
                        help="skip the measurement of where the coupled L2 costs time (no L2 / separate / folded)")
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--no-doc", action="store_true", help="print only, do not write docs/benchmarks.md")
    # child mode
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--table-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--export-dir", help=argparse.SUPPRESS)
    parser.add_argument("--raw-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
