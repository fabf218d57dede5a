"""The export that `predict` scores with: loading a version directory.

`load_model` opens a SavedModel written by `python -m tfdsmlp export` and
checks that it has the raw-value signatures (`serving_default`, taking the
raw source columns, and `predict_examples`, taking tf.Examples); the raw
inputs are listed in the order of `assets.extra/tfdsmlp_export.json`.
`PredictError`, the error every part of `tfdsmlp.predict` raises for an
export, an input or an option that cannot be used, lives here too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf

RAW_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "predict_examples"
METADATA_FILE = "tfdsmlp_export.json"   # tfdsmlp.export.saved_model's


class PredictError(ValueError):
    """The export, the input or an option cannot be used; says why."""


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A loaded version directory: its raw-value and tf.Example signatures
    and the raw inputs {name: "string" | "float32"} the first one takes
    (`loaded`, the restored object, keeps their variables alive)."""

    path: str
    inputs: dict[str, str]
    predict_raw: Any
    predict_examples: Any
    loaded: Any = dataclasses.field(default=None, repr=False)


def load_model(export_dir: str | os.PathLike) -> ExportedModel:
    """Loads a version directory written by `python -m tfdsmlp export`
    (tags {"serve"}); raises a `PredictError` that says what to pass
    instead when `export_dir` is not one."""
    path = os.path.abspath(os.fspath(export_dir))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: pass a version directory written by "
            "`python -m tfdsmlp export`, e.g. saved_models/NAME/1.")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        versions = sorted(int(d) for d in os.listdir(path) if d.isdigit()
                          and os.path.isfile(os.path.join(path, d,
                                                          "saved_model.pb")))
        if versions:
            latest = os.path.join(path, str(versions[-1]))
            raise PredictError(
                f"{path} is a model directory with versions {versions}; "
                f"pass one version, e.g. {latest}")
        raise PredictError(
            f"{path} is not a SavedModel version directory (it has no "
            "saved_model.pb); pass saved_models/NAME/<version> as written by "
            "`python -m tfdsmlp export`.")
    try:
        loaded = tf.saved_model.load(path, tags=["serve"])
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise PredictError(f"{path}: cannot load the SavedModel: {e}") from None
    sigs = loaded.signatures
    missing = [s for s in (RAW_SIGNATURE, EXAMPLES_SIGNATURE)
               if s not in sigs]
    specs = (sigs[RAW_SIGNATURE].structured_input_signature[1]
             if RAW_SIGNATURE in sigs else {})
    if missing or set(specs) <= {"ids", "dense"}:
        raise PredictError(
            f"{path} has no raw-value signatures (it was exported without "
            "the dataset directory, or by another tool): `predict` needs "
            f"{RAW_SIGNATURE} with raw inputs and {EXAMPLES_SIGNATURE}. "
            "Export again with `python -m tfdsmlp export`.")
    order = [i["name"] for i in _metadata(path).get("raw_inputs", [])]
    names = [n for n in order if n in specs] + sorted(set(specs) - set(order))
    inputs = {n: "string" if specs[n].dtype == tf.string else "float32"
              for n in names}
    return ExportedModel(path, inputs, sigs[RAW_SIGNATURE],
                         sigs[EXAMPLES_SIGNATURE], loaded)


def _metadata(path: str) -> dict[str, Any]:
    """assets.extra/tfdsmlp_export.json ({} when absent or unreadable)."""
    try:
        with open(os.path.join(path, "assets.extra", METADATA_FILE),
                  encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
