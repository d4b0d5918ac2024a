"""Input pipeline over Transform's output, and what the transformed schema says about the id space."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor
from tfx_bsl.public import tfxio

from transform import features


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


def field_vocabulary_sizes(tft_output: tft.TFTransformOutput, spec: features.DatasetSpec) -> dict[str, int]:
    """Ids per model field, its OOV id included, in `feature` order."""
    return {field: tft_output.vocabulary_size_by_name(features.vocabulary_name(field)) + 1
            for field in spec.model_fields}
