"""One embedding table shared by all fields, indexed by global feature ids."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

keras = tf.keras


REFERENCE_INIT_STD = 0.01  # the reference's emb_std: embeddings start as Normal(0, 0.01)


@keras.utils.register_keras_serializable(package="fusionctr")
class FieldEmbedding(tf.keras.layers.Layer):
    """Looks up global feature ids in one table: ids [batch, fields] -> [batch, fields, dim].

    The ids are global (each field owns a contiguous id range, see transform/preprocessing.py), so
    a single table serves every field, as in the OptFusion reference. The table is initialised
    Normal(0, `init_std`) (reference: emb_std = 0.01).

    Args:
        table_size: int, number of rows (largest global id + 1).
        embedding_dim: int, embedding width per field.
        init_std: float, standard deviation of the normal initialiser. Defaults to 0.01.
        l2: float, coupled L2 coefficient lambda as in PyTorch Adam's weight_decay: the gradient of the
            penalty is lambda * w for every row of the table, so the Keras regulariser is lambda / 2.
            Defaults to 0.
    """

    def __init__(self, table_size: int, embedding_dim: int, init_std: float = REFERENCE_INIT_STD, l2: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if table_size <= 0 or embedding_dim <= 0:
            raise ValueError(f"table_size and embedding_dim must be positive, got {table_size} and {embedding_dim}")
        self.table_size = table_size
        self.embedding_dim = embedding_dim
        self.init_std = init_std
        self.l2 = l2

    def build(self, input_shape: tf.TensorShape) -> None:
        """Creates embeddings (table_size, embedding_dim), Normal(0, init_std); L2 regulariser λ/2 when l2 > 0."""
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.table_size, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.init_std),
            regularizer=keras.regularizers.L2(self.l2 / 2.0) if self.l2 else None,
        )
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """ids: int [batch, fields] -> float [batch, fields, embedding_dim]."""
        return tf.cast(tf.gather(self.embeddings, tf.cast(ids, tf.int32)), self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        """Adds table_size, embedding_dim, init_std and l2."""
        return {**super().get_config(), "table_size": self.table_size, "embedding_dim": self.embedding_dim,
                "init_std": self.init_std, "l2": self.l2}
