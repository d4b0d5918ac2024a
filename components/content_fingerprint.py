"""The input fingerprint of a file-based ExampleGen, made from the files' content and not only their size and time.

TFX's FileBasedDriver fingerprints the input files by count, total size and modification time (seconds), and that
fingerprint is the ExampleGen's cache key. A file rewritten with other content of the same size and its time kept
(`rsync -t`, `cp -p`, `tar x`, a corrected label: ../shared/cases/09) keeps the fingerprint, so a re-run is served
from the cache and trains on the old data. `ContentFingerprintDriver` adds a digest of the files' bytes.

The rule for huge inputs: the digest reads every byte once per run (BLAKE2b: about 1 GB/s on one core), so inputs
over `MAX_DIGEST_BYTES` in total keep TFX's size-and-time fingerprint alone, with a warning in the log; for them,
write changed data under a new name or a new span ({SPAN}) instead of in place. On Kubeflow the compiled pipeline
runs TFX's own ExampleGen driver (size and time): object stores give every rewritten object a new modification time,
so the in-place rewrite that keeps one cannot happen there.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Iterable

from tfx.components.example_gen import driver, utils
from tfx.components.example_gen.import_example_gen import component as import_example_gen
from tfx.dsl.io import fileio
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

MAX_DIGEST_BYTES = 8 << 30  # 8 GiB
_CHUNK = 1 << 20


def content_digest(files: Iterable[str], max_bytes: int = MAX_DIGEST_BYTES) -> str | None:
    """BLAKE2b hex digest over the files' names and bytes in sorted order; None when they hold over `max_bytes`."""
    files = sorted(files)
    total = sum(fileio.stat(path).length for path in files)
    if total > max_bytes:
        logging.warning("input fingerprint: %d bytes in %d file(s) is over %d, so only their sizes and modification "
                        "times are compared: a file rewritten in place with its time kept is not noticed "
                        "(components/content_fingerprint.py)", total, len(files), max_bytes)
        return None
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(os.path.basename(path).encode() + b"\0")
        with fileio.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def matching_files(input_base: str, input_config: example_gen_pb2.Input) -> list[str]:
    """The data files of every split pattern (hidden and underscore-prefixed side files excluded)."""
    files = set()
    for split in input_config.splits:
        for path in fileio.glob(os.path.join(input_base, split.pattern)):
            if not os.path.basename(path).startswith((".", "_")) and not fileio.isdir(path):
                files.add(path)
    return sorted(files)


class ContentFingerprintDriver(driver.FileBasedDriver):
    """FileBasedDriver whose input fingerprint also holds `content_digest` of the input files (module docstring)."""

    def resolve_exec_properties(self, exec_properties: dict[str, Any], pipeline_info: data_types.PipelineInfo,
                                component_info: data_types.ComponentInfo) -> dict[str, Any]:
        """FileBasedDriver's properties (span, version, patterns, fingerprint), with the digest in the fingerprint."""
        exec_properties = super().resolve_exec_properties(exec_properties, pipeline_info, component_info)
        input_config = example_gen_pb2.Input()  # its patterns now name the resolved span and version
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        files = matching_files(exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config)
        digest = content_digest(files)
        if digest is not None:
            exec_properties[utils.FINGERPRINT_PROPERTY_NAME] += f"\ncontent_blake2b:{digest}"
        return exec_properties


class TfRecordExampleGen(import_example_gen.ImportExampleGen):
    """ImportExampleGen (tf.Example TFRecords as they are) with the content fingerprint of its input files."""

    DRIVER_CLASS = ContentFingerprintDriver
