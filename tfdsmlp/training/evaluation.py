"""Exact evaluation of a model on a whole split: logits, AUC, log loss.

Every phase scores its validation and test splits here (through
`ExactValidation` during `fit`, and after it), so the AUC is exact, not
Keras' streaming estimate.
"""

from __future__ import annotations

import weakref

import tfdsmlp  # noqa: F401
from tfdsmlp import metrics

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
