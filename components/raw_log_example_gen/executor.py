"""Beam executor of RawLogExampleGen: streams text logs line by line into tf.Example splits.

Nothing is dropped silently: every line either becomes an example of one split, or a rejected row
(file, line number, reason, raw text) in `rejected_rows.tsv` inside the Examples artifact, or a skipped
header or empty line; each count is an MLMD custom property of the artifact (`<split>_count`,
`rejected_count`, `header_line_count`, `empty_line_count`). A file that cannot be read whole (truncated or
corrupt compressed, empty) fails the run naming it (transform/log_files.py).
"""
from __future__ import annotations

import bisect
import collections
import hashlib
import itertools
import json
import logging
import os
from typing import Any, Iterator

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import window
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from tfx import types
from tfx.components.example_gen import base_example_gen_executor, utils, write_split
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from transform import features, log_files
from transform.parsers import RowError, row_to_example

REJECTED_FILE = "rejected_rows.tsv"
REJECTED_HEADER = "file\tline\treason\trow"
COUNTS_FILE = "row_counts.json"
LOG_FORMAT_KEY = "log_format"
SPLIT_SEED_KEY = "split_seed"
MAX_REJECTED_FRACTION_KEY = "max_rejected_fraction"
_PROGRESS_EVERY = 200_000


class TooManyRejectedRowsError(RuntimeError):
    """More malformed rows than the configured fraction allows."""


def list_input_files(input_base: str, pattern: str) -> list[tuple[str, str]]:
    """(path, path relative to input_base) of the data files matching the pattern, sorted.

    Hidden and underscore-prefixed files (`.crc`, `_SUCCESS`, ...) are never data.
    """
    matches = FileSystems.match([os.path.join(input_base, pattern)])[0].metadata_list
    files = sorted(m.path for m in matches if not os.path.basename(m.path).startswith((".", "_")))
    if not files:
        raise FileNotFoundError(f"no input files match {os.path.join(input_base, pattern)!r}")
    return [(path, os.path.relpath(path, input_base)) for path in files]


def read_numbered_lines(file: tuple[str, str]) -> Iterator[tuple[str, int, bytes]]:
    """Streams (relative path, 1-based line number, raw line) from a plain or compressed text file.

    Raises:
        transform.log_files.InputFileError: a truncated, corrupt or empty file, named by its relative path.
    """
    path, relative = file
    for line_number, raw in log_files.numbered_lines(path, relative):
        if line_number % _PROGRESS_EVERY == 0:
            logging.info("RawLogExampleGen: read %d lines of %s", line_number, relative)
        yield relative, line_number, raw


def split_index(seed: int, relative_path: str, line_number: int, cumulative_buckets: list[int]) -> int:
    """Deterministic split of a line, from its position in the input (not its content) and the seed."""
    key = f"{seed}\0{relative_path}\0{line_number}".encode()
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % cumulative_buckets[-1]
    return bisect.bisect(cumulative_buckets, bucket)


class _ParseLine(beam.DoFn):
    """(file, line number, raw line) -> (split index, serialized tf.Example), or a tagged rejected row; a header row or
    an empty line is skipped (counted, not data). Each bundle's outcome counts ({split name, "rejected", "header",
    "empty": lines}) are tagged COUNTS at its end: counting one outcome per row downstream (Flatten, then
    Count.PerElement) held about 0.1 KB per row on the in-memory DirectRunner (benchmarks/examplegen_memory.py)."""

    REJECTED = "rejected"
    COUNTS = "counts"

    def __init__(self, log_format: str, seed: int, cumulative_buckets: list[int], split_names: list[str]):
        self._log_format = log_format
        self._seed = seed
        self._buckets = cumulative_buckets
        self._split_names = split_names
        self._counts: collections.Counter[str] = collections.Counter()

    def start_bundle(self) -> None:
        self._counts = collections.Counter()

    def process(self, element: tuple[str, int, bytes]) -> Iterator[Any]:
        relative, line_number, raw = element
        raw = raw.rstrip(b"\r\n")
        try:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise RowError(f"not valid UTF-8 at byte {error.start}") from None
            skipped = features.skipped_line(self._log_format, line)
            if skipped:
                self._counts[skipped] += 1
                return
            row = features.parse_line(self._log_format, line)
        except RowError as error:
            text = raw.decode("utf-8", errors="replace").replace("\n", " ")
            self._counts[self.REJECTED] += 1
            yield beam.pvalue.TaggedOutput(self.REJECTED, f"{relative}\t{line_number}\t{error}\t{text}")
            return
        index = split_index(self._seed, relative, line_number, self._buckets)
        self._counts[self._split_names[index]] += 1
        yield index, row_to_example(row).SerializeToString()

    def finish_bundle(self) -> Iterator[Any]:
        for outcome, count in self._counts.items():
            yield beam.pvalue.TaggedOutput(
                self.COUNTS, WindowedValue((outcome, count), MIN_TIMESTAMP, [window.GlobalWindow()]))


def check_rejected_fraction(counts: dict[str, int], max_fraction: float, rejected_path: str) -> None:
    """Raises TooManyRejectedRowsError, naming the file that lists them, if too many rows were malformed."""
    rejected = counts.get("rejected", 0)
    total = sum(counts.values())
    if total == 0:
        raise TooManyRejectedRowsError("the input holds no rows at all")
    if rejected / total > max_fraction:
        with tf.io.gfile.GFile(rejected_path) as f:
            examples = list(itertools.islice(f, 1, 4))  # after the header
        raise TooManyRejectedRowsError(
            f"{rejected} of {total} rows ({rejected / total:.2%}) are malformed, above the limit of "
            f"{max_fraction:.2%}. Each is listed with file, line and reason in {rejected_path}; the first ones:\n"
            + "".join(examples)
            + "Fix the input, check --dataset matches its layout, or raise --max-rejected-fraction.")


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Reads the text files of a click log and writes gzipped tf.Example TFRecords per split."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Not used: Do splits and writes the examples itself.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("RawLogExampleGen splits and writes in Do; it has no per-split PTransform")

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Parses the log files matching the one input pattern line by line, hash-splits each row by its position
        (split_index) and writes Split-<name>/data_tfrecord-*.gz; malformed rows go to rejected_rows.tsv. The row
        count of every split and of the rejected rows become custom properties of `examples`.

        Raises:
            ValueError: not one input pattern, no output split, an unknown log format, or an output file format other
                than gzipped TFRecords.
            FileNotFoundError: no input file matches.
            TooManyRejectedRowsError: more rows rejected than max_rejected_fraction allows.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        if len(input_config.splits) != 1 or not output_config.split_config.splits:
            raise ValueError("RawLogExampleGen reads one input pattern and splits it by hash buckets")
        split_names = utils.generate_output_split_names(input_config, output_config)
        cumulative, total = [], 0
        for split in output_config.split_config.splits:
            total += split.hash_buckets
            cumulative.append(total)

        log_format = exec_properties[LOG_FORMAT_KEY]
        if log_format not in features.text_layouts():
            raise ValueError(f"unknown log format {log_format!r}; choose one of {', '.join(features.text_layouts())}")
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(split_names)
        files = list_input_files(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                                 input_config.splits[0].pattern)
        logging.info("RawLogExampleGen: %d %s file(s): %s", len(files), log_format, [f[1] for f in files])
        rejected_path = os.path.join(examples.uri, REJECTED_FILE)
        counts_prefix = os.path.join(examples.uri, "row_counts")
        if exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY,
                               example_gen_pb2.FORMAT_TFRECORDS_GZIP) != example_gen_pb2.FORMAT_TFRECORDS_GZIP:
            raise ValueError("RawLogExampleGen writes gzipped TFRecords only")

        with self._make_beam_pipeline() as pipeline:
            parsed = (pipeline
                      | "ListFiles" >> beam.Create(files)
                      | "ReadLines" >> beam.FlatMap(read_numbered_lines)
                      | "Parse" >> beam.ParDo(_ParseLine(log_format, exec_properties[SPLIT_SEED_KEY], cumulative,
                                                         split_names))
                      .with_outputs(_ParseLine.REJECTED, _ParseLine.COUNTS, main="examples"))
            splits = parsed.examples | "BySplit" >> beam.Partition(lambda kv, _: kv[0], len(split_names))
            for index, name in enumerate(split_names):
                # Not TFX's WriteSplit: its Reshuffle holds every row in memory on the DirectRunner, and the
                # rows are already spread by the hash split. Same layout: Split-<name>/data_tfrecord-*.gz.
                (splits[index]
                 | f"Serialized[{name}]" >> beam.Values()
                 | f"WriteSplit[{name}]" >> beam.io.WriteToTFRecord(
                     os.path.join(artifact_utils.get_split_uri([examples], name), "data_tfrecord"),
                     file_name_suffix=".gz"))
            parsed[_ParseLine.REJECTED] | "WriteRejected" >> beam.io.WriteToText(
                rejected_path, shard_name_template="", header=REJECTED_HEADER)
            outcomes = (
                parsed[_ParseLine.COUNTS]
                | "SumCounts" >> beam.CombinePerKey(sum)
                | beam.combiners.ToDict()
                | beam.Map(json.dumps))
            outcomes | "WriteCounts" >> beam.io.WriteToText(counts_prefix, shard_name_template="",
                                                            file_name_suffix=".json")

        with tf.io.gfile.GFile(counts_prefix + ".json") as f:
            counts = {name: 0 for name in split_names + ["rejected", features.HEADER_LINE, features.EMPTY_LINE]}
            counts.update(json.loads(f.read() or "{}"))
        for name, count in counts.items():
            examples.set_int_custom_property(f"{name}_count", count)
        examples.set_string_custom_property("rejected_rows_uri", rejected_path)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        logging.info("RawLogExampleGen: rows per split %s; %d rejected (listed in %s); %d header and %d empty "
                     "line(s) skipped", {n: counts[n] for n in split_names}, counts["rejected"], rejected_path,
                     counts[features.HEADER_LINE], counts[features.EMPTY_LINE])
        check_rejected_fraction({name: counts[name] for name in split_names + ["rejected"]},
                                exec_properties[MAX_REJECTED_FRACTION_KEY], rejected_path)
