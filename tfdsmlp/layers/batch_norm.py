"""Batch normalisation of [batch, features] tensors on the fused kernel."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FusedBatchNorm(tf.keras.layers.BatchNormalization):
    """`tf.keras.layers.BatchNormalization` of 2-D inputs, run fused.

    For inputs `x` of shape `(n, d)` (a batch of n rows), per feature `j`:

    ```
    training:  y_j = gamma_j * (x_j - mean(x_j)) / sqrt(var(x_j) + eps)
                     + beta_j
               moving_mean_j     <- m * moving_mean_j + (1 - m) * mean(x_j)
               moving_variance_j <- m * moving_variance_j
                                    + (1 - m) * var(x_j) * n / max(n - 1, 1)
    inference: y_j = gamma_j * (x_j - moving_mean_j)
                     / sqrt(moving_variance_j + eps) + beta_j
    ```

    with `var` the biased batch variance and `m = momentum`. The outputs
    and gradients are those of Keras' layer; the moving variance averages
    the unbiased batch variance, as PyTorch's `BatchNorm1d` (so FuxiCTR)
    does, where Keras' 2-D layer averages the biased one (a factor
    n / (n - 1): 1.0002 at batch 4096). Weights and checkpoint layout are
    Keras' (`gamma`, `beta`, `moving_mean`, `moving_variance`).

    Why: Keras only runs its fused kernel (`FusedBatchNormV3`, one op
    forward and one backward) on 4-D/5-D inputs and falls back to about ten
    element-wise ops for 2-D ones, which makes batch norm a quarter of an
    MLP's training step on a CPU; in training this layer views `(n, d)` as
    `(n, 1, 1, d)` and takes the fused path (measured forward + backward at
    4096 x 400 on 2 CPU cores: 5.6 ms -> 3.7 ms). Inference (`training`
    False, or the layer not trainable) stays element-wise
    (`tf.nn.batch_normalization`, what Keras' 2-D layer runs): there the
    fused op only adds a fixed cost, which slowed batch-1 serving. It
    keeps the kernel's unbiased moving variance because converting it to
    Keras' biased one divides by n - 1, which turns the moving variance
    into NaN on a one-row training batch.

    Args:
        momentum: float. Moving-average momentum, in [0, 1). Defaults to
            `0.99` (Keras' default; `MLPBlock` passes PyTorch's `0.9`).
        epsilon: float > 0. Variance epsilon. Defaults to `1e-3`.
        **kwargs: the other `BatchNormalization` arguments, except `axis`
            (always the last), `fused`, `renorm*` and `virtual_batch_size`,
            which the fused 2-D path does not support.

    Example:

    ```python
    bn = FusedBatchNorm(momentum=0.9, epsilon=1e-5)
    y = bn(tf.random.normal([8, 4]), training=True)  # (8, 4)
    ```
    """

    _UNSUPPORTED = ("axis", "fused", "renorm", "renorm_clipping",
                    "renorm_momentum", "virtual_batch_size", "adjustment")

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3,
                 **kwargs: Any) -> None:
        for key in self._UNSUPPORTED:
            if key in kwargs:
                raise ValueError(f"`FusedBatchNorm` does not take `{key}` "
                                 f"(it normalises the last axis, fused). "
                                 f"Received: `{key}={kwargs[key]!r}`")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"`momentum` should be in [0, 1). Received: "
                             f"`momentum={momentum!r}`")
        if not float(epsilon) > 0.0:
            raise ValueError(f"`epsilon` should be > 0. Received: "
                             f"`epsilon={epsilon!r}`")
        super().__init__(axis=-1, momentum=momentum, epsilon=epsilon,
                         fused=True, **kwargs)
        # Keras' default for the fused path: no n / (n - 1) conversion of
        # the kernel's unbiased batch variance (see the docstring).
        self._bessels_correction_test_only = True

    def build(self, input_shape: tf.TensorShape) -> None:
        shape = tf.TensorShape(input_shape)
        if shape.rank != 2 or shape[-1] is None:
            raise ValueError(f"`FusedBatchNorm` expects inputs of shape "
                             f"(batch, features) with a known feature size. "
                             f"Received: input_shape={shape}")
        super().build(tf.TensorShape([shape[0], 1, 1, shape[-1]]))
        self._build_input_shape = shape  # what savers record and rebuild
        self.input_spec = tf.keras.layers.InputSpec(ndim=2,
                                                    axes={-1: shape[-1]})

    def call(self, inputs: tf.Tensor,
             training: bool | None = None) -> tf.Tensor:
        if self._get_training_value(training) is False:
            # Inference is an affine map per feature; as in Keras' 2-D
            # layer, computed element-wise: the fused op's fixed cost makes
            # small batches (serving) slower (see docs/BENCHMARKS.md).
            return tf.nn.batch_normalization(
                inputs, self.moving_mean, self.moving_variance, self.beta,
                self.gamma, self.epsilon)
        width = inputs.shape[-1]
        outputs = super().call(tf.reshape(inputs, [-1, 1, 1, width]),
                               training=training)
        return tf.reshape(outputs, tf.shape(inputs))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in self._UNSUPPORTED:
            config.pop(key, None)
        return config
