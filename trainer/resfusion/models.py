"""ResFusion's Keras models: a deep stage trained on a fixed logit offset, and the fused serving model.

- `build_logit_model`: any registered network (trainer.models.registry.LOGIT_BUILDERS) as a model
  ids [B, F] -> logit y_D [B, 1].
- `build_offset_model`: the training model of a deep stage, {ids, offset} -> sigmoid(y_D + offset)
  (`build_offset_logit_model`: the same before the sigmoid, for the OptFusion stage's logit train step).
  The offset (the sum of every earlier stage's logit: for GBDTRes+NN the GBDT's logit y_gbdt) is an
  INPUT, so it is fixed and non-trainable by construction; the loss is plain BCE on the labels
  (algorithms.md §2.3: the GBDT score is a logit, and DeepFM learns an additive correction to it).
- `build_fused_model`: every stage in one graph, {ids, raw GBDT inputs} -> sigmoid(sum of stage logits),
  TF-DF models frozen inside (trainable = False). Its `stage_logits_model` attribute shares the layers and
  returns each stage's logit, for the `stage_logits` signature and for tests.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import tensorflow as tf

from trainer import contract
from trainer.config import ModelConfig, TrainConfig
from trainer.models import registry
from transform import features

keras = tf.keras

OFFSET_KEY = "offset"


def build_logit_model(network: str, model: ModelConfig, train: TrainConfig, num_fields: int, table_size: int,
                      name: str) -> tf.keras.Model:
    """ids int64 [B, F] -> logit float32 [B, 1] of a registered network."""
    try:
        builder = registry.LOGIT_BUILDERS[network]
    except KeyError:
        raise ValueError(f"unknown residual model {network!r}; choose one of {', '.join(registry.LOGIT_BUILDERS)}"
                         ) from None
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    return keras.Model(inputs=ids, outputs=builder(ids, table_size, model, train), name=name)


def build_offset_logit_model(logit_model: tf.keras.Model) -> tf.keras.Model:
    """{`feature`: ids [B, F], `offset`: float32 [B, 1]} -> logit_model(ids) + offset, float32 [B, 1].

    The offset is an input, so no gradient reaches it; the sum is float32 whatever the network's precision.
    """
    ids = keras.Input(shape=logit_model.input_shape[1:], dtype=tf.int64, name=features.FEATURE_KEY)
    offset = keras.Input(shape=(1,), dtype=tf.float32, name=OFFSET_KEY)
    logit = keras.layers.Add(name="logit_plus_offset", dtype="float32")([logit_model(ids), offset])
    return keras.Model(inputs={features.FEATURE_KEY: ids, OFFSET_KEY: offset}, outputs=logit,
                       name=f"{logit_model.name}_plus_offset")


def build_offset_model(logit_model: tf.keras.Model) -> tf.keras.Model:
    """{`feature`: ids [B, F], `offset`: float32 [B, 1]} -> sigmoid(logit_model(ids) + offset) [B, 1]."""
    with_offset = build_offset_logit_model(logit_model)
    return keras.Model(inputs=with_offset.input, outputs=contract.probability_output(with_offset.output),
                       name=f"{logit_model.name}_with_offset")


def stage_name(index: int, kind: str) -> str:
    """The name of stage `index` of `kind` ("gbdt" or "nn"), e.g. "stage_1_nn": its logit layer in the fused model,
    its `stage_logits` output and its record."""
    return f"stage_{index}_{kind}"


def build_fused_model(stages: Sequence[tuple[str, tf.keras.Model]], num_fields: int,
                      gbdt_signature: Mapping[str, tf.TensorSpec]) -> tf.keras.Model:
    """Every stage in one model: sigmoid(sum_s logit_s) [B, 1].

    Args:
        stages: (kind, model) in stage order; kind "nn": a logit model over ids, kind "gbdt": a TF-DF model
            over raw GBDT inputs (trainer.resfusion.gbdt) returning its raw score.
        num_fields: F, the width of the id vector.
        gbdt_signature: the GBDT inputs {name: TensorSpec([None], dtype)}.

    Inputs: {`feature`: int64 [B, F]} when a deep stage exists, the GBDT inputs (each [B]) when a GBDT
    stage exists. The attributes `needs_ids` and `needs_gbdt_inputs` say which.
    """
    if not stages:
        raise ValueError("a fused model needs at least one stage")
    inputs: dict[str, tf.keras.KerasTensor] = {}
    ids: Any = None
    raw: dict[str, Any] | None = None
    if any(kind == "nn" for kind, _ in stages):
        ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
        inputs[features.FEATURE_KEY] = ids
    if any(kind == "gbdt" for kind, _ in stages):
        raw = {name: keras.Input(shape=(), dtype=s.dtype, name=name) for name, s in gbdt_signature.items()}
        inputs.update(raw)
    logits = {}
    for index, (kind, model) in enumerate(stages):
        model.trainable = False
        name = stage_name(index, kind)
        output = model(dict(raw or {})) if kind == "gbdt" else model(ids)
        output = keras.layers.Reshape((1,), name=f"{name}_reshape")(output)
        logits[name] = keras.layers.Activation("linear", dtype="float32", name=name)(output)
    total = keras.layers.Add(name="logit")(list(logits.values())) if len(logits) > 1 else next(iter(logits.values()))
    fused = keras.Model(inputs=inputs, outputs=contract.probability_output(total), name="resfusion")
    fused.stage_logits_model = keras.Model(inputs=inputs, outputs=logits, name="resfusion_stage_logits")
    fused.needs_ids = ids is not None
    fused.needs_gbdt_inputs = raw is not None
    return fused


# --- Table 2 comparators (trainer/resfusion/comparators.py) ------------------------------------------------------

@keras.utils.register_keras_serializable(package="fusionctr")
class GbdtLeafIds(tf.keras.layers.Layer):
    """The active leaf of every tree of a TF-DF model as global ids: leaf + tree * max_leaves, int64 [B, T].

    Args:
        forest: a trained TF-DF Keras model (frozen).
        num_trees: T.
        max_leaves: an upper bound of the leaves of one tree (2^max_depth).
    """

    def __init__(self, forest: tf.keras.Model, num_trees: int, max_leaves: int, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.forest = forest
        self.num_trees = num_trees
        self.max_leaves = max_leaves
        forest._ensure_model_get_leaves_ready()  # pylint: disable=protected-access  (builds the leaf op)

    def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """Raw GBDT inputs {name: [B]} -> global leaf ids int64 [B, T]."""
        leaves = tf.cast(self.forest.call_get_leaves(dict(inputs)), tf.int64)
        return leaves + tf.range(self.num_trees, dtype=tf.int64)[None, :] * self.max_leaves


def _raw_inputs(gbdt_signature: Mapping[str, tf.TensorSpec]) -> dict[str, tf.keras.KerasTensor]:
    return {name: keras.Input(shape=(), dtype=s.dtype, name=name) for name, s in gbdt_signature.items()}


def _finish(inputs, logits: dict, total, name: str, needs_ids: bool) -> tf.keras.Model:
    model = keras.Model(inputs=inputs, outputs=contract.probability_output(total), name=name)
    model.stage_logits_model = keras.Model(inputs=inputs, outputs=logits, name=f"{name}_stage_logits")
    model.needs_ids = needs_ids
    model.needs_gbdt_inputs = True
    return model


def build_gbdt_lr_model(forest: tf.keras.Model, lr_logit: tf.keras.Model, num_trees: int, max_leaves: int,
                        gbdt_signature: Mapping[str, tf.TensorSpec]) -> tf.keras.Model:
    """GBDT+LR (He et al. 2014): raw inputs -> leaf ids [B, T] -> logistic regression on their one-hot."""
    raw = _raw_inputs(gbdt_signature)
    forest.trainable = False
    leaves = GbdtLeafIds(forest, num_trees, max_leaves, name="gbdt_leaves")(raw)
    logit = keras.layers.Activation("linear", dtype="float32", name="lr")(lr_logit(leaves))
    return _finish(raw, {"lr": logit}, logit, "gbdt_lr", needs_ids=False)


def build_feature_fusion_model(forest: tf.keras.Model, logit_model: tf.keras.Model, boundaries: Sequence[float],
                               table_size: int, num_fields: int, gbdt_signature: Mapping[str, tf.TensorSpec],
                               name: str) -> tf.keras.Model:
    """GBDT2DNN / GBDT2DeepFM: the GBDT's logit, bucketised, is one more categorical field of the network.

    ids' = [ids, table_size + bucket(gbdt logit)] (len(boundaries) + 1 buckets) -> logit_model.
    """
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    raw = _raw_inputs(gbdt_signature)
    forest.trainable = False
    gbdt_logit = keras.layers.Reshape((1,), name="gbdt_logit")(forest(dict(raw)))
    bucket = keras.layers.Discretization(bin_boundaries=list(boundaries), output_mode="int",
                                         name="gbdt_bucket")(gbdt_logit)
    bucket_id = keras.layers.Lambda(lambda b: tf.cast(b, tf.int64) + table_size, name="gbdt_bucket_id")(bucket)
    all_ids = keras.layers.Concatenate(axis=1, name="ids_with_gbdt")([ids, bucket_id])
    logit = keras.layers.Activation("linear", dtype="float32", name="network")(logit_model(all_ids))
    gbdt_out = keras.layers.Activation("linear", dtype="float32", name="gbdt_feature")(gbdt_logit)
    return _finish({features.FEATURE_KEY: ids, **raw}, {"gbdt_feature": gbdt_out, "network": logit}, logit, name,
                   needs_ids=True)


def build_ensemble_model(forest: tf.keras.Model, logit_model: tf.keras.Model, weights: Sequence[float], bias: float,
                         num_fields: int, gbdt_signature: Mapping[str, tf.TensorSpec]) -> tf.keras.Model:
    """GBDT+DeepFM: an output-level ensemble, sigmoid(a * y_gbdt + b * y_D + c), with learned fixed weights."""
    ids = keras.Input(shape=(num_fields,), dtype=tf.int64, name=features.FEATURE_KEY)
    raw = _raw_inputs(gbdt_signature)
    forest.trainable = False
    logit_model.trainable = False
    gbdt_logit = keras.layers.Activation("linear", dtype="float32", name="gbdt")(
        keras.layers.Reshape((1,))(forest(dict(raw))))
    deep_logit = keras.layers.Activation("linear", dtype="float32", name="deep")(logit_model(ids))
    combine = keras.layers.Dense(1, trainable=False, name="ensemble_weights")
    total = combine(keras.layers.Concatenate(axis=1)([gbdt_logit, deep_logit]))
    combine.set_weights([tf.constant([[weights[0]], [weights[1]]], tf.float32).numpy(),
                         tf.constant([bias], tf.float32).numpy()])
    return _finish({features.FEATURE_KEY: ids, **raw}, {"gbdt": gbdt_logit, "deep": deep_logit}, total,
                   "gbdt_plus_deep", needs_ids=True)
