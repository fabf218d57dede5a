"""DCNv2: cross network and MLP over the flat embedding.

`structure="parallel"`: logit = Dense([Cross(x0) || MLP(x0)]).
`structure="stacked"`:  logit = Dense(MLP(Cross(x0))).
The cross layer is chosen by `cross_type`: "dcnv2" uses
`tfrs.layers.dcn.Cross` (x_{l+1} = x0 * (W x_l + b) + x_l); "gated" uses
GDCN's gated cross (see `GDCN`), so GDCN is this model, composed with
another cross layer, not a copy.
"""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import CROSS_TYPES, CrossNetwork, MLPBlock
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout

STRUCTURES = ("parallel", "stacked")


@dataclasses.dataclass(frozen=True)
class DCNv2Config(ModelConfig):
    """DCNv2 settings (BARS Frappe_x1: 4 cross layers, parallel,
    dnn [400]*3, dropout 0.4, BN, l2 0.05)."""

    num_cross_layers: int = 4
    structure: str = "parallel"
    cross_type: str = "dcnv2"
    hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.4
    batch_norm: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("dropout", self.dropout)
        if self.structure not in STRUCTURES:
            raise ValueError(f"`structure` should be one of {STRUCTURES}. "
                             f"Received: `structure={self.structure!r}`")
        if self.cross_type not in CROSS_TYPES:
            raise ValueError(f"`cross_type` should be one of {CROSS_TYPES}. "
                             f"Received: `cross_type={self.cross_type!r}`")
        if self.num_cross_layers < 1:
            raise ValueError("`num_cross_layers` should be >= 1. Received: "
                             f"`num_cross_layers={self.num_cross_layers}`")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DCNv2(CTRModel):
    """Deep & Cross Network v2 (full-rank cross, parallel or stacked).

    Args: vocab_sizes, num_numeric and the `DCNv2Config` fields.
    """

    config_class = DCNv2Config

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, num_cross_layers=4, structure="parallel",
                 cross_type="dcnv2", hidden_units=(400, 400, 400),
                 activation="relu", dropout=0.4, batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        if structure not in STRUCTURES:
            raise ValueError(f"`structure` should be one of {STRUCTURES}. "
                             f"Received: `structure={structure!r}`")
        self.num_cross_layers = num_cross_layers
        self.structure = structure
        self.cross_type = cross_type
        self.hidden_units = list(hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.cross = CrossNetwork(num_cross_layers, cross_type=cross_type,
                                  name="cross")
        self.mlp = MLPBlock(self.hidden_units, activation=activation,
                            dropout=dropout, batch_norm=batch_norm,
                            name="mlp")
        self.head = tf.keras.layers.Dense(
            1, kernel_initializer="glorot_normal", name="head")

    def call(self, inputs, training=None):
        _, flat = self.flat_embedding(inputs, training=training)
        crossed = self.cross(flat)
        if self.structure == "stacked":
            hidden = self.mlp(crossed, training=training)
        else:
            hidden = tf.concat(
                [crossed, self.mlp(flat, training=training)], axis=-1)
        return self.head(hidden)
