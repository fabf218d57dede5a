"""`StartupTimer`: what the first step of a phase costs beyond a steady one.

The first call of Keras' train function traces the step into a graph,
lets Grappler and oneDNN (or XLA with `jit_compile`) compile it, and waits
for the input pipeline's first batch; every later call only runs it. For a
short job (a tuning trial, a smoke run) that start-up can be a large share
of the time, so each phase records it in metrics.json (`startup`):

  first_step_seconds  t(first train call done) - t(fit starts)
  step_seconds        median time of the other calls of the first epoch
  overhead_seconds    first_step_seconds - step_seconds: tracing,
                      compilation and pipeline warm-up
"""

from __future__ import annotations

import time

import tfdsmlp  # noqa: F401

import numpy as np
import tensorflow as tf


class StartupTimer(tf.keras.callbacks.Callback):
    """Times the first train-function call of a fit against the others of
    its first epoch (each call runs `steps_per_execution` steps)."""

    def __init__(self) -> None:
        super().__init__()
        self._start = self._last = None
        self._first: float | None = None
        self._gaps: list[float] = []
        self._done = False

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._done:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = now - self._start
        else:
            self._gaps.append(now - self._last)
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        self._done = True

    def result(self) -> dict[str, float] | None:
        """The three figures of the module docstring (None before a call
        finished; step and overhead absent after a one-call epoch)."""
        if self._first is None:
            return None
        out = {"first_step_seconds": round(self._first, 3)}
        if self._gaps:
            step = float(np.median(self._gaps))
            out["step_seconds"] = round(step, 4)
            out["overhead_seconds"] = round(self._first - step, 3)
        return out
