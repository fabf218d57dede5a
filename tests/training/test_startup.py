"""`StartupTimer`: the first train call against the steady ones."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.training import startup
from tfdsmlp.training.startup import StartupTimer

import numpy as np
import tensorflow as tf


def test_figures_by_hand(monkeypatch):
    clock = iter([10.0, 13.0, 13.5, 13.9, 14.5, 99.0])
    monkeypatch.setattr(startup.time, "perf_counter", lambda: next(clock))
    timer = StartupTimer()
    assert timer.result() is None
    timer.on_train_begin()
    for batch in range(4):      # done at 13.0, 13.5, 13.9, 14.5
        timer.on_train_batch_end(batch)
    timer.on_epoch_end(0)
    timer.on_train_batch_end(0)  # second epoch: not counted
    # first 3.0 s; steady gaps .5 .4 .6 -> median .5; overhead 2.5 s
    assert timer.result() == {"first_step_seconds": 3.0,
                              "step_seconds": 0.5, "overhead_seconds": 2.5}


def test_one_call_epoch_has_no_step_figure(monkeypatch):
    clock = iter([0.0, 2.0])
    monkeypatch.setattr(startup.time, "perf_counter", lambda: next(clock))
    timer = StartupTimer()
    timer.on_train_begin()
    timer.on_train_batch_end(0)
    timer.on_epoch_end(0)
    assert timer.result() == {"first_step_seconds": 2.0}


def test_in_a_real_fit():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timer = StartupTimer()
    x = np.ones((64, 3), np.float32)
    model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0,
              callbacks=[timer])
    r = timer.result()
    assert r["first_step_seconds"] > 0 and r["step_seconds"] > 0
    assert abs(r["overhead_seconds"] - (r["first_step_seconds"]
                                        - r["step_seconds"])) < 2e-3
