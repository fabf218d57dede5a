"""DeepFM: LR + FM second-order term + MLP, sharing one embedding."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FactorizationMachine, LinearTerm
from tfdsmlp.models.dnn import DNN, DNNConfig

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DeepFMConfig(DNNConfig):
    """DeepFM settings (BARS Frappe_x1: as DNN)."""


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DeepFM(DNN):
    """logit = LR(x) + 0.5 * sum_d[(sum_f e_f)^2 - sum_f e_f^2]
    + MLP(concat_f e_f).

    The MLP part is `DNN`'s; this class adds the LR and FM terms.

    Args: as `DNN`, with a `DeepFMConfig`.
    """

    config_class = DeepFMConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        self.linear = LinearTerm(self.vocab_sizes, self.num_numeric,
                                 embedding_l2=self.embedding_l2,
                                 l2_scope=self.embedding_l2_scope,
                                 name="linear")
        self.fm = FactorizationMachine(name="fm")

    def call(self, inputs, training=None):
        emb, flat = self.flat_embedding(inputs, training=training)
        return (self.linear(inputs) + self.fm(emb)
                + self.mlp(flat, training=training))
