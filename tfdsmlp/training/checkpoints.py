"""Loading weights that refuse the wrong model.

`model.load_weights(prefix).expect_partial()` silently leaves every variable
that the checkpoint does not name at its random initial value: weights of
another architecture give a randomly initialised model that still
"loads". `load_weights_checked` instead requires that every model variable
is restored and every model value in the checkpoint is used (optimizer
slots and step counters aside), and says which model and settings the
weights came from when they do not match.
"""

from __future__ import annotations

import os
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.run_dir import RunDir, RunDirError
from tfdsmlp.training.parameter_server import sharded_variables

import tensorflow as tf

_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"
# Checkpoint values that are not model weights: optimizer state, save
# counters, random generator states of dropout layers.
_NOT_WEIGHTS = ("optimizer/", "save_counter/", "_CHECKPOINTABLE_OBJECT_GRAPH")


class WeightsMismatchError(ValueError):
    """A checkpoint does not hold the weights of the model loading it."""


def _model_values(prefix: str) -> dict[str, list[int]]:
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.NotFoundError, tf.errors.DataLossError,
            ValueError) as e:
        raise FileNotFoundError(
            f"No readable TensorFlow checkpoint at {prefix!r} (expected "
            f"{prefix}.index and data files): {str(e).splitlines()[0]}"
        ) from None
    return {k: v for k, v in reader.get_variable_to_shape_map().items()
            if k.endswith(_VALUE) and not k.startswith(_NOT_WEIGHTS)
            and "_generator" not in k}


def describe_source(prefix: str) -> str:
    """Which model and settings a weights prefix came from, when it lies
    in a run directory (RUN/<phase>/weights/model)."""
    phase_dir = os.path.dirname(os.path.dirname(os.path.abspath(prefix)))
    run = RunDir(os.path.dirname(phase_dir))
    phase = os.path.basename(phase_dir)
    try:
        settings = run.read_done(phase)["settings"]
    except (FileNotFoundError, ValueError, KeyError):
        return "an unknown model (no run directory records it)"
    return (f"phase {phase!r} of run {run.path}: model "
            f"{settings.get('model')!r} with params "
            f"{settings.get('params')}")


def load_weights_checked(model: tf.keras.Model, prefix: str,
                         what: str = "model") -> None:
    """Loads `prefix` into the built `model`, requiring an exact match.

    Raises `FileNotFoundError` when there is no checkpoint and
    `WeightsMismatchError` naming the weights' origin when a model variable
    is not restored or a checkpoint value is left unused."""
    values = _model_values(prefix)
    # A row-sharded variable (ParameterServerStrategy) is one value.
    shard_of = {id(part): id(var)
                for var in sharded_variables(model).values()
                for part in var.variables}
    model_vars = {shard_of.get(id(v), id(v)) for v in model.weights}
    problem = None
    try:
        status = model.load_weights(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        problem = str(e).splitlines()[0][:300]
    else:
        status.expect_partial()  # the optimizer's slots, if any
        if len(values) != len(model_vars):
            problem = (f"the checkpoint holds {len(values)} model values, "
                       f"the model has {len(model_vars)} variables")
    if problem:
        raise WeightsMismatchError(
            f"The weights at {prefix} do not fit the {what} "
            f"({type(model).__name__}): {problem}. They come from "
            f"{describe_source(prefix)}. Give weights of the same model "
            "and settings, or train it (leave out --teacher-checkpoint).")


def resolve_weights(path: str, phase: str = "teacher"
                    ) -> tuple[str, dict[str, Any] | None]:
    """(weights prefix, the phase's done.json record or None) for a run
    directory (its `phase` weights) or a weights prefix. The prefix
    RUN/<phase>/weights/model of a finished phase is RUN itself, so both
    forms make the same fingerprint (a run resumed with the prefix its
    config.yaml records is not refused)."""
    run_path = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(path))))
    if not RunDir.is_run_dir(path) and RunDir.is_run_dir(run_path):
        run = RunDir(run_path)
        if (os.path.abspath(run.weights_prefix(phase)) == os.path.abspath(path)
                and run.has_weights(phase)):
            path = run_path
    if RunDir.is_run_dir(path):
        run = RunDir(path)
        if not run.has_weights(phase):
            raise RunDirError(
                f"Run directory {run.path} has no finished {phase!r} phase "
                f"(no {run.weights_prefix(phase)}.index); finish its "
                "command first.")
        return run.weights_prefix(phase), run.read_done(phase)
    if os.path.isdir(path):
        raise FileNotFoundError(
            f"{path!r} is neither a run directory (no config.yaml) nor a "
            "weights prefix (e.g. RUN/teacher/weights/model).")
    return path, None
