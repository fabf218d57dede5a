"""xDeepFM: LR + compressed interaction network (CIN) + MLP."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import CompressedInteractionNetwork, LinearTerm
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig, check_units

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class XDeepFMConfig(MLPConfig, ModelConfig):
    """xDeepFM settings (BARS Frappe_x1: CIN [64], dnn [400]*3, dropout 0.2,
    BN, l2 0.1).

    Attributes (besides `ModelConfig`'s and the MLP's, see `MLPConfig`;
    `hidden_units=()` drops the MLP term):
      cin_layer_sizes: tuple of int. Feature maps per CIN layer (non-empty).
        Defaults to (64,).
    """

    cin_layer_sizes: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_units("cin_layer_sizes", self.cin_layer_sizes, empty=False)


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class XDeepFM(CTRModel):
    """logit = LR(x) + Dense(CIN(E)) + MLP(flat E).

    CIN: X_k = conv1x1(einsum('bhd,bmd->bhmd', X_{k-1}, X_0)); pooled
    p_k = sum_d X_k; CIN(E) = concat_k p_k.

    Args:
      vocab_sizes: list of int. Ids per categorical field.
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `XDeepFMConfig`, or None for its defaults.
    """

    config_class = XDeepFMConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        cfg = self.config
        self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                 embedding_l2=cfg.embedding_l2,
                                 l2_scope=cfg.embedding_l2_scope,
                                 name="linear")
        self.cin = CompressedInteractionNetwork(list(cfg.cin_layer_sizes),
                                                name="cin")
        self.cin_head = tf.keras.layers.Dense(
            1, kernel_initializer="glorot_normal", name="cin_head")
        self.mlp = (cfg.mlp.block("mlp", output_dim=1)
                    if cfg.hidden_units else None)

    def call(self, inputs, training=None):
        emb, flat = self.flat_embedding(inputs, training=training)
        logit = self.linear(inputs) + self.cin_head(self.cin(emb))
        if self.mlp is not None:
            logit += self.mlp(flat, training=training)
        return logit
