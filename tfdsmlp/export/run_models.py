"""Models of a finished `python -m tfdsmlp run` directory, and their export.

A run directory holds `config.yaml` (`data:` = the dataset directory, the
teacher and student models with their params) and per-phase TF-format
weights (`<phase>/weights/model`, written by `model.save_weights`). Export
phases:

  teacher   the teacher                      teacher/weights/model
  student   the DS-MLP after distillation    distill/weights/model
  dsmlp     the DS-MLP after alignment       align/weights/model
            (the distilled student when the run has no align phase)
"""

from __future__ import annotations

import os
from typing import Any

import yaml

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model

EXPORT_PHASES = ("dsmlp", "teacher", "student")
_WEIGHTS = {"teacher": ("teacher",), "student": ("distill",),
            "dsmlp": ("align", "distill")}


def load_run_config(run_dir: str) -> dict[str, Any]:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {run_dir!r} is not a run directory written "
            "by `python -m tfdsmlp run`.")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def phase_weights(run_dir: str, phase: str) -> tuple[str, str]:
    """(checkpoint prefix, weights phase) of an export phase."""
    if phase not in EXPORT_PHASES:
        raise ValueError(f"--phase should be one of {EXPORT_PHASES}. "
                         f"Received: {phase!r}")
    tried = []
    for sub in _WEIGHTS[phase]:
        prefix = os.path.join(run_dir, sub, "weights", "model")
        if os.path.exists(prefix + ".index"):
            return prefix, sub
        tried.append(prefix)
    raise FileNotFoundError(
        f"run {run_dir!r} has no finished weights for phase {phase!r} "
        f"(looked for {', '.join(p + '.index' for p in tried)}); finish the "
        "run first (`python -m tfdsmlp run ...` resumes it).")


def load_run_model(run_dir: str, phase: str = "dsmlp",
                   data_dir: str | None = None
                   ) -> tuple[tf.keras.Model, FeatureSpec, str, dict]:
    """Builds the phase's model and loads its weights.

    Returns (model, spec, data_dir, info) where info has `run_dir`,
    `phase`, `weights`, `weights_phase`, `model_name`, `params`.
    """
    cfg = load_run_config(run_dir)
    data_dir = data_dir or cfg.get("data")
    if not data_dir:
        raise ValueError(f"{run_dir}/config.yaml has no `data:`; pass "
                         "--data DIR")
    spec = FeatureSpec.from_dataset_dir(data_dir)
    part = cfg["teacher"] if phase == "teacher" else cfg["student"]
    prefix, weights_phase = phase_weights(run_dir, phase)
    model = build_model(part["model"], part.get("params") or {}, spec)
    model(model.dummy_inputs(), training=False)
    status = model.load_weights(prefix)
    status.assert_existing_objects_matched()
    status.expect_partial()
    info = {"run_dir": os.path.abspath(run_dir), "phase": phase,
            "weights": os.path.abspath(prefix),
            "weights_phase": weights_phase,
            "model_name": part["model"], "params": part.get("params") or {}}
    return model, spec, os.path.abspath(data_dir), info


def export_run(run_dir: str, name: str, phase: str = "dsmlp",
               version: int | None = None, base_dir: str = "saved_models",
               data_dir: str | None = None) -> str:
    """Exports a run's phase model to `base_dir/name/<version>`; returns the
    version directory."""
    from tfdsmlp.export.saved_model import export_saved_model

    model, spec, data_dir, info = load_run_model(run_dir, phase, data_dir)
    return export_saved_model(model, spec, base_dir, name, version,
                              data_dir=data_dir, metadata=info)
