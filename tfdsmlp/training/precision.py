"""Mixed precision for training: Keras' `mixed_bfloat16` policy, scoped.

Keras fixes a layer's compute dtype when the layer is built, from the
global policy of that moment. `precision_policy(name)` sets the policy for
the `with` block and puts the previous one back, so a model built inside
it computes in bfloat16 (weights, optimizer slots and the losses stay
float32: `CTRModel.__call__` and `DualStreamMLP.stream_logits` return
float32 logits) while models built elsewhere are untouched. Measured on
the development CPU (AVX-512 BF16): docs/BENCHMARKS.md, "Mixed bfloat16".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tfdsmlp  # noqa: F401

import tensorflow as tf


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Builds models inside the block with `precision` ("float32" or
    "mixed_bfloat16"; `TrainConfig.precision`)."""
    mp = tf.keras.mixed_precision
    previous = mp.global_policy()
    mp.set_global_policy(precision)
    try:
        yield
    finally:
        mp.set_global_policy(previous)
