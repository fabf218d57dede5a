"""Tests for FeatureSelectionGate."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FeatureSelectionGate

import numpy as np
import pytest


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_bias_context_starts_as_identity_and_matches_reference(rng):
    x = rng.normal(size=(2, 6)).astype(np.float32)
    layer = FeatureSelectionGate([4], context_dim=3)
    np.testing.assert_allclose(layer(x), x, atol=1e-6)  # gate = 2*sigmoid(0)
    assert layer.context_bias.shape == (1, 3)
    for var in layer.weights:
        var.assign(rng.normal(size=var.shape))
    ctx = layer.context_bias.numpy()
    w1, b1, w2, b2 = [v.numpy() for v in layer.gate_mlp.weights]
    gate = 2 * _sigmoid(np.maximum(ctx @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(layer(x), x * gate, atol=1e-5)


def test_context_matches_reference_and_has_no_bias_vector(rng):
    x = rng.normal(size=(2, 6)).astype(np.float32)
    ctx = rng.normal(size=(2, 5)).astype(np.float32)
    layer = FeatureSelectionGate([], context_dim=3)
    out = layer(x, context=ctx)
    assert out.shape == (2, 6)
    assert layer.context_bias is None and len(layer.weights) == 2
    w, b = [v.numpy() for v in layer.gate_mlp.weights]
    np.testing.assert_allclose(out, x * 2 * _sigmoid(ctx @ w + b), atol=1e-5)
    with pytest.raises(ValueError, match="pass one again"):
        layer(x)
    no_ctx = FeatureSelectionGate([2])
    no_ctx(x)
    with pytest.raises(ValueError, match="cannot take one"):
        no_ctx(x, context=ctx)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_units": [0]}, r"`hidden_units=\[0\]`"),
    ({"hidden_units": [4], "context_dim": 0}, r"`context_dim=0`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureSelectionGate(**kwargs)


def test_roundtrip_without_context(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(lambda: FeatureSelectionGate([4], context_dim=3),
                           rng.normal(size=(2, 6)).astype(np.float32),
                           tmp_path)


def test_roundtrip_with_context(assert_layer_roundtrip, tmp_path, rng):
    inputs = [rng.normal(size=(2, 6)).astype(np.float32),
              rng.normal(size=(2, 5)).astype(np.float32)]
    assert_layer_roundtrip(lambda: FeatureSelectionGate([4]), inputs,
                           tmp_path, call=lambda layer, s: layer(
                               s[0], context=s[1]))


@pytest.mark.parametrize("uses_context, num_weights", [(True, 0), (False, 3)])
def test_uses_context_in_config_decides_before_any_call(uses_context,
                                                         num_weights):
    # What Keras' SavedModel loader does: from_config, then build(shape).
    layer = FeatureSelectionGate.from_config(
        {"hidden_units": [], "uses_context": uses_context})
    layer.build((None, 6))  # the context width is unknown until a call
    assert (layer.context_bias is None) == uses_context
    assert len(layer.weights) == num_weights
    assert layer.get_config()["uses_context"] is uses_context
