"""Tests for MLPBlock."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import MLPBlock

import numpy as np
import pytest


def _x(rng):
    return rng.normal(size=(4, 5)).astype(np.float32)


def test_values_match_reference(rng):
    x = _x(rng)
    layer = MLPBlock([3, 2], output_dim=1, output_activation="sigmoid")
    layer(x)
    weights = [rng.normal(size=w.shape).astype(np.float32)
               for w in layer.get_weights()]
    layer.set_weights(weights)
    w1, b1, w2, b2, w3, b3 = weights
    h = np.maximum(x @ w1 + b1, 0)
    h = np.maximum(h @ w2 + b2, 0)
    expected = 1 / (1 + np.exp(-(h @ w3 + b3)))
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)
    assert layer.output_width == 1


def test_batch_norm_at_inference_matches_reference(rng):
    x = _x(rng)
    layer = MLPBlock([3], batch_norm=True, activation="tanh")
    layer(x)
    w, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, size=3)
    layer.set_weights([a.astype(np.float32)
                       for a in (w, b, gamma, beta, mean, var)])
    h = x @ w + b
    expected = np.tanh((h - mean) / np.sqrt(var + 1e-5) * gamma + beta)
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-5)
    bn = layer.block_layers[1]
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)  # PyTorch defaults
    assert layer.output_width == 3


def test_initialisers_and_dropout(rng):
    x = np.ones((64, 5), np.float32)
    layer = MLPBlock([200], dropout=0.5)
    out_eval = layer(x, training=False).numpy()
    out_train = layer(x, training=True).numpy()
    assert np.all(layer.block_layers[0].bias.numpy() == 0)
    assert "GlorotNormal" in type(
        layer.block_layers[0].kernel_initializer).__name__
    dropped = (out_train == 0) & (out_eval != 0)
    assert 0.3 < dropped.sum() / (out_eval != 0).sum() < 0.7
    kept = out_train != 0
    np.testing.assert_allclose(out_train[kept], 2 * out_eval[kept], rtol=1e-5)


def test_empty_hidden_units(rng):
    x = _x(rng)
    identity = MLPBlock([])
    assert identity.output_width is None
    np.testing.assert_array_equal(identity(x), x)
    assert identity.output_width == 5
    linear = MLPBlock([], output_dim=2)
    assert linear(x).shape == (4, 2) and linear.output_width == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"dropout": 1.5}, (r"^`dropout` should be in \[0, 1\)\. "
                       r"Received: `dropout=1\.5`$")),
    ({"dropout": -0.1}, r"`dropout=-0\.1`"),
    ({"hidden_units": [4, 0]}, r"`hidden_units=\[4, 0\]`"),
    ({"hidden_units": 4}, r"`hidden_units=4`"),
    ({"output_dim": 0}, r"`output_dim=0`"),
    ({"activation": "nope"}, r"`activation='nope'`"),
    ({"output_activation": "nope"}, r"`output_activation='nope'`"),
])
def test_bad_arguments(kwargs, match):
    kwargs = {"hidden_units": [4], **kwargs}
    with pytest.raises(ValueError, match=match):
        MLPBlock(**kwargs)


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(
        lambda: MLPBlock([4, 3], dropout=0.2, batch_norm=True, output_dim=1),
        _x(rng), tmp_path)
