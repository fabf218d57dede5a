"""DNN baseline: an MLP over the concatenated field embeddings."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DNNConfig(MLPConfig, ModelConfig):
    """DNN settings: `ModelConfig`'s and `MLPConfig`'s, whose defaults are
    BARS Frappe_x1's DNN ([400]*3, dropout 0.2, BN)."""


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DNN(CTRModel):
    """logit = MLP(concat_f e_f), MLP = [Dense -> BN -> act -> Dropout]* ->
    Dense(1).

    Args:
      vocab_sizes: list of int. Ids per categorical field (with reserved
        ids).
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `DNNConfig`, or None for its defaults.

    Example:

    >>> model = DNN([5, 7], config=DNNConfig(hidden_units=(16,)))
    >>> logits = model({"ids": tf.constant([[1, 3]])})  # (1, 1)
    """

    config_class = DNNConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        self.mlp = self.config.mlp.block("mlp", output_dim=1)

    def call(self, inputs, training=None):
        _, flat = self.flat_embedding(inputs, training=training)
        return self.mlp(flat, training=training)
