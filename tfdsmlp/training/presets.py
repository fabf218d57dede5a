"""Dataset presets (tfdsmlp/configs/<dataset>.yaml) -> typed configs.

A preset file has up to five keys:

  train:    training settings (`TrainConfig`) of every model and stage.
  teachers: settings every teacher model starts from (not the "dsmlp"
            student): params, and a `train:` merged over the top-level
            one; a model's own entry wins over both.
  models:   per model, its params; an entry may hold its own `train:`
            mapping, merged over the top-level one (and the teachers')
            for that model as a teacher (`train --model M`,
            `run --teacher M`).
  distill:  stage 1's settings (`DistillConfig`: kd_weight, kd_loss,
            temperature, init_main_from_teacher, ...), its `train:` merged
            over the top-level one.
  align:    stage 2's settings (`AlignConfig`: alpha, beta, ...), likewise.

Every key is checked strictly when the run's config is built (`from_dict`),
so a misspelt one names itself and the valid ones."""

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

# The student's stages, each a preset section of its own.
STAGES = ("distill", "align")
PRESET_KEYS = ("train", "teachers", "models", *STAGES)
# The student's entry in `models:`; every other entry is a teacher's.
STUDENT = "dsmlp"
PRESET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                          "configs")


def preset_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PRESET_DIR)
                  if f.endswith(".yaml"))


def preset_path(preset: str) -> str:
    """The YAML file of `preset`: a name in tfdsmlp/configs, or a path to a
    file of the same shape (the module docstring's keys), such as the
    best.yaml of `python -m tfdsmlp tune`."""
    if preset.endswith((".yaml", ".yml")) or os.sep in preset:
        return preset
    return os.path.join(PRESET_DIR, f"{preset}.yaml")


def load_preset(dataset: str) -> dict[str, Any]:
    path = preset_path(dataset)
    if not os.path.exists(path):
        raise ConfigError(f"Unknown preset {dataset!r}. Valid presets: "
                          f"{preset_names()}, or a preset file PATH.yaml")
    data = load_yaml(path)
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown preset key(s) {unknown}. Valid "
                          f"keys: {sorted(PRESET_KEYS)}")
    for key in PRESET_KEYS:
        _mapping(data.get(key), path, key)
    for model, entry in (data.get("models") or {}).items():
        _mapping(entry, path, f"models.{model}")
        _mapping((entry or {}).get("train"), path, f"models.{model}.train")
    for section in (*STAGES, "teachers"):
        _mapping((data.get(section) or {}).get("train"), path,
                 f"{section}.train")
    student = (data.get("models") or {}).get(STUDENT) or {}
    if "train" in student:
        raise ConfigError(
            f"{path}: models.dsmlp.train: the DS-MLP student trains in two "
            "stages, each with its own settings; put them under "
            "distill.train and align.train (merged over the top-level "
            "train:).")
    return data


def _mapping(value: Any, path: str, key: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{path}: preset key {key} should be a mapping "
                          f"(KEY: VALUE). Received: {value!r}")


def model_preset(dataset: str | None, model: str) -> dict[str, Any]:
    """{model, params, train} for `model` on `dataset` (None: no preset,
    every setting at its default): params are the preset's `teachers:`
    params (for a teacher) with the model's entry over them; train is the
    preset's `train:`, then `teachers.train` (for a teacher), then the
    model entry's own `train:`, each merged over the one before."""
    if dataset is None:
        return {"model": model, "params": {}, "train": {}}
    data = load_preset(dataset)
    models = data.get("models", {})
    if model not in models:
        raise ConfigError(f"Preset {dataset!r} has no settings for model "
                          f"{model!r}. Models in it: {sorted(models)}")
    shared = dict(data.get("teachers") or {}) if model != STUDENT else {}
    shared_train = shared.pop("train", None) or {}
    params = {**shared, **(models[model] or {})}
    own_train = params.pop("train", None) or {}
    return {"model": model, "params": params,
            "train": {**(data.get("train") or {}), **shared_train,
                      **own_train}}


def run_preset(dataset: str | None, teacher: str) -> dict[str, Any]:
    """RunConfig mapping: the preset's teacher, its "dsmlp" student, and
    each stage's settings, whose `train` is the preset's `train:` with the
    stage's own merged over it (None: no preset: defaults)."""
    data = load_preset(dataset) if dataset is not None else {}
    train = dict(data.get("train") or {})
    student = dict((data.get("models") or {}).get(STUDENT) or {})
    stages = {}
    for stage in STAGES:
        section = dict(data.get(stage) or {})
        section["train"] = {**train, **(section.get("train") or {})}
        stages[stage] = section
    return {"teacher": model_preset(dataset, teacher),
            "student": {"model": STUDENT, "params": student}, **stages}


def build_run_config(dataset: str | None, teacher: str,
                     config_file: str | None = None,
                     overrides: list[str] | tuple[str, ...] = (),
                     teacher_only: bool = False,
                     trained_teacher: dict[str, Any] | None = None
                     ) -> RunConfig:
    """preset (None: none) <- YAML file <- `--set` overrides, checked
    strictly. `teacher_only`: the YAML file holds the teacher's settings
    (`model`, `params`, `train`, as `python -m tfdsmlp train` takes them)
    or a whole run's (`teacher: ...`). `trained_teacher`: the `model` and
    `params` of a finished teacher run, which replace the teacher's before
    the config is resolved (so that a student that takes the teacher's
    embedding width takes this one's)."""
    data = run_preset(dataset, teacher)
    if config_file:
        extra = load_yaml(config_file)
        if teacher_only and set(extra) & {"model", "params", "train"}:
            extra = {"teacher": extra}
        data = deep_merge(data, extra)
    data = merge_overrides(data, list(overrides))
    if trained_teacher is not None:
        data["teacher"] = {**data.get("teacher", {}),
                           "model": trained_teacher["model"],
                           "params": dict(trained_teacher["params"])}
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
