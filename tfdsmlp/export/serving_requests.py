"""TF Serving requests for an exported model: what a client sends.

`predict_request`, `classification_request`, `regression_request` (gRPC
protos from `tensorflow-serving-api`), `rest_instances` / `rest_inputs` /
`rest_examples` (REST JSON bodies, row and columnar form), `make_example`
(a tf.Example with the raw named features) and the warm-up file
`assets.extra/tf_serving_warmup_requests` that every export writes
(`write_warmup`, `read_warmup`).

Answering these requests in process, the way TF Serving does, is a checking
tool and lives outside the export package:
`tfdsmlp.servecheck.emulator.Servable`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf


def serving_apis():
    """The `tensorflow_serving.apis` modules: (classification_pb2, input_pb2,
    model_pb2, predict_pb2, prediction_log_pb2, regression_pb2)."""
    try:
        from tensorflow_serving.apis import (
            classification_pb2,
            input_pb2,
            model_pb2,
            predict_pb2,
            prediction_log_pb2,
            regression_pb2,
        )
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
    predict_pb2 = serving_apis()[3]
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model_name
    req.model_spec.signature_name = signature_name
    if version is not None:
        req.model_spec.version.value = int(version)
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return req


def _input_proto(examples, context=None):
    input_pb2 = serving_apis()[1]
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
    module = serving_apis()[module_index]
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
def json_value(v: Any) -> Any:
    """`v` as TF Serving's REST JSON writes it (bytes that are not UTF-8
    as {"b64": ...}, numpy values as lists and numbers)."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(v).decode("ascii")}
    if isinstance(v, np.ndarray):
        return [json_value(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def rest_instances(rows: Sequence[dict[str, Any]],
                   signature_name: str = "serving_default") -> dict:
    """Row-format body: {"signature_name", "instances": [{input: value}]}."""
    return {"signature_name": signature_name,
            "instances": [{k: json_value(v) for k, v in r.items()}
                          for r in rows]}


def rest_inputs(cols: dict[str, Any],
                signature_name: str = "serving_default") -> dict:
    """Columnar body: {"signature_name", "inputs": {input: [values]}}."""
    return {"signature_name": signature_name,
            "inputs": {k: json_value(v) for k, v in cols.items()}}


def rest_examples(rows: Sequence[dict[str, Any]],
                  signature_name: str) -> dict:
    """Classify / Regress REST body: {"signature_name", "examples": [...]}
    (JSON strings become bytes_list, floats float_list)."""
    return {"signature_name": signature_name,
            "examples": [{k: json_value(v) for k, v in r.items()}
                         for r in rows]}


# ---------------------------------------------------------------- warm-up
def warmup_logs(model_name: str, inputs, rows, vocab_sizes, num_numeric,
                batch_sizes=(1, 16)) -> list:
    """PredictionLogs for every signature at each batch size."""
    apis = serving_apis()
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
    prediction_log_pb2 = serving_apis()[4]
    out = []
    for rec in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(rec.numpy())
        out.append(log)
    return out
