"""RawLogExampleGen: a FileBasedExampleGen for Criteo, Avazu, KDD12 and Frappe text logs.

Its driver is the file-based ExampleGen driver with the input files' content in their fingerprint
(components/content_fingerprint.py), part of the cache key with the span and version; Kubeflow V2 runs it
like any FileBasedExampleGen.
"""
from __future__ import annotations

from tfx import types
from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.content_fingerprint import ContentFingerprintDriver
from components.raw_log_example_gen import executor


class RawLogExampleGenSpec(types.ComponentSpec):
    """FileBasedExampleGen's parameters plus log_format, split_seed, max_rejected_fraction and code_fingerprint; no
    inputs; FileBasedExampleGen's `examples` output.
    """
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        executor.LOG_FORMAT_KEY: ExecutionParameter(type=str),
        executor.SPLIT_SEED_KEY: ExecutionParameter(type=int),
        executor.MAX_REJECTED_FRACTION_KEY: ExecutionParameter(type=float),
        # Digest of the parsing code: part of the cache key, so a parser fix re-reads the log.
        "code_fingerprint": ExecutionParameter(type=str, optional=True),
    }
    INPUTS: dict = {}
    OUTPUTS = standard_component_specs.FileBasedExampleGenSpec.OUTPUTS


def split_output_config(ratios: tuple[int, int, int]) -> example_gen_pb2.Output:
    """train/eval/test hash-bucket split (8:1:1 by default)."""
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
        for name, buckets in zip(("train", "eval", "test"), ratios)]))


class RawLogExampleGen(example_gen_component.FileBasedExampleGen):
    """Click-log text files (plain or .gz) -> gzipped tf.Example TFRecords in train/eval/test splits.

    Args:
        input_base: folder of the log files.
        log_format: one of criteo, avazu, kdd12, frappe.
        file_pattern: glob of the data files inside input_base. Defaults to every file.
        split_ratios: hash buckets of train, eval and test. Defaults to 8:1:1.
        split_seed: seed of the deterministic split.
        max_rejected_fraction: the run fails when more rows than this fraction are malformed.
        code_fingerprint: digest of the project code, to re-run when the parsers change.
    """

    SPEC_CLASS = RawLogExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    DRIVER_CLASS = ContentFingerprintDriver

    def __init__(self, input_base: str, log_format: str, file_pattern: str = "*",
                 split_ratios: tuple[int, int, int] = (8, 1, 1), split_seed: int = 2022,
                 max_rejected_fraction: float = 0.01, code_fingerprint: str = ""):
        spec = RawLogExampleGenSpec(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=file_pattern)]),
            output_config=split_output_config(split_ratios),
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            log_format=log_format,
            split_seed=split_seed,
            max_rejected_fraction=max_rejected_fraction,
            code_fingerprint=code_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        # Skip FileBasedExampleGen.__init__ (it builds the stock spec); stay an instance of it for Kubeflow V2.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
