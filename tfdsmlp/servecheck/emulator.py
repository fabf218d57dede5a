"""An in-process stand-in for TF Serving's request handling (a checking tool).

`Servable(path)` loads a version directory with tags {"serve"} and answers
Predict / Classify / Regress requests (the gRPC protos of
`tensorflow-serving-api`) and REST JSON bodies the way TF Serving's handlers
and its REST JSON layer do (same request -> tensor rules, same response
layout), feeding them to the loaded signatures. TF Serving itself cannot
run here; the tests use this to show that the protos and JSON bodies built
by `tfdsmlp.export.serving_requests` (and the ones in docs/SERVING.md) fit
the signatures. Its own request checks raise `ServingError` naming the
feature and what was expected (TF Serving's message for a wrong dtype names
only an argument index); shape and value checks are in the graph and raise
`tf.errors.InvalidArgumentError` with the feature name, also under the real
server.

It is not a server, and not part of the export: nothing in
`tfdsmlp.export` imports it.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from tfdsmlp.export.saved_model import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    WARMUP_FILE,
)
from tfdsmlp.export.serving_requests import (
    classification_request,
    json_value,
    read_warmup,
    regression_request,
    serving_apis,
)

import numpy as np
import tensorflow as tf

DTYPE_NAMES = {tf.string: "DT_STRING", tf.float32: "DT_FLOAT",
               tf.int64: "DT_INT64"}


class ServingError(ValueError):
    """A request TF Serving would reject (INVALID_ARGUMENT / NOT_FOUND)."""


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
        name, _ = self._signature(signature_name)
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
        predict_pb2 = serving_apis()[3]
        name, _ = self._signature(request.model_spec.signature_name)
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
        resp = getattr(serving_apis()[module_index], response_class)()
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
            elif (dtype == tf.int64 and isinstance(v, int)
                  and not isinstance(v, bool)):
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
                preds = json_value(next(iter(out.values())))
            else:
                preds = [{k: json_value(v[i]) for k, v in out.items()}
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
            return {"outputs": json_value(next(iter(out.values())))}
        return {"outputs": {k: json_value(v) for k, v in out.items()}}

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
        path = os.path.join(self.export_dir, "assets.extra", WARMUP_FILE)
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
        if all(isinstance(x, (str, dict)) for x in vals):
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
