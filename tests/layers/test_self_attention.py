"""Tests for MultiHeadSelfAttention."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import MultiHeadSelfAttention

import numpy as np
import pytest


def attention_reference(x, wq, wk, wv, num_heads, use_scale, w_res=None,
                        residual=True, layer_norm=False):
    batch, fields, _ = x.shape
    dim = wq.shape[1]
    head = dim // num_heads
    out = np.zeros((batch, fields, dim))
    for h in range(num_heads):
        cols = slice(h * head, (h + 1) * head)
        q, k, v = x @ wq[:, cols], x @ wk[:, cols], x @ wv[:, cols]
        scores = q @ k.transpose(0, 2, 1)
        if use_scale:
            scores /= np.sqrt(head)
        a = np.exp(scores - scores.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        out[..., cols] = a @ v
    if residual:
        out += x @ w_res if w_res is not None else x
    if layer_norm:
        mean, var = out.mean(-1, keepdims=True), out.var(-1, keepdims=True)
        out = (out - mean) / np.sqrt(var + 1e-5)
    return np.maximum(out, 0)


def _x(rng, dim=3):
    return rng.normal(size=(2, 4, dim)).astype(np.float32)


def test_projected_residual_scale_and_layer_norm(rng):
    x = _x(rng)
    layer = MultiHeadSelfAttention(4, num_heads=2, use_scale=True,
                                   layer_norm=True)
    out = layer(x)
    assert out.shape == (2, 4, 4)
    wq, wk, wv, w_res = (layer.query.kernel, layer.key.kernel,
                         layer.value.kernel, layer.residual.kernel)
    assert len(layer.trainable_weights) == 6  # 4 kernels + LN gamma, beta
    expected = attention_reference(x, wq.numpy(), wk.numpy(), wv.numpy(), 2,
                                   True, w_res=w_res.numpy(), layer_norm=True)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_identity_residual_without_scale(rng):
    x = _x(rng, dim=4)
    layer = MultiHeadSelfAttention(4, num_heads=1, dropout=0.5)
    out = layer(x, training=False)
    assert layer.residual is None and len(layer.trainable_weights) == 3
    expected = attention_reference(x, layer.query.kernel.numpy(),
                                   layer.key.kernel.numpy(),
                                   layer.value.kernel.numpy(), 1, False)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    no_res = MultiHeadSelfAttention(4, num_heads=4, use_residual=False)
    out = no_res(x)
    expected = attention_reference(x, no_res.query.kernel.numpy(),
                                   no_res.key.kernel.numpy(),
                                   no_res.value.kernel.numpy(), 4, False,
                                   residual=False)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_dropout_on_attention_weights_in_training(rng):
    x = _x(rng, dim=4)
    layer = MultiHeadSelfAttention(4, dropout=0.5)
    assert not np.allclose(layer(x, training=True), layer(x, training=False))


@pytest.mark.parametrize("kwargs, match", [
    ({"attention_dim": 10, "num_heads": 3},
     r"`attention_dim=10`, `num_heads=3`"),
    ({"attention_dim": 0}, r"`attention_dim=0`"),
    ({"attention_dim": 4, "num_heads": 0}, r"`num_heads=0`"),
    ({"attention_dim": 4, "dropout": 1.0}, r"`dropout=1\.0`"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiHeadSelfAttention(**kwargs)


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    assert_layer_roundtrip(
        lambda: MultiHeadSelfAttention(4, num_heads=2, dropout=0.1,
                                       use_scale=True, layer_norm=True),
        _x(rng), tmp_path)
