"""Run by test_mirrored.py in a fresh process: 2 logical CPUs, distil a few
steps on one device and under MirroredStrategy with the same seed, print the
largest weight difference and both loss histories as JSON (also for the
in-memory training stream, `train.in_memory`)."""

import json
import sys

import tfdsmlp  # noqa: F401
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tfdsmlp.data.reader import make_dataset, make_dataset_fn  # noqa: E402
from tfdsmlp.distill import Distiller  # noqa: E402
from tfdsmlp.features import FeatureSpec  # noqa: E402
from tfdsmlp.models import build_model  # noqa: E402
from tfdsmlp.training.fit import train_dataset  # noqa: E402
from tfdsmlp.training.train_config import TrainConfig  # noqa: E402

data_dir = sys.argv[1]
spec = FeatureSpec.from_dataset_dir(data_dir)
# Batch norm uses per-replica batch statistics under MirroredStrategy (as in
# Keras), so the equivalence is checked without it; dropout 0 for the same
# reason (random masks differ per replica).
TEACHER = dict(hidden_units=[16], num_cross_layers=2, dropout=0.0,
               batch_norm=False)
STUDENT = dict(main_hidden_units=[16], parallel_hidden_units=[8],
               dropout=0.0, batch_norm=False, embedding_l2=0.01)


def run(strategy, in_memory=False):
    with strategy.scope():
        tf.keras.utils.set_random_seed(3)
        teacher = build_model("gdcn", TEACHER, spec)
        student = build_model("dsmlp", STUDENT, spec)
        teacher(teacher.dummy_inputs()), student(student.dummy_inputs())
        d = Distiller(teacher, student, kd_weight=0.5, kd_loss="kl",
                      train_parallel=True)
        d.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    if in_memory:  # per-replica batches of 32 from one pipeline
        ds = train_dataset(data_dir, TrainConfig(batch_size=64, seed=1,
                                                 in_memory=True), strategy)
    elif strategy.num_replicas_in_sync > 1:
        ds = strategy.distribute_datasets_from_function(
            make_dataset_fn(data_dir, "train", 64, shuffle=False))
    else:
        ds = make_dataset(data_dir, "train", 64, shuffle=False)
    hist = d.fit(ds, epochs=3, steps_per_epoch=5, verbose=0).history
    return [v.numpy() for v in student.weights], hist


w1, h1 = run(tf.distribute.get_strategy())
w2, h2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
w3, _ = run(tf.distribute.get_strategy(), in_memory=True)
w4, _ = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
            in_memory=True)
diff_memory = max(float(np.max(np.abs(a - b))) for a, b in zip(w3, w4))
print(json.dumps({"max_weight_diff": diff, "single": h1, "mirrored": h2,
                  "max_weight_diff_in_memory": diff_memory}))
