"""Dataset presets (tfdsmlp/configs/<dataset>.yaml) -> typed configs."""

from __future__ import annotations

import os
from typing import Any

from tfdsmlp.config import (
    ConfigError,
    deep_merge,
    from_dict,
    load_yaml,
    merge_overrides,
)
from tfdsmlp.training.run_config import RunConfig

PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                          "configs")


def preset_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PRESET_DIR)
                  if f.endswith(".yaml"))


def preset_path(preset: str) -> str:
    """The YAML file of `preset`: a name in tfdsmlp/configs, or a path to a
    file of the same shape (`train:`, `models:`), such as the best.yaml of
    `python -m tfdsmlp tune`."""
    if preset.endswith((".yaml", ".yml")) or os.sep in preset:
        return preset
    return os.path.join(PRESET_DIR, f"{preset}.yaml")


def load_preset(dataset: str) -> dict[str, Any]:
    path = preset_path(dataset)
    if not os.path.exists(path):
        raise ConfigError(f"Unknown preset {dataset!r}. Valid presets: "
                          f"{preset_names()}, or a preset file PATH.yaml")
    data = load_yaml(path)
    unknown = sorted(set(data) - {"train", "models"})
    if unknown:
        raise ConfigError(f"{path}: unknown preset key(s) {unknown}. Valid "
                          "keys: ['models', 'train']")
    return data


def model_preset(dataset: str | None, model: str) -> dict[str, Any]:
    """{model, params, train} for `model` on `dataset` (None: no preset,
    every setting at its default)."""
    if dataset is None:
        return {"model": model, "params": {}, "train": {}}
    data = load_preset(dataset)
    models = data.get("models", {})
    if model not in models:
        raise ConfigError(f"Preset {dataset!r} has no settings for model "
                          f"{model!r}. Models in it: {sorted(models)}")
    return {"model": model, "params": dict(models[model] or {}),
            "train": dict(data.get("train", {}))}


def run_preset(dataset: str | None, teacher: str) -> dict[str, Any]:
    """RunConfig mapping: the preset's teacher, its "dsmlp" student, and the
    preset's train settings for every phase (None: no preset: defaults)."""
    data = load_preset(dataset) if dataset is not None else {}
    train = dict(data.get("train", {}))
    student = dict((data.get("models", {}) or {}).get("dsmlp") or {})
    return {"teacher": model_preset(dataset, teacher),
            "student": {"model": "dsmlp", "params": student},
            "distill": {"train": dict(train)},
            "align": {"train": dict(train)}}


def build_run_config(dataset: str | None, teacher: str,
                     config_file: str | None = None,
                     overrides: list[str] | tuple[str, ...] = (),
                     teacher_only: bool = False) -> RunConfig:
    """preset (None: none) <- YAML file <- `--set` overrides, checked
    strictly. `teacher_only`: the YAML file holds the teacher's settings
    (`model`, `params`, `train`, as `python -m tfdsmlp train` takes them)
    or a whole run's (`teacher: ...`)."""
    data = run_preset(dataset, teacher)
    if config_file:
        extra = load_yaml(config_file)
        if teacher_only and set(extra) & {"model", "params", "train"}:
            extra = {"teacher": extra}
        data = deep_merge(data, extra)
    data = merge_overrides(data, list(overrides))
    return from_dict(RunConfig, data).resolved()


def describe_sources(dataset: str | None, config_file: str | None,
                     overrides: list[str] | tuple[str, ...]) -> str:
    """Where a run's settings came from, in the order they apply."""
    layers = ["each model's defaults"]
    if dataset is not None:
        layers.append(f"preset {dataset!r} ({preset_path(dataset)})")
    if config_file:
        layers.append(f"--config {config_file}")
    if overrides:
        layers.append("--set " + " --set ".join(overrides))
    return ("Settings came from: " + " <- ".join(layers) + ". Override "
            "one with --set KEY=VALUE (e.g. --set teacher.params.NAME=...), "
            "or leave out --preset for defaults that name no dataset's "
            "fields.")
