"""Ablation "w/o main MLP": the teacher itself plus a parallel MLP."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class TeacherParallel(tf.keras.Model):
    """logit = 0.5 * (z_T + z_P): paper Table 6, "w/o student MLP".

    The (trained) teacher takes the main stream's place and a parallel MLP
    with its own embedding table the other; stage 2 fine-tunes both with the
    alignment loss. Exposes the same `stream_logits` / `stream_variables`
    interface as `DualStreamMLP`, so `Aligner` trains it unchanged.

    Args:
      teacher: tf.keras.Model returning logits (trainable here).
      parallel: `DualStreamMLP` with `use_main=False`.
    """

    def __init__(self, teacher: tf.keras.Model, parallel: DualStreamMLP,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if parallel.use_main or not parallel.use_parallel:
            raise ValueError(
                "`parallel` should be a DualStreamMLP with use_main=False "
                "and use_parallel=True. Received: "
                f"use_main={parallel.use_main}, "
                f"use_parallel={parallel.use_parallel}")
        self.teacher = teacher
        self.parallel = parallel
        self.use_main = True
        self.use_parallel = True

    def stream_logits(self, inputs, training=None,
                      streams=("main", "parallel")) -> dict[str, tf.Tensor]:
        out = {}
        if "main" in streams:
            out["main"] = self.teacher(inputs, training=training)
        if "parallel" in streams:
            out["parallel"] = self.parallel(inputs, training=training)
        return out

    def call(self, inputs, training=None):
        return DualStreamMLP.fuse(self.stream_logits(inputs, training))

    def stream_variables(self, stream: str) -> list[tf.Variable]:
        if stream == "main":
            return self.teacher.trainable_variables
        return self.parallel.stream_variables("parallel")

    def dummy_inputs(self, batch_size: int = 2):
        return self.parallel.dummy_inputs(batch_size)

    def get_config(self):
        return {"teacher": tf.keras.utils.serialize_keras_object(
                    self.teacher),
                "parallel": tf.keras.utils.serialize_keras_object(
                    self.parallel),
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("teacher", "parallel"):
            config[key] = tf.keras.utils.deserialize_keras_object(
                config[key], custom_objects=custom_objects)
        return cls(**config)
