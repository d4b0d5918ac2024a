"""Input pipeline over Transform's output, and what the transformed schema says about the id space."""
from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor
from tfx_bsl.public import tfxio

from transform import features
from transform import field_vocabularies as field_vocabularies_io


def make_dataset(file_pattern: list[str], data_accessor: DataAccessor, tft_output: tft.TFTransformOutput,
                 batch_size: int, shuffle: bool, seed: int | None = None) -> tf.data.Dataset:
    """One pass over transformed examples as ({`feature`: [batch, fields]}, label [batch, 1]) batches."""
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=features.LABEL_KEY, num_epochs=1,
                                       shuffle=shuffle, shuffle_seed=seed),
        tft_output.transformed_metadata.schema,
    ).map(lambda x, y: ({features.FEATURE_KEY: x[features.FEATURE_KEY]}, y))


def id_space(tft_output: tft.TFTransformOutput) -> tuple[int, int]:
    """(number of fields, embedding table size) recorded by Transform in the transformed schema."""
    schema = tft_output.transformed_metadata.schema
    feature = next(f for f in schema.feature if f.name == features.FEATURE_KEY)
    if not feature.int_domain.HasField("max"):
        raise ValueError("the transformed schema gives no id range for `feature`; re-run Transform")
    return feature.shape.dim[0].size, feature.int_domain.max + 1


def field_vocabularies(tft_output: tft.TFTransformOutput, spec: features.DatasetSpec) -> dict[str, list[bytes]]:
    """{model field: its vocabulary's tokens in id order} of a Transform output (transform.field_vocabularies)."""
    assets = os.path.join(tft_output.transform_savedmodel_dir, tf.saved_model.ASSETS_DIRECTORY)
    fields = spec.model_fields
    vocabularies = field_vocabularies_io.read_field_vocabularies(assets, [features.vocabulary_name(f) for f in fields])
    return dict(zip(fields, vocabularies))


def field_vocabulary_sizes(tft_output: tft.TFTransformOutput, spec: features.DatasetSpec) -> dict[str, int]:
    """Ids per model field, its OOV id included, in `feature` order."""
    return {field: len(tokens) + 1 for field, tokens in field_vocabularies(tft_output, spec).items()}
