"""`EpochProgress`: progress lines inside an epoch, for log files.

Keras' progress bar (`verbose=1`) rewrites one line in place many times a
second; written to a file (a job started with `nohup`, the experiments
runner's per-job logs) it becomes megabytes of backspaces an epoch, so
long jobs ran with `--quiet` and logged nothing for hours: an epoch of the
DS-MLP's distillation on 10M rows takes about 25 minutes here. With
`train/run --progress lines` (the default when stdout is not a terminal)
Keras prints one line per finished epoch (`verbose=2`, with the
validation metrics) and this callback one line every `interval` seconds
within it:

    [teacher] epoch 3/30: 4,915,200 rows, 15,512 rows/s, 49% of 10,000,000, ETA 0:05:31

The rows are the training examples of the epoch (steps x global batch
size), so the rate is the phase's examples/s. After each epoch (its
validation pass included) one more line bounds what is left of the
phase, since early stopping may end it before its last epoch:

    [teacher] epoch 3/30 took 0:11:02; at most 27 more epochs, 4:57:54 at this pace
"""

from __future__ import annotations

import time
from typing import TextIO

import tfdsmlp  # noqa: F401
from tfdsmlp.predict.progress import Progress, duration

import tensorflow as tf


class EpochProgress(tf.keras.callbacks.Callback):
    """A line every `interval` s with the epoch's rows done, rate and ETA,
    and after each epoch its time and the most the phase has left.

    Args:
      phase: str. Named at the start of each line ("teacher", ...).
      steps: int. Steps per epoch.
      batch_size: int. Global batch size (rows per step).
      epochs: int. The phase's most epochs, for "epoch 3/30".
      interval: float. Seconds between lines. Defaults to 30.
      stream: where to write (default: stderr, as `Progress`).
    """

    def __init__(self, phase: str, steps: int, batch_size: int, epochs: int,
                 interval: float = 30.0, stream: TextIO | None = None):
        super().__init__()
        self.phase = phase
        self.steps = steps
        self.batch_size = batch_size
        self.epochs = epochs
        self.interval = interval
        self.stream = stream
        self._progress: Progress | None = None
        self._epoch_start = 0.0
        # The logs are not read: Keras need not copy them to the host.
        self._supports_tf_logs = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.monotonic()
        self._progress = Progress(
            stream=self.stream, interval=self.interval,
            label=f"[{self.phase}] epoch {epoch + 1}/{self.epochs}",
            total_rows=self.steps * self.batch_size)

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None:
            self._progress.update((batch + 1) * self.batch_size)

    def on_epoch_end(self, epoch, logs=None):
        if self._progress is None:
            return
        stream = self._progress.stream      # Progress's choice (stderr)
        self._progress.close()
        self._progress = None
        took = time.monotonic() - self._epoch_start
        left = self.epochs - (epoch + 1)
        text = (f"[{self.phase}] epoch {epoch + 1}/{self.epochs} took "
                f"{duration(took)}; ")
        text += (f"at most {left} more epoch{'s' if left > 1 else ''}, "
                 f"{duration(left * took)} at this pace" if left > 0
                 else "the phase's last epoch")
        stream.write(text + "\n")
        stream.flush()
