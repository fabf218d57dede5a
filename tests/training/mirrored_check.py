"""Run by test_mirrored.py in a fresh process: 2 logical CPUs, distil a few
steps on one device and under MirroredStrategy with the same seed, print the
largest weight difference and both loss histories as JSON (also for the
in-memory training stream, `train.in_memory`).

"partial": the same with the training streams (`fit.train_dataset`) at a
global batch of 48, which does not divide the 320 training rows: each epoch
is 7 steps, the last one 32 rows. One device trains on a smaller last batch;
two replicas on full per-replica batches of 24 padded with zero-weight rows.
Both must reach the same weights (Distiller, TFRecord and in-memory streams,
and a Keras-compiled model), and one epoch of the mirrored stream must hold
every training row once (counting rows of nonzero weight)."""

import json
import sys

import tfdsmlp  # noqa: F401  (run as a script: Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tfdsmlp.data.reader import load_arrays, make_dataset, make_dataset_fn
from tfdsmlp.distill import Distiller
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models import build_model
from tfdsmlp.training.fit import (
    compile_ctr_model,
    steps_per_epoch,
    train_dataset,
)
from tfdsmlp.training.train_config import TrainConfig

data_dir = sys.argv[1]
spec = FeatureSpec.from_dataset_dir(data_dir)
# Batch norm uses per-replica batch statistics under MirroredStrategy (as in
# Keras), so the equivalence is checked without it; dropout 0 for the same
# reason (random masks differ per replica).
TEACHER = {"hidden_units": [16], "num_cross_layers": 2, "dropout": 0.0,
               "batch_norm": False}
STUDENT = {"main_hidden_units": [16], "parallel_hidden_units": [8],
               "dropout": 0.0, "batch_norm": False, "embedding_l2": 0.01}


def distiller(strategy):
    """(Distiller, student) built and compiled under `strategy`, seeded."""
    with strategy.scope():
        tf.keras.utils.set_random_seed(3)
        teacher = build_model("gdcn", TEACHER, spec)
        student = build_model("dsmlp", STUDENT, spec)
        teacher(teacher.dummy_inputs()), student(student.dummy_inputs())
        d = Distiller(teacher, student, kd_weight=0.5, kd_loss="kl",
                      train_parallel=True)
        d.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    return d, student


def run(strategy, in_memory=False):
    d, student = distiller(strategy)
    if in_memory:  # per-replica batches of 32 from one pipeline
        ds = train_dataset(data_dir, TrainConfig(batch_size=64, seed=1,
                                                 in_memory=True), strategy)
    elif strategy.num_replicas_in_sync > 1:
        ds = strategy.distribute_datasets_from_function(
            make_dataset_fn(data_dir, "train", 64, shuffle=False,
                            repeat=True))
    else:
        # repeat: 3 epochs of 5 steps (without it the data ran out after
        # the first epoch and the other two trained nothing)
        ds = make_dataset(data_dir, "train", 64, shuffle=False, repeat=True)
    hist = d.fit(ds, epochs=3, steps_per_epoch=5, verbose=0).history
    return [v.numpy() for v in student.weights], hist


PARTIAL = {"batch_size": 48, "seed": 1}  # 320 rows: 6 x 48 + 32 an epoch


def run_partial(strategy, in_memory=False):
    """Distils 2 epochs of the training stream at batch 48."""
    cfg = TrainConfig(**PARTIAL, in_memory=in_memory)
    d, student = distiller(strategy)
    with strategy.scope():
        steps = steps_per_epoch(data_dir, cfg)
    assert steps == 7, steps
    d.fit(train_dataset(data_dir, cfg, strategy), epochs=2,
          steps_per_epoch=steps, verbose=0)
    return [v.numpy() for v in student.weights]


def run_partial_compiled(strategy):
    """A Keras-compiled model (BCE, sample weights) on the same stream."""
    cfg = TrainConfig(**PARTIAL, learning_rate=1e-2)
    with strategy.scope():
        tf.keras.utils.set_random_seed(3)
        model = build_model("dsmlp", STUDENT, spec)
        model(model.dummy_inputs())
        compile_ctr_model(model, cfg)
    model.fit(train_dataset(data_dir, cfg, strategy), epochs=2,
              steps_per_epoch=7, verbose=0)
    return [v.numpy() for v in model.weights]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def mirrored_epoch_rows(strategy, in_memory=False):
    """Dense rows of nonzero weight in one epoch (7 steps) of the mirrored
    stream, sorted; checks every per-replica batch is full (24 rows)."""
    cfg = TrainConfig(**PARTIAL, in_memory=in_memory)
    it = iter(train_dataset(data_dir, cfg, strategy))
    rows = []
    for _ in range(7):
        x, _, w = next(it)
        for dense, weight in zip(strategy.experimental_local_results(
                x["dense"]), strategy.experimental_local_results(w)):
            assert dense.shape[0] == 24, dense.shape
            rows += [tuple(r) for r in dense.numpy()[weight.numpy() > 0]]
    return sorted(rows)


w1, h1 = run(tf.distribute.get_strategy())
w2, h2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
w3, _ = run(tf.distribute.get_strategy(), in_memory=True)
w4, _ = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
            in_memory=True)
diff_memory = max(float(np.max(np.abs(a - b))) for a, b in zip(w3, w4))
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
one = tf.distribute.get_strategy()
partial = {
    "tfrecord": max_diff(run_partial(one), run_partial(mirrored)),
    "in_memory": max_diff(run_partial(one, True),
                          run_partial(mirrored, True)),
    "compiled": max_diff(run_partial_compiled(one),
                         run_partial_compiled(mirrored)),
}
every_row = sorted(tuple(r) for r in load_arrays(data_dir, "train")[0][
    "dense"])
rows_once = {kind: mirrored_epoch_rows(mirrored, kind == "in_memory")
             == every_row for kind in ("tfrecord", "in_memory")}
print(json.dumps({"max_weight_diff": diff, "single": h1, "mirrored": h2,
                  "max_weight_diff_in_memory": diff_memory,
                  "max_weight_diff_partial": partial,
                  "partial_epoch_rows_once": rows_once}))
