"""Multi-head self-attention over field embeddings (AutoInt)."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class MultiHeadSelfAttention(tf.keras.layers.Layer):
    """AutoInt's interacting layer, as FuxiCTR's `MultiHeadSelfAttention`.

    On field embeddings `X` of shape `(batch, f, d)`, with
    `head_dim = attention_dim / num_heads`:

    ```
    Q, K, V = X W_q, X W_k, X W_v                  # (b, f, attention_dim)
    A_h     = dropout(softmax(Q_h K_h^T [/ sqrt(head_dim)]))
    O       = concat_h(A_h V_h)                     # (b, f, attention_dim)
    O       = O + (X W_res if d != attention_dim else X)   # use_residual
    out     = relu(LayerNorm(O))                    # LayerNorm if layer_norm
    ```

    `W_q`, `W_k`, `W_v`, `W_res` are dense layers without bias
    (Glorot-normal); LayerNorm uses PyTorch's `epsilon=1e-5`.

    Args:
        attention_dim: int. Width of Q, K, V and of the output.
        num_heads: int. Number of heads; must divide `attention_dim`.
            Defaults to `1`.
        dropout: float. Dropout rate on the attention weights, in [0, 1).
            Defaults to `0.0`.
        use_residual: bool. Add the (projected) input. Defaults to `True`.
        use_scale: bool. Divide the scores by `sqrt(head_dim)`. Defaults to
            `False`.
        layer_norm: bool. Layer-normalise before the ReLU. Defaults to
            `False`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: float `(batch, num_fields, embedding_dim)`.
        training: bool. Whether dropout is active.

    Returns:
        float `(batch, num_fields, attention_dim)`.

    Example:

    ```python
    att = MultiHeadSelfAttention(128, num_heads=4, use_scale=True,
                                 layer_norm=True)
    out = att(tf.random.normal([8, 39, 10]))  # (8, 39, 128)
    ```

    References:
        - [Song et al., 2019](https://arxiv.org/abs/1810.11921), "AutoInt".
    """

    def __init__(self, attention_dim: int, num_heads: int = 1,
                 dropout: float = 0.0, use_residual: bool = True,
                 use_scale: bool = False, layer_norm: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.attention_dim = v.check_int("attention_dim", attention_dim, 1)
        self.num_heads = v.check_int("num_heads", num_heads, 1)
        if self.attention_dim % self.num_heads:
            raise ValueError(
                "`attention_dim` should be divisible by `num_heads`. "
                f"Received: `attention_dim={attention_dim}`, "
                f"`num_heads={num_heads}`")
        self.dropout = v.check_rate("dropout", dropout)
        self.use_residual = bool(use_residual)
        self.use_scale = bool(use_scale)
        self.layer_norm = bool(layer_norm)
        self.head_dim = self.attention_dim // self.num_heads
        self.input_spec = tf.keras.layers.InputSpec(ndim=3)

    def _dense(self, name: str) -> tf.keras.layers.Dense:
        return tf.keras.layers.Dense(self.attention_dim, use_bias=False,
                                     kernel_initializer="glorot_normal",
                                     name=name)

    def build(self, input_shape: tf.TensorShape) -> None:
        input_dim = tf.TensorShape(input_shape)[-1]
        self.query = self._dense("query")
        self.key = self._dense("key")
        self.value = self._dense("value")
        self.residual = (self._dense("residual") if self.use_residual
                         and input_dim != self.attention_dim else None)
        self.attention_dropout = (tf.keras.layers.Dropout(self.dropout)
                                  if self.dropout > 0 else None)
        self.norm = (tf.keras.layers.LayerNormalization(epsilon=1e-5)
                     if self.layer_norm else None)
        for layer in (self.query, self.key, self.value, self.residual):
            if layer is not None:
                layer.build(input_shape)
        if self.norm is not None:
            self.norm.build(tf.TensorShape(input_shape)[:-1].concatenate(
                [self.attention_dim]))
        super().build(input_shape)

    def call(self, inputs: tf.Tensor,
             training: bool | None = None) -> tf.Tensor:
        shape = tf.shape(inputs)
        heads = [shape[0], shape[1], self.num_heads, self.head_dim]
        q = tf.reshape(self.query(inputs), heads)  # (b, f, h, head_dim)
        k = tf.reshape(self.key(inputs), heads)
        val = tf.reshape(self.value(inputs), heads)
        scores = tf.einsum("bqhd,bkhd->bhqk", q, k)
        if self.use_scale:
            scores = scores / tf.cast(self.head_dim, scores.dtype) ** 0.5
        weights = tf.nn.softmax(scores, axis=-1)
        if self.attention_dropout is not None:
            weights = self.attention_dropout(weights, training=training)
        out = tf.einsum("bhqk,bkhd->bqhd", weights, val)
        out = tf.reshape(out, [shape[0], shape[1], self.attention_dim])
        if self.use_residual:
            out += (self.residual(inputs) if self.residual is not None
                    else inputs)
        if self.norm is not None:
            out = self.norm(out)
        return tf.nn.relu(out)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "attention_dim": self.attention_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "use_residual": self.use_residual,
            "use_scale": self.use_scale,
            "layer_norm": self.layer_norm,
        })
        return config
