"""`make demo`: synthetic data -> teacher -> distil -> align -> export.

Prints a table of teacher vs student vs DS-MLP (AUC, logloss, parameters,
batch latency), the exported SavedModel path and the TensorBoard command.
"""

from __future__ import annotations

import os
import time

import tfdsmlp  # noqa: F401
from tfdsmlp.data.reader import make_dataset
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.export.run_models import export_run
from tfdsmlp.training.pipeline import run_dsmlp
from tfdsmlp.training.presets import build_run_config

import numpy as np
import tensorflow as tf


def batch_latency_ms(model, data_dir: str, batch_size: int = 4096,
                     repeats: int = 20) -> float:
    """Median milliseconds of one inference call on a test batch."""
    x, _ = next(iter(make_dataset(data_dir, "test", batch_size)))
    fn = tf.function(lambda inputs: model(inputs, training=False))
    fn(x)  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def run_demo(out_dir: str, rows: int = 60000, seed: int = 0,
             teacher: str = "gdcn", overrides: tuple[str, ...] = ()) -> dict:
    from data_tools.synth import write_synthetic

    data_dir = os.path.join(out_dir, "data")
    if not DatasetDir.exists(data_dir):
        print(f"[demo] writing synthetic dataset ({rows} train rows) to "
              f"{data_dir}")
        write_synthetic(data_dir, num_rows=rows, seed=seed)
    cfg = build_run_config("synthetic", teacher,
                           overrides=[f"teacher.train.seed={seed}",
                                      *overrides])
    run_dir = os.path.join(out_dir, "run")
    result = run_dsmlp(data_dir, cfg, run_dir, strategy="default",
                       verbose=2)
    phases = result.metrics["phases"]
    rows_out = [("teacher (" + teacher + ")", "teacher", result.teacher),
                ("student (stage 1)", "student", None),
                ("DS-MLP (stage 2)", "dsmlp", result.student)]
    print()
    print(f"{'model':<22}{'test AUC':>10}{'logloss':>10}{'params':>10}"
          f"{'ms/4096':>10}")
    for label, key, model in rows_out:
        p = phases[key]
        lat = f"{batch_latency_ms(model, data_dir):.1f}" if model else "-"
        print(f"{label:<22}{p['test']['auc']:>10.4f}"
              f"{p['test']['logloss']:>10.4f}{p['params']:>10}{lat:>10}")
    selected = result.metrics["selected"]
    path = export_run(run_dir, "dsmlp", phase=selected["phase"],
                      base_dir=os.path.join(out_dir, "saved_models"),
                      data_dir=data_dir)
    for line in result.warnings:
        print(line)
    print(f"\nExported DS-MLP SavedModel: {path} (the {selected['phase']} "
          f"model: the higher validation AUC of the two stages)")
    print(f"Check it as TF Serving would: .venv/bin/python -m tfdsmlp "
          f"serve-check {path} --data {data_dir}")
    print(f"Metrics: {result.run_dir.metrics_path}")
    print(f"TensorBoard: .venv/bin/tensorboard --logdir "
          f"{os.path.join(run_dir, 'tb')}")
    return result.metrics
