"""Tests for GatedCrossNetwork."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import GatedCrossNetwork

import numpy as np
import pytest
import tensorflow as tf


def gated_cross_reference(x0, kernels, gate_kernels, biases):
    x = x0
    for w, wg, b in zip(kernels, gate_kernels, biases):
        x = x0 * (x @ w + b) * (1 / (1 + np.exp(-(x @ wg)))) + x
    return x


def test_values_match_reference(rng):
    x0 = rng.normal(size=(3, 4)).astype(np.float32)
    layer = GatedCrossNetwork(num_layers=2)
    layer(x0)
    assert len(layer.trainable_weights) == 6
    assert all(0 <= b.numpy().min() and b.numpy().max() < 1
               for b in layer.biases)  # uniform(0, 1) initialised
    for var in layer.weights:
        var.assign(0.5 * rng.normal(size=var.shape))
    expected = gated_cross_reference(
        x0, *[[v.numpy() for v in vs] for vs in
              (layer.kernels, layer.gate_kernels, layer.biases)])
    out = layer(x0)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("num_layers", [0, -1, 2.0, True])
def test_bad_num_layers(num_layers):
    with pytest.raises(ValueError, match=f"`num_layers={num_layers!r}`"):
        GatedCrossNetwork(num_layers)


def test_rejects_non_flat_input():
    with pytest.raises(ValueError, match="ndim=2"):
        GatedCrossNetwork(1)(tf.zeros([2, 3, 4]))


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(lambda: GatedCrossNetwork(2),
                           rng.normal(size=(3, 4)).astype(np.float32),
                           tmp_path)
