"""Whole-model weight operations that leave large tables where they live.

Under `ParameterServerStrategy` an embedding table is a `ShardedVariable`
whose blocks sit on the parameter servers. Keras' usual whole-model
operations pull every variable into the coordinator: `model.get_weights()`
(`EarlyStopping(restore_best_weights=True)` calls it at every better epoch
and keeps the copy), `tf.math.is_finite(variable)`, `layer.set_weights(
other.get_weights())`. For a 50M x 16 table that is 3.2 GB moved and held
on the coordinator at each call (measured: the coordinator of a 50M-id
job was killed for memory on a 24 GB host, docs/SCALING.md section 3).
The functions here run each operation on the device that holds the
variable (block), so only scalars or nothing cross the network; on one host
they do what the Keras calls do.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import tfdsmlp  # noqa: F401

import tensorflow as tf

_Sharded = tf.__internal__.distribute.ShardedVariable


def _blocks(variable) -> list:
    return list(variable.variables) if isinstance(variable, _Sharded) \
        else [variable]


def non_finite_weights(model: tf.keras.Model) -> list[str]:
    """Names of `model`'s weights holding NaN/inf, each checked on its own
    device (a parameter server checks its blocks and returns one bool)."""
    bad = []
    for w in model.weights:
        for block in _blocks(w):
            with tf.device(block.device):
                ok = tf.reduce_all(tf.math.is_finite(block))
            if not bool(ok):
                bad.append(w.name)
                break
    return bad


def copy_weights(dst: tf.keras.layers.Layer,
                 src: tf.keras.layers.Layer) -> None:
    """`dst.set_weights(src.get_weights())`, block by block on the device
    that holds each destination block (a parameter server copies from its
    own, or another server's, block without the coordinator)."""
    dst_w, src_w = dst.weights, src.weights
    if [w.shape for w in dst_w] != [w.shape for w in src_w]:
        raise ValueError(
            f"copy_weights: {dst.name} and {src.name} have different weight "
            f"shapes: {[tuple(w.shape) for w in dst_w]} vs "
            f"{[tuple(w.shape) for w in src_w]}")
    for d, s in zip(dst_w, src_w):
        d_blocks, s_blocks = _blocks(d), _blocks(s)
        if [b.shape for b in d_blocks] != [b.shape for b in s_blocks]:
            d.assign(tf.convert_to_tensor(s))  # differently split: whole
            continue
        for db, sb in zip(d_blocks, s_blocks):
            with tf.device(db.device):
                db.assign(sb.read_value())


class CheckpointedEarlyStopping(tf.keras.callbacks.EarlyStopping):
    """`EarlyStopping(restore_best_weights=True)` whose best weights are a
    checkpoint on disk, not a copy in this process's memory.

    At each epoch that improves the monitored value, the model's weights
    (not the optimizer's) are written to `<directory>/best-<epoch>`; under
    ParameterServerStrategy every parameter server writes its own blocks
    (TensorFlow's sharded save), so `directory` must be on storage they
    share with the coordinator (as the backups are). At the end of
    training the best checkpoint is read back the same way. Stopping rules
    are Keras': stop after `patience` epochs without improvement.

    Args:
      directory: str or None. Where the best checkpoints go. None: a
        temporary directory, removed at the end of training; with a
        directory (e.g. the phase's backup directory), earlier best
        checkpoints are left for the owner to remove (`TrainingBackup`
        removes them once its state no longer names them, so a kill at any
        moment leaves the best weights that state names).
      **kwargs: `tf.keras.callbacks.EarlyStopping` arguments
        (`restore_best_weights` is always True).

    Attributes:
      best_checkpoint: name of the best checkpoint in `directory` (None
        before the first monitored epoch).
    """

    def __init__(self, directory: str | None = None, **kwargs):
        kwargs["restore_best_weights"] = True
        super().__init__(**kwargs)
        self.directory = directory
        self.best_checkpoint: str | None = None
        self._tmp: str | None = None

    def _dir(self) -> str:
        if self.directory:
            return self.directory
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="tfdsmlp-best-")
        return self._tmp

    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(weights=list(self.model.weights))

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best_checkpoint = None

    def on_epoch_end(self, epoch, logs=None):
        # Keras' EarlyStopping.on_epoch_end, with `_save` for get_weights.
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.best_checkpoint is None:
            # Restore the first epoch's weights if no progress is ever made.
            self.best_epoch = epoch
            self._save(epoch)
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            self._save(epoch)
            if self.baseline is None or self._is_improvement(current,
                                                             self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _save(self, epoch: int) -> None:
        name = f"best-{epoch + 1}"
        if name == self.best_checkpoint:
            return
        os.makedirs(self._dir(), exist_ok=True)
        self._checkpoint().write(os.path.join(self._dir(), name))
        previous, self.best_checkpoint = self.best_checkpoint, name
        if previous and self._tmp:
            _remove_checkpoint(self._tmp, previous)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.best_checkpoint:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best "
                      f"epoch: {self.best_epoch + 1}.")
            self._checkpoint().read(os.path.join(
                self._dir(), self.best_checkpoint)).assert_consumed()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _remove_checkpoint(directory: str, name: str) -> None:
    for entry in os.listdir(directory):
        if entry.split(".")[0] == name:
            os.remove(os.path.join(directory, entry))
