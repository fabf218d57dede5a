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
from tfdsmlp.layers import CROSS_TYPES, CrossNetwork
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig

import tensorflow as tf

STRUCTURES = ("parallel", "stacked")


@dataclasses.dataclass(frozen=True)
class DCNv2Config(MLPConfig, ModelConfig):
    """DCNv2 settings (BARS Frappe_x1: 4 cross layers, parallel,
    dnn [400]*3, dropout 0.4, BN, l2 0.05).

    Attributes (besides `ModelConfig`'s and the MLP's, see `MLPConfig`):
      num_cross_layers: int >= 1. Cross layers. Defaults to 4.
      structure: str. "parallel" or "stacked". Defaults to "parallel".
      cross_type: str. "dcnv2" (TFRS `Cross`) or "gated" (GDCN). Defaults
        to "dcnv2".
      dropout: as `MLPConfig`, but defaults to 0.4.
    """

    num_cross_layers: int = 4
    structure: str = "parallel"
    cross_type: str = "dcnv2"
    dropout: float = 0.4

    def __post_init__(self) -> None:
        super().__post_init__()
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

    Parallel: logit = Dense([Cross(x0) || MLP(x0)]); stacked:
    logit = Dense(MLP(Cross(x0))), with x0 = concat_f e_f and
    Cross: x_{l+1} = x0 * (W_l x_l + b_l) + x_l.

    Args:
      vocab_sizes: list of int. Ids per categorical field.
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `DCNv2Config`, or None for its defaults.
    """

    config_class = DCNv2Config

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        cfg = self.config
        self.cross = CrossNetwork(cfg.num_cross_layers,
                                  cross_type=cfg.cross_type, name="cross")
        self.mlp = cfg.mlp.block("mlp")
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
