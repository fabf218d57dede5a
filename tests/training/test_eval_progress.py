"""Progress with an ETA for the exact evaluation passes (a validation or
test split of millions of rows takes minutes)."""

from __future__ import annotations

import io

import tfdsmlp  # noqa: F401
from tfdsmlp.predict import progress as progress_module
from tfdsmlp.predict.progress import Progress
from tfdsmlp.training.evaluation import (
    eval_progress,
    evaluate,
    predict_logits,
)
from tfdsmlp.training.fit import evaluate_splits

import numpy as np
import tensorflow as tf


def test_rows_share_and_eta_by_hand(monkeypatch):
    clock = iter([100.0, 104.0])
    monkeypatch.setattr(progress_module.time, "perf_counter",
                        lambda: next(clock))
    stream = io.StringIO()
    p = Progress(stream=stream, interval=0, label="validation",
                 total_rows=1000)
    p.update(250)    # 250 rows in 4 s: 62 rows/s, 25 %, 12 s left
    assert stream.getvalue() == ("validation: 250 rows, 62 rows/s, 25% of "
                                 "1,000, ETA 0:00:12\n")


class _Calls:
    def __init__(self):
        self.rows, self.closed = [], False

    def update(self, rows):
        self.rows.append(rows)

    def close(self):
        self.closed = True


def test_predict_reports_rows_after_every_batch():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
    x = np.ones((10, 2), np.float32)
    y = (np.arange(10) % 2).reshape(10, 1).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    calls = _Calls()
    logits, labels = predict_logits(model, data, calls)
    assert calls.rows == [4, 8, 10] and calls.closed
    assert len(logits) == len(labels) == 10
    assert evaluate(model, data)["logloss"] > 0   # progress optional


def test_eval_progress_only_when_verbose(tiny_dataset_dir, capsys):
    assert eval_progress("x", 10, verbose=0) is None
    assert eval_progress("x", 10, verbose=1).total_rows == 10
    model = tf.keras.Sequential([tf.keras.layers.Lambda(
        lambda x: tf.reduce_sum(tf.cast(x["ids"], tf.float32), axis=1,
                                keepdims=True))])
    out = evaluate_splits(model, tiny_dataset_dir, 32, splits=("valid",),
                          verbose=1, label="[m] scoring ")
    assert set(out) == {"valid"}
    # 96 rows take well under the 10 s interval: nothing printed.
    assert "scoring valid" not in capsys.readouterr().err
