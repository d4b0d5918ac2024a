"""Ingestion + Transform keep exactly the values the reference OptFusion preprocessing keeps.

For each shared sample (criteo, avazu, frappe) RawLogExampleGen, StatisticsGen, SchemaGen and Transform run
on *all* the sample's files (the reference built its vocabularies over train + dev + test concatenated),
with vocabularies analysed over all splits (`--vocabulary-over-all-splits`). The kept values of every field
(Transform's vocabulary files) must equal `optfusion_tfrecords/<dataset>/vocabulary.json`, the values the
reference's own `criteo2TF.py` / `avazu2TF.py` / `DataTransform` kept on the same rows: count >= 2, Criteo
I1-I13 after floor(ln(v)^2) for v > 2 and exempt from the threshold, Avazu's hour of day / weekday /
is_weekend derived from `hour`. A second test compares the id each row gets with the reference's
TFRecords, field by field (how many rows fall on each id, and on the OOV id).

Deliberate differences, each named once below and explained in README.md ("Transform rules"):
- MISSING_TOKEN: the project's missing-value category is the token `__missing__` (TF Transform drops empty
  strings from vocabularies); vocabulary.json writes it as "". Compared after mapping it to "".
- OOV slot: the project gives every field one OOV id; the reference gives a field one only when it dropped
  a value there. So a field where nothing was dropped (every Criteo integer field, for instance) has one id
  more in the project, never used by a row of this data.

Without the data these tests skip (FUSIONCTR_REQUIRE_DATA=1 turns that into a failure). One run per sample
(ExampleGen + StatisticsGen + SchemaGen + Transform, no training): about 7 CPU minutes for the three, mostly
Transform's fixed cost per analyzer; 16 minutes of wall time on a 2-core machine at load 7-9.
"""
from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os
import time
from typing import Callable

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

import local_runner
from pipeline import lineage, pipeline
from tests import helpers
from tests.e2e.conftest import DATA_DIR, REQUIRE_DATA, sample_files
from trainer import data
from transform import features, preprocessing

pytestmark = pytest.mark.e2e

SAMPLES = ("criteo", "avazu", "frappe")
# The deliberate representation difference: the project's missing-value token is "" in vocabulary.json.
REFERENCE_SPELLING = {preprocessing.MISSING_TOKEN: ""}
SHOWN = 5  # differing values shown per field in a failure message


@dataclasses.dataclass(frozen=True)
class Ingested:
    dataset: str
    metadata_path: str
    input_files: tuple[str, ...]
    seconds: float


def reference(name: str) -> tuple[dict, dict[str, list[str]], str]:
    """(meta.json, vocabulary.json, folder) of the reference's preprocessing of a sample."""
    folder = os.path.join(DATA_DIR, "optfusion_tfrecords", name)
    paths = [os.path.join(folder, f) for f in ("meta.json", "vocabulary.json")]
    if not all(os.path.isfile(p) for p in paths):
        message = f"reference preprocessing of {name} not found at {folder}. Set FUSIONCTR_DATA_DIR."
        if REQUIRE_DATA:
            pytest.fail(message)
        pytest.skip(message)
    with open(paths[0]) as f:
        meta = json.load(f)
    with open(paths[1]) as f:
        vocabulary = json.load(f)
    return meta, vocabulary, folder


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Callable[[str], Ingested]:
    """One ExampleGen -> StatisticsGen -> SchemaGen -> Transform run per sample, on all its files (no training)."""
    runs: dict[str, Ingested] = {}

    def get(name: str) -> Ingested:
        if name not in runs:
            train, test = sample_files(name)
            root = tmp_path_factory.mktemp(f"reference_{name}")
            input_dir = root / "input"
            input_dir.mkdir()
            for path in (*train, test):  # links: the data's terms forbid copies
                os.symlink(os.path.abspath(path), input_dir / os.path.basename(path))
            config = local_runner.build_config(local_runner.parse_args([
                "--dataset", name, "--data", str(input_dir), "--output-dir", str(root / "out"),
                "--vocabulary-over-all-splits"]))
            gen = pipeline.example_gen(config)
            statistics = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
            schema = pipeline.schema_component(config.dataset, statistics.outputs["statistics"])
            transform = pipeline.transform_component(config, gen.outputs["examples"], schema.outputs["schema"])
            start = time.monotonic()
            metadata_path = helpers.run_components(str(root / "run"), [gen, statistics, schema, transform])
            runs[name] = Ingested(name, metadata_path, (*train, test), time.monotonic() - start)
            print(f"\n{name}: ExampleGen + StatisticsGen + SchemaGen + Transform on all files: "
                  f"{runs[name].seconds:.0f} s")
        return runs[name]

    return get


def _tft_output(run: Ingested) -> tft.TFTransformOutput:
    store = lineage.open_store(run.metadata_path)
    return tft.TFTransformOutput(lineage.latest_output(store, "Transform", "transform_graph").uri)


def kept_values(run: Ingested) -> dict[str, set[str]]:
    """Per model field, the raw values Transform gave an id of their own, spelled as vocabulary.json spells them."""
    vocabularies = data.field_vocabularies(_tft_output(run), features.get_dataset(run.dataset))
    return {field: {REFERENCE_SPELLING.get(t.decode(), t.decode()) for t in tokens}
            for field, tokens in vocabularies.items()}


def _differences(field: str, ours: set[str], theirs: set[str]) -> str:
    only_ours, only_theirs = sorted(ours - theirs), sorted(theirs - ours)
    return (f"{field}: project keeps {len(ours)}, reference {len(theirs)}; "
            f"only in the project {only_ours[:SHOWN]}{' ...' if len(only_ours) > SHOWN else ''}, "
            f"only in the reference {only_theirs[:SHOWN]}{' ...' if len(only_theirs) > SHOWN else ''}")


@pytest.mark.parametrize("name", SAMPLES)
def test_kept_values_per_field_equal_the_references(ingested, name):
    meta, vocabulary, _ = reference(name)
    run = ingested(name)
    store = lineage.open_store(run.metadata_path)
    examples = lineage.latest_output(store, "RawLogExampleGen", "examples")
    rejected = examples.custom_properties["rejected_count"].int_value
    assert rejected == 0, f"{name}: {rejected} rows rejected (see {examples.uri}/rejected_rows.tsv)"
    rows = sum(examples.custom_properties[f"{split}_count"].int_value for split in pipeline.SPLITS)
    reference_rows = sum(split["rows"] for split in meta["splits"].values())
    assert rows == reference_rows, f"{name}: the project read {rows} rows, the reference {reference_rows}"

    spec = features.get_dataset(name)
    assert list(spec.model_fields) == meta["field_order"], f"{name}: field order differs from the reference's"
    kept = kept_values(run)
    differing = [_differences(field, kept[field], set(vocabulary[field]))
                 for field in spec.model_fields if kept[field] != set(vocabulary[field])]
    assert not differing, f"{name}: kept values differ in {len(differing)} field(s):\n" + "\n".join(differing)


def _project_ids(run: Ingested) -> np.ndarray:
    """The transformed `feature` ids of every row, all splits: [rows, fields]."""
    store = lineage.open_store(run.metadata_path)
    uri = lineage.latest_output(store, "Transform", "transformed_examples").uri
    files = sorted(glob.glob(os.path.join(uri, "Split-*", "*.gz")))
    return _read_ids(tf.data.TFRecordDataset(files, compression_type="GZIP"),
                     len(features.get_dataset(run.dataset).model_fields))


def _read_ids(dataset: tf.data.Dataset, width: int) -> np.ndarray:
    spec = {features.FEATURE_KEY: tf.io.FixedLenFeature([width], tf.int64)}
    batches = [batch[features.FEATURE_KEY].numpy()
               for batch in dataset.batch(4096).map(lambda r: tf.io.parse_example(r, spec))]
    return np.concatenate(batches)


@pytest.mark.parametrize("name", SAMPLES)
def test_rows_per_id_and_oov_rows_equal_the_references_records(ingested, name):
    """Field by field, the rows on each id (as a sorted list of counts) and on the OOV id equal the reference's.

    The one named exception (OOV slot): the reference has an OOV id only in fields where it dropped a value,
    the project in every field; a field where nothing was dropped has exactly one unused id more here.
    """
    meta, vocabulary, folder = reference(name)
    run = ingested(name)
    spec = features.get_dataset(name)
    fields = list(spec.model_fields)
    ours = _project_ids(run)
    theirs = _read_ids(tf.data.TFRecordDataset(sorted(glob.glob(os.path.join(folder, "*.tfrecord")))), len(fields))
    assert ours.shape == theirs.shape, f"{name}: project rows x fields {ours.shape}, reference {theirs.shape}"

    sizes = data.field_vocabulary_sizes(_tft_output(run), spec)
    offset, reference_table, differing = 0, 0, []
    for column, field in enumerate(fields):
        size = sizes[field] - 1  # the vocabulary's; its OOV id is `size`
        kept = len(vocabulary[field])
        # Project: local ids 0..size-1 for kept values, `size` is the field's OOV id; offsets = sizes + 1.
        local = ours[:, column] - offset
        assert local.min() >= 0 and local.max() <= size, f"{name}: {field} ids outside the field's range"
        project_oov_rows = int((local == size).sum())
        offset += size + 1
        # Reference: a contiguous id range per field, ending with the OOV id where a value was dropped.
        ids = theirs[:, column]
        reference_size = int(ids.max() - ids.min() + 1)
        assert len(np.unique(ids)) == reference_size, f"{name}: {field} reference ids are not contiguous"
        assert ids.min() == reference_table, f"{name}: {field} reference range starts at {ids.min()}"
        reference_table += reference_size
        has_oov = reference_size - kept
        assert has_oov in (0, 1), f"{name}: {field}: reference uses {reference_size} ids for {kept} kept values"
        reference_oov_rows = int((ids == ids.max()).sum()) if has_oov else 0
        # The OOV-slot exception, and nothing more: an extra id only where the reference dropped nothing.
        if size != kept or project_oov_rows != reference_oov_rows or bool(project_oov_rows) != bool(has_oov):
            differing.append(f"{field}: kept values project {size} / reference {kept}; rows on the OOV id "
                             f"project {project_oov_rows} / reference {reference_oov_rows}")
            continue
        ours_counts = sorted(collections.Counter(local.tolist()).values())
        theirs_counts = sorted(collections.Counter(ids.tolist()).values())
        if ours_counts != theirs_counts:
            differing.append(f"{field}: rows per id differ (largest counts project {ours_counts[-SHOWN:]}, "
                             f"reference {theirs_counts[-SHOWN:]})")
    assert not differing, (f"{name}: {len(differing)} field(s) differ from the reference records:\n"
                           + "\n".join(differing))
    assert reference_table == meta["max_id"] + 1, f"{name}: reference ids end at {reference_table - 1}"
    # Table sizes: the reference's plus one id per field where the reference dropped nothing (the OOV slot).
    no_oov_fields = sum(1 for column in range(len(fields)) if (theirs[:, column].max() - theirs[:, column].min() + 1)
                        == len(vocabulary[fields[column]]))
    assert offset == reference_table + no_oov_fields, (
        f"{name}: project table {offset} ids, reference {reference_table} + {no_oov_fields} fields without OOV id")
