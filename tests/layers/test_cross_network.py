"""Tests for CrossNetwork."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import CrossNetwork, GatedCrossNetwork

import numpy as np
import pytest


def _x0(rng):
    return rng.normal(size=(3, 4)).astype(np.float32)


def test_dcnv2_values_match_reference(rng):
    x0 = _x0(rng)
    layer = CrossNetwork(num_layers=2)
    layer(x0)
    weights = [rng.normal(size=w.shape).astype(np.float32)
               for w in layer.get_weights()]
    layer.set_weights(weights)
    x = x0
    for w, b in zip(weights[::2], weights[1::2]):
        x = x0 * (x @ w + b) + x
    out = layer(x0)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, x, atol=1e-4)
    dense = layer.cross_layers[0]._dense
    assert type(dense.kernel_initializer).__name__ == "GlorotNormal"


def test_initial_dcnv2_bias_is_zero(rng):
    layer = CrossNetwork(num_layers=3)
    layer(_x0(rng))
    assert len(layer.trainable_weights) == 6
    assert all(np.all(w == 0) for w in layer.get_weights()[1::2])


def test_gated_delegates_to_gated_cross_network(rng):
    x0 = _x0(rng)
    layer = CrossNetwork(num_layers=2, cross_type="gated")
    layer(x0)
    reference = GatedCrossNetwork(2)
    reference(x0)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x0), reference(x0), atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, r"`num_layers=0`"),
    ({"num_layers": 2, "cross_type": "dcn"},
     r"\['dcnv2', 'gated'\]\. Received: `cross_type='dcn'`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossNetwork(**kwargs)


@pytest.mark.parametrize("cross_type", ["dcnv2", "gated"])
def test_roundtrip(assert_layer_roundtrip, tmp_path, rng, cross_type):
    assert_layer_roundtrip(lambda: CrossNetwork(2, cross_type=cross_type),
                           _x0(rng), tmp_path)
