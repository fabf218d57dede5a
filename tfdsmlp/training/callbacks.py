"""Keras callbacks reproducing FuxiCTR's schedule with exact metrics.

FuxiCTR validates every epoch on exact AUC; on no improvement it multiplies
the learning rate by 0.1 (floor 1e-6) and stops after `patience` such epochs,
restoring the best weights. `ExactValidation` writes exact `val_auc` and
`val_logloss` into the epoch logs, so the stock Keras `ReduceLROnPlateau` and
`EarlyStopping` (and TensorBoard) can use them.
"""

from __future__ import annotations

import weakref

import tfdsmlp  # noqa: F401
import numpy as np
import tensorflow as tf

from tfdsmlp import metrics


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


def predict_logits(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Runs `model` (training=False) over a finite (features, label) dataset
    and returns (logits, labels) as float64 vectors."""
    predict = _predict_fn(model)
    logits, labels = [], []
    for x, y in dataset:
        logits.append(predict(x).numpy().reshape(-1))
        labels.append(y.numpy().reshape(-1))
    return (np.concatenate(logits).astype(np.float64),
            np.concatenate(labels).astype(np.float64))


def evaluate_logits(logits: np.ndarray, labels: np.ndarray) -> dict:
    probs = metrics.sigmoid(logits)
    return {"auc": metrics.roc_auc(labels, probs),
            "logloss": metrics.log_loss(labels, probs)}


def evaluate(model, dataset) -> dict[str, float]:
    """Exact AUC and log loss of `model` on a whole split."""
    return evaluate_logits(*predict_logits(model, dataset))


class ExactValidation(tf.keras.callbacks.Callback):
    """Adds exact `<prefix>auc` and `<prefix>logloss` to the epoch logs.

    Put it first in the callback list: callbacks run in list order and share
    the logs dict.

    Args:
      dataset: tf.data.Dataset. A finite (features, label) validation split.
      prefix: str. Log key prefix. Defaults to "val_".
      model_fn: callable or None. Returns the Keras model to score (e.g. a
        distiller's student); defaults to the model being trained.
    """

    def __init__(self, dataset, prefix: str = "val_", model_fn=None):
        super().__init__()
        self.dataset = dataset
        self.prefix = prefix
        self.model_fn = model_fn

    def on_epoch_end(self, epoch, logs=None):
        model = self.model_fn() if self.model_fn else self.model
        result = evaluate(model, self.dataset)
        if logs is not None:
            for key, value in result.items():
                logs[self.prefix + key] = value
        lr = self.model.optimizer.learning_rate
        if logs is not None and not callable(lr):
            logs["learning_rate"] = float(tf.keras.backend.get_value(lr))


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class StopOnNonFiniteLoss(tf.keras.callbacks.Callback):
    """Raises `NonFiniteLossError` as soon as a batch loss is NaN/inf."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise NonFiniteLossError(
                f"Non-finite loss {loss} at batch {batch}: training stopped "
                "before the weights are saved or exported.")


def schedule_callbacks(valid_dataset, patience: int, lr_decay: float,
                       min_lr: float, model_fn=None, verbose: int = 1):
    """FuxiCTR's schedule: exact validation, lr decay, early stop."""
    cbs = [ExactValidation(valid_dataset, model_fn=model_fn),
           StopOnNonFiniteLoss()]
    if lr_decay < 1.0:
        cbs.append(tf.keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=lr_decay, patience=1,
            min_delta=0.0, min_lr=min_lr, verbose=verbose))
    cbs.append(tf.keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=patience,
        restore_best_weights=True, verbose=verbose))
    return cbs
