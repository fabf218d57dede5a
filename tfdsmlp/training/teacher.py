"""Teacher / baseline training run: typed config -> model -> fit -> files.

`train_teacher` writes into `out_dir`:
  config.yaml     the fully resolved config
  metrics.json    exact valid/test AUC and log loss, epochs, seconds, params
  weights/        Keras weights of the best epoch (TF checkpoint format)
  tb/             TensorBoard logs
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.config import dump_yaml, from_dict
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model, model_config
from tfdsmlp.training.fit import fit_ctr_model, write_json
from tfdsmlp.training.train_config import TrainConfig

@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """One model trained on one dataset.

    Attributes:
      model: registry name ("gdcn", "dcnv2", "finalmlp", "autoint",
        "xdeepfm", "deepfm", "dnn").
      params: the model's config fields (checked strictly against the
        model's config dataclass).
      train: `TrainConfig`.
    """

    model: str = "gdcn"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        model_config(self.model, self.params)  # raises on unknown keys

    def resolved(self) -> "TeacherConfig":
        """Same config with every model default written out."""
        full = dataclasses.asdict(model_config(self.model, self.params))
        return dataclasses.replace(self, params=full)


def teacher_config(data: dict[str, Any]) -> TeacherConfig:
    return from_dict(TeacherConfig, data).resolved()


def train_teacher(data_dir: str, cfg: TeacherConfig, out_dir: str,
                  verbose: int = 1) -> dict[str, Any]:
    """Trains `cfg.model` on `data_dir`; writes config, metrics, weights."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = cfg.resolved()
    dump_yaml({"data": os.path.abspath(data_dir),
               **dataclasses.asdict(cfg)}, os.path.join(out_dir,
                                                        "config.yaml"))
    tf.keras.utils.set_random_seed(cfg.train.seed)
    spec = FeatureSpec.from_dataset_dir(data_dir)
    model = build_model(cfg.model, cfg.params, spec)
    result = fit_ctr_model(model, data_dir, cfg.train,
                           log_dir=os.path.join(out_dir, "tb"),
                           verbose=verbose)
    model.save_weights(os.path.join(out_dir, "weights", "best"))
    result["model"] = cfg.model
    write_json(result, os.path.join(out_dir, "metrics.json"))
    return result


def preset(dataset: str, model: str) -> dict[str, Any]:
    """{model, params, train} of `model` in preset `dataset` (see
    `tfdsmlp.training.presets.model_preset`)."""
    from tfdsmlp.training.presets import model_preset

    return model_preset(dataset, model)
