"""AutoInt+: stacked multi-head self-attention over field embeddings, plus an
MLP logit and an optional wide (LR) term."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import LinearTerm, MultiHeadSelfAttention
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig, check_dropout

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class AutoIntConfig(MLPConfig, ModelConfig):
    """AutoInt+ settings (BARS Frappe_x1: 5 layers, 4 heads, attention dim
    128, scale, residual, LN, no wide; dnn [400]*3, dropout 0.1, BN;
    l2 0.1).

    Attributes (besides `ModelConfig`'s and the MLP's, see `MLPConfig`;
    `hidden_units=()` gives plain AutoInt):
      attention_layers: int >= 1. Self-attention layers. Defaults to 5.
      num_heads: int. Heads per layer. Defaults to 4.
      attention_dim: int. Output width of each layer. Defaults to 128.
      use_scale: bool. Scale scores by 1/sqrt(d_head). Defaults to True.
      use_residual: bool. Residual projection. Defaults to True.
      layer_norm: bool. LayerNorm after each layer. Defaults to True.
      attention_dropout: float in [0, 1). Defaults to 0.1.
      use_wide: bool. Add an LR term. Defaults to False.
      dropout: as `MLPConfig`, but defaults to 0.1.
    """

    attention_layers: int = 5
    num_heads: int = 4
    attention_dim: int = 128
    use_scale: bool = True
    use_residual: bool = True
    layer_norm: bool = True
    attention_dropout: float = 0.1
    use_wide: bool = False
    dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("attention_dropout", self.attention_dropout)
        if self.attention_layers < 1:
            raise ValueError("`attention_layers` should be >= 1. Received: "
                             f"`attention_layers={self.attention_layers}`")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class AutoInt(CTRModel):
    """logit = Dense(flatten(SA_L(...SA_1(E)))) + MLP(flat E) [+ LR(x)].

    SA: multi-head self-attention (Q, K, V without bias, optional
    1/sqrt(d_head) scale, residual projection, optional LayerNorm, ReLU).

    Args:
      vocab_sizes: list of int. Ids per categorical field.
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `AutoIntConfig`, or None for its defaults.
    """

    config_class = AutoIntConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        cfg = self.config
        self.attention = [
            MultiHeadSelfAttention(
                cfg.attention_dim, num_heads=cfg.num_heads,
                dropout=cfg.attention_dropout,
                use_residual=cfg.use_residual, use_scale=cfg.use_scale,
                layer_norm=cfg.layer_norm, name=f"attention_{i}")
            for i in range(cfg.attention_layers)]
        self.attention_head = tf.keras.layers.Dense(
            1, kernel_initializer="glorot_normal", name="attention_head")
        self.mlp = (cfg.mlp.block("mlp", output_dim=1)
                    if cfg.hidden_units else None)
        self.linear = None
        if cfg.use_wide:
            self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                     embedding_l2=cfg.embedding_l2,
                                     l2_scope=cfg.embedding_l2_scope,
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
