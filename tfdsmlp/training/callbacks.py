"""Keras callbacks reproducing FuxiCTR's schedule with exact metrics.

FuxiCTR validates every epoch on exact AUC; on no improvement it multiplies
the learning rate by 0.1 (floor 1e-6) and stops after `patience` such epochs,
restoring the best weights. `ExactValidation` writes exact `val_auc` and
`val_logloss` into the epoch logs, so the stock Keras `ReduceLROnPlateau` and
`EarlyStopping` (and TensorBoard) can use them.
"""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.training.evaluation import eval_progress, evaluate
from tfdsmlp.training.server_weights import CheckpointedEarlyStopping

import numpy as np
import tensorflow as tf


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
