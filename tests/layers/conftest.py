"""Shared helpers for the layer tests.

`assert_layer_roundtrip` is offered as a fixture (no import path needed):

    def test_roundtrip(assert_layer_roundtrip, tmp_path):
        assert_layer_roundtrip(lambda: MyLayer(3), inputs, tmp_path)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf

Structure = Any  # an array, or a list / dict of arrays


def _keras_inputs(inputs: Structure) -> Structure:
    if isinstance(inputs, dict):
        return {k: tf.keras.Input(shape=a.shape[1:], dtype=a.dtype, name=k)
                for k, a in inputs.items()}
    return tf.nest.map_structure(
        lambda a: tf.keras.Input(shape=a.shape[1:], dtype=a.dtype), inputs)


def _functional(layer: tf.keras.layers.Layer, inputs: Structure,
                call: Callable[[Any, Any], Any]) -> tf.keras.Model:
    symbolic = _keras_inputs(inputs)
    return tf.keras.Model(symbolic, call(layer, symbolic))


def _assert_same(actual: Any, expected: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-6,
                               atol=1e-6, err_msg=what)


def _assert_layer_roundtrip(layer_factory: Callable[[], Any],
                            inputs: Structure, tmp_path: Path,
                            call: Callable[[Any, Any], Any] | None = None
                            ) -> None:
    """Config, `.keras` and SavedModel round trips give identical outputs.

    Args:
        layer_factory: builds a fresh, unbuilt layer.
        inputs: NumPy inputs with a batch axis: an array, a list of arrays or
            a dict of arrays (dict keys become the Keras input names).
        tmp_path: a folder to save into.
        call: `call(layer, symbolic_inputs) -> outputs`; defaults to
            `layer(symbolic_inputs)`. Use it for keyword arguments.
    """
    call = call or (lambda layer, x: layer(x))
    tmp_path.mkdir(parents=True, exist_ok=True)
    layer = layer_factory()
    model = _functional(layer, inputs, call)
    expected = model(inputs, training=False).numpy()

    # get_config echoes every constructor argument; from_config gives the
    # same config and, with the same weights, the same outputs.
    config = layer.get_config()
    params = inspect.signature(type(layer).__init__).parameters
    missing = [p for p in params if p not in ("self", "kwargs")
               and p not in config]
    assert not missing, f"get_config lacks {missing}"
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone_model = _functional(clone, inputs, call)
    clone_model.set_weights(model.get_weights())
    _assert_same(clone_model(inputs, training=False), expected, "from_config")
    restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(restored) is type(layer)

    # Keras v3 file format.
    keras_path = tmp_path / "m.keras"
    model.save(keras_path)
    loaded = tf.keras.models.load_model(keras_path, compile=False)
    _assert_same(loaded(inputs, training=False), expected, ".keras")

    # TensorFlow SavedModel, through Keras and through plain TensorFlow.
    saved_dir = tmp_path / "saved_model"
    model.save(saved_dir, save_format="tf")
    loaded = tf.keras.models.load_model(saved_dir, compile=False)
    assert any(type(l) is type(layer) for l in loaded.layers)
    _assert_same(loaded(inputs, training=False), expected, "SavedModel/keras")
    tf_loaded = tf.saved_model.load(str(saved_dir))
    tensors = tf.nest.map_structure(tf.constant, inputs)
    _assert_same(tf_loaded(tensors, training=False), expected,
                 "SavedModel/tf")


@pytest.fixture(name="assert_layer_roundtrip")
def assert_layer_roundtrip_fixture() -> Callable[..., None]:
    return _assert_layer_roundtrip


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
