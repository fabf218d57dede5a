"""Run by test_progress.py in a fresh process: 2 logical CPUs under
MirroredStrategy; prints, as JSON, the per-batch and per-epoch logs of a
Keras-compiled model and of a Distiller."""

import json
import sys

import tfdsmlp  # noqa: F401  (run as a script: Keras 2 before TensorFlow)

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from tfdsmlp.distill import Distiller
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models import build_model
from tfdsmlp.training.fit import (
    compile_ctr_model,
    compile_trainer,
    train_dataset,
)
from tfdsmlp.training.train_config import TrainConfig

data_dir = sys.argv[1]
spec = FeatureSpec.from_dataset_dir(data_dir)
cfg = TrainConfig(batch_size=64, learning_rate=1e-2, seed=1)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


class Logs(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.epochs = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({k: float(v) for k, v in logs.items()})

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({k: float(v) for k, v in logs.items()})


out = {}
with strategy.scope():
    tf.keras.utils.set_random_seed(3)
    model = build_model("dnn", {"hidden_units": [8]}, spec)
    model(model.dummy_inputs())
    compile_ctr_model(model, cfg)
    teacher = build_model("dnn", {"hidden_units": [8]}, spec)
    student = build_model("dsmlp", {"main_hidden_units": [8],
                                    "parallel_hidden_units": [8]}, spec)
    teacher(teacher.dummy_inputs()), student(student.dummy_inputs())
    distiller = Distiller(teacher, student)
    compile_trainer(distiller, cfg, student)
for name, m in (("compiled", model), ("distiller", distiller)):
    logs = Logs()
    m.fit(train_dataset(data_dir, cfg, strategy), epochs=2,
          steps_per_epoch=5, verbose=0, callbacks=[logs])
    out[name] = {"batches": logs.batches, "epochs": logs.epochs}
print(json.dumps(out))
