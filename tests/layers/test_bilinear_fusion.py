"""Tests for BilinearFusion."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import BilinearFusion

import numpy as np
import pytest
import tensorflow as tf


def fusion_reference(x, y, num_heads, wx, bx, wy, by, w):
    """Loops per example and head: w_x.x + w_y.y + sum_h x_h^T W_h y_h."""
    hx, hy = x.shape[1] // num_heads, y.shape[1] // num_heads
    w = w.reshape(num_heads, hx, hy, -1)
    out = x @ wx + bx + y @ wy + by
    for b in range(x.shape[0]):
        for h in range(num_heads):
            xh, yh = x[b, h * hx:(h + 1) * hx], y[b, h * hy:(h + 1) * hy]
            for o in range(w.shape[-1]):
                out[b, o] += xh @ w[h, :, :, o] @ yh
    return out


@pytest.mark.parametrize("num_heads, output_dim", [(1, 1), (2, 3)])
def test_values_match_reference(rng, num_heads, output_dim):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y = rng.normal(size=(3, 6)).astype(np.float32)
    layer = BilinearFusion(num_heads=num_heads, output_dim=output_dim)
    layer([x, y])
    assert layer.bilinear_kernel.shape == (4 * 6 // num_heads, output_dim)
    for var in layer.weights:
        var.assign(rng.normal(size=var.shape))
    out = layer([x, y])
    assert out.shape == (3, output_dim)
    wx, bx = layer.x_dense.kernel.numpy(), layer.x_dense.bias.numpy()
    wy, by = layer.y_dense.kernel.numpy(), layer.y_dense.bias.numpy()
    expected = fusion_reference(x, y, num_heads, wx, bx, wy, by,
                                layer.bilinear_kernel.numpy())
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_heads": 0}, r"`num_heads=0`"),
    ({"output_dim": -1}, r"`output_dim=-1`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BilinearFusion(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"`num_heads=3` with x width 4 "
                                         r"and y width 6"):
        BilinearFusion(num_heads=3)([tf.zeros([2, 4]), tf.zeros([2, 6])])
    with pytest.raises(ValueError, match="two inputs"):
        BilinearFusion()(tf.zeros([2, 4]))


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    inputs = [rng.normal(size=(3, 4)).astype(np.float32),
              rng.normal(size=(3, 6)).astype(np.float32)]
    assert_layer_roundtrip(lambda: BilinearFusion(num_heads=2, output_dim=2),
                           inputs, tmp_path)
