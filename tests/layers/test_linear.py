"""Tests for LinearTerm."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import LinearTerm

import numpy as np
import pytest
import tensorflow as tf

INPUTS = {"ids": np.array([[1, 0], [2, 3]], np.int64),
          "dense": np.array([[0.5], [2.0]], np.float32)}


def test_values_match_reference(rng):
    layer = LinearTerm([3, 4], num_numeric=1)
    layer(INPUTS)
    w = rng.normal(size=(7, 1)).astype(np.float32)
    u = rng.normal(size=(1, 1)).astype(np.float32)
    layer.weights_layer.embeddings.assign(w)
    layer.weights_layer.numeric_embeddings.assign(u)
    layer.bias.assign([0.25])
    out = layer(INPUTS)
    ids, x = INPUTS["ids"], INPUTS["dense"]
    expected = np.array([
        [0.25 + w[1, 0] + 0.0 + x[0, 0] * u[0, 0]],  # id 0 contributes 0
        [0.25 + w[2, 0] + w[3 + 3, 0] + x[1, 0] * u[0, 0]],
    ])
    assert out.shape == (2, 1)
    assert ids[0, 1] == 0
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_initial_bias_is_zero_and_l2_loss():
    layer = LinearTerm([3, 4], num_numeric=1, embedding_l2=0.2)
    layer(INPUTS)
    assert float(layer.bias[0]) == 0.0
    weights = np.concatenate([layer.weights_layer.embeddings.numpy().ravel(),
                              layer.weights_layer.numeric_embeddings.numpy()
                              .ravel()])
    np.testing.assert_allclose(float(tf.add_n(layer.losses)),
                               0.1 * np.sum(weights.astype(np.float64) ** 2),
                               rtol=1e-6)
    assert len(layer.trainable_weights) == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"vocab_sizes": [3, 1]}, r"`vocab_sizes=\[3, 1\]`"),
    ({"vocab_sizes": [3], "num_numeric": 1.5}, r"`num_numeric=1.5`"),
    ({"vocab_sizes": [3], "embedding_l2": -1}, r"`embedding_l2=-1`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearTerm(**kwargs)


def test_missing_dense_input():
    with pytest.raises(ValueError, match="'dense'"):
        LinearTerm([3, 4], num_numeric=1)({"ids": INPUTS["ids"]})


def test_roundtrip(assert_layer_roundtrip, tmp_path):
    assert_layer_roundtrip(
        lambda: LinearTerm([3, 4], num_numeric=1, embedding_l2=0.1),
        INPUTS, tmp_path)
