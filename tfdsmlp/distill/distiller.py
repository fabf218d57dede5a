"""Stage 1 of DS-MLP: distil a frozen teacher into the main MLP."""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.distill.config import DistillerConfig, with_overrides
from tfdsmlp.distill.kd_loss import KDLoss
from tfdsmlp.distill.student_trainer import (
    StudentTrainer,
    bce_per_example,
    fuse_streams,
    student_streams,
)

import tensorflow as tf


class Distiller(StudentTrainer):
    """Knowledge distillation with a custom `train_step` (keras-io style).

    loss = BCE(y, z_ctr) + kd_weight * KD(z_T, z_M) + embedding L2, where
    z_T is the frozen teacher's logit (computed with `training=False`,
    outside the gradient tape), z_M the main MLP's logit, and z_ctr the fused
    DS-MLP logit 0.5 * (z_M + z_P) when `train_parallel` (public code) or
    z_M alone otherwise (paper). Gradients flow only to the student's
    variables (only the main stream's unless `train_parallel`).

    The settings and their defaults are `DistillerConfig`'s, which the
    `run` command's `distill:` section extends: `Distiller(t, s)` trains
    as `python -m tfdsmlp run` does by default.

    Args:
      teacher: tf.keras.Model returning logits. Frozen here
        (`trainable=False`).
      student: `DualStreamMLP` (or any logit model, e.g. a cross-network
        student for the "w/o dual MLP" ablation).
      config: `DistillerConfig` (a `DistillConfig` too), or None for its
        defaults.
      **kwargs: any `DistillerConfig` field, overriding `config`'s:
        `kd_weight` (lambda >= 0, defaults to 1.0), `kd_loss` (kind string,
        or a `KDLoss`, which then also gives the temperature; defaults to
        "bce"), `temperature` (defaults to 1.0), `train_parallel` (also
        train the parallel MLP in stage 1; defaults to True, chosen by
        validation AUC on Frappe, see docs/RESULTS.md). Other keywords go
        to `tf.keras.Model`.

    Example:

    >>> distiller = Distiller(teacher, DualStreamMLP(vocab_sizes))
    >>> distiller.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    >>> distiller.fit(make_dataset(data_dir, "train", 4096), epochs=2)
    >>> paper = Distiller(teacher, student, train_parallel=False)
    """

    loss_terms = ("loss", "ctr_loss", "kd_loss", "reg_loss")

    def __init__(self, teacher: tf.keras.Model, student: tf.keras.Model,
                 config: DistillerConfig | None = None, **kwargs) -> None:
        kd = kwargs.get("kd_loss")
        if isinstance(kd, KDLoss):
            kwargs.update(kd_loss=kd.kind, temperature=kd.temperature)
        config = with_overrides(DistillerConfig, config, kwargs)
        super().__init__(student, **kwargs)
        self.config = config
        self.teacher = teacher
        self.teacher.trainable = False
        self.kd = (kd if isinstance(kd, KDLoss)
                   else KDLoss(config.kd_loss, temperature=config.temperature))

    @property
    def kd_weight(self) -> float:
        return self.config.kd_weight

    @property
    def train_parallel(self) -> bool:
        return self.config.train_parallel

    def _variables(self):
        if self.train_parallel or not hasattr(self.student,
                                              "stream_variables"):
            return self.student.trainable_variables
        return self.student.stream_variables("main")

    def compute_terms(self, x, y, teacher_logits, training=True,
                      sample_weight=None):
        """The stage-1 loss terms (each averaged over the global batch,
        weighted by `sample_weight`)."""
        streams = ("main", "parallel") if self.train_parallel else ("main",)
        logits = student_streams(self.student, x, training, streams)
        if "main" not in logits:
            raise ValueError("Distillation needs a main stream; the student "
                             "has `use_main=False`.")
        ctr_logit = fuse_streams(logits)
        ctr = self.average(bce_per_example(y, ctr_logit), sample_weight)
        kd = self.average(self.kd(y_true=teacher_logits,
                                  y_pred=logits["main"]), sample_weight)
        reg = self.regularization()
        total = ctr + self.kd_weight * kd + reg
        return {"loss": total, "ctr_loss": ctr, "kd_loss": kd,
                "reg_loss": reg}, ctr_logit

    def train_step(self, data):
        x, y, weight = self.unpack(data)
        teacher_logits = tf.stop_gradient(self.teacher(x, training=False))
        with tf.GradientTape() as tape:
            terms, logits = self.compute_terms(x, y, teacher_logits,
                                               sample_weight=weight)
        self.apply(tape, terms["loss"], self._variables())
        return self.record(terms, y, logits, weight)
