"""Model registry: build any model by name from a typed config."""

from __future__ import annotations

from typing import Any

from tfdsmlp.config import ConfigError, from_dict
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.autoint import AutoInt
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import ModelConfig
from tfdsmlp.models.dcnv2 import DCNv2
from tfdsmlp.models.deepfm import DeepFM
from tfdsmlp.models.dnn import DNN
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP
from tfdsmlp.models.finalmlp import FinalMLP
from tfdsmlp.models.gdcn import GDCN
from tfdsmlp.models.xdeepfm import XDeepFM

MODELS: dict[str, type[CTRModel]] = {
    "dnn": DNN,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "gdcn": GDCN,
    "finalmlp": FinalMLP,
    "autoint": AutoInt,
    "xdeepfm": XDeepFM,
    "dsmlp": DualStreamMLP,
}


def model_class(name: str) -> type[CTRModel]:
    key = name.lower().replace("+", "").replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ConfigError(f"Unknown model {name!r}. Valid models: "
                          f"{sorted(MODELS)}")
    return MODELS[key]


def model_config(name: str, values: dict[str, Any] | None = None,
                 ) -> ModelConfig:
    """The typed config of model `name` from a mapping (strict keys)."""
    cls = model_class(name)
    return from_dict(cls.config_class, dict(values or {}), where=name)


def build_model(name: str, config: ModelConfig | dict[str, Any] | None,
                feature_spec: FeatureSpec, **kwargs: Any) -> CTRModel:
    """Builds model `name` for `feature_spec`.

    Args:
      name: str. One of `MODELS` ("gdcn", "dcnv2", ...).
      config: the model's config dataclass, or a mapping of its fields
        (unknown keys are errors listing the valid ones), or None for
        defaults.
      feature_spec: `FeatureSpec` of the dataset.
    """
    cls = model_class(name)
    if config is None or isinstance(config, dict):
        config = model_config(name, config)
    return cls.from_feature_spec(config, feature_spec, **kwargs)
