"""TF Serving requests for an exported model: build them, and answer them.

Building (what a client sends):
  `predict_request`, `classification_request`, `regression_request`
  (gRPC protos from `tensorflow-serving-api`), `rest_instances` /
  `rest_inputs` (REST JSON bodies, row and columnar form), `make_example`
  (a tf.Example with the raw named features) and the warm-up file
  `assets.extra/tf_serving_warmup_requests` (`write_warmup`).

Answering (`Servable`): loads a version directory with tags {"serve"} and
answers those requests the way TF Serving's Predict / Classify / Regress
handlers and its REST JSON layer do (same request -> tensor rules, same
response layout), feeding them to the loaded signatures. TF Serving itself
cannot run here; this is what the tests and `serve-check` use to show that
the protos and JSON bodies fit the signatures. Its own request checks raise
`ServingError` naming the feature and what was expected (TF Serving's message
for a wrong dtype names only an argument index); shape and value checks are
in the graph and raise `tf.errors.InvalidArgumentError` with the feature
name, also under the real server.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Iterable, Sequence

import numpy as np
import tensorflow as tf

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DTYPE_NAMES = {tf.string: "DT_STRING", tf.float32: "DT_FLOAT",
               tf.int64: "DT_INT64"}


class ServingError(ValueError):
    """A request TF Serving would reject (INVALID_ARGUMENT / NOT_FOUND)."""


def _serving_apis():
    try:
        from tensorflow_serving.apis import (classification_pb2, input_pb2,
                                             model_pb2, predict_pb2,
                                             prediction_log_pb2,
                                             regression_pb2)
    except ImportError as e:  # pragma: no cover - pinned in requirements
        raise ImportError(
            "TF Serving requests need `tensorflow-serving-api` (pip install "
            "tensorflow-serving-api==2.21.0, see requirements.txt)") from e
    return (classification_pb2, input_pb2, model_pb2, predict_pb2,
            prediction_log_pb2, regression_pb2)


# ----------------------------------------------------------------- values
def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise TypeError(f"expected str or bytes, got {type(v).__name__}: {v!r}")


def columns(rows: Sequence[dict[str, Any]], inputs) -> dict[str, np.ndarray]:
    """Rows {input: value} -> {input: [batch] array} (bytes objects for
    string inputs, float32 for float inputs). `inputs`: `RawInput`s or
    (name, dtype) pairs."""
    out = {}
    for name, dtype in _pairs(inputs):
        values = [row[name] for row in rows]
        if dtype == "string":
            out[name] = np.array([_as_bytes(v) for v in values], dtype=object)
        else:
            out[name] = np.array(values, dtype=np.float32).reshape(-1)
    return out


def _pairs(inputs) -> list[tuple[str, str]]:
    return [(i.name, i.dtype) if hasattr(i, "name") else tuple(i)
            for i in inputs]


def make_example(row: dict[str, Any], inputs) -> tf.train.Example:
    """A tf.Example with one feature per raw input: bytes_list for string
    inputs, float_list for float32 inputs."""
    feature = {}
    for name, dtype in _pairs(inputs):
        v = row[name]
        if dtype == "string":
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[_as_bytes(v)]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(
                value=[float(v)]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def serialized_examples(rows, inputs) -> np.ndarray:
    return np.array([make_example(r, inputs).SerializeToString()
                     for r in rows], dtype=object)


def sample_rows(inputs, vocab_tokens: dict[str, list[bytes]], n: int
                ) -> list[dict[str, Any]]:
    """`n` valid raw rows made from vocabulary tokens (for warm-up): a token
    of each field, a YYMMDDHH for Avazu hours, small numbers."""
    rows = []
    for r in range(n):
        row: dict[str, Any] = {}
        for i in inputs:
            if i.dtype == "float32":
                row[i.name] = float(r % 3)
            elif set(i.transforms) & {"hour_of_day", "weekday"}:
                row[i.name] = f"1410{20 + r % 7:02d}{r % 24:02d}"
            else:
                tokens = vocab_tokens.get(i.fields[0]) or [b""]
                row[i.name] = tokens[r % len(tokens)].decode("utf-8",
                                                             "replace")
        rows.append(row)
    return rows


def indexed_arrays(n: int, vocab_sizes: Sequence[int], num_numeric: int
                   ) -> dict[str, np.ndarray]:
    """Valid pre-indexed inputs of `n` rows (for warm-up)."""
    ids = np.array([[(r % max(1, v - 2)) + 2 if v > 2 else 0
                     for v in vocab_sizes] for r in range(n)], np.int64)
    out = {"ids": ids.reshape(n, len(vocab_sizes))}
    if num_numeric:
        out["dense"] = np.zeros([n, num_numeric], np.float32)
    return out


# ----------------------------------------------------------- gRPC protos
def predict_request(model_name: str, signature_name: str,
                    inputs: dict[str, np.ndarray],
                    version: int | None = None):
    """PredictRequest with one TensorProto per input."""
    predict_pb2 = _serving_apis()[3]
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model_name
    req.model_spec.signature_name = signature_name
    if version is not None:
        req.model_spec.version.value = int(version)
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return req


def _input_proto(examples, context=None):
    input_pb2 = _serving_apis()[1]
    inp = input_pb2.Input()
    if context is not None:
        inp.example_list_with_context.context.CopyFrom(context)
        inp.example_list_with_context.examples.extend(examples)
    else:
        inp.example_list.examples.extend(examples)
    return inp


def _examples_request(module_index: int, request_class: str,
                      model_name: str, examples: Iterable,
                      signature_name: str, context, version: int | None):
    """A Classify/Regress request: model spec + tf.Example inputs."""
    module = _serving_apis()[module_index]
    req = getattr(module, request_class)()
    req.model_spec.name = model_name
    req.model_spec.signature_name = signature_name
    if version is not None:
        req.model_spec.version.value = int(version)
    req.input.CopyFrom(_input_proto(list(examples), context))
    return req


def classification_request(model_name: str, examples: Iterable,
                           signature_name: str = "classify", context=None,
                           version: int | None = None):
    """ClassificationRequest (Classify API) with tf.Example inputs."""
    return _examples_request(0, "ClassificationRequest", model_name,
                             examples, signature_name, context, version)


def regression_request(model_name: str, examples: Iterable,
                       signature_name: str = "regress", context=None,
                       version: int | None = None):
    """RegressionRequest (Regress API) with tf.Example inputs."""
    return _examples_request(5, "RegressionRequest", model_name, examples,
                             signature_name, context, version)


# ------------------------------------------------------------ REST bodies
def _json_value(v: Any) -> Any:
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(v).decode("ascii")}
    if isinstance(v, np.ndarray):
        return [_json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def rest_instances(rows: Sequence[dict[str, Any]],
                   signature_name: str = "serving_default") -> dict:
    """Row-format body: {"signature_name", "instances": [{input: value}]}."""
    return {"signature_name": signature_name,
            "instances": [{k: _json_value(v) for k, v in r.items()}
                          for r in rows]}


def rest_inputs(cols: dict[str, Any],
                signature_name: str = "serving_default") -> dict:
    """Columnar body: {"signature_name", "inputs": {input: [values]}}."""
    return {"signature_name": signature_name,
            "inputs": {k: _json_value(v) for k, v in cols.items()}}


def rest_examples(rows: Sequence[dict[str, Any]],
                  signature_name: str) -> dict:
    """Classify / Regress REST body: {"signature_name", "examples": [...]}
    (JSON strings become bytes_list, floats float_list)."""
    return {"signature_name": signature_name,
            "examples": [{k: _json_value(v) for k, v in r.items()}
                         for r in rows]}


# ---------------------------------------------------------------- warm-up
def warmup_logs(model_name: str, inputs, rows, vocab_sizes, num_numeric,
                batch_sizes=(1, 16)) -> list:
    """PredictionLogs for every signature at each batch size."""
    apis = _serving_apis()
    prediction_log_pb2 = apis[4]
    logs = []
    for n in batch_sizes:
        part = [rows[i % len(rows)] for i in range(n)]
        cols = columns(part, inputs)
        for sig, feed in (
                ("serving_default", cols),
                ("preprocess", cols),
                ("predict_indexed", indexed_arrays(n, vocab_sizes,
                                                   num_numeric)),
                ("predict_examples",
                 {"examples": serialized_examples(part, inputs)})):
            logs.append(prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(model_name, sig, feed))))
        examples = [make_example(r, inputs) for r in part]
        logs.append(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog(
                request=classification_request(model_name, examples))))
        logs.append(prediction_log_pb2.PredictionLog(
            regress_log=prediction_log_pb2.RegressLog(
                request=regression_request(model_name, examples))))
    return logs


def write_warmup(path: str, model_name: str, inputs, rows, vocab_sizes,
                 num_numeric) -> int:
    """Writes `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
    PredictionLog protos); returns the number of records."""
    logs = warmup_logs(model_name, inputs, rows, vocab_sizes, num_numeric)
    with tf.io.TFRecordWriter(path) as w:
        for log in logs:
            w.write(log.SerializeToString())
    return len(logs)


def read_warmup(path: str) -> list:
    prediction_log_pb2 = _serving_apis()[4]
    out = []
    for rec in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(rec.numpy())
        out.append(log)
    return out


# ------------------------------------------------------- answering requests
class Servable:
    """A version directory loaded as TF Serving loads it (tags {"serve"}),
    answering Predict / Classify / Regress requests and REST bodies."""

    def __init__(self, export_dir: str):
        from tensorflow.core.protobuf import saved_model_pb2

        self.export_dir = export_dir
        self.loaded = tf.saved_model.load(export_dir, tags=["serve"])
        sm = saved_model_pb2.SavedModel()
        with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
            sm.ParseFromString(f.read())
        self.signature_defs = dict(sm.meta_graphs[0].signature_def)

    # -- signatures ------------------------------------------------------
    def _signature(self, name: str):
        name = name or "serving_default"
        if name not in self.signature_defs:
            raise ServingError(f'Serving signature key "{name}" not found; '
                               f"available: {sorted(self.signature_defs)}")
        return name, self.signature_defs[name]

    def input_dtypes(self, signature_name: str) -> dict[str, tf.DType]:
        _, sig = self._signature(signature_name)
        return {k: tf.dtypes.as_dtype(v.dtype) for k, v in sig.inputs.items()}

    def call(self, signature_name: str, inputs: dict[str, Any]
             ) -> dict[str, np.ndarray]:
        """Checks names and dtypes like TF Serving (naming the feature),
        converts and runs the signature; returns numpy outputs."""
        name, sig = self._signature(signature_name)
        expected = self.input_dtypes(name)
        missing = sorted(set(expected) - set(inputs))
        extra = sorted(set(inputs) - set(expected))
        if missing or extra:
            raise ServingError(
                f"signature {name!r}: input size does not match signature: "
                f"missing feature(s) {missing}, unexpected {extra}; "
                f"expected inputs {sorted(expected)}")
        feed = {}
        for key, dtype in expected.items():
            feed[key] = self._tensor(name, key, inputs[key], dtype)
        out = self.loaded.signatures[name](**feed)
        return {k: v.numpy() for k, v in out.items()}

    @staticmethod
    def _tensor(sig: str, key: str, value: Any, dtype: tf.DType) -> tf.Tensor:
        want = DTYPE_NAMES.get(dtype, dtype.name)
        if isinstance(value, tf.Tensor):
            got = value.dtype
        else:
            arr = np.asarray(value)
            if arr.dtype == object or arr.dtype.kind in "SU":
                got = tf.string
            elif arr.dtype.kind == "f":
                got = tf.float32 if dtype == tf.float32 else tf.as_dtype(
                    arr.dtype)
            elif arr.dtype.kind in "iu":
                got = (tf.int64 if dtype == tf.int64 else
                       tf.float32 if dtype == tf.float32 else
                       tf.as_dtype(arr.dtype))
            elif arr.dtype.kind == "b":
                got = tf.bool
            else:
                got = tf.as_dtype(arr.dtype)
            if got == dtype:
                value = tf.constant(arr, dtype=dtype) if arr.size else \
                    tf.zeros(arr.shape, dtype)
        if got != dtype:
            raise ServingError(
                f"signature {sig!r}: feature `{key}` expects {want} "
                f"({dtype.name}) but got {DTYPE_NAMES.get(got, got.name)} "
                f"({got.name})")
        return value

    # -- gRPC ------------------------------------------------------------
    def predict(self, request):
        """PredictRequest -> PredictResponse (Predict API)."""
        predict_pb2 = _serving_apis()[3]
        name, sig = self._signature(request.model_spec.signature_name)
        inputs = {}
        for key, proto in request.inputs.items():
            want = self.input_dtypes(name).get(key)
            got = tf.dtypes.as_dtype(proto.dtype)
            if want is not None and got != want:
                raise ServingError(
                    f"signature {name!r}: feature `{key}` expects "
                    f"{DTYPE_NAMES.get(want, want.name)} but the request "
                    f"sent {DTYPE_NAMES.get(got, got.name)}")
            inputs[key] = tf.constant(tf.make_ndarray(proto), dtype=got) \
                if got != tf.string else tf.constant(
                    tf.make_ndarray(proto).astype(object), tf.string)
        out = self.call(name, inputs)
        outputs = list(request.output_filter) or list(out)
        resp = predict_pb2.PredictResponse()
        resp.model_spec.name = request.model_spec.name
        resp.model_spec.signature_name = name
        for k in outputs:
            if k not in out:
                raise ServingError(f"output tensor alias not found in "
                                   f"signature: {k}")
            resp.outputs[k].CopyFrom(tf.make_tensor_proto(out[k]))
        return resp

    def _serialized(self, inp) -> np.ndarray:
        kind = inp.WhichOneof("kind")
        if kind == "example_list":
            ex = [e.SerializeToString() for e in inp.example_list.examples]
        elif kind == "example_list_with_context":
            ctx = inp.example_list_with_context.context.SerializeToString()
            # TF Serving concatenates context and example bytes (= merge).
            ex = [ctx + e.SerializeToString()
                  for e in inp.example_list_with_context.examples]
        else:
            raise ServingError("Input is empty: set example_list or "
                               "example_list_with_context")
        if not ex:
            raise ServingError("Invalid argument: Input is empty.")
        return np.array(ex, dtype=object)

    def _check_method(self, name: str, method: str) -> None:
        got = self.signature_defs[name].method_name
        if got != method:
            raise ServingError(f"Expected {method} signature method_name, "
                               f"got: {got} (signature {name!r})")

    def _examples_call(self, request, method: str, module_index: int,
                       response_class: str):
        """Runs a Classify/Regress request's signature on its tf.Examples;
        returns (outputs, response with the model spec filled in)."""
        name, _ = self._signature(request.model_spec.signature_name)
        self._check_method(name, method)
        out = self.call(name, {"inputs": self._serialized(request.input)})
        resp = getattr(_serving_apis()[module_index], response_class)()
        resp.model_spec.name = request.model_spec.name
        resp.model_spec.signature_name = name
        return out, resp

    def classify(self, request):
        """ClassificationRequest -> ClassificationResponse."""
        out, resp = self._examples_call(request, CLASSIFY_METHOD, 0,
                                        "ClassificationResponse")
        for classes, scores in zip(out["classes"], out["scores"]):
            c = resp.result.classifications.add()
            for label, score in zip(classes, scores):
                c.classes.add(label=label.decode(), score=float(score))
        return resp

    def regress(self, request):
        """RegressionRequest -> RegressionResponse."""
        out, resp = self._examples_call(request, REGRESS_METHOD, 5,
                                        "RegressionResponse")
        for v in np.reshape(out["outputs"], [-1]):
            resp.result.regressions.add(value=float(v))
        return resp

    # -- REST ------------------------------------------------------------
    def rest(self, verb: str, body: str | dict) -> dict:
        """POST /v1/models/NAME:<verb> with a JSON body -> JSON response."""
        if isinstance(body, str):
            body = json.loads(body)
        if verb == "predict":
            return self._rest_predict(body)
        if verb in ("classify", "regress"):
            return self._rest_examples(verb, body)
        raise ServingError(f"unknown verb {verb!r}")

    def _json_tensor(self, sig: str, key: str, value: Any,
                     dtype: tf.DType) -> np.ndarray:
        want = DTYPE_NAMES.get(dtype, dtype.name)

        def conv(v):
            if isinstance(v, list):
                return [conv(x) for x in v]
            if dtype == tf.string:
                if isinstance(v, dict) and set(v) == {"b64"}:
                    return base64.b64decode(v["b64"])
                if isinstance(v, str):
                    return v.encode("utf-8")
            elif dtype == tf.float32:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return float(v)
            elif dtype == tf.int64:
                if isinstance(v, int) and not isinstance(v, bool):
                    return v
            raise ServingError(
                f"signature {sig!r}: feature `{key}`: JSON value "
                f"{json.dumps(v)} is not of expected type {want}"
                + (" (send categorical values as JSON strings, e.g. "
                   f"\"{v}\")" if dtype == tf.string
                   and isinstance(v, (int, float)) else ""))

        arr = conv(value)
        if dtype == tf.string:
            return np.array(arr, dtype=object)
        return np.array(arr, dtype=dtype.as_numpy_dtype)

    def _rest_predict(self, body: dict) -> dict:
        name, _ = self._signature(body.get("signature_name", ""))
        dtypes = self.input_dtypes(name)
        if ("instances" in body) == ("inputs" in body):
            raise ServingError('Request body should have exactly one of '
                               '"instances" (row format) or "inputs" '
                               '(columnar format)')
        if "instances" in body:
            inst = body["instances"]
            if not isinstance(inst, list):
                raise ServingError('"instances" should be a list')
            if len(dtypes) == 1 and not (inst and isinstance(inst[0], dict)
                                         and set(inst[0]) <= set(dtypes)
                                         and "b64" not in inst[0]):
                key = next(iter(dtypes))
                inst = [{key: v} for v in inst]
            feed = {}
            for k, dtype in dtypes.items():
                missing = [i for i, row in enumerate(inst) if k not in row]
                if missing:
                    raise ServingError(
                        f"signature {name!r}: instance {missing[0]} is "
                        f"missing feature `{k}` ({DTYPE_NAMES[dtype]}); "
                        f"expected keys {sorted(dtypes)}")
                if inst:
                    feed[k] = self._json_tensor(name, k,
                                                [row[k] for row in inst],
                                                dtype)
                else:
                    feed[k] = np.zeros([0], dtype.as_numpy_dtype) \
                        if dtype != tf.string else np.array([], object)
            extra = sorted({k for row in inst for k in row} - set(dtypes))
            if extra:
                raise ServingError(f"signature {name!r}: unexpected "
                                   f"feature(s) {extra}; expected "
                                   f"{sorted(dtypes)}")
            out = self.call(name, feed)
            n = len(inst)
            if len(out) == 1:
                preds = _json_value(next(iter(out.values())))
            else:
                preds = [{k: _json_value(v[i]) for k, v in out.items()}
                         for i in range(n)]
            return {"predictions": preds}
        cols = body["inputs"]
        if len(dtypes) == 1 and not isinstance(cols, dict):
            cols = {next(iter(dtypes)): cols}
        if not isinstance(cols, dict):
            raise ServingError('"inputs" should be an object {feature: '
                               'values}')
        feed = {k: self._json_tensor(name, k, v, dtypes[k])
                for k, v in cols.items() if k in dtypes}
        feed.update({k: v for k, v in cols.items() if k not in dtypes})
        out = self.call(name, feed)
        if len(out) == 1:
            return {"outputs": _json_value(next(iter(out.values())))}
        return {"outputs": {k: _json_value(v) for k, v in out.items()}}

    def _rest_examples(self, verb: str, body: dict) -> dict:
        name = body.get("signature_name") or "serving_default"
        examples = body.get("examples")
        if not isinstance(examples, list):
            raise ServingError('"examples" should be a list of objects')
        context = body.get("context")
        protos = [_json_example(e) for e in examples]
        ctx = _json_example(context) if context else None
        req = (classification_request if verb == "classify"
               else regression_request)("", protos, name, context=ctx)
        if verb == "classify":
            resp = self.classify(req)
            return {"results": [[[c.label, c.score] for c in r.classes]
                                for r in resp.result.classifications]}
        resp = self.regress(req)
        return {"results": [r.value for r in resp.result.regressions]}

    # -- warm-up -----------------------------------------------------------
    def replay_warmup(self) -> int:
        """Runs every record of `assets.extra/tf_serving_warmup_requests`
        like TF Serving does at load; returns how many ran."""
        path = os.path.join(self.export_dir, "assets.extra",
                            "tf_serving_warmup_requests")
        n = 0
        for log in read_warmup(path):
            kind = log.WhichOneof("log_type")
            if kind == "predict_log":
                self.predict(log.predict_log.request)
            elif kind == "classify_log":
                self.classify(log.classify_log.request)
            elif kind == "regress_log":
                self.regress(log.regress_log.request)
            else:
                raise ServingError(f"unsupported warm-up log {kind}")
            n += 1
        return n


def _json_example(obj: dict) -> tf.train.Example:
    """TF Serving's REST example rules: strings -> bytes_list ({"b64": ..}
    too), integers -> int64_list, other numbers -> float_list; a list holds
    several values."""
    feature = {}
    for k, v in obj.items():
        vals = v if isinstance(v, list) else [v]
        if all(isinstance(x, str) or isinstance(x, dict) for x in vals):
            feature[k] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[base64.b64decode(x["b64"]) if isinstance(x, dict)
                       else x.encode("utf-8") for x in vals]))
        elif all(isinstance(x, int) and not isinstance(x, bool)
                 for x in vals):
            feature[k] = tf.train.Feature(int64_list=tf.train.Int64List(
                value=vals))
        else:
            feature[k] = tf.train.Feature(float_list=tf.train.FloatList(
                value=[float(x) for x in vals]))
    return tf.train.Example(features=tf.train.Features(feature=feature))
