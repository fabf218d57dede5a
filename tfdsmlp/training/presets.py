"""Dataset presets (tfdsmlp/configs/<dataset>.yaml) -> typed configs."""

from __future__ import annotations

import os
from typing import Any

from tfdsmlp.config import (ConfigError, deep_merge, from_dict, load_yaml,
                            merge_overrides)
from tfdsmlp.training.run_config import RunConfig

PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                          "configs")


def preset_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PRESET_DIR)
                  if f.endswith(".yaml"))


def load_preset(dataset: str) -> dict[str, Any]:
    path = os.path.join(PRESET_DIR, f"{dataset}.yaml")
    if not os.path.exists(path):
        raise ConfigError(f"Unknown preset {dataset!r}. Valid presets: "
                          f"{preset_names()}")
    return load_yaml(path)


def model_preset(dataset: str, model: str) -> dict[str, Any]:
    """{model, params, train} for `model` on `dataset`."""
    data = load_preset(dataset)
    models = data.get("models", {})
    if model not in models:
        raise ConfigError(f"Preset {dataset!r} has no settings for model "
                          f"{model!r}. Models in it: {sorted(models)}")
    return {"model": model, "params": dict(models[model] or {}),
            "train": dict(data.get("train", {}))}


def run_preset(dataset: str, teacher: str) -> dict[str, Any]:
    """RunConfig mapping: the preset's teacher, its "dsmlp" student, and the
    preset's train settings for every phase."""
    data = load_preset(dataset)
    train = dict(data.get("train", {}))
    student = dict((data.get("models", {}) or {}).get("dsmlp") or {})
    return {"teacher": model_preset(dataset, teacher),
            "student": {"model": "dsmlp", "params": student},
            "distill": {"train": dict(train)},
            "align": {"train": dict(train)}}


def build_run_config(dataset: str, teacher: str,
                     config_file: str | None = None,
                     overrides: list[str] | tuple[str, ...] = (),
                     ) -> RunConfig:
    """preset <- YAML file <- `--set` overrides, checked strictly."""
    data = run_preset(dataset, teacher)
    if config_file:
        data = deep_merge(data, load_yaml(config_file))
    data = merge_overrides(data, list(overrides))
    return from_dict(RunConfig, data).resolved()
