"""Whole-state training backup: a killed `fit` resumes at its last epoch.

`TrainingBackup` saves model, optimizer, dropout random generators and the
schedule callbacks' state at every epoch end; `checkpointable_dropout` makes
dropout draw from generators that can be saved.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile

import tfdsmlp  # noqa: F401
from tfdsmlp.training.server_weights import CheckpointedEarlyStopping

import numpy as np
import tensorflow as tf


class TrainingBackup(tf.keras.callbacks.Callback):
    """Backs up the whole training state at every epoch end; `load` restores
    it, so an interrupted `fit` (crash, kill -9, preemption) continues from
    the last finished epoch with the same result as an uninterrupted one.

    Unlike `tf.keras.callbacks.BackupAndRestore` the backup also holds the
    dropout random generators' state and the state of the schedule
    callbacks, which decides the rest of the run:
    `EarlyStopping` (wait, best, best epoch, best weights) and
    `ReduceLROnPlateau` (wait, best, cooldown), the learning rate and the
    epoch history. Layout of `backup_dir`:

      ckpt-<epoch>.*      model, optimizer and dropout random generator
                          variables (tf.train.Checkpoint)
      best-<epoch>.npz    EarlyStopping's best weights (when they are not the
                          last epoch's)
      best-<epoch>.*      CheckpointedEarlyStopping's best weights (its
                          `directory` is this one; under
                          ParameterServerStrategy)
      state.json          everything else; written last (atomic rename), so
                          it is the commit point: a kill at any moment
                          leaves the previous complete backup.

    Multi-worker: every worker must call `Checkpoint.write` (it may run
    collectives), so non-chief workers write to a temporary directory that
    is removed right away; all workers restore from `backup_dir` (it must be
    on a shared filesystem, as for BackupAndRestore).

    Args:
      backup_dir: str. Where the chief keeps the backup.
      callbacks: the schedule callbacks whose state is kept (EarlyStopping,
        ReduceLROnPlateau; others are ignored). Put this callback after them.
      chief: bool. Write the backup (False: write to a temporary dir).
      learning_rate: float. The configured learning rate; when a rerun is
        configured with another one (e.g. lowered after a divergence), the
        restored learning rate is scaled by new / old.
    """

    def __init__(self, backup_dir: str, callbacks=(), chief: bool = True,
                 learning_rate: float | None = None):
        super().__init__()
        self.backup_dir = backup_dir
        self.schedule = list(callbacks)
        self.chief = chief
        self.learning_rate = learning_rate
        self.state: dict | None = None
        self.history: dict[str, list] = {}

    # -- restore ----------------------------------------------------------
    def load(self, model: tf.keras.Model) -> int:
        """Restores model and optimizer variables from the backup (before
        `fit`); returns the number of finished epochs (0: no backup).

        It first builds `model` (see `build_for_backup`), whether or not a
        backup exists: the variables, the dropout layers' random generators
        among them, must exist to be restored into, and a fresh run and a
        resumed one must create them at the same point (creating random
        state shifts TensorFlow's automatic op seeds, so a resumed run that
        built them elsewhere would shuffle differently)."""
        build_for_backup(model)
        path = os.path.join(self.backup_dir, "state.json")
        if not os.path.exists(path):
            return 0
        with open(path, encoding="utf-8") as f:
            self.state = json.load(f)
        ckpt = _state_checkpoint(model)
        # Optimizer slots do not exist before the first step: their values
        # are restored when they are created (deferred restoration).
        ckpt.read(os.path.join(self.backup_dir,
                               self.state["checkpoint"])).expect_partial()
        self._ckpt = ckpt  # keeps the deferred restorations alive
        self.history = {k: list(v) for k, v in
                        self.state.get("history", {}).items()}
        return int(self.state["epoch"])

    @property
    def stopped(self) -> bool:
        """The backed-up fit had already stopped early."""
        cbs = (self.state or {}).get("callbacks", {})
        return any(c.get("stopped_epoch", 0) > 0 for c in cbs.values())

    def on_train_begin(self, logs=None):
        # After the schedule callbacks' own on_train_begin (which resets
        # them): put back their state.
        if not self.state:
            return
        cbs = self.state.get("callbacks", {})
        for cb in self.schedule:
            saved = cbs.get(type(cb).__name__)
            if saved is None:
                continue
            for key, value in saved.items():
                if key != "best_weights":
                    setattr(cb, key, value)
            if saved.get("best_weights"):
                with np.load(os.path.join(self.backup_dir,
                                          saved["best_weights"])) as z:
                    cb.best_weights = [z[f"arr_{i}"] for i in range(len(z))]
            elif isinstance(cb, tf.keras.callbacks.EarlyStopping) and \
                    not isinstance(cb, CheckpointedEarlyStopping) and \
                    getattr(cb, "restore_best_weights", False) and \
                    saved.get("best_epoch") == self.state["epoch"] - 1:
                # The best epoch is the backed-up one: its weights are the
                # restored ones (read after the restore, in `fit`).
                cb.best_weights = self.model.get_weights()
        lr = self.state.get("learning_rate")
        if lr is not None:
            old_cfg = self.state.get("config_learning_rate")
            if self.learning_rate and old_cfg and \
                    not np.isclose(old_cfg, self.learning_rate, rtol=1e-12):
                lr *= self.learning_rate / old_cfg
            tf.keras.backend.set_value(self.model.optimizer.learning_rate,
                                       lr)

    # -- back up ----------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        done = epoch + 1
        write_dir = (self.backup_dir if self.chief
                     else tempfile.mkdtemp(prefix="tfdsmlp-backup-"))
        os.makedirs(write_dir, exist_ok=True)
        cb_state, keep = {}, {f"ckpt-{done}"}
        for cb in self.schedule:
            if isinstance(cb, tf.keras.callbacks.EarlyStopping):
                state = {"wait": int(cb.wait), "best": float(cb.best),
                         "best_epoch": int(cb.best_epoch),
                         "stopped_epoch": int(cb.stopped_epoch)}
                if isinstance(cb, CheckpointedEarlyStopping):
                    # Its best checkpoint is already in this directory.
                    state["best_checkpoint"] = cb.best_checkpoint
                    if cb.best_checkpoint:
                        keep.add(cb.best_checkpoint)
                else:
                    state["best_weights"] = None
                if getattr(cb, "best_weights", None) is not None \
                        and cb.restore_best_weights \
                        and cb.best_epoch != epoch:
                    name = f"best-{cb.best_epoch + 1}.npz"
                    if self.chief and not os.path.exists(
                            os.path.join(write_dir, name)):
                        _atomic_savez(os.path.join(write_dir, name),
                                      cb.best_weights)
                    state["best_weights"] = name
                    keep.add(name)
                cb_state[type(cb).__name__] = state
            elif isinstance(cb, tf.keras.callbacks.ReduceLROnPlateau):
                cb_state[type(cb).__name__] = {
                    "wait": int(cb.wait), "best": float(cb.best),
                    "cooldown_counter": int(cb.cooldown_counter)}
        ckpt = _state_checkpoint(self.model)
        ckpt.write(os.path.join(write_dir, f"ckpt-{done}"))
        lr = self.model.optimizer.learning_rate
        state = {"epoch": done, "checkpoint": f"ckpt-{done}",
                 "learning_rate": (None if callable(lr) else float(
                     tf.keras.backend.get_value(lr))),
                 "config_learning_rate": self.learning_rate,
                 "callbacks": cb_state, "history": self.history}
        if not self.chief:
            shutil.rmtree(write_dir, ignore_errors=True)
            return
        tmp = os.path.join(write_dir, "state.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(write_dir, "state.json"))
        for path in glob.glob(os.path.join(write_dir, "*")):
            name = os.path.basename(path)
            stem = name.split(".")[0]
            if (stem.startswith(("ckpt-", "best-"))) \
                    and stem not in keep and name not in keep:
                os.remove(path)


def build_for_backup(model: tf.keras.Model) -> None:
    """Calls `model`, and every unbuilt sub-model, on its `dummy_inputs()`
    (inference, so no dropout mask is drawn) so that all its variables and
    dropout random generators exist; built models are left alone.

    Raises ValueError for an unbuilt `model` without `dummy_inputs`: its
    backup would miss the variables that do not exist yet."""
    for m in (model, *model.submodules):
        if not isinstance(m, tf.keras.Model) or m.built:
            continue
        if hasattr(m, "dummy_inputs"):
            m(m.dummy_inputs())
        elif m is model:
            raise ValueError(
                f"TrainingBackup needs a built model or one with a "
                f"dummy_inputs() method; received an unbuilt "
                f"{type(model).__name__}. Call it once on a batch first.")


@contextlib.contextmanager
def checkpointable_dropout():
    """Within it, Keras dropout draws from a `tf.random.Generator`, whose
    state is a variable that `TrainingBackup` saves and restores with the
    weights: a resumed fit draws the same masks as an uninterrupted one
    (Keras' legacy stateful random ops restart their sequence in a new
    process). The process-wide Keras setting is put back afterwards."""
    experimental = tf.keras.backend.experimental
    was_enabled = experimental.is_tf_random_generator_enabled()
    experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        if not was_enabled:
            experimental.disable_tf_random_generator()


def dropout_generators(model: tf.keras.Model) -> list[tf.random.Generator]:
    """The `tf.random.Generator`s of `model`'s dropout layers (in
    `checkpointable_dropout()`), in a stable order."""
    generators = []
    for layer in model.submodules:
        rng = getattr(layer, "_random_generator", None)
        gen = getattr(rng, "_generator", None)
        if isinstance(gen, tf.random.Generator):
            generators.append(gen)
    return generators


def reset_dropout_generators(model: tf.keras.Model, seed: int) -> None:
    """Puts every dropout generator of `model` in a state drawn from
    `seed`: a phase then draws the same masks whether the phases before it
    ran in this process (advancing the generators) or were loaded from
    their weights, which do not hold generator states."""
    for i, gen in enumerate(dropout_generators(model)):
        gen.reset_from_seed(int(seed) * 1_000_003 + i)


def _state_checkpoint(model: tf.keras.Model) -> tf.train.Checkpoint:
    """Model + optimizer + the random generators of dropout layers.

    Keras keeps a layer's `tf.random.Generator` out of its checkpoints on
    purpose (backward compatibility); the backup needs it so that a resumed
    phase draws the same dropout masks as an uninterrupted one. (With Keras'
    default legacy stateful random ops there is no state to save: train in
    `checkpointable_dropout()`.)"""
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                               random_generators=dropout_generators(model))


def _atomic_savez(path: str, arrays) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, *arrays)
    os.replace(tmp, path)
