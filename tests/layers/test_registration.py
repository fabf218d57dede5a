"""Every public layer is exported and registered under "tfdsmlp"."""

import pytest

import tfdsmlp  # noqa: F401
import tensorflow as tf

import tfdsmlp.layers as layers

CLASSES = [getattr(layers, n) for n in layers.__all__
           if isinstance(getattr(layers, n), type)]


def test_all_ten_layers_are_exported():
    assert len(CLASSES) == 10


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_registered(cls):
    assert issubclass(cls, tf.keras.layers.Layer)
    name = f"tfdsmlp>{cls.__name__}"
    assert tf.keras.utils.get_registered_name(cls) == name
    assert tf.keras.utils.get_registered_object(name) is cls
