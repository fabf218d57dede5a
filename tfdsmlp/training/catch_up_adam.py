"""Adam's trajectory at LazyAdam's cost: absent rows catch up when used.

Why (docs/SCALE.md, section 8): plain Adam still moves an embedding row
on the steps its id is absent from the batch (its momentum keeps acting,
its second moment decays, a whole-table L2 pulls it), at the cost of a
pass over every table each step; LazyAdam skips all three, and on the
planted 10M-row Criteo-shaped data its GDCN teacher lost 0.008
validation AUC to Adam. `LazyAdamTableL2` restored only the L2 pull
(0.005 of it). Each of the three is a closed form in the number of
absent steps, so this optimizer applies all of them when the row is next
looked up, and to every row at each epoch end (`SettleLazyL2`).
"""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.training.lazy_adam import LazyAdam
from tfdsmlp.training.lazy_table_l2 import LazyAdamTableL2

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class CatchUpAdam(LazyAdamTableL2):
    """LazyAdam whose absent rows catch up on the Adam steps they missed.

    For a table with `IndexedSlices` gradients, a row absent for `k`
    steps gets, when next looked up (coordinate by coordinate, with
    `s = sqrt(v) + eps` and `m`, `v`, `w` as it was left):

    ```
    w <- w - alpha * (m / s) * sum_{j=1..k} r^j,   r = beta_1 / sqrt(beta_2)
    w <- w * exp(-alpha * table_l2 / s * sum_{j=1..k} beta_2^(-j/2))
    m <- m * beta_1^k,   v <- v * beta_2^k
    ```

    then Adam's update with the step's gradient (`alpha`: Adam's
    bias-corrected step size at this step). These are plain Adam's absent
    steps, whose only gradient is the whole-table L2's `table_l2 * w`,
    with that gradient's own share of `m` and `v` left out: its momentum
    term runs on (decaying by `beta_1`, divided by a `sqrt(v)` decaying by
    `sqrt(beta_2)`), then the L2 pull shrinks the moved row, then the
    moments decay. `table_l2 = 0` (an `embedding_l2_scope` of `batch`, or
    no embedding L2) keeps the first and last lines. `settle()` brings
    every row up to date; `SettleLazyL2` calls it at each epoch end.
    The absent steps all take the current step's `alpha`, so the catch-up
    is closest once Adam's bias correction has settled (a few thousand
    steps). On the simulated Zipf table of tests/training/test_catch_up_adam.py
    run for 2,000 steps the rows end 0.1%, 2.7% and 7.3% from dense
    Adam's (by frequency band, most frequent first), LazyAdam's 8%, 35%
    and 57% (docs/SCALE.md section 8 has the command).
    Dense-gradient variables get Adam's update.

    Args:
        table_l2: float >= 0. The model's `embedding_l2` when its scope is
            `lazy`, else 0.
        Others as `LazyAdam`.

    Example:

    ```python
    opt = CatchUpAdam(learning_rate=1e-3, table_l2=1e-5)
    model.compile(optimizer=opt, loss=...)
    model.fit(data, callbacks=[SettleLazyL2(), ...])
    ```
    """

    def __init__(self, learning_rate: Any = 0.001, table_l2: float = 0.0,
                 name: str = "CatchUpAdam", **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, table_l2=table_l2,
                         name=name, **kwargs)

    @staticmethod
    def _check_table_l2(table_l2: float) -> None:
        if not table_l2 >= 0:
            raise ValueError("`table_l2` should be >= 0. Received: "
                             f"`table_l2={table_l2}`")

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return LazyAdam.update_step(self, gradient, variable)
        dtype = variable.dtype
        mark = self._mark(variable)
        m, v = self._moments(variable)
        # Keras' apply_gradients has already summed duplicate indices.
        rows, g = gradient.indices, gradient.values
        step = tf.cast(self.iterations + 1, dtype)
        w_rows, m_rows, v_rows = self._catch_up(
            tf.gather(variable, rows), tf.gather(m, rows),
            tf.gather(v, rows), step - 1 - tf.gather(mark, rows), dtype)
        m_rows, v_rows, delta = self._adam_rows(m_rows, v_rows, g, dtype)
        for target, value in ((m, m_rows), (v, v_rows),
                              (variable, w_rows - delta)):
            target.scatter_update(tf.IndexedSlices(value, rows))
        self._stamp(mark, rows, step)

    def _catch_up(self, w, m, v, gap, dtype):
        """(w, m, v) after `gap` absent steps (the class docstring)."""
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        alpha = self._alpha(dtype)
        gap = gap[:, tf.newaxis]
        s = tf.sqrt(v) + self.epsilon
        r = beta_1 / tf.sqrt(beta_2)
        w = w - alpha * m / s * (r * (1 - tf.pow(r, gap)) / (1 - r))
        if self.table_l2 > 0:
            q = tf.sqrt(beta_2)  # sum_{j=1..k} q^-j; inf past ~1.7e5 steps
            pulls = (tf.pow(q, -gap) - 1) / (1 - q)
            w = w * tf.exp(-alpha * self.table_l2 * pulls / s)
        return w, m * tf.pow(beta_1, gap), v * tf.pow(beta_2, gap)

    def settle(self) -> None:
        """Brings every row up to date (one pass over each table)."""
        for var, mark in self._marks.values():
            m, v = self._moments(var)
            step = tf.cast(self.iterations, var.dtype)
            for target, value in zip((var, m, v), self._catch_up(
                    var, m, v, step - mark, var.dtype)):
                target.assign(value)
            mark.assign(tf.fill(tf.shape(mark), step))
