"""AutoInt+: stacked multi-head self-attention over field embeddings, plus an
MLP logit and an optional wide (LR) term."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import LinearTerm, MLPBlock, MultiHeadSelfAttention
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout


@dataclasses.dataclass(frozen=True)
class AutoIntConfig(ModelConfig):
    """AutoInt+ settings (BARS Frappe_x1: 5 layers, 4 heads, attention dim
    128, scale, residual, LN, no wide; dnn [400]*3, dropout 0.1, BN;
    l2 0.1). Set `hidden_units=()` for plain AutoInt."""

    attention_layers: int = 5
    num_heads: int = 4
    attention_dim: int = 128
    use_scale: bool = True
    use_residual: bool = True
    layer_norm: bool = True
    attention_dropout: float = 0.1
    use_wide: bool = False
    hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.1
    batch_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("dropout", self.dropout)
        check_dropout("attention_dropout", self.attention_dropout)
        if self.attention_layers < 1:
            raise ValueError("`attention_layers` should be >= 1. Received: "
                             f"`attention_layers={self.attention_layers}`")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class AutoInt(CTRModel):
    """logit = Dense(flatten(SA_L(...SA_1(E)))) + MLP(flat E) [+ LR(x)].

    SA: multi-head self-attention (Q, K, V without bias, optional
    1/sqrt(d_head) scale, residual projection, optional LayerNorm, ReLU).

    Args: vocab_sizes, num_numeric and the `AutoIntConfig` fields.
    """

    config_class = AutoIntConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, attention_layers=5, num_heads=4,
                 attention_dim=128, use_scale=True, use_residual=True,
                 layer_norm=True, attention_dropout=0.1, use_wide=False,
                 hidden_units=(400, 400, 400), activation="relu", dropout=0.1,
                 batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        self.attention_layers = attention_layers
        self.num_heads = num_heads
        self.attention_dim = attention_dim
        self.use_scale = use_scale
        self.use_residual = use_residual
        self.layer_norm = layer_norm
        self.attention_dropout = attention_dropout
        self.use_wide = use_wide
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.attention = [
            MultiHeadSelfAttention(
                attention_dim, num_heads=num_heads,
                dropout=attention_dropout, use_residual=use_residual,
                use_scale=use_scale, layer_norm=layer_norm,
                name=f"attention_{i}")
            for i in range(attention_layers)]
        self.attention_head = tf.keras.layers.Dense(
            1, kernel_initializer="glorot_normal", name="attention_head")
        self.mlp = None
        if self.hidden_units:
            self.mlp = MLPBlock(self.hidden_units, activation=activation,
                                dropout=dropout, batch_norm=batch_norm,
                                output_dim=1, name="mlp")
        self.linear = None
        if use_wide:
            self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                     embedding_l2=self.embedding_l2,
                                     l2_scope=self.embedding_l2_scope,
                                     name="linear")

    def call(self, inputs, training=None):
        emb, flat = self.flat_embedding(inputs, training=training)
        h = emb
        for layer in self.attention:
            h = layer(h, training=training)
        logit = self.attention_head(
            tf.reshape(h, [-1, self.num_fields * self.attention_dim]))
        if self.mlp is not None:
            logit += self.mlp(flat, training=training)
        if self.linear is not None:
            logit += self.linear(inputs)
        return logit
