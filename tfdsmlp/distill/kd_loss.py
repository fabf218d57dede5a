"""Knowledge-distillation losses for one-logit (binary) CTR heads.

All take logits: `y_true` = teacher logits, `y_pred` = student logits, shape
(b, 1), and return per-example values (reduction is the caller's, so the
distiller can divide by the global batch size under tf.distribute).

With temperature T, s_t = sigmoid(t / T), s_s = sigmoid(s / T):
- "bce":       T^2 * BCE(s_t, s_s)              (paper Sec. 3.2 text)
- "kl":        T^2 * KL(Bern(s_t) || Bern(s_s))  (paper Algorithm 1)
- "mse_prob":  (sigmoid(t) - sigmoid(s))^2       (paper Sec. 3.5; public code
               uses the squared *batch-mean* difference, a likely bug)
- "mse_logit": (t - s)^2

A softmax over one logit is always 1, so every loss uses the sigmoid.
"""

from __future__ import annotations

import tfdsmlp  # noqa: F401

import tensorflow as tf

KD_KINDS = ("bce", "kl", "mse_prob", "mse_logit")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class KDLoss(tf.keras.losses.Loss):
    """Distillation loss between teacher and student logits.

    Args:
      kind: str. One of "bce", "kl", "mse_prob", "mse_logit". Defaults to
        "bce".
      temperature: float. T > 0 for "bce" and "kl". Defaults to 1.0.
      reduction: Keras loss reduction. Defaults to NONE (per-example).

    Example:

    >>> loss = KDLoss("kl", temperature=2.0)
    >>> per_example = loss(y_true=teacher_logits, y_pred=student_logits)
    """

    def __init__(self, kind: str = "bce", temperature: float = 1.0,
                 reduction=tf.keras.losses.Reduction.NONE,
                 name: str = "kd_loss") -> None:
        super().__init__(reduction=reduction, name=name)
        if kind not in KD_KINDS:
            raise ValueError(f"`kind` should be one of {KD_KINDS}. "
                             f"Received: `kind={kind!r}`")
        if temperature <= 0:
            raise ValueError("`temperature` should be positive. Received: "
                             f"`temperature={temperature}`")
        self.kind = kind
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        t = tf.cast(y_true, tf.float32)
        s = tf.cast(y_pred, tf.float32)
        if self.kind == "mse_logit":
            return tf.reduce_mean(tf.square(t - s), axis=-1)
        if self.kind == "mse_prob":
            return tf.reduce_mean(
                tf.square(tf.sigmoid(t) - tf.sigmoid(s)), axis=-1)
        temp = self.temperature
        soft = tf.sigmoid(t / temp)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft,
                                                      logits=s / temp)
        if self.kind == "kl":
            # KL = BCE(p_t, p_s) - H(p_t); H via the same stable formula.
            bce -= tf.nn.sigmoid_cross_entropy_with_logits(labels=soft,
                                                           logits=t / temp)
        return tf.reduce_mean(bce, axis=-1) * temp * temp

    def get_config(self):
        config = super().get_config()
        config.update({"kind": self.kind, "temperature": self.temperature})
        return config
