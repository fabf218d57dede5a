"""Write a model as a versioned SavedModel for TF Serving: `<base>/<name>/<v>/`.

Signatures (see docs/SERVING.md for the full contract):

  serving_default    raw values, one input per raw source column (string for
                     categorical sources, float32 for numeric ones), shape
                     [batch] (or [batch, 1]); vocabulary lookup built in
                     -> probability float32 [batch, 1], logit float32 [batch, 1]
  predict_indexed    ids int64 [batch, C], dense float32 [batch, N] (only if
                     the dataset has numeric fields) -> probability, logit
  predict_examples   examples: serialized tf.Example strings [batch] with the
                     raw named features -> probability, logit
  classify           method tensorflow/serving/classify; inputs: serialized
                     tf.Example [batch] -> scores float32 [batch, 2]
                     (P(0), P(1)), classes string [batch, 2] ("0", "1")
  regress            method tensorflow/serving/regress; inputs: serialized
                     tf.Example [batch] -> outputs float32 [batch] (P(click))
  preprocess         raw values -> ids, dense (what the model is fed; for
                     checking training/serving skew)

The vocabularies are SavedModel assets; `assets.extra/` holds
`tf_serving_warmup_requests` (TF Serving replays them at load) and
`tfdsmlp_export.json` (where the model came from, its inputs). The graph only
holds TensorFlow ops and variables: the Keras model is not serialized, so the
SavedModel loads with TensorFlow alone. A version is written into a temporary
directory and renamed into place only when complete, so TF Serving never
loads a half-written version.

Permissions: every directory of a version is 0755 and every file 0644,
whatever the umask (the temporary directory starts as 0700), so that a TF
Serving process running as another user can read it. The export holds the
model's weights and vocabularies and nothing that needs hiding from other
local users more than that; to restrict who can load it, restrict the base
directory (e.g. `chmod 750 saved_models` with a group the server is in):
a version is only reachable through it.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile
import warnings
from typing import Any

import tfdsmlp
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.export.raw_features import (
    Checks,
    RawFeatures,
    add_finite_check,
    check_matrix,
    check_vector,
    vocab_files,
)
from tfdsmlp.features import FeatureSpec

import tensorflow as tf

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
RAW_SIGNATURES = ("serving_default", "predict_examples", "classify",
                  "regress", "preprocess")
SIGNATURES = ("serving_default", "predict_indexed", "predict_examples",
              "classify", "regress", "preprocess")
METHOD_NAMES = {"classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}
CLASS_LABELS = ("0", "1")
METADATA_FILE = "tfdsmlp_export.json"
WARMUP_FILE = "tf_serving_warmup_requests"
EXAMPLES_INPUT = "examples"
DIR_MODE = 0o755      # rwxr-xr-x: TF Serving may run as another user
FILE_MODE = 0o644     # rw-r--r--


def next_version(model_dir: str) -> int:
    """1 + the largest integer version under `model_dir` (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def _function(fn, input_signature):
    # No autograph: the serving code has no tensor-dependent Python control
    # flow, and converting it makes saving several times slower.
    return tf.function(fn, input_signature=input_signature, autograph=False)


class ServingModule(tf.Module):
    """The exported object: the model's variables, the vocabulary tables and
    one `tf.function` per signature.

    Only the variables are tracked, not the Keras model, so nothing Keras
    specific is serialized (fast to save, loads without Keras).
    """

    def __init__(self, model: tf.keras.Model, spec: FeatureSpec,
                 raw: RawFeatures | None, jit_compile: bool = False):
        super().__init__(name="tfdsmlp_serving")
        self.model_variables = list(model.variables)
        self.raw = raw
        self._spec = spec
        self._vocab_sizes = [f.vocab_size for f in spec.categorical]
        call = model.__call__

        def outputs(features):
            logit = tf.reshape(tf.cast(call(features, training=False),
                                       tf.float32), [-1, 1])
            return {"probability": tf.sigmoid(logit), "logit": logit}

        # XLA: the model's ops compile into fused kernels (the input checks
        # and the vocabulary lookup stay outside: XLA has no string ops).
        self._outputs = (tf.function(outputs, jit_compile=True,
                                     autograph=False)
                         if jit_compile else outputs)
        indexed = {"ids": tf.TensorSpec(None, tf.int64, name="ids")}
        if spec.num_numeric:
            indexed["dense"] = tf.TensorSpec(None, tf.float32, name="dense")
        self.predict_indexed = _function(self._predict_indexed, [indexed])
        if raw is None:
            return
        # Raw values -> ids/dense, traced once and called by every raw
        # signature (tracing it per signature made saving slow).
        self.raw_features = _function(raw.__call__, [raw.input_signature()])
        self.serving_default = _function(self._predict_raw,
                                         [raw.input_signature()])
        self.preprocess = _function(self._preprocess,
                                    [raw.input_signature()])
        self.predict_examples = _function(self._predict_examples, [
            tf.TensorSpec(None, tf.string, name=EXAMPLES_INPUT)])
        serialized = [tf.TensorSpec([None], tf.string, name="inputs")]
        self.classify = _function(self._classify, serialized)
        self.regress = _function(self._regress, serialized)

    # -- pre-indexed -------------------------------------------------------
    def indexed_features(self, features):
        c = len(self._vocab_sizes)
        ids = check_matrix(features["ids"], "ids", c, "int64 ids")
        sizes = tf.constant(self._vocab_sizes or [1], tf.int64)[:c]
        bad = tf.logical_not(tf.logical_and(ids >= 0, ids < sizes))
        names = ", ".join(f"{f.name}={f.vocab_size}"
                          for f in self._spec.categorical)
        checks = Checks()
        checks.add(tf.logical_not(tf.reduce_any(bad)), lambda: tf.strings.join([
            ("input `ids`: every id must be in [0, vocab_size) of its "
             f"column (0 = missing, 1 = OOV); vocab sizes: {names}; got "),
            tf.strings.reduce_join(tf.strings.as_string(
                tf.boolean_mask(ids, bad)[:5]), separator=", ")]))
        out = {"ids": ids}
        if self._spec.num_numeric:
            dense = check_matrix(features["dense"], "dense",
                                 self._spec.num_numeric, "float32 values")
            add_finite_check(checks, dense, "dense")
            n_ids, n_dense = tf.shape(ids)[0], tf.shape(dense)[0]
            checks.add(tf.equal(n_ids, n_dense), lambda: tf.strings.format(
                "inputs `ids` and `dense` need the same batch size; got {} "
                "and {}", (n_ids, n_dense)))
            out["dense"] = dense
        with tf.control_dependencies(checks.guard()):
            return {k: tf.identity(v) for k, v in out.items()}

    def _predict_indexed(self, features):
        return self._outputs(self.indexed_features(features))

    # -- raw values ----------------------------------------------------------
    def _predict_raw(self, features):
        return self._outputs(self.raw_features(features))

    def _preprocess(self, features):
        out = dict(self.raw_features(features))
        if "dense" not in out:
            out["dense"] = tf.zeros([tf.shape(out["ids"])[0], 0], tf.float32)
        return out

    def parse_examples(self, serialized):
        serialized = check_vector(serialized, EXAMPLES_INPUT,
                                  "a string tensor of serialized tf.Example")
        return tf.io.parse_example(serialized, self.raw.example_features())

    def _predict_examples(self, serialized):
        return self._outputs(self.raw_features(
            self.parse_examples(serialized)))

    def _classify(self, serialized):
        p = self._outputs(self.raw_features(self.parse_examples(serialized)))
        prob = p["probability"]
        scores = tf.concat([1.0 - prob, prob], axis=1)
        classes = tf.tile(tf.constant([list(CLASS_LABELS)]),
                          [tf.shape(prob)[0], 1])
        return {"scores": scores, "classes": classes}

    def _regress(self, serialized):
        p = self._outputs(self.raw_features(self.parse_examples(serialized)))
        return {"outputs": tf.reshape(p["probability"], [-1])}

    def signatures(self) -> dict[str, Any]:
        if self.raw is None:
            return {"serving_default": self.predict_indexed,
                    "predict_indexed": self.predict_indexed}
        return {name: getattr(self, name) for name in SIGNATURES}


def set_method_names(export_dir: str, methods: dict[str, str]) -> None:
    """Rewrites signature method names in `saved_model.pb` (TF2's
    `tf.saved_model.save` always writes the predict method name) and
    refreshes `fingerprint.pb`."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = os.path.join(export_dir, "saved_model.pb")
    sm = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        sm.ParseFromString(f.read())
    for meta_graph in sm.meta_graphs:
        for key, method in methods.items():
            if key in meta_graph.signature_def:
                meta_graph.signature_def[key].method_name = method
    with open(path, "wb") as f:
        f.write(sm.SerializeToString())
    fingerprinting_utils.write_fingerprint(export_dir)


def read_method_names(export_dir: str) -> dict[str, str]:
    """Signature key -> method name, read back from `saved_model.pb`."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return {k: v.method_name
            for k, v in sm.meta_graphs[0].signature_def.items()}


def read_metadata(export_dir: str) -> dict[str, Any]:
    """`assets.extra/tfdsmlp_export.json` of an exported version."""
    path = os.path.join(export_dir, "assets.extra", METADATA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {export_dir!r} is not a version directory "
            "written by `python -m tfdsmlp export` (saved_models/NAME/N).")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _describe(spec: FeatureSpec, raw: RawFeatures | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "fields": [{"name": f.name, "kind": f.kind,
                    "vocab_size": f.vocab_size, "transform": f.transform,
                    "source": f.source or f.name} for f in spec.fields],
        "predict_indexed": {
            "ids": f"int64 [batch, {spec.num_categorical}]",
            **({"dense": f"float32 [batch, {spec.num_numeric}]"}
               if spec.num_numeric else {})},
    }
    if raw is not None:
        out["raw_inputs"] = [{"name": i.name, "dtype": i.dtype,
                              "fields": list(i.fields),
                              "transforms": list(i.transforms)}
                             for i in raw.inputs]
        out["data_format"] = raw.data_format
    return out


def _missing_dirs(path: str) -> list[str]:
    """The ancestors of `path` (itself included) that do not exist yet,
    outermost first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


def make_world_readable(root: str) -> None:
    """Sets `root` and every directory under it to DIR_MODE (0755) and every
    file to FILE_MODE (0644); symbolic links are left alone."""
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, DIR_MODE if name in dirnames else FILE_MODE)


# TF Serving's model names become directory names and URL path parts
# (/v1/models/NAME): letters, digits, '_', '-' and '.', not starting with '.'.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_model_name(name: str) -> None:
    """Raises ValueError unless `name` is a plain model name (no path
    separators, no '..', no spaces)."""
    if not _MODEL_NAME.fullmatch(name or ""):
        raise ValueError(
            f"--name should be a plain model name (letters, digits, '_', "
            f"'-', '.'; not starting with '.'), used as the directory "
            f"BASE/NAME and in TF Serving's /v1/models/NAME. Received: "
            f"{name!r}")


def export_saved_model(model: tf.keras.Model, spec: FeatureSpec,
                       base_dir: str, name: str,
                       version: int | None = None, *,
                       data_dir: str | os.PathLike | None = None,
                       metadata: dict[str, Any] | None = None,
                       warmup: bool = True, jit_compile: bool = False) -> str:
    """Exports `model` to `base_dir/name/version` and returns that path.

    The version directory and everything in it are readable by every user
    (directories 0755, files 0644; see the module docstring); so are the
    `base_dir` and `base_dir/name` directories when this call creates them.

    Args:
      model: a built CTR model ({"ids", "dense"} -> logits (batch, 1)).
      spec: the dataset's `FeatureSpec`.
      data_dir: the dataset directory, a path or a `DatasetDir`
        (vocabulary files, transforms). Without it only the pre-indexed
        signatures can be written (serving_default = predict_indexed, as in
        tfdsmlp <= 0.1) and a warning says so.
      metadata: extra provenance for `assets.extra/tfdsmlp_export.json`
        (`run_dir`, `phase`, ...; `serve-check` reads them).
      warmup: write `assets.extra/tf_serving_warmup_requests`.
      jit_compile: XLA-compile the model inside every signature (faster
        serving on CPU, docs/BENCHMARKS.md). TF Serving then needs
        `--xla_cpu_compilation_enabled=true` on CPU (its default refuses
        XLA functions at the first request); the warm-up requests make it
        compile at load time.
    """
    check_model_name(name)
    model_dir = os.path.join(base_dir, name)
    version = next_version(model_dir) if version is None else int(version)
    if version < 0:
        raise ValueError(f"--version should be a non-negative integer. "
                         f"Received: {version}")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists; pick another "
                              "--version or remove it.")
    raw = data = None
    if data_dir is None:
        warnings.warn(
            "export_saved_model without data_dir: only the pre-indexed "
            "signatures (ids/dense) are exported; pass data_dir for "
            "raw-value serving.", stacklevel=2)
    else:
        data = DatasetDir.open(data_dir)
        raw = RawFeatures.from_dataset_dir(data, spec)
    created = _missing_dirs(model_dir)
    os.makedirs(model_dir, exist_ok=True)
    for path in created:
        os.chmod(path, DIR_MODE)
    tmp = tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=model_dir)
    try:
        module = ServingModule(model, spec, raw, jit_compile=jit_compile)
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        if raw is not None:
            set_method_names(tmp, METHOD_NAMES)
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        if warmup and raw is not None:
            from tfdsmlp.export import serving_requests as requests

            rows = requests.sample_rows(raw.inputs, _vocab_tokens(data), 16)
            requests.write_warmup(os.path.join(extra, WARMUP_FILE), name,
                                  raw.inputs, rows, spec.vocab_sizes,
                                  spec.num_numeric)
        info = {
            "name": name, "version": version,
            "model": getattr(model, "name", type(model).__name__),
            "model_class": type(model).__name__,
            "data_dir": data.path if data is not None else None,
            "exported_at": datetime.datetime.now().isoformat(
                timespec="seconds"),
            "tensorflow": tf.__version__, "tfdsmlp": tfdsmlp.__version__,
            "signatures": sorted(module.signatures()),
            "jit_compile": jit_compile,
            **_describe(spec, raw), **(metadata or {}),
        }
        with open(os.path.join(extra, METADATA_FILE), "w",
                  encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        make_world_readable(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _vocab_tokens(data: DatasetDir) -> dict[str, list[bytes]]:
    out = {}
    for field, path in vocab_files(data).items():
        with open(path, "rb") as f:
            out[field] = f.read().split(b"\n")[:-1][:64]
    return out
