"""Every Keras layer the project registers round-trips through get_config / from_config (issue 10).

The registered layers are enumerated, not listed: every project module that registers a Keras object is imported
(found by its source text), then tf.keras' custom-object registry is filtered to classes defined in the project.
A registered layer without a sample in SAMPLES (or a reason in NOT_CONFIG_SERIALIZABLE) fails
`test_every_registered_layer_has_a_sample`, so a new layer cannot be forgotten.

Each sample builds the layer with non-default arguments and calls it once; the clone from its config must have the
same config and, after taking the original's weights (first set to random values, so no weight is at its
initialiser), give the same output on the same input.
"""
from __future__ import annotations

import dataclasses
import importlib
import pathlib
from typing import Any, Callable

import numpy as np
import pytest
import tensorflow as tf

keras = tf.keras

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("pipeline", "components", "transform", "trainer", "serving")
# Source text of a module that registers Keras objects (the decorator, or a direct registry write).
REGISTRATION_MARKERS = ("register_keras_serializable", "get_custom_objects")


def _import_registering_modules() -> list[str]:
    """Imports every project module whose source registers Keras objects; returns their names."""
    names = []
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if any(marker in text for marker in REGISTRATION_MARKERS):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                importlib.import_module(module)
                names.append(module)
    return names


REGISTERING_MODULES = _import_registering_modules()


def registered_project_layers() -> dict[str, type]:
    """{registered name ("package>Class"): class} of every Keras layer defined in a project package."""
    return {name: obj for name, obj in keras.utils.get_custom_objects().items()
            if isinstance(obj, type) and issubclass(obj, keras.layers.Layer)
            and obj.__module__.split(".")[0] in PROJECT_PACKAGES}


@dataclasses.dataclass(frozen=True)
class Sample:
    """A layer with non-default arguments and the call that builds it: layer(*inputs(), **kwargs)."""

    build: Callable[[], keras.layers.Layer]
    inputs: Callable[[], tuple[Any, ...]]
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


def _ids() -> tuple[tf.Tensor]:
    return (tf.constant([[0, 3, 6], [2, 5, 1]], tf.int64),)  # int64 [batch 2, fields 3], table size 7


def _fields() -> tuple[tf.Tensor]:
    return (tf.reshape(tf.range(24, dtype=tf.float32) / 10.0 - 1.0, [2, 3, 4]),)  # float32 [2, 3, 4]


def _vector(offset: float) -> tf.Tensor:
    return tf.reshape(tf.range(8, dtype=tf.float32) / 4.0 - offset, [2, 4])  # float32 [2, 4]


def _pair() -> tuple[tf.Tensor, tf.Tensor]:
    return _vector(1.0), _vector(0.5)


def _three() -> tuple[list[tf.Tensor]]:
    return ([_vector(1.0), _vector(0.5), -_vector(0.25)],)


def _import(module: str, name: str) -> type:
    return getattr(importlib.import_module(module), name)


# Registered name -> samples. The imports are lazy so that a renamed class fails its own sample, not collection.
SAMPLES: dict[str, list[Sample]] = {
    "fusionctr>FieldEmbedding": [Sample(
        lambda: _import("trainer.layers.field_embedding", "FieldEmbedding")(7, 3, init_std=0.1, l2=1e-3), _ids)],
    "fusionctr>FirstOrder": [Sample(
        lambda: _import("trainer.layers.first_order", "FirstOrder")(7, l2=1e-3, name="first_order_probe"), _ids)],
    "fusionctr>FactorizationMachine": [Sample(
        lambda: _import("trainer.layers.factorization_machine", "FactorizationMachine")(
            name="fm_probe", dtype="float64"), _fields)],
    "fusionctr>InnerProduct": [Sample(
        lambda: _import("trainer.layers.inner_product", "InnerProduct")(name="ipnn_probe", dtype="float64"),
        _fields)],
    "fusionctr>CompressedInteraction": [Sample(
        lambda: _import("trainer.layers.cin", "CompressedInteraction")((3, 2), activation="tanh", l2=1e-3),
        _fields)],
    "fusionctr>CrossLayer": [Sample(lambda: _import("trainer.layers.cross", "CrossLayer")(l2=1e-3), _pair)],
    "fusionctr>DeepLayer": [Sample(lambda: _import("trainer.layers.deep", "DeepLayer")(units=3, l2=1e-3),
                                   lambda: (_vector(1.0),))],
    "fusionctr>FullRankCross": [Sample(
        lambda: _import("trainer.layers.full_rank_cross", "FullRankCross")(l2=1e-3), _pair)],
    "fusionctr>ConcatFusion": [Sample(
        lambda: _import("trainer.layers.fusion_concat", "ConcatFusion")(l2=1e-3), _three)],
    "fusionctr>AttentionFusion": [Sample(
        lambda: _import("trainer.layers.fusion_attention", "AttentionFusion")(l2=1e-3), _three)],
    "fusionctr>ConnectionGate": [Sample(
        lambda: _import("trainer.layers.connection_gate", "ConnectionGate")(4, init_value=-0.25),
        lambda: ([_vector(1.0), _vector(0.5)],), {"row": 3})],
    "fusionctr>FusionNode": [
        Sample(lambda: _import("trainer.layers.fusion_node", "FusionNode")("search", l2=1e-3), _three),
        Sample(lambda: _import("trainer.layers.fusion_node", "FusionNode")(
            "soft", connections=[1, 0, 1], op_logits=[0.5, -1.0, 2.0, 0.25]), lambda: ([_vector(1.0), _vector(0.5)],)),
        Sample(lambda: _import("trainer.layers.fusion_node", "FusionNode")(  # op resolved from op_logits: attention
            "hard", connections=[1, 1, 0], op_logits=[0.5, -1.0, 0.25, 2.0], l2=1e-3),
            lambda: ([_vector(1.0), _vector(0.5)],)),
        Sample(lambda: _import("trainer.layers.fusion_node", "FusionNode")(  # fully pruned: pruned_bias only
            "hard", connections=[0, 0], op="concat"), lambda: ([_vector(1.0)],)),
        Sample(lambda: _import("trainer.layers.fusion_node", "FusionNode")("sum", connections=[1, 1]),
               lambda: ([_vector(1.0), _vector(0.5)],)),
    ],
}

# Registered layers that cannot round-trip through a config, and why. test_not_config_serializable_layers checks
# that each still has no get_config of its own: once it gets one, it needs a sample in SAMPLES instead.
NOT_CONFIG_SERIALIZABLE: dict[str, str] = {
    "fusionctr>GbdtLeafIds": "wraps a trained TF-DF model (a constructor argument that is no config value); it is "
                             "saved and served only inside a SavedModel (trainer/resfusion/models.py)",
}


@pytest.fixture(autouse=True)
def _clean_keras():
    keras.backend.clear_session()
    yield


def test_registering_modules_found():
    assert "trainer.layers.cross" in REGISTERING_MODULES, REGISTERING_MODULES
    assert "fusionctr>CrossLayer" in registered_project_layers()


def test_every_registered_layer_has_a_sample():
    registered = set(registered_project_layers())
    missing = sorted(registered - set(SAMPLES) - set(NOT_CONFIG_SERIALIZABLE))
    assert not missing, (f"registered Keras layer(s) {missing} have no sample construction: add one to SAMPLES in "
                         f"{pathlib.Path(__file__).relative_to(ROOT)} (non-default arguments and a small input)")
    stale = sorted((set(SAMPLES) | set(NOT_CONFIG_SERIALIZABLE)) - registered)
    assert not stale, f"SAMPLES / NOT_CONFIG_SERIALIZABLE name(s) {stale} that are not registered layers"


def test_not_config_serializable_layers():
    layers = registered_project_layers()
    for name, reason in NOT_CONFIG_SERIALIZABLE.items():
        assert "get_config" not in vars(layers[name]), (
            f"{name} now defines get_config; move it from NOT_CONFIG_SERIALIZABLE ({reason}) into SAMPLES")


def _call(layer: keras.layers.Layer, sample: Sample) -> list[np.ndarray]:
    outputs = layer(*sample.inputs(), **sample.kwargs)
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


@pytest.mark.parametrize("name, index", [pytest.param(name, i, id=f"{name.split('>')[-1]}-{i}")
                                         for name, samples in SAMPLES.items() for i in range(len(samples))])
def test_config_round_trip(name: str, index: int):
    sample = SAMPLES[name][index]
    layer = sample.build()
    assert keras.utils.get_registered_name(type(layer)) == name
    _call(layer, sample)  # builds the weights
    rng = np.random.default_rng(index)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()])
    expected = _call(layer, sample)
    config = layer.get_config()

    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.layers.deserialize(keras.layers.serialize(layer))  # through the registered name
    assert type(restored) is type(layer) and restored.get_config() == config

    _call(clone, sample)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    for got, want in zip(_call(clone, sample), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
