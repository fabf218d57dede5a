"""Tests for CompressedInteractionNetwork."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import CompressedInteractionNetwork

import numpy as np
import pytest
import tensorflow as tf


def cin_reference(x0, kernels, biases):
    """Loops: x_k[j] = c[j] + sum_{h,i} W[h*m+i, j] x_{k-1}[h] * x0[i]."""
    batch, m, d = x0.shape
    x, pooled = x0, []
    for w, c in zip(kernels, biases):
        nxt = np.zeros((batch, w.shape[1], d))
        for b in range(batch):
            for j in range(w.shape[1]):
                nxt[b, j] = c[j]
                for h in range(x.shape[1]):
                    for i in range(m):
                        nxt[b, j] += w[h * m + i, j] * x[b, h] * x0[b, i]
        x = nxt
        pooled.append(x.sum(axis=-1))
    return np.concatenate(pooled, axis=-1)


def test_values_match_reference(rng):
    x0 = rng.normal(size=(2, 3, 4)).astype(np.float32)
    layer = CompressedInteractionNetwork([2, 3])
    layer(x0)
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(9, 2), (2,), (6, 3), (3,)]
    assert all(np.all(b.numpy() == 0) for b in layer.biases)
    for var in layer.weights:
        var.assign(rng.normal(size=var.shape))
    out = layer(x0)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(
        out, cin_reference(x0, [k.numpy() for k in layer.kernels],
                           [b.numpy() for b in layer.biases]),
        rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("layer_sizes, match", [
    ([], r"`layer_sizes` should not be empty\. Received: `layer_sizes=\[\]`"),
    ([4, 0], r"`layer_sizes=\[4, 0\]`"),
])
def test_bad_arguments(layer_sizes, match):
    with pytest.raises(ValueError, match=match):
        CompressedInteractionNetwork(layer_sizes)


def test_rejects_flat_input():
    with pytest.raises(ValueError, match="ndim=3"):
        CompressedInteractionNetwork([2])(tf.zeros([2, 6]))


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(lambda: CompressedInteractionNetwork([2, 3]),
                           rng.normal(size=(2, 3, 4)).astype(np.float32),
                           tmp_path)
