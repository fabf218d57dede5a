"""Shared machinery of the DS-MLP trainers (`Distiller`, `Aligner`).

A trainer is a `tf.keras.Model` wrapping a student model. Its `train_step`
computes named loss terms; each is tracked by a `Mean` metric listed in
`metrics`, so Keras progress bars, callbacks and TensorBoard show every term.
Per-example losses are averaged over the GLOBAL batch
(`tf.nn.compute_average_loss`), so MirroredStrategy, which sums replica
gradients, gives the same update as one device. `test_step` scores the
student's logit with BCE and AUC.
"""

from __future__ import annotations

import tfdsmlp  # noqa: F401
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP

import tensorflow as tf


def bce_per_example(labels, logits):
    """Per-example binary cross entropy of logits, shape (b,)."""
    return tf.keras.losses.binary_crossentropy(
        tf.cast(labels, tf.float32), logits, from_logits=True)


def student_streams(student, inputs, training, streams=("main", "parallel")):
    """Stream logits of a DS-MLP, or {"main": logit} for any other model
    (float32 also under mixed_bfloat16: `CTRModel.__call__` and
    `DualStreamMLP.stream_logits` return float32 logits)."""
    if hasattr(student, "stream_logits"):
        return student.stream_logits(inputs, training=training,
                                     streams=streams)
    return {"main": student(inputs, training=training)}


fuse_streams = DualStreamMLP.fuse

class StudentTrainer(tf.keras.Model):
    """Base of trainers over a `student` model (returns its logits)."""

    loss_terms: tuple[str, ...] = ("loss",)

    def __init__(self, student: tf.keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        self.student = student
        self.trackers = {name: tf.keras.metrics.Mean(name=name)
                         for name in self.loss_terms}
        self.auc = tf.keras.metrics.AUC(from_logits=True, name="auc")

    @property
    def metrics(self):
        return [*self.trackers.values(), self.auc]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def dummy_inputs(self, batch_size: int = 2):
        """The student's (see `CTRModel.dummy_inputs`)."""
        return self.student.dummy_inputs(batch_size)

    @staticmethod
    def unpack(data):
        """(x, y, sample_weight) of a batch of (x, y) or (x, y, weight): a
        multi-replica training stream pads an epoch's last steps with rows
        of weight 0 (see `tfdsmlp.data.epochs`)."""
        return tf.keras.utils.unpack_x_y_sample_weight(data)

    @staticmethod
    def average(per_example, sample_weight=None) -> tf.Tensor:
        """Mean over the global batch (correct under tf.distribute; a
        smaller last batch of an epoch on one replica is averaged over its
        own size), weighted by the batch's sample weights if it has any."""
        return tf.nn.compute_average_loss(per_example,
                                          sample_weight=sample_weight)

    def regularization(self) -> tf.Tensor:
        losses = self.student.losses
        if not losses:
            return tf.constant(0.0)
        return tf.nn.scale_regularization_loss(tf.add_n(losses))

    def apply(self, tape, loss, variables) -> None:
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))

    def record(self, terms: dict, labels, logits,
               sample_weight=None) -> dict:
        """Updates the trackers with the per-replica means in `terms` (and
        the AUC with the rows of nonzero `sample_weight`)."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in terms.items():
            # `value` is already divided by the global batch: scale back to
            # this replica's mean so the tracker averages true means.
            self.trackers[name].update_state(value * replicas)
        self.auc.update_state(labels, logits, sample_weight=(
            None if sample_weight is None
            else tf.cast(sample_weight > 0, tf.float32)))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data[:2]
        logits = self.student(x, training=False)
        loss = self.average(bce_per_example(y, logits))
        self.trackers["loss"].update_state(
            loss * tf.distribute.get_strategy().num_replicas_in_sync)
        self.auc.update_state(y, logits)
        return {"loss": self.trackers["loss"].result(),
                "auc": self.auc.result()}
