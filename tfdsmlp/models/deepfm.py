"""DeepFM: LR + FM second-order term + MLP, sharing one embedding."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import FactorizationMachine, LinearTerm, MLPBlock
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.dnn import DNNConfig


@dataclasses.dataclass(frozen=True)
class DeepFMConfig(DNNConfig):
    """DeepFM settings (BARS Frappe_x1: as DNN)."""


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DeepFM(CTRModel):
    """logit = LR(x) + 0.5 * sum_d[(sum_f e_f)^2 - sum_f e_f^2]
    + MLP(concat_f e_f).

    Args: as `DNN` (`DeepFMConfig`).
    """

    config_class = DeepFMConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, hidden_units=(400, 400, 400),
                 activation="relu", dropout=0.2, batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                 embedding_l2=embedding_l2, name="linear")
        self.fm = FactorizationMachine(name="fm")
        self.mlp = MLPBlock(self.hidden_units, activation=activation,
                            dropout=dropout, batch_norm=batch_norm,
                            output_dim=1, name="mlp")

    def call(self, inputs, training=None):
        emb, flat = self.flat_embedding(inputs, training=training)
        return (self.linear(inputs) + self.fm(emb)
                + self.mlp(flat, training=training))
