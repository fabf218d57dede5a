"""Keras callbacks reproducing FuxiCTR's schedule with exact metrics.

FuxiCTR validates every epoch on exact AUC; on no improvement it multiplies
the learning rate by 0.1 (floor 1e-6) and stops after `patience` such epochs,
restoring the best weights. `ExactValidation` writes exact `val_auc` and
`val_logloss` into the epoch logs, so the stock Keras `ReduceLROnPlateau` and
`EarlyStopping` (and TensorBoard) can use them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import tempfile
import weakref

import tfdsmlp  # noqa: F401
from tfdsmlp import metrics
from tfdsmlp.training.server_weights import CheckpointedEarlyStopping

import numpy as np
import tensorflow as tf

_PREDICT_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _predict_fn(model):
    """One traced inference function per model, reused every epoch (a new
    `tf.function` per call retraced each time, with retracing warnings)."""
    fn = _PREDICT_FNS.get(model)
    if fn is None:
        ref = weakref.ref(model)
        fn = tf.function(lambda x: ref()(x, training=False),
                         reduce_retracing=True)
        _PREDICT_FNS[model] = fn
    return fn


def predict_logits(model, dataset, progress=None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Runs `model` (training=False) over a finite (features, label) dataset
    and returns (logits, labels) as float64 vectors. `progress`: a
    `tfdsmlp.predict.progress.Progress` told the rows done after each
    batch (it prints every few seconds, with an ETA when it knows the
    split's rows)."""
    predict = _predict_fn(model)
    logits, labels = [], []
    rows = 0
    for x, y in dataset:
        logits.append(predict(x).numpy().reshape(-1))
        labels.append(y.numpy().reshape(-1))
        rows += len(labels[-1])
        if progress is not None:
            progress.update(rows)
    if progress is not None:
        progress.close()
    return (np.concatenate(logits).astype(np.float64),
            np.concatenate(labels).astype(np.float64))


def evaluate_logits(logits: np.ndarray, labels: np.ndarray) -> dict:
    probs = metrics.sigmoid(logits)
    return {"auc": metrics.roc_auc(labels, probs),
            "logloss": metrics.log_loss(labels, probs)}


def evaluate(model, dataset, progress=None) -> dict[str, float]:
    """Exact AUC and log loss of `model` on a whole split (`progress`: see
    `predict_logits`)."""
    return evaluate_logits(*predict_logits(model, dataset, progress))


def eval_progress(label: str, rows: int | None, verbose: int):
    """A `Progress` for an exact evaluation of `rows` rows when `verbose`
    (None otherwise): silent for passes shorter than its interval."""
    if not verbose:
        return None
    from tfdsmlp.predict.progress import Progress

    return Progress(label=label, total_rows=rows)


class ExactValidation(tf.keras.callbacks.Callback):
    """Adds exact `<prefix>auc` and `<prefix>logloss` to the epoch logs.

    Put it first in the callback list: callbacks run in list order and share
    the logs dict.

    Args:
      dataset: tf.data.Dataset. A finite (features, label) validation split.
      prefix: str. Log key prefix. Defaults to "val_".
      model_fn: callable or None. Returns the Keras model to score (e.g. a
        distiller's student); defaults to the model being trained.
      auc_logloss: bool. Also log `<prefix>auc_logloss` = AUC - log loss
        (the `monitor: auc_logloss` schedule).
      rows: int or None. Rows of the split, for the progress line's ETA.
      verbose: int. Print progress of passes longer than 10 s.
    """

    def __init__(self, dataset, prefix: str = "val_", model_fn=None,
                 auc_logloss: bool = False, rows: int | None = None,
                 verbose: int = 0):
        super().__init__()
        self.dataset = dataset
        self.prefix = prefix
        self.model_fn = model_fn
        self.auc_logloss = auc_logloss
        self.rows = rows
        self.verbose = verbose

    def on_epoch_end(self, epoch, logs=None):
        model = self.model_fn() if self.model_fn else self.model
        result = evaluate(model, self.dataset, eval_progress(
            f"validation after epoch {epoch + 1}", self.rows, self.verbose))
        if self.auc_logloss:
            result["auc_logloss"] = result["auc"] - result["logloss"]
        if logs is not None:
            for key, value in result.items():
                logs[self.prefix + key] = value
        lr = self.model.optimizer.learning_rate
        if logs is not None and not callable(lr):
            logs["learning_rate"] = float(tf.keras.backend.get_value(lr))


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class StopOnNonFiniteLoss(tf.keras.callbacks.Callback):
    """Raises `NonFiniteLossError` as soon as a batch loss is NaN/inf.

    The error stops `fit` before the epoch ends, so no backup, weights or
    export of the diverged state are written.

    Args:
      phase: str. Named in the error ("distill", ...).
      config_prefix: str. Config path of the phase's TrainConfig, for the
        hint (e.g. "distill.train"; "train" for `python -m tfdsmlp train`).
    """

    def __init__(self, phase: str = "", config_prefix: str = "train"):
        super().__init__()
        self.phase = phase
        self.config_prefix = config_prefix
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f", batch {batch + 1}")

    def _check(self, logs, where_in_epoch: str) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            where = f"Phase {self.phase!r}: " if self.phase else ""
            raise NonFiniteLossError(
                f"{where}non-finite loss ({loss}) in epoch {self._epoch + 1}"
                f"{where_in_epoch}: training stopped; no weights of this "
                "phase are saved or exported. Lower the learning rate "
                f"(--set {self.config_prefix}.learning_rate=...), keep "
                f"gradient clipping on ({self.config_prefix}.clipnorm), and "
                "check the numeric input features for NaN/inf.")


class StopOnNonFiniteEpochLoss(StopOnNonFiniteLoss):
    """`StopOnNonFiniteLoss` on each epoch's mean loss instead of every
    batch's, for `ParameterServerStrategy`, which runs no batch-level
    callbacks (a NaN in any batch makes the epoch's mean NaN; the error
    still comes before the epoch's backup and weights are written when the
    callback precedes `TrainingBackup`)."""

    # The base class's no-op: Keras then sees no batch-level hook.
    on_train_batch_end = tf.keras.callbacks.Callback.on_train_batch_end

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        self._check(logs, "")


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


FAULT_ENV = "TFDSMLP_FAULT_INJECT"


def inject_boundary_fault(point: str) -> None:
    """Test hook: `TFDSMLP_FAULT_INJECT=after:PHASE` sends SIGKILL to the
    process right after phase PHASE is committed ("after:teacher",
    "after:distill", "after:align"), `after:metrics` right after
    metrics.json is written (before any export). Only the test suite sets
    it."""
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class FaultInjection(tf.keras.callbacks.Callback):
    """Test hook: `TFDSMLP_FAULT_INJECT=PHASE:EPOCH:BATCH[:ACTION]` makes
    the phase PHASE ("teacher", "distill", "align") fail at the start of
    batch BATCH of epoch EPOCH (both 1-based). ACTION "kill" (default)
    sends SIGKILL to the process (as `kill -9` or a lost machine would);
    "nan" turns the weights into NaN (as a diverging run would). Only the
    test suite sets it (see also `inject_boundary_fault`)."""

    def __init__(self, epoch: int, batch: int, action: str = "kill"):
        super().__init__()
        if action not in ("kill", "nan"):
            raise ValueError(f"{FAULT_ENV}: action should be kill or nan. "
                             f"Received: {action!r}")
        self.epoch, self.batch, self.action = epoch, batch, action
        self._epoch = 0

    @classmethod
    def from_env(cls, phase: str):
        spec = os.environ.get(FAULT_ENV, "")
        parts = spec.split(":") if spec else []
        if len(parts) < 3 or parts[0] != phase:
            return None
        return cls(int(parts[1]), int(parts[2]),
                   parts[3] if len(parts) > 3 else "kill")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if (self._epoch, batch + 1) != (self.epoch, self.batch):
            return
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        for v in self.model.trainable_weights:
            v.assign(tf.fill(tf.shape(v), np.nan))


def schedule_callbacks(valid_dataset, patience: int, lr_decay: float,
                       min_lr: float, model_fn=None, verbose: int = 1,
                       phase: str = "", config_prefix: str = "train",
                       monitor: str = "auc", per_batch: bool = True,
                       valid_rows: int | None = None,
                       best_weights_dir: str | None = None,
                       checkpoint_best: bool = False):
    """FuxiCTR's schedule: exact validation, lr decay, early stop, all on
    `val_<monitor>` ("auc" or "auc_logloss", see `TrainConfig.monitor`).
    `per_batch=False` checks the loss per epoch (`StopOnNonFiniteEpochLoss`,
    for ParameterServerStrategy). `checkpoint_best` keeps the best weights
    as a checkpoint in `best_weights_dir` (None: a temporary directory)
    instead of a copy in memory (`CheckpointedEarlyStopping`, for
    ParameterServerStrategy, whose tables would be pulled into the
    coordinator)."""
    stop = StopOnNonFiniteLoss if per_batch else StopOnNonFiniteEpochLoss
    cbs = [ExactValidation(valid_dataset, model_fn=model_fn,
                           auc_logloss=monitor == "auc_logloss",
                           rows=valid_rows, verbose=verbose),
           stop(phase, config_prefix)]
    if lr_decay < 1.0:
        cbs.append(tf.keras.callbacks.ReduceLROnPlateau(
            monitor=f"val_{monitor}", mode="max", factor=lr_decay,
            patience=1, min_delta=0.0, min_lr=min_lr, verbose=verbose))
    if checkpoint_best:
        cbs.append(CheckpointedEarlyStopping(
            best_weights_dir, monitor=f"val_{monitor}", mode="max",
            patience=patience, verbose=verbose))
    else:
        cbs.append(tf.keras.callbacks.EarlyStopping(
            monitor=f"val_{monitor}", mode="max", patience=patience,
            restore_best_weights=True, verbose=verbose))
    return cbs
