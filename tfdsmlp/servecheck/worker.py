"""`serve-check` worker: runs in a fresh `python -I` process with TensorFlow
only (tfdsmlp, data_tools, tf_keras and tensorflow_recommenders cannot be
imported here: an import hook refuses them and reports any attempt).

    python -I worker.py REQUEST.json RESULT.json

REQUEST.json: {"export_dir", "inputs": [{"name", "dtype"}], "columns":
{input: [base64 strings] | [floats]}, "ids": [[int]], "dense": [[float]] |
null, "iters", "batch", "min_seconds", "chunk"}.

It loads the SavedModel as TF Serving does (tags {"serve"}), runs every
signature on the rows (raw columns, pre-indexed ids/dense or serialized
tf.Example, by the signature's inputs), measures batch-1 latency (p50/p99)
and large-batch throughput, and writes outputs, errors and timings to
RESULT.json. Comparing them with the in-process model is the parent's job.
"""

import base64
import importlib.abc
import json
import os
import sys
import time

BLOCKED = ("tfdsmlp", "data_tools", "tf_keras", "tensorflow_recommenders")
ATTEMPTS = []


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            ATTEMPTS.append(fullname)
            raise ImportError(f"serve-check worker: {fullname} must not be "
                              "needed to load or run the SavedModel")


sys.meta_path.insert(0, _Block())
os.environ.pop("TF_USE_LEGACY_KERAS", None)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2


def _example(row, inputs):
    feature = {}
    for i in inputs:
        v = row[i["name"]]
        if i["dtype"] == "string":
            feature[i["name"]] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[v]))
        else:
            feature[i["name"]] = tf.train.Feature(
                float_list=tf.train.FloatList(value=[float(v)]))
    return tf.train.Example(features=tf.train.Features(
        feature=feature)).SerializeToString()


def _feeds(req):
    """Per-kind full-size numpy feeds: raw, indexed, examples."""
    inputs = req["inputs"]
    raw = {}
    for i in inputs:
        col = req["columns"][i["name"]]
        if i["dtype"] == "string":
            raw[i["name"]] = np.array([base64.b64decode(v) for v in col],
                                      dtype=object)
        else:
            raw[i["name"]] = np.asarray(col, np.float32)
    n = len(next(iter(raw.values()))) if raw else len(req["ids"])
    indexed = {"ids": np.asarray(req["ids"], np.int64).reshape(n, -1)}
    if req.get("dense") is not None:
        indexed["dense"] = np.asarray(req["dense"], np.float32).reshape(n, -1)
    rows = [{k: v[r] for k, v in raw.items()} for r in range(n)]
    examples = np.array([_example(r, inputs) for r in rows], dtype=object)
    return n, raw, indexed, examples


def _kind(sig_inputs, raw_names):
    keys = set(sig_inputs)
    if keys == set(raw_names):
        return "raw"
    if "ids" in keys and keys <= {"ids", "dense"}:
        return "indexed"
    if len(keys) == 1 and sig_inputs[next(iter(keys))] == "DT_STRING":
        return "examples"
    return None


def _feed(kind, sig_inputs, feeds, lo, hi):
    _, raw, indexed, examples = feeds
    if kind == "raw":
        return {k: tf.constant(v[lo:hi], tf.string if v.dtype == object
                               else tf.float32) for k, v in raw.items()}
    if kind == "indexed":
        return {k: tf.constant(v[lo:hi]) for k, v in indexed.items()}
    key = next(iter(sig_inputs))
    return {key: tf.constant(examples[lo:hi], tf.string)}


def _tile(kind, sig_inputs, feeds, size):
    n = feeds[0]
    idx = np.arange(size) % n
    full = _feed(kind, sig_inputs, feeds, 0, n)
    return {k: tf.gather(v, idx) for k, v in full.items()}


def main(req_path, out_path):
    with open(req_path, encoding="utf-8") as f:
        req = json.load(f)
    t0 = time.perf_counter()
    loaded = tf.saved_model.load(req["export_dir"], tags=["serve"])
    load_s = time.perf_counter() - t0
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(req["export_dir"], "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    defs = sm.meta_graphs[0].signature_def
    raw_names = [i["name"] for i in req["inputs"]]
    feeds = _feeds(req)
    n = feeds[0]
    chunk = int(req.get("chunk") or 4096)
    result = {"tensorflow": tf.__version__, "load_seconds": load_s,
              "rows": n, "signatures": {}, "outputs": {}, "errors": {},
              "latency": {}}
    for name, fn in loaded.signatures.items():
        sig_inputs = {k: types_pb2.DataType.Name(v.dtype)
                      for k, v in defs[name].inputs.items()}
        kind = _kind(sig_inputs, raw_names)
        result["signatures"][name] = {
            "method_name": defs[name].method_name, "inputs": sig_inputs,
            "outputs": sorted(defs[name].outputs), "feed": kind}
        if kind is None:
            result["errors"][name] = f"cannot feed inputs {sig_inputs}"
            continue
        try:
            parts = {}
            for lo in range(0, max(n, 1), chunk):
                out = fn(**_feed(kind, sig_inputs, feeds, lo,
                                 min(n, lo + chunk)))
                for k, v in out.items():
                    parts.setdefault(k, []).append(v.numpy())
            outs = {}
            for k, v in parts.items():
                arr = np.concatenate(v) if v else np.zeros([0])
                if arr.dtype == object:
                    arr = np.vectorize(lambda b: b.decode("utf-8"),
                                       otypes=[object])(arr)
                outs[k] = arr.tolist()
            result["outputs"][name] = outs
        except Exception as e:  # noqa: BLE001 (reported, not raised)
            result["errors"][name] = f"{type(e).__name__}: {e}"
            continue
        if name in req.get("timed", []):
            result["latency"][name] = _time(fn, kind, sig_inputs, feeds, req)
    result["blocked_import_attempts"] = sorted(set(ATTEMPTS))
    result["loaded_packages"] = sorted(
        {m.split(".")[0] for m in sys.modules}
        & {"tfdsmlp", "data_tools", "tf_keras", "tensorflow_recommenders",
           "keras"})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


def _time(fn, kind, sig_inputs, feeds, req):
    iters = int(req.get("iters", 300))
    one = _feed(kind, sig_inputs, feeds, 0, 1)
    for _ in range(max(5, iters // 10)):
        fn(**one)
    lat = []
    for _ in range(iters):
        t = time.perf_counter()
        fn(**one)
        lat.append(time.perf_counter() - t)
    lat = np.asarray(lat) * 1e3
    batch = int(req.get("batch", 4096))
    big = _tile(kind, sig_inputs, feeds, batch)
    fn(**big)
    calls, t0 = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < float(
            req.get("min_seconds", 1.0)):
        fn(**big)
        calls += 1
    secs = time.perf_counter() - t0
    return {"iters": iters, "batch1_p50_ms": float(np.percentile(lat, 50)),
            "batch1_p99_ms": float(np.percentile(lat, 99)),
            "batch1_mean_ms": float(lat.mean()), "batch": batch,
            "batch_calls": calls,
            "batch_ms": 1e3 * secs / calls,
            "rows_per_second": batch * calls / secs}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
