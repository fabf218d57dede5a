"""Whole-model weight operations that keep tables on their servers
(`tfdsmlp.training.server_weights`), checked on one host against the Keras
calls they replace; under ParameterServerStrategy they run in
tests/training/test_parameter_server.py."""

from __future__ import annotations

import os

import tfdsmlp  # noqa: F401
from tfdsmlp.training.backup import TrainingBackup
from tfdsmlp.training.server_weights import (
    CheckpointedEarlyStopping,
    copy_weights,
    non_finite_weights,
)

import numpy as np
import pytest
import tensorflow as tf

# Validation AUC per epoch: best at epoch 2, then 2 epochs without gain.
SCRIPT = [0.60, 0.70, 0.65, 0.66, 0.64, 0.90]


class _Scripted(tf.keras.callbacks.Callback):
    """Writes the scripted val_auc into the epoch logs (first callback)."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_auc"] = SCRIPT[epoch]


EPOCHS = len(SCRIPT)


def _fit(stopper, extra=(), epochs=EPOCHS, initial_epoch=0, model=None):
    tf.keras.utils.set_random_seed(0)
    model = model or tf.keras.Sequential(
        [tf.keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    snapshots = []

    class Snap(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    model.fit(x, x[:, :1], epochs=epochs, initial_epoch=initial_epoch,
              verbose=0, callbacks=[_Scripted(), Snap(), stopper, *extra])
    return model, snapshots


def test_same_stops_and_restored_weights_as_keras_early_stopping(tmp_path):
    kw = {"monitor": "val_auc", "mode": "max", "patience": 2}
    keras_cb = tf.keras.callbacks.EarlyStopping(restore_best_weights=True,
                                                **kw)
    keras_model, snaps = _fit(keras_cb)
    ours = CheckpointedEarlyStopping(None, **kw)
    model, _ = _fit(ours)
    assert (ours.stopped_epoch, ours.best_epoch) == (
        keras_cb.stopped_epoch, keras_cb.best_epoch) == (3, 1)
    assert ours.best_checkpoint == "best-2"
    for a, b, c in zip(model.get_weights(), keras_model.get_weights(),
                       snaps[1]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)  # the best epoch's weights
    # The temporary directory is gone.
    assert ours._tmp is None


def test_a_given_directory_keeps_the_checkpoints(tmp_path):
    ours = CheckpointedEarlyStopping(str(tmp_path / "best"),
                                     monitor="val_auc", mode="max",
                                     patience=2)
    _fit(ours)
    names = {n.split(".")[0] for n in os.listdir(tmp_path / "best")}
    # Every better epoch's; the owner (TrainingBackup) removes old ones.
    assert names == {"best-1", "best-2"}


def test_backup_resumes_with_the_best_checkpoint(tmp_path):
    """Interrupted after epoch 3 and resumed: the best checkpoint named by
    the backup is restored at the end, as in one uninterrupted fit."""
    backup_dir = str(tmp_path / "backup")

    def run(epochs, initial_epoch):
        stopper = CheckpointedEarlyStopping(backup_dir, monitor="val_auc",
                                            mode="max", patience=2)
        model = tf.keras.Sequential(
            [tf.keras.layers.Dense(1, input_shape=(3,))])
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
        backup = TrainingBackup(backup_dir, [stopper])
        start = backup.load(model)
        assert start == initial_epoch
        return _fit(stopper, extra=[backup], epochs=epochs,
                    initial_epoch=start, model=model), stopper

    (_, first_snaps), _ = run(3, 0)
    stems = {n.split(".")[0] for n in os.listdir(backup_dir)}
    assert "best-2" in stems and "best-1" not in stems  # old one removed
    (model, _), stopper = run(len(SCRIPT), 3)
    assert (stopper.best_epoch, stopper.stopped_epoch) == (1, 3)
    for a, b in zip(model.get_weights(), first_snaps[1]):
        np.testing.assert_array_equal(a, b)


def test_copy_weights_matches_set_weights():
    a = tf.keras.layers.Dense(4)
    b = tf.keras.layers.Dense(4)
    a.build((None, 3))
    b.build((None, 3))
    copy_weights(b, a)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    c = tf.keras.layers.Dense(5)
    c.build((None, 3))
    with pytest.raises(ValueError, match="different weight shapes"):
        copy_weights(c, a)


def test_non_finite_weights_names_them():
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,)),
                                 tf.keras.layers.Dense(1)])
    assert non_finite_weights(model) == []
    kernel = model.layers[1].kernel
    kernel.assign(tf.fill(kernel.shape, np.nan))
    assert non_finite_weights(model) == [kernel.name]
