"""Stage 2 of DS-MLP: alignment fine-tuning of the main + parallel MLPs."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.distill.student_trainer import (StudentTrainer, bce_per_example,
                                             fuse_streams, student_streams)


class Aligner(StudentTrainer):
    """Fine-tunes a `DualStreamMLP` with the alignment loss.

    loss = BCE(y, 0.5 * (z_M + z_P)) + alpha * BCE(y, z_M)
           + beta * BCE(y, z_P) + embedding L2

    (paper Sec. 3.3; alpha = beta = 0 is the "w/o alignment loss" ablation).
    Every term is tracked: `bce_fused`, `bce_main`, `bce_parallel`.

    Args:
      student: `DualStreamMLP` (a single-stream model trains on BCE only).
      alpha: float >= 0. Weight of the main MLP's own BCE. Defaults to 1.0.
      beta: float >= 0. Weight of the parallel MLP's own BCE. Defaults to
        1.0.

    Example:

    >>> aligner = Aligner(dsmlp, alpha=0.8, beta=1.2)
    >>> aligner.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    >>> aligner.fit(make_dataset(data_dir, "train", 4096), epochs=2)
    """

    loss_terms = ("loss", "bce_fused", "bce_main", "bce_parallel",
                  "reg_loss")

    def __init__(self, student: tf.keras.Model, alpha: float = 1.0,
                 beta: float = 1.0, **kwargs) -> None:
        super().__init__(student, **kwargs)
        for name, value in (("alpha", alpha), ("beta", beta)):
            if value < 0:
                raise ValueError(f"`{name}` should be >= 0. Received: "
                                 f"`{name}={value}`")
        self.alpha = float(alpha)
        self.beta = float(beta)

    def compute_terms(self, x, y, training=True):
        """The stage-2 loss terms (each averaged over the global batch)."""
        logits = student_streams(self.student, x, training)
        fused = fuse_streams(logits)
        zero = tf.constant(0.0)
        terms = {"bce_fused": self.average(bce_per_example(y, fused)),
                 "bce_main": zero, "bce_parallel": zero}
        if len(logits) == 2:
            terms["bce_main"] = self.average(
                bce_per_example(y, logits["main"]))
            terms["bce_parallel"] = self.average(
                bce_per_example(y, logits["parallel"]))
        terms["reg_loss"] = self.regularization()
        terms["loss"] = (terms["bce_fused"] + self.alpha * terms["bce_main"]
                         + self.beta * terms["bce_parallel"]
                         + terms["reg_loss"])
        return terms, fused

    def train_step(self, data):
        x, y = data[:2]
        with tf.GradientTape() as tape:
            terms, logits = self.compute_terms(x, y)
        self.apply(tape, terms["loss"], self.student.trainable_variables)
        return self.record(terms, y, logits)
