"""Keras 2 layers for CTR models, following FuxiCTR's definitions.

One public layer per module; every layer is registered for serialisation
under the package name "tfdsmlp".
"""

from tfdsmlp.layers.batch_norm import FusedBatchNorm
from tfdsmlp.layers.bilinear_fusion import BilinearFusion
from tfdsmlp.layers.cin import CompressedInteractionNetwork
from tfdsmlp.layers.cross_network import CROSS_TYPES, CrossNetwork
from tfdsmlp.layers.feature_embedding import FeatureEmbedding
from tfdsmlp.layers.feature_gate import FeatureSelectionGate
from tfdsmlp.layers.fm import FactorizationMachine
from tfdsmlp.layers.gated_cross import GatedCrossNetwork
from tfdsmlp.layers.linear import LinearTerm
from tfdsmlp.layers.mlp_block import MLPBlock
from tfdsmlp.layers.self_attention import MultiHeadSelfAttention

__all__ = [
    "CROSS_TYPES",
    "BilinearFusion",
    "CompressedInteractionNetwork",
    "CrossNetwork",
    "FactorizationMachine",
    "FeatureEmbedding",
    "FeatureSelectionGate",
    "FusedBatchNorm",
    "GatedCrossNetwork",
    "LinearTerm",
    "MLPBlock",
    "MultiHeadSelfAttention",
]
