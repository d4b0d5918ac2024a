"""One analyzer pass for every field's vocabulary (transform/field_vocabularies.py): TF Transform's ordering and
filtering rules by hand, and the same vocabulary files and ids as one `tft.compute_and_apply_vocabulary` per field
on generated rows of a layout with every kind of field (Criteo's integers, categorical fields, Avazu's hour)."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from trainer import data
from transform import features, field_vocabularies, preprocessing


def test_tokens_tft_would_not_count_are_left_out():
    batch = np.array([[b"a", b""], [b"a", b"x\ny"], [b"b", b"c\r"], [b"a", b"d"]], dtype=object)
    assert field_vocabularies.count_tokens(batch) == {(0, b"a"): 3, (0, b"b"): 1, (1, b"d"): 1}


def test_order_is_count_then_token_bytes_descending_after_the_threshold():
    counts = {b"apple": 3, b"zebra": 3, b"mango": 5, b"kiwi": 1, b"Zebra": 3}
    assert field_vocabularies.ordered_vocabulary(counts, 2) == [b"mango", b"zebra", b"apple", b"Zebra"]
    assert field_vocabularies.ordered_vocabulary(counts, None)[-1] == b"kiwi"  # no threshold: every token
    assert field_vocabularies.ordered_vocabulary({b"kiwi": 1}, 2) == [field_vocabularies.EMPTY_VOCABULARY_TOKEN]


# Every kind of model field, few of them: the per-field analysis costs seconds per field.
MIXED = features.DatasetSpec(name="mixed", integer_fields=("I1", "I2"), categorical_fields=("C1", "C2", "C3"),
                             hour_field="hour")


@pytest.fixture
def mixed_layout():
    features.DATASETS["mixed"] = MIXED
    yield "mixed"
    del features.DATASETS["mixed"]


def test_global_table_lines_are_the_global_ids_with_one_oov_line_per_field():
    """Field 0 keeps [b"a", b"b"] (ids 0, 1; OOV 2), field 1 keeps [b"x"] (id 3; OOV 4)."""
    lines = field_vocabularies.global_id_lines([[b"a", b"b"], [b"x"]])
    assert lines == [b"000\x1fa", b"000\x1fb", b"000\x1f", b"001\x1fx", b"001\x1f"]


def test_global_table_lines_split_back_into_each_fields_vocabulary():
    vocabularies = [[b"a", b"b"], [field_vocabularies.EMPTY_VOCABULARY_TOKEN], [b"x\x1fy"]]
    lines = field_vocabularies.global_id_lines(vocabularies)
    assert field_vocabularies.split_global_id_lines(lines, 3) == vocabularies
    with pytest.raises(ValueError, match="lacks the OOV line of field 2"):
        field_vocabularies.split_global_id_lines(lines[:-1], 3)
    with pytest.raises(ValueError, match="has field 2, the layout 2 fields"):
        field_vocabularies.split_global_id_lines(lines, 2)


def _generated(spec: features.DatasetSpec, rows: int, seed: int) -> list[dict]:
    """Rows in the raw feature layout (one value or none per field), skewed so that ties, rare values and missing
    values all occur: categorical values Zipf-distributed over 40 tokens, integers over [-3, 2000], Avazu hours over
    two weeks."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rows):
        row = {features.LABEL_KEY: [int(rng.integers(2))]}
        for field in spec.integer_fields:
            row[field] = [] if rng.random() < 0.2 else [int(rng.integers(-3, 2000) // rng.integers(1, 50))]
        for field in spec.categorical_fields:
            row[field] = [] if rng.random() < 0.1 else [f"v{min(int(rng.zipf(1.6)), 40)}".encode()]
        if spec.hour_field:
            row[spec.hour_field] = [14102100 + 100 * int(rng.integers(14)) + int(rng.integers(24))]
        out.append(row)
    return out


def _raw_spec(spec: features.DatasetSpec) -> dict:
    raw = {features.LABEL_KEY: tf.io.VarLenFeature(tf.int64)}
    raw.update({f: tf.io.VarLenFeature(tf.int64) for f in (*spec.integer_fields, *filter(None, [spec.hour_field]))})
    raw.update({f: tf.io.VarLenFeature(tf.string) for f in spec.categorical_fields})
    return raw


def _analyse_and_transform(dataset: str, analysis: str, rows: list[dict], tmp_path) -> tuple[list, str]:
    spec = features.get_dataset(dataset)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_raw_spec(spec)))
    fn = functools.partial(preprocessing.preprocessing_fn,
                           custom_config={"dataset": dataset, "vocabulary_analysis": analysis})
    output_dir = str(tmp_path / analysis)
    with tft_beam.Context(temp_dir=str(tmp_path / f"tmp_{analysis}")):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return [t[features.FEATURE_KEY].tolist() for t in transformed], output_dir


def test_one_pass_gives_the_per_field_analyzers_files_and_ids(mixed_layout, tmp_path):
    dataset = mixed_layout
    spec = features.get_dataset(dataset)
    train, unseen = _generated(spec, 1500, seed=3), _generated(spec, 200, seed=4)
    ids, one_pass_dir = _analyse_and_transform(dataset, "one_pass", train, tmp_path)
    expected_ids, per_field_dir = _analyse_and_transform(dataset, "per_field", train, tmp_path)
    assert ids == expected_ids
    one_pass, per_field = tft.TFTransformOutput(one_pass_dir), tft.TFTransformOutput(per_field_dir)
    vocabularies = data.field_vocabularies(one_pass, spec)
    for field in spec.model_fields:
        assert vocabularies[field] == list(per_field.vocabulary_by_name(features.vocabulary_name(field))), field
    assert data.field_vocabulary_sizes(one_pass, spec) == data.field_vocabulary_sizes(per_field, spec)
    assert one_pass.transformed_feature_spec() == per_field.transformed_feature_spec()
    assert one_pass.transformed_metadata.schema == per_field.transformed_metadata.schema
    # Serving: the saved graphs give the same ids to rows never analysed (unseen and rare values: OOV ids).
    batch = {name: _sparse(unseen, name, feature.dtype) for name, feature in _raw_spec(spec).items()}
    served = one_pass.transform_features_layer()(batch)[features.FEATURE_KEY].numpy()
    np.testing.assert_array_equal(served, per_field.transform_features_layer()(batch)[features.FEATURE_KEY].numpy())


def _sparse(rows: list[dict], name: str, dtype: tf.DType) -> tf.SparseTensor:
    indices = [[i, 0] for i, r in enumerate(rows) if r[name]]
    return tf.SparseTensor(indices=tf.constant(indices, tf.int64) if indices else tf.zeros([0, 2], tf.int64),
                           values=tf.constant([r[name][0] for r in rows if r[name]], dtype),
                           dense_shape=[len(rows), 1])
