"""Every field's vocabulary from one analyzer pass (issue 15): what `tft.vocabulary` computes per field, in one Beam
stage instead of one per field.

TF Transform runs each `tft.vocabulary` as its own chain of Beam stages (count, filter, sort, write) and cannot
pack several into one (tensorflow/transform#180, #259). With a vocabulary per field (39 on Criteo) those chains are
most of Transform's fixed cost: on 10,000 generated Criteo rows the Transform step took 88 s with 39 vocabularies
and 26 s with this pass (benchmarks/pipeline_scaling.py; docs/scaling.md). The analyzer counts the (field, token)
pairs of all fields in one pass and orders each field's vocabulary with exactly `tft.vocabulary`'s rules
(tensorflow_transform/beam/analyzer_impls.py, TFT 1.16):

- tokens that are empty or hold "\\n" or "\\r" are not counted;
- a token is kept when its count reaches the field's frequency threshold (None: every token);
- order: count descending, then the token's bytes descending;
- an empty vocabulary holds TFT's one dummy token, so lookups still initialise.

So the vocabularies, and the ids, are the ones the per-field analyzers gave (tests/transform/test_field_vocabularies.py
compares both on generated rows). They are written as one file, GLOBAL_IDS_FILE, each field's tokens behind a fixed
prefix, whose line numbers are the global ids: the transform graph maps all fields with one table lookup instead of
one per field (fewer ops to trace, save, load and run per request). `read_field_vocabularies` reads a field's
vocabulary back. With a span window the (field, token) counts of earlier spans come from TFT's analyzer cache.
"""
from __future__ import annotations

import collections
import contextlib
import os
import pickle
from typing import Any, Iterable, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.python.framework.ops import EagerTensor
from tensorflow_transform.beam import experimental as tft_beam_experimental

# tensorflow_transform.analyzers.get_empy_vocabulary_dummy_value(tf.string): what TFT writes for an empty vocabulary.
EMPTY_VOCABULARY_TOKEN = b"49d0cd50-04bb-48c0-bc6f-5b575dce351a"


def countable(token: bytes) -> bool:
    """Whether `tft.vocabulary` counts a token: not empty, no "\\n" and no "\\r" (TFT's newline filter)."""
    return bool(token) and b"\n" not in token and b"\r" not in token


def count_tokens(batch: np.ndarray) -> collections.Counter:
    """Counts of (field index, token) in a batch of tokens [B, F] (bytes), countable tokens only."""
    counts: collections.Counter = collections.Counter()
    for column, tokens in enumerate(np.asarray(batch).T):
        counts.update((column, token) for token in tokens.tolist() if countable(token))
    return counts


def ordered_vocabulary(counts: Mapping[bytes, int], threshold: Optional[int]) -> list[bytes]:
    """One field's vocabulary as `tft.vocabulary` orders it (module docstring): tokens counted at least `threshold`
    times (None: all), by count and then by the token's bytes, both descending; the dummy token when none is kept."""
    kept = [(count, token) for token, count in counts.items() if threshold is None or count >= threshold]
    kept.sort(reverse=True)
    return [token for _, token in kept] or [EMPTY_VOCABULARY_TOKEN]


def _batch_counts(batch: tuple[np.ndarray, ...]) -> Iterable[tuple[tuple[int, bytes], int]]:
    (tokens,) = batch
    return count_tokens(tokens).items()


GLOBAL_IDS_FILE = "global_ids"
"""The file behind the one lookup table: every field's vocabulary, prefixed, in global id order."""


def field_prefix(field_index: int) -> bytes:
    """The prefix that makes a token of field `field_index` a key of the global table: fixed width, so that any token
    (any bytes) after it decodes unambiguously."""
    if not 0 <= field_index < 1000:
        raise ValueError(f"the global table's prefix holds field indices 0..999, got {field_index}")
    return b"%03d\x1f" % field_index


def global_id_lines(vocabularies: Sequence[Sequence[bytes]]) -> list[bytes]:
    """The global table's keys in id order: each field's prefixed vocabulary, then its prefix alone (the empty token,
    which TFT never counts) holding the field's OOV id. So line i is global id i, and field f's ids start where the
    fields before it end, as one `tft.compute_and_apply_vocabulary(num_oov_buckets=1)` per field lays them out."""
    lines = []
    for index, vocabulary in enumerate(vocabularies):
        prefix = field_prefix(index)
        lines += [prefix + token for token in vocabulary] + [prefix]
    return lines


class PickleCacheCoder(tft.experimental.PTransformAnalyzerCacheCoder):
    """The analyzer cache's coder of the (field, token) counts: pickle, since tokens are bytes (TFT's JSON coder
    takes text only). The cache is read only by this code, for the next span window (pipeline.analyzer_cache)."""

    def encode_cache(self, accumulator: Any) -> bytes:
        """A list of ((field, token), count) -> bytes."""
        return pickle.dumps(accumulator, protocol=4)

    def decode_cache(self, encoded: bytes) -> Any:
        """The inverse of encode_cache."""
        return pickle.loads(encoded)


class _CountTokens(beam.PTransform):
    """Batches of tokens [B, F] -> one accumulator: the list of ((field index, token), count) over the batches."""

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return (batches
                | "CountPerFieldAndToken" >> beam.FlatMap(_batch_counts)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "ToAccumulator" >> beam.combiners.ToList())


class _MergeCounts(beam.PTransform):
    """Accumulators (one per analysed dataset, fresh or from the cache) -> one accumulator of the summed counts."""

    def expand(self, accumulators: beam.PCollection) -> beam.PCollection:
        return (accumulators
                | "Unpack" >> beam.FlatMap(lambda accumulator: accumulator)
                | "SumCounts" >> beam.CombinePerKey(sum)
                | "ToAccumulator" >> beam.combiners.ToList())


class FieldVocabularies(tft_beam_experimental.PTransformAnalyzer):
    """The extract step: one accumulator of (field, token) counts in; out, the path of the global table's file
    (GLOBAL_IDS_FILE: every field's vocabulary, global_id_lines). One output: TFT 1.16 caches a
    CacheablePTransformAnalyzer only when it has exactly one (analysis_graph_builder._validate_operation_def).

    Args:
        thresholds: each field's frequency threshold (F; None: keep every token).
    """

    def __init__(self, thresholds: Sequence[Optional[int]]):
        super().__init__()
        self.thresholds = list(thresholds)

    def _write(self, counts: list[tuple[tuple[int, bytes], int]]) -> np.ndarray:
        by_field: list[dict[bytes, int]] = [{} for _ in self.thresholds]
        for (field, token), count in counts:
            by_field[field][token] = count
        vocabularies = [ordered_vocabulary(c, threshold) for c, threshold in zip(by_field, self.thresholds)]
        tf.io.gfile.makedirs(self.base_temp_dir)
        path = os.path.join(self.base_temp_dir, GLOBAL_IDS_FILE)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in global_id_lines(vocabularies)))
        return np.array(path.encode())

    def expand(self, accumulator: beam.PCollection) -> beam.PCollection:
        """Orders and writes the file on one worker."""
        return accumulator | "OrderAndWrite" >> beam.Map(self._write)


def field_vocabularies_analyzer(thresholds: Sequence[Optional[int]]) -> tft.experimental.CacheablePTransformAnalyzer:
    """The analyzer as TFT's cacheable parts: count per dataset, merge the counts, write the files. With a span
    window (pipeline.analyzer_cache) the counts of the spans analysed before come from the cache."""
    return tft.experimental.CacheablePTransformAnalyzer(
        make_accumulators_ptransform=_CountTokens(), merge_accumulators_ptransform=_MergeCounts(),
        extract_output_ptransform=FieldVocabularies(thresholds), cache_coder=PickleCacheCoder())


def _global_id_lookup(oov_keys: tf.Tensor, sizes: list[tf.Tensor]) -> Any:
    """A `tft.apply_vocabulary` lookup_fn over the global table: a key's line number, or its field's OOV id (the line
    of the field's prefix alone) when absent. The table is built in the init scope when its file is known, as TFT
    builds its own (tf_utils.construct_and_lookup_table), so it is initialised once, not per batch; its size (the
    number of ids) is appended to `sizes`."""

    def lookup(keys: tf.Tensor, path: Any) -> tuple[tf.Tensor, tf.Tensor]:
        with contextlib.ExitStack() as stack:
            if tf.inside_function() and isinstance(path, (EagerTensor, str)):
                stack.enter_context(tf.init_scope())
            initializer = tf.lookup.TextFileInitializer(path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                                        tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            table = tf.lookup.StaticHashTable(initializer, default_value=-1)
            size = table.size()
        sizes.append(size)
        ids = table.lookup(keys)
        return tf.where(ids < 0, table.lookup(oov_keys)[tf.newaxis, :], ids), size

    return lookup


def global_ids(tokens: Mapping[str, tf.Tensor], thresholds: Mapping[str, Optional[int]]
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """Inside a preprocessing_fn: (global ids int64 [batch, F], number of ids) of the fields of `tokens` ([batch]
    string tensors, in field order): the ids of one `tft.compute_and_apply_vocabulary(num_oov_buckets=1)` per field,
    laid end to end, from one analyzer pass and one table lookup. The table's file is the transform graph's asset
    GLOBAL_IDS_FILE; `read_field_vocabularies` gives each field's vocabulary from it."""
    fields = list(tokens)
    (path,) = tft.experimental.ptransform_analyzer(
        inputs=[tf.stack([tokens[field] for field in fields], axis=1)],
        ptransform=field_vocabularies_analyzer([thresholds[f] for f in fields]),
        output_dtypes=[tf.string], output_shapes=[[]], output_asset_default_values=[GLOBAL_IDS_FILE.encode()],
        name="field_vocabularies")
    tft.annotate_asset(GLOBAL_IDS_FILE, GLOBAL_IDS_FILE)  # the file is named so (FieldVocabularies._write)
    prefixes = tf.constant([field_prefix(i) for i in range(len(fields))])
    stacked = tf.stack([tokens[field] for field in fields], axis=1)
    keys = tf.strings.join([tf.broadcast_to(prefixes, tf.shape(stacked)), stacked])
    sizes: list[tf.Tensor] = []
    ids = tft.apply_vocabulary(keys, path, lookup_fn=_global_id_lookup(prefixes, sizes))
    return tf.identity(ids), sizes[0]


# --- reading the vocabularies back ------------------------------------------------------------------------------

def split_global_id_lines(lines: Sequence[bytes], num_fields: int) -> list[list[bytes]]:
    """The inverse of global_id_lines: each field's vocabulary in id order (the OOV lines left out).

    Raises:
        ValueError: a line of no field below `num_fields`, or a field without its OOV line.
    """
    vocabularies: list[list[bytes]] = [[] for _ in range(num_fields)]
    closed = [False] * num_fields
    for line in lines:
        try:
            field = int(line[:3])
        except ValueError:
            raise ValueError(f"{line[:20]!r} is not a line of the global table ({GLOBAL_IDS_FILE})") from None
        if not 0 <= field < num_fields:
            raise ValueError(f"the global table has field {field}, the layout {num_fields} fields")
        if line == field_prefix(field):
            closed[field] = True
        else:
            vocabularies[field].append(line[len(field_prefix(field)):])
    if not all(closed):
        raise ValueError(f"the global table lacks the OOV line of field {closed.index(False)}")
    return vocabularies


def read_field_vocabularies(assets_dir: str, names: Sequence[str]) -> list[list[bytes]]:
    """Each field's vocabulary (tokens in id order) from a folder of assets: a transform graph's
    (`<transform_graph>/transform_fn/assets`) or an exported model's (`<model>/assets`). Reads GLOBAL_IDS_FILE, or the
    per-field files `names` (one `tft.vocabulary` per field: the per-field analysis, or a graph from before issue 15).

    Raises:
        FileNotFoundError: neither is there.
    """
    global_file = os.path.join(assets_dir, GLOBAL_IDS_FILE)
    if tf.io.gfile.exists(global_file):
        with tf.io.gfile.GFile(global_file, "rb") as f:
            return split_global_id_lines(f.read().splitlines(), len(names))
    vocabularies = []
    for name in names:
        path = os.path.join(assets_dir, name)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"no vocabulary {name} ({assets_dir} holds neither {GLOBAL_IDS_FILE} nor {name})")
        with tf.io.gfile.GFile(path, "rb") as f:
            vocabularies.append(f.read().splitlines())
    return vocabularies
