"""xDeepFM: LR + compressed interaction network (CIN) + MLP."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import CompressedInteractionNetwork, LinearTerm, MLPBlock
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout


@dataclasses.dataclass(frozen=True)
class XDeepFMConfig(ModelConfig):
    """xDeepFM settings (BARS Frappe_x1: CIN [64], dnn [400]*3, dropout 0.2,
    BN, l2 0.1)."""

    cin_layer_sizes: tuple[int, ...] = (64,)
    hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("dropout", self.dropout)
        if not self.cin_layer_sizes:
            raise ValueError("`cin_layer_sizes` should not be empty. "
                             f"Received: `{self.cin_layer_sizes}`")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class XDeepFM(CTRModel):
    """logit = LR(x) + Dense(CIN(E)) + MLP(flat E).

    CIN: X_k = conv1x1(einsum('bhd,bmd->bhmd', X_{k-1}, X_0)); pooled
    p_k = sum_d X_k; CIN(E) = concat_k p_k.

    Args: vocab_sizes, num_numeric and the `XDeepFMConfig` fields.
    """

    config_class = XDeepFMConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, cin_layer_sizes=(64,),
                 hidden_units=(400, 400, 400), activation="relu", dropout=0.2,
                 batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        self.cin_layer_sizes = list(cin_layer_sizes)
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                 embedding_l2=self.embedding_l2,
                                 l2_scope=self.embedding_l2_scope, name="linear")
        self.cin = CompressedInteractionNetwork(self.cin_layer_sizes,
                                                name="cin")
        self.cin_head = tf.keras.layers.Dense(
            1, kernel_initializer="glorot_normal", name="cin_head")
        self.mlp = None
        if self.hidden_units:
            self.mlp = MLPBlock(self.hidden_units, activation=activation,
                                dropout=dropout, batch_norm=batch_norm,
                                output_dim=1, name="mlp")

    def call(self, inputs, training=None):
        emb, flat = self.flat_embedding(inputs, training=training)
        logit = self.linear(inputs) + self.cin_head(self.cin(emb))
        if self.mlp is not None:
            logit += self.mlp(flat, training=training)
        return logit
