"""Every public layer is exported, registered under "tfdsmlp", and creates
all its weights in `build(shape)` (what Keras' loaders call)."""

import tfdsmlp  # noqa: F401
import tfdsmlp.layers as L

import numpy as np
import pytest
import tensorflow as tf

CLASSES = [getattr(L, n) for n in L.__all__ if isinstance(getattr(L, n), type)]


def test_all_eleven_layers_are_exported():
    assert len(CLASSES) == 11


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_registered(cls):
    assert issubclass(cls, tf.keras.layers.Layer)
    name = f"tfdsmlp>{cls.__name__}"
    assert tf.keras.utils.get_registered_name(cls) == name
    assert tf.keras.utils.get_registered_object(name) is cls


def _ones(*shape, dtype=np.float32):
    return np.ones((2,) + shape, dtype)


FIELDS = {"ids": _ones(2, dtype=np.int64), "dense": _ones(1)}
BUILD_CASES = {
    "FeatureEmbedding": (lambda: L.FeatureEmbedding([3, 4], 1, 2), FIELDS),
    "LinearTerm": (lambda: L.LinearTerm([3, 4], 1), FIELDS),
    "MLPBlock": (lambda: L.MLPBlock([3], batch_norm=True, output_dim=1),
                 _ones(4)),
    "GatedCrossNetwork": (lambda: L.GatedCrossNetwork(2), _ones(4)),
    "CrossNetwork": (lambda: L.CrossNetwork(2), _ones(4)),
    "CrossNetwork-gated": (lambda: L.CrossNetwork(2, "gated"), _ones(4)),
    "CIN": (lambda: L.CompressedInteractionNetwork([2, 3]), _ones(3, 4)),
    "MultiHeadSelfAttention": (
        lambda: L.MultiHeadSelfAttention(4, 2, layer_norm=True), _ones(3, 2)),
    "FeatureSelectionGate": (lambda: L.FeatureSelectionGate([3]), _ones(4)),
    "BilinearFusion": (lambda: L.BilinearFusion(2), [_ones(4), _ones(6)]),
    "FactorizationMachine": (L.FactorizationMachine, _ones(3, 4)),
    "FusedBatchNorm": (L.FusedBatchNorm, _ones(4)),
}


@pytest.mark.parametrize("factory, inputs", BUILD_CASES.values(),
                         ids=BUILD_CASES.keys())
def test_build_creates_every_weight(factory, inputs):
    shapes = tf.nest.map_structure(lambda a: (None,) + a.shape[1:], inputs)
    built = factory()
    built.build(shapes)
    called = factory()
    called(inputs)
    def summary(layer):  # layer names differ (`dense_1` ...), not the rest
        return [(w.name.split("/")[-1], w.shape) for w in layer.weights]

    assert summary(built) == summary(called)
