"""CTR models (all return logits of shape (batch, 1))."""

from tfdsmlp.models.autoint import AutoInt, AutoIntConfig
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig
from tfdsmlp.models.dcnv2 import DCNv2, DCNv2Config
from tfdsmlp.models.deepfm import DeepFM, DeepFMConfig
from tfdsmlp.models.dnn import DNN, DNNConfig
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP, DualStreamMLPConfig
from tfdsmlp.models.finalmlp import FinalMLP, FinalMLPConfig
from tfdsmlp.models.gdcn import GDCN, GDCNConfig
from tfdsmlp.models.registry import (
    MODELS,
    build_model,
    model_class,
    model_config,
)
from tfdsmlp.models.xdeepfm import XDeepFM, XDeepFMConfig

__all__ = [
    "DNN", "GDCN", "MODELS", "AutoInt", "AutoIntConfig", "CTRModel",
    "DCNv2", "DCNv2Config", "DNNConfig", "DeepFM", "DeepFMConfig",
    "DualStreamMLP", "DualStreamMLPConfig", "FinalMLP", "FinalMLPConfig",
    "GDCNConfig", "MLPConfig", "ModelConfig", "XDeepFM", "XDeepFMConfig",
    "build_model", "model_class", "model_config",
]
