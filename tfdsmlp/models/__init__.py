"""CTR models (all return logits of shape (batch, 1))."""

from tfdsmlp.models.autoint import AutoInt, AutoIntConfig
from tfdsmlp.models.base import CTRModel, ModelConfig
from tfdsmlp.models.dcnv2 import DCNv2, DCNv2Config
from tfdsmlp.models.deepfm import DeepFM, DeepFMConfig
from tfdsmlp.models.dnn import DNN, DNNConfig
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP, DualStreamMLPConfig
from tfdsmlp.models.finalmlp import FinalMLP, FinalMLPConfig
from tfdsmlp.models.gdcn import GDCN, GDCNConfig
from tfdsmlp.models.registry import (MODELS, build_model, model_class,
                                     model_config)
from tfdsmlp.models.xdeepfm import XDeepFM, XDeepFMConfig

__all__ = [
    "AutoInt", "AutoIntConfig", "CTRModel", "DCNv2", "DCNv2Config", "DNN",
    "DNNConfig", "DeepFM", "DualStreamMLP", "DualStreamMLPConfig", "DeepFMConfig", "FinalMLP", "FinalMLPConfig",
    "GDCN", "GDCNConfig", "MODELS", "ModelConfig", "XDeepFM",
    "XDeepFMConfig", "build_model", "model_class", "model_config",
]
