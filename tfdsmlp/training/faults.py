"""Test hooks that kill a run or make it diverge at a chosen point.

Only the test suite sets `TFDSMLP_FAULT_INJECT` (tests/faults/).
"""

from __future__ import annotations

import os
import signal

import tfdsmlp  # noqa: F401

import numpy as np
import tensorflow as tf

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
