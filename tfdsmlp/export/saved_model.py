"""Write a model as a versioned SavedModel: `<base>/<name>/<version>/`.

Signatures (inputs are the dataset's pre-indexed tensors):
  serving_default, predict_indexed:
    ids   int64   [batch, num_categorical]
    dense float32 [batch, num_numeric]   (only when the dataset has numeric
                                          fields)
  -> probability float32 [batch, 1], logit float32 [batch, 1]
The version is written to a temporary directory and renamed into place only
when complete, so TF Serving never loads a half-written version.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.features import FeatureSpec


def next_version(model_dir: str) -> int:
    """1 + the largest integer version under `model_dir` (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


class _ServingModule(tf.Module):
    def __init__(self, model: tf.keras.Model, spec: FeatureSpec):
        super().__init__()
        self.model = model
        signature = {"ids": tf.TensorSpec([None, spec.num_categorical],
                                          tf.int64, name="ids")}
        if spec.num_numeric:
            signature["dense"] = tf.TensorSpec([None, spec.num_numeric],
                                               tf.float32, name="dense")
        self.predict_indexed = tf.function(self._predict,
                                           input_signature=[signature])

    def _predict(self, features):
        logit = self.model(features, training=False)
        return {"probability": tf.sigmoid(logit), "logit": logit}


def export_saved_model(model: tf.keras.Model, spec: FeatureSpec,
                       base_dir: str, name: str,
                       version: int | None = None) -> str:
    """Exports `model` to `base_dir/name/version` and returns that path."""
    model_dir = os.path.join(base_dir, name)
    version = next_version(model_dir) if version is None else int(version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists; pick another "
                              "--version or remove it.")
    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=model_dir)
    try:
        module = _ServingModule(model, spec)
        fn = module.predict_indexed
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": fn, "predict_indexed": fn})
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
