"""`python -m tfdsmlp bench`: speed figures measured side by side in one run.

Reports (examples/s unless noted):
- input: throughput of the training stream alone, from the TFRecords
  (`make_epoch_stream`) and from memory (`make_memory_stream`);
- train: training step rate (best of 3 passes) of each teacher and of the
  DS-MLP phases (stage-1 distiller, stage-2 aligner) on cached batches
  (compute only; --steps per pass), from the TFRecords and from memory (end
  to end; a whole epoch of the training split per pass), so it is
  visible whether input or compute bounds training, and the implied
  seconds per epoch of the training split with the preset's stream
  (`train.in_memory`);
- infer: in-process inference of each model at batch 4096 (examples/s) and
  batch 1 (p50 / p99 ms), and the same for exported SavedModels given with
  --saved-model NAME=PATH;
- embedding optimizer: training rate of a DNN over a large synthetic
  vocabulary (--sparse-rows table rows) with Adam and whole-table L2
  (FuxiCTR), Adam with batch-scope L2, LazyAdam with batch-scope L2,
  LazyAdam with the whole-table L2 applied lazily (`lazy` scope), and
  CatchUpAdam with the `lazy` scope;
- convert: `data_tools convert` rows/s on a raw Criteo-format file
  replicated to >= --convert-rows rows, against `wc -l` on the same file.
All ratios are computed from figures measured in the same run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.data.memory import make_memory_stream
from tfdsmlp.data.reader import make_dataset, make_epoch_stream
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.features import FeatureSpec, FieldSpec
from tfdsmlp.models.registry import build_model
from tfdsmlp.training.fit import compile_ctr_model, compile_trainer
from tfdsmlp.training.presets import load_preset, model_preset
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import tensorflow as tf


def input_rate(ds: tf.data.Dataset, batch_size: int, batches: int) -> float:
    """Examples/s of iterating `ds` alone (after its first batch)."""
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


class _EpochTimer(tf.keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def train_rate(model: tf.keras.Model, dataset, steps: int,
               passes: int = 3, steps_per_execution: int = 1) -> float:
    """Examples/s of `model.fit` in passes of `steps` batches: the best of
    `passes` timed passes, as `timeit` advises, since other load on a
    shared machine only ever slows a pass down.

    A short fit first traces the train function (at least one execution
    of the `steps_per_execution` the model was compiled with); the timed
    passes are then the epochs of one `fit` over the endless `dataset`, so
    the stream runs on from pass to pass, as in training, instead of
    restarting (and refilling its shuffle buffer) at every pass."""
    batch = next(iter(dataset))[1].shape[0]
    warm = max(2, steps_per_execution)
    model.fit(dataset.take(warm), steps_per_epoch=warm, epochs=1,
              verbose=0)  # trace + warm up
    timer = _EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=passes, verbose=0,
              callbacks=[timer])
    return steps * batch / min(timer.seconds)


def latency(fn, inputs, repeats: int) -> dict[str, float]:
    fn(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(inputs)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99))}


def inference(fn, data_dir: str, big: int, repeats: int) -> dict[str, float]:
    x, _ = next(iter(make_dataset(data_dir, "test", big)))
    one = {k: v[:1] for k, v in x.items()}
    out = {f"batch1_{k}": v for k, v in latency(fn, one, repeats).items()}
    big_lat = latency(fn, x, max(5, repeats // 20))
    out[f"batch{big}_examples_per_s"] = big * 1000.0 / big_lat["p50_ms"]
    return out


def _model_fn(model):
    return tf.function(lambda x: model(x, training=False))


def _saved_model_fn(path: str):
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures["predict_indexed"]
    return lambda x: sig(**x)


SPARSE_VARIANTS = {  # name: (optimizer, embedding_l2_scope)
    "adam_table_l2": ("adam", "table"),
    "adam_batch_l2": ("adam", "batch"),
    "lazy_adam_batch_l2": ("lazy_adam", "batch"),
    "lazy_adam_lazy_l2": ("lazy_adam", "lazy"),
    "catch_up_adam_lazy_l2": ("catch_up_adam", "lazy"),
}


def sparse_rates(rows: int, batch_size: int, steps: int,
                 fields: int = 10) -> dict[str, float]:
    """Training examples/s of a small DNN whose `fields` tables hold `rows`
    rows in all, on uniform random ids, per `SPARSE_VARIANTS` entry: where
    the table is large the dense moment update of Adam dominates."""
    vocab = max(2, rows // fields)
    spec = FeatureSpec(tuple(FieldSpec(f"f{i}", "categorical", vocab)
                             for i in range(fields)))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, size=(4 * batch_size, fields))
    labels = rng.integers(0, 2, size=(4 * batch_size, 1)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(({"ids": ids}, labels)).batch(
        batch_size).cache().repeat()
    out = {}
    for name, (optimizer, scope) in SPARSE_VARIANTS.items():
        tf.keras.utils.set_random_seed(0)
        model = build_model("dnn", {"embedding_l2": 0.01,
                                    "embedding_l2_scope": scope,
                                    "hidden_units": [400, 400, 400]}, spec)
        model(model.dummy_inputs())
        compile_ctr_model(model, TrainConfig(batch_size=batch_size,
                                             optimizer=optimizer))
        out[name] = train_rate(model, data, steps)
    return out


def _count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def convert_rate(criteo_file: str, rows: int, repeats: int = 3
                 ) -> dict[str, float]:
    """data_tools conversion vs `wc -l` on the same file: `criteo_file`
    itself when it has at least `rows` rows, else the file replicated to
    at least `rows` rows.

    Both commands run `repeats` times, alternating, on the file in the page
    cache; the best time of each is kept (a single `wc -l` takes ~30 ms, so
    one slow run would swing the ratio). Before the timing, the native
    converter is compiled (`python -m data_tools build-native`) and one
    untimed conversion fills Python's bytecode cache, as on an installed
    package: the conversions run with bytecode caching on (into the temp
    directory), even where PYTHONDONTWRITEBYTECODE is set, which would add
    the compiling of data_tools (~10 ms) to every run. The summary the
    converter prints says which engine ran.
    """
    tmp = tempfile.mkdtemp(prefix="tfdsmlp-bench-")
    try:
        n = _count_lines(criteo_file)
        if n >= rows:  # a file of the size asked for: timed in place
            raw, total = criteo_file, n
        else:
            with open(criteo_file, "rb") as f:
                sample = f.read()
            raw = os.path.join(tmp, "criteo.txt")
            copies = max(1, -(-rows // n))
            with open(raw, "wb") as f:
                f.writelines(sample for _ in range(copies))
            total = copies * n
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        subprocess.run([sys.executable, "-m", "data_tools", "build-native",
                        "--quiet"], check=False, capture_output=True, env=env)
        out = os.path.join(tmp, "out")
        cmd = [sys.executable, "-m", "data_tools", "convert", "--format",
               "criteo", "--train", raw, "--split", "8:1:1", "--seed", "0",
               "--out", out, "--quiet"]
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        wc = conv = float("inf")
        engine = None
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(["wc", "-l", raw], check=True, capture_output=True)
            wc = min(wc, time.perf_counter() - start)
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, check=True, capture_output=True,
                                  env=env)
            conv = min(conv, time.perf_counter() - start)
            engine = json.loads(proc.stdout)["engine"]
        return {"rows": total, "bytes": os.path.getsize(raw),
                "wc_seconds": wc, "convert_seconds": conv,
                "convert_rows_per_s": total / conv,
                "convert_over_wc": conv / wc, "engine": engine,
                "repeats": repeats}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(data_dir: str, preset: str = "frappe",
              teachers: tuple[str, ...] = ("gdcn", "dcnv2", "finalmlp"),
              batch_size: int = 4096, steps: int = 20, repeats: int = 200,
              saved_models: dict[str, str] | None = None,
              criteo_file: str | None = None, convert_rows: int = 1_000_000,
              sparse_rows: int = 0, infer_only: bool = False,
              convert_only: bool = False,
              steps_per_execution: int | None = None,
              log=print) -> dict[str, Any]:
    """Measures everything listed in the module docstring (with
    `infer_only`, only the exported SavedModels' inference; with
    `convert_only`, only the conversion of `criteo_file`).

    Training compiles like `tfdsmlp train --preset` does: the preset's
    `train.steps_per_execution` unless `steps_per_execution` is given."""
    if convert_only:
        log("[bench] conversion")
        return {"batch_size": batch_size, "infer": {},
                "convert": convert_rate(criteo_file, convert_rows)}
    if infer_only:
        result = {"batch_size": batch_size, "infer": {}}
        for name, path in (saved_models or {}).items():
            log(f"[bench] infer saved model {name}")
            result["infer"][f"saved:{name}"] = inference(
                _saved_model_fn(path), data_dir, batch_size, repeats)
        return result
    data = DatasetDir.open(data_dir)
    spec = data.spec
    train_preset = load_preset(preset).get("train", {})
    if steps_per_execution is None:
        steps_per_execution = int(train_preset.get("steps_per_execution", 1))
    cfg = TrainConfig(batch_size=batch_size,
                      steps_per_execution=steps_per_execution)
    # The batches `fit` trains on: from the TFRecords (make_epoch_stream) or
    # from memory (train.in_memory); and 4 cached batches (compute only).
    streams = {
        "cached": make_dataset(data_dir, "train", batch_size, repeat=True,
                               seed=0).take(4).cache().repeat(),
        "tfrecord": make_epoch_stream(data_dir, "train", batch_size, seed=0,
                                      shuffle_buffer=cfg.shuffle_buffer),
        "memory": make_memory_stream(data_dir, "train", batch_size, seed=0)}
    result: dict[str, Any] = {
        "batch_size": batch_size, "train": {}, "infer": {},
        "steps_per_execution": steps_per_execution,
        "epoch_stream": ("memory" if train_preset.get("in_memory")
                         else "tfrecord")}
    result["train_rows"] = data.rows("train")
    log("[bench] input pipeline")
    result["input_examples_per_s"] = input_rate(streams["tfrecord"],
                                                batch_size, steps * 3)
    result["input_memory_examples_per_s"] = input_rate(
        streams["memory"], batch_size, steps * 3)
    models = {}
    # Cached batches: `steps` per pass. The two streams: a whole epoch of
    # the training split per pass, so every pass pays its share of the
    # stream's per-epoch work (the TFRecord stream's shuffle blocks).
    epoch_steps = (result["train_rows"] or 0) // batch_size or steps
    stream_steps = {"cached": steps, "tfrecord": epoch_steps,
                    "memory": epoch_steps}
    result["train_steps"] = stream_steps
    for name in (*teachers, "dsmlp"):
        params = model_preset(preset, name)["params"]
        tf.keras.utils.set_random_seed(0)
        model = build_model(name, params, spec)
        model(model.dummy_inputs())
        models[name] = model
        if name == "dsmlp":
            continue
        log(f"[bench] train {name}")
        compile_ctr_model(model, cfg)
        result["train"][name] = {
            k: train_rate(model, ds, stream_steps[k],
                          steps_per_execution=steps_per_execution)
            for k, ds in streams.items()}
    student = models["dsmlp"]
    distiller = Distiller(models[teachers[0]], student)
    compile_trainer(distiller, cfg, student)
    aligner = Aligner(student)
    compile_trainer(aligner, cfg, student)
    for phase, trainer in (("distill", distiller), ("align", aligner)):
        log(f"[bench] train {phase}")
        result["train"][phase] = {
            k: train_rate(trainer, ds, stream_steps[k],
                          steps_per_execution=steps_per_execution)
            for k, ds in streams.items()}
    fastest = max(r["cached"] for r in result["train"].values())
    result["input_over_fastest_train"] = (result["input_examples_per_s"]
                                          / fastest)
    for name, model in models.items():
        log(f"[bench] infer {name}")
        result["infer"][name] = inference(_model_fn(model), data_dir,
                                          batch_size, repeats)
    for name, path in (saved_models or {}).items():
        log(f"[bench] infer saved model {name}")
        result["infer"][f"saved:{name}"] = inference(
            _saved_model_fn(path), data_dir, batch_size, repeats)
    big = f"batch{batch_size}_examples_per_s"
    result["infer_ratio_dsmlp_over_teacher"] = {
        t: result["infer"]["dsmlp"][big] / result["infer"][t][big]
        for t in teachers}
    if sparse_rows:
        log(f"[bench] embedding optimizers, {sparse_rows:,} table rows")
        result["sparse"] = {"rows": sparse_rows, "train": sparse_rates(
            sparse_rows, batch_size, steps)}
    if criteo_file:
        log("[bench] conversion")
        result["convert"] = convert_rate(criteo_file, convert_rows)
    return result


def format_bench(result: dict[str, Any]) -> str:
    big = f"batch{result['batch_size']}_examples_per_s"
    lines = []
    if "train" in result:
        key = result.get("epoch_stream", "tfrecord")
        stream = {"tfrecord": "TFRecord", "memory": "in memory"}[key]
        lines += [(f"input pipeline: {result['input_examples_per_s']:,.0f} "
                  f"ex/s from the TFRecords "
                  f"({result['input_over_fastest_train']:.1f}x the "
                  "fastest training step rate); "
                  f"{result['input_memory_examples_per_s']:,.0f} ex/s "
                  "from memory"),
                  (f"training: batch {result['batch_size']}, "
                  f"{result.get('steps_per_execution', 1)} step(s) per "
                  "execution"), "",
                  ("| phase / model | train ex/s (cached) "
                  "| train ex/s (TFRecord) | train ex/s (in memory) "
                  f"| s per epoch ({stream}) |"),
                  "|---|---|---|---|---|"]
        rows = result.get("train_rows")
        for name, r in result["train"].items():
            epoch = f"{rows / r[key]:.1f}" if rows else "-"
            lines.append(f"| {name} | {r['cached']:,.0f} "
                         f"| {r['tfrecord']:,.0f} | {r['memory']:,.0f} "
                         f"| {epoch} |")
        lines.append("")
    if result["infer"]:
        lines += [(f"| model | {big.replace('_', ' ')} | batch-1 p50 ms "
                  "| batch-1 p99 ms |"), "|---|---|---|---|"]
        for name, r in result["infer"].items():
            lines.append(f"| {name} | {r[big]:,.0f} "
                         f"| {r['batch1_p50_ms']:.2f} "
                         f"| {r['batch1_p99_ms']:.2f} |")
        lines.append("")
    for t, ratio in result.get("infer_ratio_dsmlp_over_teacher",
                               {}).items():
        lines.append(f"DS-MLP / {t} batch throughput: {ratio:.2f}x")
    if "sparse" in result:
        sp = result["sparse"]
        base = sp["train"]["adam_table_l2"]
        lines.append(f"\nembedding optimizer, DNN over {sp['rows']:,} table "
                     "rows (train ex/s, ratio to Adam + whole-table L2):")
        for name, rate in sp["train"].items():
            lines.append(f"- {name}: {rate:,.0f} ({rate / base:.2f}x)")
    if "convert" in result:
        c = result["convert"]
        lines.append(f"conversion ({c.get('engine', 'python')} engine, best "
                     f"of {c.get('repeats', 1)}): {c['rows']:,} rows, "
                     f"{c['convert_rows_per_s']:,.0f} rows/s, "
                     f"{c['convert_over_wc']:.1f}x the time of `wc -l` "
                     f"({c['convert_seconds']:.3f} s vs {c['wc_seconds']:.3f}"
                     f" s)")
    return "\n".join(lines)


def write_result(result: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
