"""FinalMLP multi-head bilinear fusion of two streams."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class BilinearFusion(tf.keras.layers.Layer):
    """Fuses two stream outputs, as FinalMLP's `InteractionAggregation`.

    `x` (width `dx`) and `y` (width `dy`) are split into `num_heads` equal
    chunks `x_h`, `y_h`:

    ```
    logit = w_x.x + b_x + w_y.y + b_y + sum_h x_h^T W_h y_h
    ```

    `w_x`, `w_y` are dense layers (Glorot-normal, zero bias). The bilinear
    term is one `einsum` over `W` of shape
    `(num_heads, dx/h, dy/h, output_dim)`; the variable is stored flat as
    `(num_heads * dx/h * dy/h, output_dim)` so that its Glorot-normal fans
    match FuxiCTR's `w_xy` (PyTorch's copies the weight per example instead).

    Args:
        num_heads: int. Number of heads; must divide both `dx` and `dy`.
            Defaults to `1`.
        output_dim: int. Width of the output. Defaults to `1`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: list `[x, y]`, floats `(batch, dx)` and `(batch, dy)`.

    Returns:
        float `(batch, output_dim)`.

    Example:

    ```python
    fusion = BilinearFusion(num_heads=5)
    logit = fusion([tf.random.normal([8, 400]), tf.random.normal([8, 100])])
    ```

    References:
        - [Mao et al., 2023](https://arxiv.org/abs/2304.00902), "FinalMLP".
    """

    def __init__(self, num_heads: int = 1, output_dim: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = v.check_int("num_heads", num_heads, 1)
        self.output_dim = v.check_int("output_dim", output_dim, 1)

    def build(self, input_shape: Any) -> None:
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError("`BilinearFusion` expects a list of two inputs "
                             f"[x, y]. Received input shape {input_shape}")
        dx = tf.TensorShape(input_shape[0])[-1]
        dy = tf.TensorShape(input_shape[1])[-1]
        if (dx is None or dy is None or dx % self.num_heads
                or dy % self.num_heads):
            raise ValueError(
                "`num_heads` should divide both input widths. Received: "
                f"`num_heads={self.num_heads}` with x width {dx} and y width "
                f"{dy}")
        self._head_x, self._head_y = dx // self.num_heads, dy // self.num_heads
        self.x_dense = tf.keras.layers.Dense(
            self.output_dim, kernel_initializer="glorot_normal", name="w_x")
        self.y_dense = tf.keras.layers.Dense(
            self.output_dim, kernel_initializer="glorot_normal", name="w_y")
        self.bilinear_kernel = self.add_weight(
            name="bilinear_kernel",
            shape=(self.num_heads * self._head_x * self._head_y,
                   self.output_dim),
            initializer="glorot_normal", trainable=True)
        self.x_dense.build(input_shape[0])
        self.y_dense.build(input_shape[1])
        super().build(input_shape)

    def call(self, inputs: Any) -> tf.Tensor:
        x, y = inputs
        x_heads = tf.reshape(x, [-1, self.num_heads, self._head_x])
        y_heads = tf.reshape(y, [-1, self.num_heads, self._head_y])
        kernel = tf.reshape(self.bilinear_kernel, [
            self.num_heads, self._head_x, self._head_y, self.output_dim])
        bilinear = tf.einsum("bhi,hijo,bhj->bo", x_heads, kernel, y_heads)
        return self.x_dense(x) + self.y_dense(y) + bilinear

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_heads": self.num_heads,
                       "output_dim": self.output_dim})
        return config
