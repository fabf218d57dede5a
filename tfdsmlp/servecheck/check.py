"""`python -m tfdsmlp serve-check saved_models/NAME/<v> --data DIR`.

1. Reads the split's raw rows and the converter's ids for them
   (`tfdsmlp.servecheck.raw_rows.read_raw_rows`) and checks those ids
   against the dataset's TFRecords.
2. Rebuilds the exported model in this process from its run directory
   (`assets.extra/tfdsmlp_export.json`: run, phase) and computes the
   reference probabilities and logits from the converter's ids.
3. Starts a fresh `python -I` process with TensorFlow only
   (`tfdsmlp/servecheck/worker.py`), which loads the SavedModel with tags
   {"serve"}, runs
   every signature on the raw rows (raw tensors, pre-indexed tensors,
   serialized tf.Examples) and times batch-1 latency and large-batch
   throughput.
4. Compares every signature's outputs with the reference (probability and
   logit to `tolerance`, default 1e-5, or `BF16_TOLERANCE` for an export
   made with `--precision mixed_bfloat16`; `preprocess` ids exactly) and
   reports.
5. Scores the rows: AUC and logloss of `serving_default`'s probabilities
   against the labels; for a bfloat16 export also the float32 model's on
   the same rows and the largest probability difference between the two
   (what serving in bfloat16 costs).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.export.saved_model import (
    CLASS_LABELS,
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
    SIGNATURES,
    read_metadata,
)
from tfdsmlp.servecheck.raw_rows import RawRows, read_raw_rows

import numpy as np

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "worker.py")
TIMED = ("serving_default", "predict_indexed", "predict_examples")
# A bfloat16 export against the same model rebuilt in bfloat16 in this
# process: the same kernels, but the export's batches are split
# differently, and oneDNN's bfloat16 matmuls round their float32 sums to
# bfloat16 (8 bits of mantissa) in an order that depends on the batch:
# on Frappe's 28,860 test rows the exports differed from it by up to 0.047
# (DS-MLP) and 0.074 (GDCN) in logit (relative to max(1, |logit|)) and
# 0.010 / 0.015 in probability, as much as from the float32 model, while
# the AUC moved by 1e-5 (docs/BENCHMARKS.md, Serving in bfloat16). A
# wrong weight or vocabulary moves predictions by far more.
BF16_TOLERANCE = 0.1
EXPECTED_METHODS = {"classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}


def reference_outputs(model, rows: RawRows, batch: int = 4096
                      ) -> dict[str, np.ndarray]:
    """The in-process model's probability and logit [n] on the rows' ids."""
    import tensorflow as tf

    logits = []
    for lo in range(0, len(rows), batch):
        x = {"ids": tf.constant(rows.ids[lo:lo + batch])}
        if rows.dense.shape[1]:
            x["dense"] = tf.constant(rows.dense[lo:lo + batch])
        logits.append(np.reshape(model(x, training=False).numpy(), [-1]))
    logit = (np.concatenate(logits) if logits else np.zeros([0])).astype(
        np.float32)
    prob = tf.sigmoid(tf.constant(logit)).numpy()
    return {"logit": logit, "probability": prob}


def _worker_request(export_dir: str, rows: RawRows, iters: int, batch: int,
                    min_seconds: float, timed) -> dict[str, Any]:
    cols = {}
    for i in rows.inputs:
        col = rows.columns[i.name]
        cols[i.name] = ([base64.b64encode(v).decode("ascii") for v in col]
                        if i.dtype == "string" else
                        [float(v) for v in np.asarray(col)])
    return {"export_dir": os.path.abspath(export_dir),
            "inputs": [{"name": i.name, "dtype": i.dtype}
                       for i in rows.inputs],
            "columns": cols, "ids": rows.ids.tolist(),
            "dense": rows.dense.tolist() if rows.dense.shape[1] else None,
            "iters": iters, "batch": batch, "min_seconds": min_seconds,
            "timed": list(timed)}


def run_worker(request: dict[str, Any], python: str | None = None,
               timeout: float | None = None) -> dict[str, Any]:
    """Runs `worker.py` in a fresh isolated interpreter."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="tfdsmlp-serve-check-") as tmp:
        req_path = os.path.join(tmp, "request.json")
        out_path = os.path.join(tmp, "result.json")
        with open(req_path, "w", encoding="utf-8") as f:
            json.dump(request, f)
        proc = subprocess.run(
            [python or sys.executable, "-I", WORKER, req_path, out_path],
            env=env, capture_output=True, text=True, timeout=timeout,
            check=False)
        if proc.returncode != 0 or not os.path.exists(out_path):
            raise RuntimeError(
                f"serve-check worker failed (exit {proc.returncode}):\n"
                + proc.stderr[-4000:])
        with open(out_path, encoding="utf-8") as f:
            return json.load(f)


def _max_diff(a, b) -> float:
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def compare(name: str, out: dict[str, Any], ref: dict[str, np.ndarray],
            rows: RawRows, tolerance: float) -> dict[str, Any]:
    """One signature's outputs vs the reference -> {"ok", "diffs", "note"}."""
    n = len(rows)
    prob, logit = ref["probability"], ref["logit"]
    diffs: dict[str, float] = {}
    ok = True
    note = ""
    if {"probability", "logit"} <= set(out):
        diffs["probability"] = _max_diff(out["probability"], prob)
        scale = np.maximum(1.0, np.abs(logit))
        lg = np.asarray(out["logit"], np.float64).reshape(-1)
        diffs["logit"] = (float(np.max(np.abs(lg - logit) / scale))
                          if lg.shape == logit.shape and n else
                          0.0 if lg.shape == logit.shape else float("inf"))
        ok = diffs["probability"] <= tolerance and diffs["logit"] <= tolerance
    elif {"scores", "classes"} <= set(out):
        scores = np.asarray(out["scores"], np.float64).reshape(n, 2)
        diffs["scores[:,1]"] = _max_diff(scores[:, 1], prob)
        diffs["scores[:,0]"] = _max_diff(scores[:, 0], 1.0 - prob)
        classes_ok = all(list(c) == list(CLASS_LABELS)
                         for c in out["classes"]) and len(out["classes"]) == n
        ok = (max(diffs.values()) <= tolerance) and classes_ok
        if not classes_ok:
            note = f"classes should be {list(CLASS_LABELS)} per row"
    elif set(out) == {"outputs"}:
        diffs["outputs"] = _max_diff(out["outputs"], prob)
        ok = diffs["outputs"] <= tolerance
    elif {"ids", "dense"} <= set(out):
        ids = np.asarray(out["ids"], np.int64).reshape(n, -1) if n else \
            rows.ids[:0]
        same = ids.shape == rows.ids.shape and bool(np.all(ids == rows.ids))
        bad_rows = (int(np.sum(np.any(ids != rows.ids, axis=1)))
                    if ids.shape == rows.ids.shape else n)
        diffs["ids (rows differing)"] = float(bad_rows)
        dense = np.asarray(out["dense"], np.float64).reshape(
            n, rows.dense.shape[1]) if n else rows.dense[:0]
        diffs["dense"] = _max_diff(dense, rows.dense)
        ok = same and diffs["dense"] <= max(tolerance, 1e-6) * max(
            1.0, float(np.max(np.abs(rows.dense), initial=0.0)))
        note = "ids equal the converter's" if same else \
            "ids differ from the converter's (training/serving skew)"
    else:
        return {"ok": None, "diffs": {}, "note": "not compared"}
    return {"ok": bool(ok), "diffs": diffs, "note": note}


def serve_check(export_dir: str, data_dir: str | os.PathLike, *,
                split: str = "test",
                rows: int | None = 10000, run_dir: str | None = None,
                phase: str | None = None, iters: int = 300,
                batch: int = 4096, min_seconds: float = 1.0,
                tolerance: float | None = None, timed=TIMED,
                python: str | None = None,
                timeout: float | None = None) -> dict[str, Any]:
    """Runs the whole check; returns the report dict (`report["ok"]`).

    `tolerance`: None = 1e-5 for a float32 export, `BF16_TOLERANCE` for a
    bfloat16 one (metadata `precision`)."""
    from tfdsmlp.export.run_models import load_run_model

    from data_tools.inspect_dataset import load_examples

    export_dir = os.path.abspath(export_dir)
    meta = read_metadata(export_dir)
    run_dir = run_dir or meta.get("run_dir")
    phase = phase or meta.get("phase")
    if not run_dir or not phase:
        raise ValueError(
            f"{export_dir} does not record its run (exported without "
            "`python -m tfdsmlp export`); pass --run RUN_DIR --phase PHASE "
            "to rebuild the in-process reference model.")
    data = DatasetDir.open(data_dir)
    raw = read_raw_rows(data, split, rows or None)
    if not len(raw):
        raise ValueError(f"{data_dir} split {split!r} has no rows to check")
    fields = [(f["name"], f["kind"], f["vocab_size"], f["transform"])
              for f in meta.get("fields", [])]
    here = [(f.name, f.kind, f.vocab_size, f.transform)
            for f in data.spec.fields]
    if fields and fields != here:
        raise ValueError(f"{data_dir} has other fields or vocabularies than "
                         f"the dataset {export_dir} was exported from "
                         f"({meta.get('data_dir')})")
    precision = meta.get("precision", "float32")
    if tolerance is None:
        tolerance = 1e-5 if precision == "float32" else BF16_TOLERANCE
    model, _, _, info = load_run_model(run_dir, phase, data.path, precision)
    ref = reference_outputs(model, raw)
    ref32 = ref
    if precision != "float32":
        ref32 = reference_outputs(
            load_run_model(run_dir, phase, data.path)[0], raw)
    records = load_examples(data.path, split, len(raw))
    rec_same = (records["ids"].shape == raw.ids.shape
                and bool(np.all(records["ids"] == raw.ids))
                and np.allclose(records["dense"], raw.dense, rtol=1e-6,
                                atol=1e-6))
    result = run_worker(_worker_request(export_dir, raw, iters, batch,
                                        min_seconds, timed),
                        python=python, timeout=timeout)
    checks = {}
    for name in sorted(result["signatures"]):
        sig = result["signatures"][name]
        if name in result["errors"]:
            checks[name] = {"ok": False, "diffs": {},
                            "note": result["errors"][name]}
        else:
            checks[name] = compare(name, result["outputs"][name], ref, raw,
                                   tolerance)
        want = EXPECTED_METHODS.get(name, PREDICT_METHOD)
        checks[name]["method_name"] = sig["method_name"]
        if sig["method_name"] != want:
            checks[name]["ok"] = False
            checks[name]["note"] = (f"method_name {sig['method_name']!r}, "
                                    f"expected {want!r}")
    missing = sorted(set(SIGNATURES) - set(checks))
    isolated = not result["blocked_import_attempts"] and not (
        set(result["loaded_packages"]) - {"keras"})
    ok = (all(c["ok"] is not False for c in checks.values()) and not missing
          and rec_same and isolated)
    return {
        "ok": bool(ok), "export_dir": export_dir,
        "name": meta.get("name"), "version": meta.get("version"),
        "model": info["model_name"], "run_dir": info["run_dir"],
        "phase": phase, "weights": info["weights"],
        "data_dir": data.path, "split": split,
        "rows": len(raw), "origin": raw.origin, "tolerance": tolerance,
        "precision": precision,
        "quality": quality(result["outputs"].get("serving_default"), ref32,
                           raw.labels, precision),
        "converter_ids_equal_records": rec_same,
        "missing_signatures": missing, "checks": checks,
        "latency": result["latency"],
        "worker": {k: result[k] for k in ("tensorflow", "load_seconds",
                                          "blocked_import_attempts",
                                          "loaded_packages")},
        "isolated": isolated,
    }


def quality(out: dict[str, Any] | None, ref32: dict[str, np.ndarray],
            labels: np.ndarray, precision: str) -> dict[str, Any]:
    """AUC/logloss of the export's serving_default probabilities on the
    rows; for a non-float32 export also the float32 model's and the
    largest |probability difference| (empty where not computable: no
    serving_default output, or rows of one class only)."""
    from tfdsmlp.metrics import log_loss, roc_auc

    if not out or "probability" not in out or len(set(labels.tolist())) < 2:
        return {}
    prob = np.asarray(out["probability"], np.float64).reshape(-1)
    if prob.shape != labels.shape:
        return {}
    q = {"auc": roc_auc(labels, prob), "logloss": log_loss(labels, prob)}
    if precision != "float32":
        q.update(float32_auc=roc_auc(labels, ref32["probability"]),
                 float32_logloss=log_loss(labels, ref32["probability"]),
                 max_probability_diff_vs_float32=_max_diff(
                     prob, ref32["probability"]))
    return q


def format_report(rep: dict[str, Any]) -> str:
    lines = [
        f"serve-check {rep['export_dir']}",
        (f"  model: {rep['model']} ({rep['phase']}) from run "
         f"{rep['run_dir']}  weights {rep['weights']}"),
        f"  rows: {rep['rows']} {rep['split']} rows from {rep['origin']}",
        (f"  fresh process: TensorFlow {rep['worker']['tensorflow']}, "
         f"SavedModel loaded with tags {{serve}} in "
         f"{rep['worker']['load_seconds']:.2f} s; tfdsmlp/tf_keras/TFRS "
         "imports attempted: "
         f"{rep['worker']['blocked_import_attempts'] or 'none'}"),
        (f"  converter ids == dataset TFRecords: "
         f"{'yes' if rep['converter_ids_equal_records'] else 'NO'}"),
        "",
        (f"  {'signature':<18}{'method':<30}{'result':<7}max |diff| "
         f"(tolerance {rep['tolerance']:g})"),
    ]
    for name, c in rep["checks"].items():
        res = {True: "OK", False: "FAIL", None: "-"}[c["ok"]]
        diffs = ", ".join(f"{k} {v:.2g}" for k, v in c["diffs"].items())
        extra = f"  [{c['note']}]" if c.get("note") else ""
        lines.append(f"  {name:<18}{c['method_name']:<30}{res:<7}"
                     f"{diffs}{extra}")
    if rep["missing_signatures"]:
        lines.append(f"  missing signatures: {rep['missing_signatures']}")
    q = rep.get("quality") or {}
    if q:
        lines += ["", (f"  serving_default on these rows ({rep['precision']}):"
                       f" AUC {q['auc']:.5f}, logloss {q['logloss']:.5f}")]
        if "float32_auc" in q:
            lines.append(
                f"  the float32 model on them: AUC {q['float32_auc']:.5f}, "
                f"logloss {q['float32_logloss']:.5f}; max |probability "
                f"difference| {q['max_probability_diff_vs_float32']:.2g}")
    if rep["latency"]:
        lines += ["", ("  latency (Python call of the loaded signature, "
                       f"{os.cpu_count()} CPU cores visible):"),
                  (f"  {'signature':<18}{'b1 p50 ms':>10}{'b1 p99 ms':>10}"
                   f"{'batch':>7}{'ms/batch':>10}{'rows/s':>12}")]
        for name, t in rep["latency"].items():
            lines.append(f"  {name:<18}{t['batch1_p50_ms']:>10.3f}"
                         f"{t['batch1_p99_ms']:>10.3f}{t['batch']:>7}"
                         f"{t['batch_ms']:>10.2f}"
                         f"{t['rows_per_second']:>12,.0f}")
    lines += ["", "  RESULT: " + ("OK" if rep["ok"] else "FAILED")]
    return "\n".join(lines)
