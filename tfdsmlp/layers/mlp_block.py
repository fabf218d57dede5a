"""Multi-layer perceptron block (FuxiCTR `MLP_Block`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v
from tfdsmlp.layers.batch_norm import FusedBatchNorm

import tensorflow as tf

Activation = str | Callable[[tf.Tensor], tf.Tensor]


def _serialize_activation(activation: Activation | None) -> Any:
    if activation is None or isinstance(activation, str):
        return activation
    return tf.keras.activations.serialize(activation)


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class MLPBlock(tf.keras.layers.Layer):
    """Stack of dense layers, as FuxiCTR's `MLP_Block`.

    For every width `h` in `hidden_units`:

    ```
    x = Dropout(activation(BatchNorm(W x + b)))
    ```

    (BatchNorm only with `batch_norm=True`, Dropout only with `dropout > 0`),
    then, if `output_dim` is given, `y = output_activation(W_o x + b_o)`.
    Dense kernels are Glorot-normal, biases zero. Batch normalisation uses
    PyTorch's defaults (`momentum=0.9` in Keras terms, `epsilon=1e-5`), as
    FuxiCTR does, on the fused kernel (`FusedBatchNorm`). With
    `hidden_units=[]` and no `output_dim` the block is the identity.

    Args:
        hidden_units: list of int. Widths of the hidden layers; may be empty.
        activation: str or callable. Hidden activation. Defaults to `"relu"`.
        dropout: float. Dropout rate after each hidden layer, in [0, 1).
            Defaults to `0.0`.
        batch_norm: bool. Batch normalisation before each hidden activation.
            Defaults to `False`.
        output_dim: int or None. Width of a final dense layer; `None` for no
            final layer. Defaults to `None`.
        output_activation: str, callable or None. Activation of the final
            layer. Defaults to `None` (linear, i.e. logits).
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Example:

    ```python
    mlp = MLPBlock([400, 400, 400], dropout=0.2, batch_norm=True,
                   output_dim=1)
    logit = mlp(tf.zeros([8, 39 * 10]), training=True)  # (8, 1)
    mlp.output_width  # 1
    ```
    """

    def __init__(self, hidden_units: list[int], activation: Activation = "relu",
                 dropout: float = 0.0, batch_norm: bool = False,
                 output_dim: int | None = None,
                 output_activation: Activation | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_units = v.check_int_list("hidden_units", hidden_units)
        self.activation = activation
        self.dropout = v.check_rate("dropout", dropout)
        self.batch_norm = bool(batch_norm)
        self.output_dim = (None if output_dim is None
                           else v.check_int("output_dim", output_dim, 1))
        self.output_activation = output_activation
        for name, value in (("activation", activation),
                            ("output_activation", output_activation)):
            if value is not None:
                try:
                    tf.keras.activations.get(value)
                except ValueError as e:
                    raise ValueError(f"`{name}` is not a known activation. "
                                     f"Received: `{name}={value!r}`") from e
        self._input_width: int | None = None

    @property
    def output_width(self) -> int | None:
        """Width of the output: `output_dim`, else the last hidden width,
        else (identity block) the input width once built."""
        if self.output_dim is not None:
            return self.output_dim
        if self.hidden_units:
            return self.hidden_units[-1]
        return self._input_width

    def build(self, input_shape: tf.TensorShape) -> None:
        self._input_width = tf.TensorShape(input_shape)[-1]
        self.block_layers = []
        for units in self.hidden_units:
            self.block_layers.append(tf.keras.layers.Dense(
                units, kernel_initializer="glorot_normal",
                bias_initializer="zeros"))
            if self.batch_norm:
                self.block_layers.append(FusedBatchNorm(momentum=0.9,
                                                        epsilon=1e-5))
            self.block_layers.append(
                tf.keras.layers.Activation(self.activation))
            if self.dropout > 0:
                self.block_layers.append(tf.keras.layers.Dropout(self.dropout))
        if self.output_dim is not None:
            self.block_layers.append(tf.keras.layers.Dense(
                self.output_dim, activation=self.output_activation,
                kernel_initializer="glorot_normal", bias_initializer="zeros"))
        shape = tf.TensorShape(input_shape)
        for layer in self.block_layers:  # create every weight now
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor,
             training: bool | None = None) -> tf.Tensor:
        x = inputs
        for layer in self.block_layers:
            x = layer(x, training=training)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "hidden_units": list(self.hidden_units),
            "activation": _serialize_activation(self.activation),
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
            "output_dim": self.output_dim,
            "output_activation": _serialize_activation(self.output_activation),
        })
        return config
