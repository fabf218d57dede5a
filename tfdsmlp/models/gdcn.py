"""GDCN: DCNv2 with gated cross layers (GDCN-P parallel, GDCN-S stacked)."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.models.dcnv2 import DCNv2, DCNv2Config

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class GDCNConfig(DCNv2Config):
    """GDCN settings. BARS has no Frappe preset; the reference run used
    DCNv2's settings with gated cross layers (`cross_type` defaults to
    "gated")."""

    cross_type: str = "gated"


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class GDCN(DCNv2):
    """Gated Deep Cross Network.

    Gated cross layer: x_{l+1} = x0 * (W_l x_l + b_l) * sigmoid(Wg_l x_l)
    + x_l. Parallel: logit = Dense([GatedCross(x0) || MLP(x0)]); stacked:
    logit = Dense(MLP(GatedCross(x0))). Everything else is `DCNv2`.

    Args: as `DCNv2`, with a `GDCNConfig`.
    """

    config_class = GDCNConfig
