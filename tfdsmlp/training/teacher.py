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
import shutil
from typing import Any

import tfdsmlp  # noqa: F401
import tensorflow as tf
import yaml

from tfdsmlp.config import dump_yaml, from_dict, load_yaml, to_dict
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model, model_config
from tfdsmlp.training.callbacks import checkpointable_dropout
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
    """Trains `cfg.model` on `data_dir`; writes config, metrics, weights.

    The training state is backed up in `out_dir/backup` at every epoch end
    (`TrainingBackup`): the same call after an interruption continues from
    the last finished epoch with the result of an uninterrupted run. The
    backup is removed once metrics.json is written."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = cfg.resolved()
    resolved = {"data": os.path.abspath(data_dir), **dataclasses.asdict(cfg)}
    config_path = os.path.join(out_dir, "config.yaml")
    backup = os.path.join(out_dir, "backup")
    if (os.path.exists(os.path.join(backup, "state.json"))
            and os.path.exists(config_path)
            and _resume_key(load_yaml(config_path)) != _resume_key(
                yaml.safe_load(yaml.safe_dump(to_dict(resolved))))):
        raise ValueError(
            f"{out_dir} holds the backup of an interrupted run with another "
            f"config ({config_path}); resuming it with this config would mix "
            f"the two. Rerun with the same config (only train.learning_rate "
            f"may change, e.g. after a divergence), or remove {backup} to "
            "start over.")
    dump_yaml(resolved, config_path)
    with checkpointable_dropout():  # a resumed fit draws the same masks
        tf.keras.utils.set_random_seed(cfg.train.seed)
        spec = FeatureSpec.from_dataset_dir(data_dir)
        model = build_model(cfg.model, cfg.params, spec)
        # variables (dropout generators too); TrainingBackup.load would
        # build it as well, but later, after other random ops: calling it
        # here keeps the random streams of earlier runs
        model(model.dummy_inputs())
        result = fit_ctr_model(model, data_dir, cfg.train,
                               log_dir=os.path.join(out_dir, "tb"),
                               verbose=verbose, backup_dir=backup)
    model.save_weights(os.path.join(out_dir, "weights", "best"))
    result["model"] = cfg.model
    write_json(result, os.path.join(out_dir, "metrics.json"))
    shutil.rmtree(backup, ignore_errors=True)
    return result


def _resume_key(config: dict[str, Any]) -> dict[str, Any]:
    """A saved config without what a resume may change (the learning rate:
    the restored one is scaled by new / old, see `TrainingBackup`)."""
    train = {k: v for k, v in config.get("train", {}).items()
             if k != "learning_rate"}
    return {**config, "train": train}


def preset(dataset: str, model: str) -> dict[str, Any]:
    """{model, params, train} of `model` in preset `dataset` (see
    `tfdsmlp.training.presets.model_preset`)."""
    from tfdsmlp.training.presets import model_preset

    return model_preset(dataset, model)
