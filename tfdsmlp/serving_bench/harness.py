"""SavedModel latency in the C++ serving path, measured by a small C harness.

TF Serving loads a SavedModel with TensorFlow's C++ loader and answers
each request with one `Session::Run`. `savedmodel_timer.c` does the same
through TensorFlow's C API (`TF_LoadSessionFromSavedModel`,
`TF_SessionRun`), linked against the `libtensorflow_cc.so.2` of this
environment, so its figures hold no Python. (TF Serving adds its request
decoding and gRPC/REST transport on top; those are not measured here.)

`time_export` times, per batch size:
- `predict_indexed`: ids/dense in, the model and the input checks;
- `serving_default`: raw strings/floats in, the vocabulary lookup too;
- `preprocess`: the vocabulary lookup alone (raw values -> ids/dense),
so the lookup's cost is stated apart from the model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

import numpy as np

SOURCE = os.path.join(os.path.dirname(__file__), "savedmodel_timer.c")
SIGNATURES = ("predict_indexed", "serving_default", "preprocess")


class HarnessError(RuntimeError):
    """The C harness could not be built or failed on a SavedModel."""


@dataclasses.dataclass
class IndexedRows:
    """Rows for the predict_indexed signature: ids int64 [n, C], dense
    float32 [n, N]."""

    ids: np.ndarray
    dense: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_batches(cls, spec_path: str) -> IndexedRows:
        """The batches of a `bench --peer` spec (`tfdsmlp.peer.tf_side`)."""
        with open(spec_path, encoding="utf-8") as f:
            arrays = np.load(json.load(f)["batches"])
        return cls(arrays["ids"], arrays["dense"])


def _tf_paths() -> tuple[str, str]:
    import tensorflow as tf
    lib = os.path.dirname(tf.__file__)
    return lib, os.path.join(lib, "include")


def build_timer(build_dir: str = "build") -> str:
    """Compiles the harness (once per source and TensorFlow build) with the
    system C compiler; returns the binary's path."""
    lib, include = _tf_paths()
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise HarnessError("the C serving harness needs a C compiler (cc or "
                           "gcc on PATH, or CC=...)")
    with open(SOURCE, "rb") as f:
        key = hashlib.sha256(f.read() + lib.encode()).hexdigest()[:12]
    out = os.path.abspath(os.path.join(build_dir, f"savedmodel_timer-{key}"))
    if os.path.exists(out):
        return out
    os.makedirs(build_dir, exist_ok=True)
    cmd = [cc, "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-I", include,
           SOURCE, "-o", out + ".tmp", f"-L{lib}", "-l:libtensorflow_cc.so.2",
           "-l:libtensorflow_framework.so.2", f"-Wl,-rpath,{lib}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise HarnessError(f"compiling {SOURCE} failed:\n{proc.stderr[-2000:]}")
    os.replace(out + ".tmp", out)
    return out


def signature_tensors(export_dir: str, signature: str
                      ) -> tuple[dict[str, str], list[str]]:
    """({input key: graph tensor}, [output graph tensors]) of `signature`,
    read from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    sigs = sm.meta_graphs[0].signature_def
    if signature not in sigs:
        raise HarnessError(f"{export_dir} has no signature {signature!r}; it "
                           f"has {sorted(sigs)}")
    sig = sigs[signature]
    return ({k: v.name for k, v in sig.inputs.items()},
            sorted(v.name for v in sig.outputs.values()))


def _input_specs(signature: str, inputs: dict[str, str], rows, batch: int,
                 work: str) -> list[str]:
    """Writes the first `batch` rows (cycled) for each input; returns the
    harness's IN_SPEC arguments."""
    idx = np.arange(batch) % len(rows)
    specs = []
    for key, tensor in sorted(inputs.items()):
        path = os.path.join(work, f"{signature}-{batch}-{key}.bin")
        if signature == "predict_indexed":
            arr = rows.ids[idx] if key == "ids" else rows.dense[idx]
            dtype = "int64" if key == "ids" else "float"
            arr.astype(np.int64 if key == "ids" else np.float32).tofile(path)
            specs.append(f"{tensor}={dtype}:{batch}:{arr.shape[1]}:{path}")
            continue
        col = rows.columns[key]
        if isinstance(col, np.ndarray) and col.dtype != object:
            np.asarray(col, np.float32)[idx].tofile(path)
            specs.append(f"{tensor}=float:{batch}:0:{path}")
        else:
            with open(path, "wb") as f:
                for i in idx:
                    value = col[i]
                    if b"\n" in value:
                        raise HarnessError(f"input {key}: a value holds a "
                                           "newline; the harness reads one "
                                           "value per line")
                    f.write(value + b"\n")
            specs.append(f"{tensor}=string:{batch}:0:{path}")
    return specs


def time_signature(timer: str, export_dir: str, signature: str, rows,
                   batch: int, repeats: int) -> dict[str, Any]:
    inputs, outputs = signature_tensors(export_dir, signature)
    with tempfile.TemporaryDirectory(prefix="tfdsmlp-cpp-") as work:
        specs = _input_specs(signature, inputs, rows, batch, work)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run([timer, export_dir, str(repeats), *outputs,
                               "--", *specs], capture_output=True, text=True,
                              check=False, env=env)
    if proc.returncode:
        raise HarnessError(f"{signature} at batch {batch} failed:\n"
                           f"{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["examples_per_s"] = batch * 1000.0 / out["p50_ms"]
    return out


def time_batches(timer: str, export_dir: str, signature: str, rows,
                 batches, repeats: int, min_large_calls: int = 20
                 ) -> dict[int, dict[str, Any]]:
    """{batch: figures} of `signature`: `repeats` timed calls at batch 1,
    max(`min_large_calls`, repeats // 20) at larger batches."""
    return {batch: time_signature(
                timer, export_dir, signature, rows, batch,
                repeats if batch == 1
                else max(min_large_calls, repeats // 20))
            for batch in batches}


def time_export(export_dir: str, data_dir: str, batches=(1, 4096),
                repeats: int = 500, build_dir: str = "build"
                ) -> dict[str, dict[int, dict[str, Any]]]:
    """{signature: {batch: figures}} for `SIGNATURES` that the export has
    (module docstring); rows come from the test split of `data_dir`."""
    from tfdsmlp.servecheck.raw_rows import read_raw_rows
    timer = build_timer(build_dir)
    rows = read_raw_rows(data_dir, "test", limit=max(batches))
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for signature in SIGNATURES:
        try:
            signature_tensors(export_dir, signature)
        except HarnessError:
            continue
        out[signature] = time_batches(timer, export_dir, signature, rows,
                                      batches, repeats)
    return out


def format_serving(results: dict[str, dict[str, dict[int, dict]]]) -> str:
    """Markdown table of `time_export` results keyed by export name."""
    lines = ["C++ serving path (TensorFlow C API, TF_SessionRun; no Python):",
             "", "| export | signature | batch | p50 ms | p99 ms | ex/s |",
             "|---|---|---|---|---|---|"]
    for name, sigs in results.items():
        for sig, per_batch in sigs.items():
            for batch, r in per_batch.items():
                lines.append(f"| {name} | {sig} | {batch} | {r['p50_ms']:.3f}"
                             f" | {r['p99_ms']:.3f} "
                             f"| {r['examples_per_s']:,.0f} |")
    return "\n".join(lines)
