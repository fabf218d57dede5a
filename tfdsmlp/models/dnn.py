"""DNN baseline: an MLP over the concatenated field embeddings."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import MLPBlock
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout


@dataclasses.dataclass(frozen=True)
class DNNConfig(ModelConfig):
    """DNN settings (BARS Frappe_x1: [400]*3, dropout 0.2, BN, l2 0.05)."""

    hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("dropout", self.dropout)


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DNN(CTRModel):
    """logit = MLP(concat_f e_f), MLP = [Dense -> BN -> act -> Dropout]* ->
    Dense(1).

    Args:
      vocab_sizes: list of int. Ids per categorical field (with reserved ids).
      num_numeric: int. Numeric fields. Defaults to 0.
      embedding_dim, embedding_l2: see `ModelConfig`.
      hidden_units, activation, dropout, batch_norm: see `DNNConfig`.
    """

    config_class = DNNConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, hidden_units=(400, 400, 400),
                 activation="relu", dropout=0.2, batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.mlp = MLPBlock(self.hidden_units, activation=activation,
                            dropout=dropout, batch_norm=batch_norm,
                            output_dim=1, name="mlp")

    def call(self, inputs, training=None):
        _, flat = self.flat_embedding(inputs, training=training)
        return self.mlp(flat, training=training)
