"""Stage 2 of DS-MLP: alignment fine-tuning of the main + parallel MLPs."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.distill.config import AlignerConfig, with_overrides
from tfdsmlp.distill.student_trainer import (
    StudentTrainer,
    bce_per_example,
    fuse_streams,
    student_streams,
)

import tensorflow as tf


class Aligner(StudentTrainer):
    """Fine-tunes a `DualStreamMLP` with the alignment loss.

    loss = BCE(y, 0.5 * (z_M + z_P)) + alpha * BCE(y, z_M)
           + beta * BCE(y, z_P) + embedding L2

    (paper Sec. 3.3; alpha = beta = 0 is the "w/o alignment loss" ablation).
    Every term is tracked: `bce_fused`, `bce_main`, `bce_parallel`. The
    settings and their defaults are `AlignerConfig`'s, which the `run`
    command's `align:` section extends.

    Args:
      student: `DualStreamMLP` (a single-stream model trains on BCE only).
      config: `AlignerConfig` (an `AlignConfig` too), or None for its
        defaults.
      **kwargs: `alpha` / `beta` (floats >= 0, weights of the main and
        parallel MLPs' own BCE; default to 1.0), overriding `config`'s.
        Other keywords go to `tf.keras.Model`.

    Example:

    >>> aligner = Aligner(dsmlp, alpha=0.8, beta=1.2)
    >>> aligner.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    >>> aligner.fit(make_dataset(data_dir, "train", 4096), epochs=2)
    """

    loss_terms = ("loss", "bce_fused", "bce_main", "bce_parallel",
                  "reg_loss")

    def __init__(self, student: tf.keras.Model,
                 config: AlignerConfig | None = None, **kwargs) -> None:
        config = with_overrides(AlignerConfig, config, kwargs)
        super().__init__(student, **kwargs)
        self.config = config

    @property
    def alpha(self) -> float:
        return self.config.alpha

    @property
    def beta(self) -> float:
        return self.config.beta

    def compute_terms(self, x, y, training=True, sample_weight=None):
        """The stage-2 loss terms (each averaged over the global batch,
        weighted by `sample_weight`)."""
        logits = student_streams(self.student, x, training)
        fused = fuse_streams(logits)
        zero = tf.constant(0.0)
        terms = {"bce_fused": self.average(bce_per_example(y, fused),
                                           sample_weight),
                 "bce_main": zero, "bce_parallel": zero}
        if len(logits) == 2:
            terms["bce_main"] = self.average(
                bce_per_example(y, logits["main"]), sample_weight)
            terms["bce_parallel"] = self.average(
                bce_per_example(y, logits["parallel"]), sample_weight)
        terms["reg_loss"] = self.regularization()
        terms["loss"] = (terms["bce_fused"] + self.alpha * terms["bce_main"]
                         + self.beta * terms["bce_parallel"]
                         + terms["reg_loss"])
        return terms, fused

    def train_step(self, data):
        x, y, weight = self.unpack(data)
        with tf.GradientTape() as tape:
            terms, logits = self.compute_terms(x, y, sample_weight=weight)
        self.apply(tape, terms["loss"], self.student.trainable_variables)
        return self.record(terms, y, logits, weight)
