"""Models of a finished run directory (`train` or `run`), and their export.

A run directory (`tfdsmlp.run_dir.RunDir`) records the dataset, the
teacher and student models with their settings, and per-phase weights.
Export phases:

  teacher   the teacher                      teacher phase
  student   the DS-MLP after distillation    distill phase
            (its main stream alone when stage 1 trained only the main
            MLP, `distill.train_parallel: false`: that is what the run
            scored as the student)
  dsmlp     the DS-MLP after alignment       align phase
            (the distilled student when the run has no align phase)
  dsmlp_main      the main stream of `dsmlp` alone (a DS-MLP with
                  `use_parallel: false` holding its main table and MLP)
  dsmlp_parallel  the parallel stream of `dsmlp` alone
  best      the model the run selected by validation AUC (metrics.json
            `selected`: one of student, dsmlp, dsmlp_main,
            dsmlp_parallel; the teacher of a `train` run)
"""

from __future__ import annotations

import os
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model
from tfdsmlp.run_dir import EXPORT_PHASES, RunDir, RunDirError
from tfdsmlp.training.checkpoints import load_weights_checked
from tfdsmlp.training.precision import precision_policy

import tensorflow as tf

SERVING_PRECISIONS = ("float32", "mixed_bfloat16")
# A one-stream phase keeps that stream of the `dsmlp` weights.
_STREAMS = {"dsmlp_main": "main", "dsmlp_parallel": "parallel"}
_WEIGHTS = {"teacher": ("teacher",), "student": ("distill",),
            "dsmlp": ("align", "distill"),
            **{phase: ("align", "distill") for phase in _STREAMS}}


def load_run_config(run_dir: str | RunDir) -> dict[str, Any]:
    """The run's config.yaml (error naming the directory when absent)."""
    return RunDir.open(run_dir).read_config()


def selected_phase(run_dir: str | RunDir) -> str:
    """The export phase the run selected by validation AUC."""
    run = RunDir.open(run_dir)
    selected = run.read_metrics().get("selected")
    if not selected:
        raise RunDirError(
            f"{run.metrics_path} records no selected model (a run from an "
            "older tfdsmlp): give --phase dsmlp, student or teacher, or "
            "rerun its command to rescore it.")
    return selected["phase"]


def phase_weights(run_dir: str | RunDir, phase: str) -> tuple[str, str]:
    """(checkpoint prefix, weights phase) of an export phase (`best`
    must be resolved with `selected_phase` first)."""
    if phase not in EXPORT_PHASES or phase == "best":
        raise ValueError(f"--phase should be one of {EXPORT_PHASES}. "
                         f"Received: {phase!r}")
    run = RunDir.open(run_dir)
    for sub in _WEIGHTS[phase]:
        if run.has_weights(sub):
            return run.weights_prefix(sub), sub
    done = run.done_phases()
    raise RunDirError(
        f"run {run.path} has no finished weights for phase {phase!r} "
        f"(finished phases: {done or 'none'}). "
        + ("It is a teacher-only (`train`) run: export it with --phase "
           "teacher, or continue it with `python -m tfdsmlp run --out "
           f"{run.path} ...`." if done == ["teacher"] else
           "Finish the run first (rerunning its command resumes it)."))


def phase_stream(run_dir: str | RunDir, phase: str,
                 settings: dict[str, Any],
                 config: dict[str, Any] | None = None) -> str | None:
    """The stream ("main" / "parallel") an export phase keeps alone, or
    None for the whole model. `settings`: the weights phase's done.json
    settings ({"model", "params"}); `config`: the run's config.yaml, when
    the caller has read it already."""
    run = RunDir.open(run_dir)
    stream = _STREAMS.get(phase)
    params = settings.get("params") or {}
    if phase == "student" and settings.get("model") == "dsmlp":
        distill = (config or run.read_config()).get("distill") or {}
        if (params.get("use_parallel", True)
                and distill.get("train_parallel") is False):
            stream = "main"  # stage 1 left the parallel MLP untrained
    if stream and settings.get("model") != "dsmlp":
        raise RunDirError(
            f"--phase {phase} keeps one stream of a DS-MLP, but run "
            f"{run.path}'s student is {settings.get('model')!r}: export "
            "--phase dsmlp instead.")
    if stream and params.get(f"use_{stream}") is False:
        raise RunDirError(
            f"--phase {phase}: run {run.path}'s DS-MLP has no {stream} "
            f"stream (student.params.use_{stream}: false).")
    return stream


def load_run_model(run_dir: str | RunDir, phase: str = "best",
                   data_dir: str | None = None, precision: str = "float32"
                   ) -> tuple[tf.keras.Model, FeatureSpec, str, dict]:
    """Builds the phase's model and loads its weights (checked).

    `precision`: the Keras policy the model computes in ("float32", or
    "mixed_bfloat16": matmuls and activations in bfloat16 on the float32
    weights, float32 logits; `SERVING_PRECISIONS`).

    A one-stream phase (`phase_stream`) loads the whole DS-MLP (checked)
    and returns `DualStreamMLP.stream_model` of it.

    Returns (model, spec, data_dir, info) where info has `run_dir`,
    `phase`, `weights`, `weights_phase`, `model_name`, `params` (those of
    the returned model), `precision`, `stream` (None: the whole model).
    """
    if precision not in SERVING_PRECISIONS:
        raise ValueError(f"--precision should be one of "
                         f"{SERVING_PRECISIONS}. Received: {precision!r}")
    run = RunDir.open(run_dir)
    if phase == "best":
        phase = selected_phase(run)
    prefix, weights_phase = phase_weights(run, phase)
    settings = run.read_done(weights_phase)["settings"]
    cfg = run.read_config()
    stream = phase_stream(run, phase, settings, cfg)  # before building
    data = DatasetDir.open(data_dir or cfg.get("data") or "")
    recorded = cfg.get("dataset_fingerprint")
    if data_dir and recorded and recorded != data.fingerprint:
        raise RunDirError(
            f"--data {data_dir} is not the dataset run {run.path} was "
            f"trained on ({cfg.get('data')}): their dataset.json differ.")
    with precision_policy(precision):  # sublayers are built by the call
        model = build_model(settings["model"], settings.get("params") or {},
                            data.spec)
        model(model.dummy_inputs(), training=False)
    load_weights_checked(model, prefix, f"{phase} model")
    params = dict(settings.get("params") or {})
    if stream:
        with precision_policy(precision):
            model = model.stream_model(stream)
        params.update(use_main=stream == "main",
                      use_parallel=stream == "parallel")
    info = {"run_dir": run.path, "phase": phase,
            "weights": os.path.abspath(prefix),
            "weights_phase": weights_phase,
            "model_name": settings["model"],
            "params": params, "precision": precision, "stream": stream}
    return model, data.spec, data.path, info


def export_run(run_dir: str, name: str, phase: str = "best",
               version: int | None = None, base_dir: str = "saved_models",
               data_dir: str | None = None, jit_compile: bool = False,
               precision: str = "float32") -> str:
    """Exports a run's phase model to `base_dir/name/<version>`; returns the
    version directory (`jit_compile`: see `export_saved_model`;
    `precision`: see `load_run_model`, recorded in the export's
    metadata, which `serve-check` reads)."""
    from tfdsmlp.export.saved_model import export_saved_model

    model, spec, data_dir, info = load_run_model(run_dir, phase, data_dir,
                                                 precision)
    return export_saved_model(model, spec, base_dir, name, version,
                              data_dir=data_dir, metadata=info,
                              jit_compile=jit_compile)
