"""Tests for FusedBatchNorm: Keras' BatchNormalization outputs, fused, with
PyTorch's (unbiased) moving variance."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FusedBatchNorm

import numpy as np
import pytest
import tensorflow as tf


def _pair(x, **kwargs):
    ref = tf.keras.layers.BatchNormalization(**kwargs)
    fused = FusedBatchNorm(**kwargs)
    for layer in (ref, fused):
        layer.build(x.shape)
        layer.gamma.assign([1.0, 2.0, 0.5])
        layer.beta.assign([0.0, -1.0, 3.0])
    return ref, fused


def test_values_by_hand():
    # Column 0: (1, 3) -> mean 2, biased var 1; column 1: constant 4.
    x = np.array([[1.0, 4.0, 0.0], [3.0, 4.0, 2.0]], np.float32)
    layer = FusedBatchNorm(momentum=0.9, epsilon=1e-5)
    layer.build(x.shape)
    layer.gamma.assign([1.0, 2.0, 0.5])
    layer.beta.assign([0.0, -1.0, 3.0])
    y = layer(x, training=True).numpy()
    s = 1 / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(y, [[-s, -1, 3 - 0.5 * s], [s, -1, 3 + 0.5 * s]],
                               atol=1e-5)
    # moving = 0.9 * (0 | 1) + 0.1 * batch statistic; the variance is the
    # unbiased one (n / (n - 1) = 2 times the biased 1, 0, 1)
    np.testing.assert_allclose(layer.moving_mean, [0.2, 0.4, 0.1], atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, [1.1, 0.9, 1.1],
                               atol=1e-6)
    # inference uses the moving statistics
    expected = (x - [0.2, 0.4, 0.1]) / np.sqrt(
        np.array([1.1, 0.9, 1.1]) + 1e-5) * [1.0, 2.0, 0.5] + [0.0, -1.0, 3.0]
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-5)


def test_one_row_batch_keeps_finite_statistics():
    # n - 1 = 0: the moving variance must not become NaN (the batch
    # variance of one row is 0), the output is beta as in Keras' layer.
    layer = FusedBatchNorm(momentum=0.9, epsilon=1e-5)
    y = layer(np.array([[5.0, -2.0]], np.float32), training=True)
    np.testing.assert_allclose(y, [[0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(layer.moving_mean, [0.5, -0.2], atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance, [0.9, 0.9], atol=1e-6)


def test_matches_keras_layer_in_training_and_inference(rng):
    x = tf.constant(rng.normal(2.0, 3.0, size=(64, 3)).astype(np.float32))
    ref, fused = _pair(x, momentum=0.9, epsilon=1e-5)
    for _ in range(3):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y_ref = ref(x, training=True)
            y_fused = fused(x, training=True)
            loss_ref = tf.reduce_sum(y_ref ** 3)
            loss_fused = tf.reduce_sum(y_fused ** 3)
        np.testing.assert_allclose(y_fused, y_ref, atol=1e-5)
        for a, b in zip(tape.gradient(loss_fused, [x, fused.gamma, fused.beta]),
                        tape.gradient(loss_ref, [x, ref.gamma, ref.beta])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean, ref.moving_mean, rtol=1e-6)
    # from 1.0, three updates of momentum 0.9: Keras averages the biased
    # batch variance, FusedBatchNorm the unbiased one (x 64 / 63)
    kept = 0.9 ** 3
    np.testing.assert_allclose(
        fused.moving_variance,
        kept + (ref.moving_variance.numpy() - kept) * 64 / 63, rtol=1e-5)
    ref.moving_variance.assign(fused.moving_variance)
    np.testing.assert_allclose(fused(x, training=False),
                               ref(x, training=False), atol=1e-5)


def test_checkpoint_layout_is_keras_batch_norm(tmp_path):
    x = np.ones((4, 3), np.float32)
    ref, fused = _pair(x)
    ref.moving_mean.assign([1.0, 2.0, 3.0])
    path = tf.train.Checkpoint(bn=ref).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(bn=fused).restore(path).assert_consumed()
    np.testing.assert_allclose(fused.moving_mean, [1.0, 2.0, 3.0])
    assert [w.name for w in fused.weights] == [w.name for w in ref.weights]


@pytest.mark.parametrize("kwargs, match", [
    ({"axis": 1}, "axis"),
    ({"fused": False}, "fused"),
    ({"virtual_batch_size": 2}, "virtual_batch_size"),
    ({"momentum": 1.0}, "momentum"),
    ({"epsilon": 0.0}, "epsilon"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FusedBatchNorm(**kwargs)


def test_bad_input_rank():
    with pytest.raises(ValueError, match=r"\(batch, features\).*Received"):
        FusedBatchNorm()(np.ones((2, 3, 4), np.float32))


def test_roundtrip(assert_layer_roundtrip, tmp_path, rng):
    def factory():
        layer = FusedBatchNorm(momentum=0.9, epsilon=1e-5)
        layer.build((None, 4))
        layer.moving_mean.assign([0.5, -1.0, 2.0, 0.0])
        layer.moving_variance.assign([2.0, 0.5, 1.0, 4.0])
        return layer

    assert_layer_roundtrip(factory, rng.normal(size=(5, 4)).astype(np.float32),
                           tmp_path)


def _op_types(fn, x):
    return {op.type for op in
            tf.function(fn).get_concrete_function(x).graph.get_operations()}


def test_inference_is_elementwise_like_keras_2d(rng):
    # Training takes the fused kernel; inference (training=False, or a
    # frozen layer) the element-wise affine map of Keras' 2-D layer, which
    # is cheaper at serving batch sizes.
    x = tf.constant(rng.normal(size=(5, 3)).astype(np.float32))
    ref, fused = _pair(x, momentum=0.9, epsilon=1e-5)
    fused(x, training=True)
    ref.moving_mean.assign(fused.moving_mean)
    ref.moving_variance.assign(fused.moving_variance)
    assert "FusedBatchNormV3" in _op_types(
        lambda t: fused(t, training=True), x)
    assert "FusedBatchNormV3" not in _op_types(
        lambda t: fused(t, training=False), x)
    np.testing.assert_array_equal(fused(x, training=False),
                                  ref(x, training=False))
    fused.trainable = False  # frozen (a teacher): inference even if asked
    assert "FusedBatchNormV3" not in _op_types(
        lambda t: fused(t, training=True), x)
