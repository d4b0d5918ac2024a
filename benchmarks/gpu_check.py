"""GPU check of the OptFusion search step: same batches -> same losses on CPU and GPU, and GPU throughput.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.gpu_check                 # skips (exit 0) without a GPU
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.gpu_check --doc docs/benchmarks.md
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.gpu_check --device-b cpu  # self-test of the script on CPU only

1. Correctness. One process per device (the CPU one with CUDA_VISIBLE_DEVICES hidden) builds the search supernet
   at Criteo dimensions (39 fields x 40, an 11.5k-id table, as the Criteo sample's), loads the SAME initial weights
   (written by the first process), and runs the search's TrainStep (three Adam groups, dense coupled L2, batch 256)
   on the same 5 batches of synthetic ids, recording each step's loss (the loss of step k is computed on weights
   after k-1 updates, so it checks the forward pass at step 1 and forward + backward + Adam after that).
   float32 with TensorFloat-32 disabled (TF enables TF32 matmuls by default on Ampere and later GPUs):
   |loss_gpu - loss_cpu| <= 1e-4 * loss at step 1 and <= 1e-3 * loss at every step (different summation orders
   and cuDNN/oneDNN kernels; Adam's first steps are sign-like, so differences stay small); mixed_bfloat16:
   <= 2e-2 * loss.
2. Speed. On the GPU: examples/s of the search TrainStep at Criteo dimensions, batch 256 and 4096, float32
   (TF32 on, the default), mixed_bfloat16 and mixed_float16 (loss scaling), with and without XLA, on in-memory
   synthetic ids; peak GPU memory (tf.config.experimental.get_memory_info).

Writes the section "## OptFusion on GPU" of docs/benchmarks.md with the card's name when --doc is given.
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

from transform.layouts import criteo  # noqa: E402 - after the path and environment set-up

SECTION_HEADING = "## OptFusion on GPU"
FIELDS, TABLE = 39, 11_500
EMBEDDING_DIM = int(os.environ.get("GPU_CHECK_EMBEDDING_DIM", "40"))  # smaller only to self-test the script
CHECK_STEPS, CHECK_BATCH = 5, 256
TOLERANCE = {"float32": (1e-4, 1e-3), "mixed_bfloat16": (2e-2, 2e-2)}  # (step 1, every step), relative to loss
# The reference's Criteo search settings (algorithms.md §1.8).
_CRITEO = criteo.REFERENCE.optfusion
LR, ARCH_LR, L2 = _CRITEO.search_lr, _CRITEO.arch_lr, _CRITEO.search_l2


def _settings():
    from trainer.optfusion import optim
    return {"emb": optim.GroupSettings(LR, L2), "nn": optim.GroupSettings(LR, L2), "arch": optim.GroupSettings(ARCH_LR)}


def _batches(count: int, batch: int, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, TABLE, (count * batch, FIELDS)).astype(np.int64)
    labels = rng.integers(0, 2, (count * batch, 1)).astype(np.float32)
    return ids, labels


def child_losses(precision: str, weights_path: str, write_weights: bool) -> dict[str, Any]:
    """Losses of CHECK_STEPS search steps from shared initial weights, on this process's default device."""
    import numpy as np
    import tensorflow as tf

    from trainer.optfusion import network, optim, training
    tf.config.experimental.enable_tensor_float_32_execution(False)
    tf.keras.utils.set_random_seed(0)
    with optim.precision_policy(precision):
        model, _ = training.build_supernet(training.SupernetConfig(TABLE, FIELDS, EMBEDDING_DIM))
    if write_weights:
        np.savez(weights_path, *[v.numpy() for v in model.variables])
    else:
        with np.load(weights_path) as saved:
            for i, variable in enumerate(model.variables):
                variable.assign(saved[f"arr_{i}"])
    step = optim.make_train_step(model, network.variable_groups(model), _settings(), precision=precision)
    ids, labels = _batches(CHECK_STEPS, CHECK_BATCH)
    iterator = iter(tf.data.Dataset.from_tensor_slices(({"feature": ids}, labels)).batch(CHECK_BATCH))
    losses = []
    for _ in range(CHECK_STEPS):
        _, loss, _ = step.run(iterator, 1)
        losses.append(loss)
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    return {"losses": losses, "devices": devices}


def child_speed(precision: str, batch: int, jit: bool, steps: int) -> dict[str, Any]:
    import tensorflow as tf

    from trainer.optfusion import network, optim, training
    tf.keras.utils.set_random_seed(0)
    strategy = optim.choose_strategy()
    with optim.precision_policy(precision), strategy.scope():
        model, _ = training.build_supernet(training.SupernetConfig(TABLE, FIELDS, EMBEDDING_DIM))
    step = optim.make_train_step(model, network.variable_groups(model), _settings(), precision=precision,
                                 jit_compile=jit, strategy=strategy)
    ids, labels = _batches(4, batch)
    data = tf.data.Dataset.from_tensor_slices(({"feature": ids}, labels)).batch(batch).cache().repeat()
    iterator = iter(strategy.experimental_distribute_dataset(data))
    step.run(iterator, 3)  # warm-up: tracing, autotuning
    start = time.perf_counter()
    _, _, examples = step.run(iterator, steps)
    seconds = time.perf_counter() - start
    gpu = tf.config.list_logical_devices("GPU")
    peak = tf.config.experimental.get_memory_info(gpu[0].name)["peak"] / 2 ** 20 if gpu else float("nan")
    return {"examples_per_second": examples / seconds, "peak_gpu_mb": peak, "replicas": strategy.num_replicas_in_sync}


def _run_child(args: list[str], hide_gpu: bool) -> dict[str, Any]:
    env = dict(os.environ)
    if hide_gpu:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--child", *args, "--out", out], check=True,
                   cwd=REPO_ROOT, env=env)
    with open(out) as f:
        result = json.load(f)
    os.unlink(out)
    return result


def gpu_name() -> str | None:
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return (f"{details.get('device_name', 'GPU')} (compute capability {details.get('compute_capability')}), "
            f"{len(gpus)} visible")


def check_losses(device_b: str) -> tuple[list[str], bool]:
    lines, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for precision, (first_tol, every_tol) in TOLERANCE.items():
            weights = os.path.join(tmp, f"{precision}.npz")
            cpu = _run_child(["losses", "--precision", precision, "--weights", weights, "--write-weights"], True)
            other = _run_child(["losses", "--precision", precision, "--weights", weights], device_b == "cpu")
            diffs = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu["losses"], other["losses"])]
            passed = diffs[0] <= first_tol and max(diffs) <= every_tol
            ok &= passed
            lines.append(f"| {precision} | {', '.join(f'{x:.6f}' for x in cpu['losses'])} | "
                         f"{', '.join(f'{x:.6f}' for x in other['losses'])} | {max(diffs):.1e} | "
                         f"{first_tol:g} / {every_tol:g} | {'PASS' if passed else 'FAIL'} |")
            print(lines[-1], flush=True)
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doc", help="write the results as a section of this markdown file")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per speed configuration")
    parser.add_argument("--device-b", default="gpu", choices=("gpu", "cpu"),
                        help="compare CPU with this (cpu: a self-test of the script without a GPU)")
    parser.add_argument("--embedding-dim", type=int, help="embedding size per field (default 40: Criteo); a small "
                        "one only to self-test the script quickly")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--write-weights", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--jit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.embedding_dim:  # children read it from the environment
        os.environ["GPU_CHECK_EMBEDDING_DIM"] = str(args.embedding_dim)
        global EMBEDDING_DIM
        EMBEDDING_DIM = args.embedding_dim

    if args.child:
        if args.child == "losses":
            result = child_losses(args.precision, args.weights, args.write_weights)
        else:
            result = child_speed(args.precision, args.batch, args.jit, args.steps)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return 0

    name = gpu_name()
    if name is None and args.device_b == "gpu":
        print("SKIP: no GPU is visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty); nothing "
              "to check. Run this on a machine with a GPU, or --device-b cpu to self-test the script.")
        return 0
    print(f"Device: {name or 'CPU only (self-test)'}", flush=True)
    loss_lines, ok = check_losses(args.device_b)
    speed_lines = []
    if name is not None:
        for precision in ("float32", "mixed_bfloat16", "mixed_float16"):
            for batch in (256, 4096):
                for jit in (False, True):
                    extra = ["--jit"] if jit else []
                    r = _run_child(["speed", "--precision", precision, "--batch", str(batch), "--steps",
                                    str(args.steps), *extra], False)
                    speed_lines.append(f"| {precision} | {batch} | {'yes' if jit else 'no'} | "
                                       f"{r['examples_per_second']:,.0f} | {r['peak_gpu_mb']:,.0f} |")
                    print(speed_lines[-1], flush=True)
    section = "\n".join([
        SECTION_HEADING, "",
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Device: {name or 'none (CPU self-test)'}",
        f"- Command: `python -m benchmarks.gpu_check {' '.join(sys.argv[1:])}`".rstrip(),
        f"- Model: OptFusion search supernet, {FIELDS} x {EMBEDDING_DIM} (D = {FIELDS * EMBEDDING_DIM}), "
        f"{TABLE:,}-id table, search TrainStep (3 Adam groups, dense coupled L2), synthetic ids.",
        "", f"Same {CHECK_STEPS} batches of {CHECK_BATCH}, same initial weights: per-step loss on CPU and on "
        f"{args.device_b.upper()} (float32 without TF32).", "",
        f"| precision | CPU losses | {args.device_b.upper()} losses | max relative difference "
        "| tolerance (step 1 / all) "
        "| result |", "|---|---|---|---:|---|---|", *loss_lines, ""]
        + (["Throughput (search TrainStep, in-memory synthetic ids, after warm-up):", "",
            "| precision | batch | XLA | examples/s | peak GPU MB |", "|---|---:|---|---:|---:|", *speed_lines, ""]
           if speed_lines else []))
    print(section)
    if args.doc:
        from benchmarks import report
        report.write_section(args.doc, section)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
