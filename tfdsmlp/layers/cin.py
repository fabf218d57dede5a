"""Compressed Interaction Network of xDeepFM."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class CompressedInteractionNetwork(tf.keras.layers.Layer):
    """xDeepFM's CIN over field embeddings `X_0` of shape `(batch, m, d)`.

    For `k = 1..K` with `H_k = layer_sizes[k-1]` (and `H_0 = m`):

    ```
    Z_k[b, h, i, :] = X_{k-1}[b, h, :] * X_0[b, i, :]      # (b, H_{k-1}, m, d)
    X_k[b, j, :]    = sum_{h,i} W_k[h * m + i, j] Z_k[b, h, i, :] + c_k[j]
    p_k[b, j]       = sum_d X_k[b, j, d]
    output          = concat(p_1, ..., p_K)                  # (b, sum H_k)
    ```

    `W_k` is the 1x1 convolution over the `H_{k-1} * m` feature maps
    (Glorot-normal, as FuxiCTR initialises `nn.Conv1d`), `c_k` its bias
    (zeros). There is no activation, as in FuxiCTR. FuxiCTR then maps the
    output to a logit with a dense layer; models add that themselves.

    Args:
        layer_sizes: list of int. Number of feature maps `H_k` per layer;
            must not be empty.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: float `(batch, num_fields, embedding_dim)`.

    Returns:
        float `(batch, sum(layer_sizes))`.

    Example:

    ```python
    cin = CompressedInteractionNetwork([64])
    pooled = cin(tf.random.normal([8, 39, 10]))  # (8, 64)
    ```

    References:
        - [Lian et al., 2018](https://arxiv.org/abs/1803.05170), "xDeepFM".
    """

    def __init__(self, layer_sizes: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer_sizes = v.check_int_list("layer_sizes", layer_sizes,
                                            allow_empty=False)
        self.input_spec = tf.keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tf.TensorShape) -> None:
        shape = tf.TensorShape(input_shape)
        num_fields, dim = shape[1], shape[2]
        if num_fields is None or dim is None:
            raise ValueError(
                "`CompressedInteractionNetwork` needs known field and "
                f"embedding dimensions. Received input shape {shape}")
        self.input_spec = tf.keras.layers.InputSpec(
            ndim=3, axes={1: num_fields, 2: dim})
        self.kernels, self.biases = [], []
        previous = num_fields
        for k, size in enumerate(self.layer_sizes):
            self.kernels.append(self.add_weight(
                name=f"kernel_{k}", shape=(previous * num_fields, size),
                initializer="glorot_normal", trainable=True))
            self.biases.append(self.add_weight(
                name=f"bias_{k}", shape=(size,), initializer="zeros",
                trainable=True))
            previous = size
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x0 = inputs
        num_fields, dim = x0.shape[1], x0.shape[2]
        x, pooled = x0, []
        for kernel, bias in zip(self.kernels, self.biases):
            z = tf.einsum("bhd,bmd->bhmd", x, x0)
            z = tf.reshape(z, [-1, x.shape[1] * num_fields, dim])
            x = tf.einsum("bcd,cj->bjd", z, kernel) + bias[:, tf.newaxis]
            pooled.append(tf.reduce_sum(x, axis=-1))
        return pooled[0] if len(pooled) == 1 else tf.concat(pooled, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"layer_sizes": list(self.layer_sizes)})
        return config
