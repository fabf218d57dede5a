"""LazyAdam with the whole-table embedding L2 caught up lazily.

Why (docs/SCALE.md, section 8): on the planted 10M-row Criteo-shaped data
Keras' Adam with the L2 term over the whole table beat LazyAdam with the
L2 term on the batch's rows by 0.008 validation AUC, and the trained
tables showed why: under Adam the whole-table term keeps pulling an id's
row towards zero while the id goes unseen, and the pull is the stronger
the smaller the row's gradients were (Adam divides by their root mean
square), so rare ids are regularised the more the rarer they are. Its
dense gradient is the cost LazyAdam removes. The pull on an absent row is
a known factor per step, so it is applied when the row is next looked up,
and to every row at each epoch end (`SettleLazyL2`). The pull has to
depend on each row's gradients: a decoupled weight decay (AdamW's form,
the same factor for every row) was tried first, in session 24, and did
not help at 10M rows; it was not kept.
"""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.training.lazy_adam import LazyAdam

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class LazyAdamTableL2(LazyAdam):
    """`LazyAdam` plus Adam's whole-table L2 pull on the absent rows.

    For the tables that receive `IndexedSlices` gradients (embedding
    tables; the model adds the L2 term `(table_l2 / 2) ||E[r]||^2` of the
    rows a batch looks up, `embedding_l2_scope: lazy`), a row `r` absent
    from a step's batch gets the update plain Adam would give it from the
    L2 gradient `table_l2 * E[r]` alone, with its second moment `v[r]` as
    it was when last looked up, coordinate by coordinate:

    ```
    E[r] <- E[r] * max(0, 1 - alpha_t * table_l2 / (sqrt(v[r]) + eps))
    alpha_t = lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    ```

    It is applied lazily: when `r` is next looked up at step `s`, for the
    `s - 1 - mark[r]` steps it was absent (the factor to that power, at
    step `s`'s `alpha`; `mark[r]`: the last step `r` is up to date with),
    before `LazyAdam`'s update of the row; `settle()` brings every row up
    to date (one pass over the tables), and `SettleLazyL2` calls it at
    each epoch end, before validation, backups and early stopping read the
    weights. Rows with small gradients (rare ids) shrink fast, rows never
    looked up (`v = 0`) go to zero, frequent rows hardly move, as under
    Adam with the dense L2 term. Unlike plain Adam, the absent steps'
    momentum and moment decay are not replayed (LazyAdam's rule).
    Dense-gradient variables get `LazyAdam`'s update only.

    Args:
        table_l2: float > 0. The L2 coefficient (the model's
            `embedding_l2`).
        Others as `LazyAdam`.

    Example:

    ```python
    opt = LazyAdamTableL2(learning_rate=1e-3, table_l2=1e-5)
    model.compile(optimizer=opt, loss=...)
    model.fit(data, callbacks=[SettleLazyL2(), ...])
    ```
    """

    def __init__(self, learning_rate: Any = 0.001, table_l2: float = 1e-5,
                 name: str = "LazyAdamTableL2", **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._check_table_l2(table_l2)
        self.table_l2 = float(table_l2)
        self._sparse_keys: set[str] = set()
        # var key: (table, its marks), for the tables with sparse gradients.
        self._marks: dict[str, tuple[tf.Variable, tf.Variable]] = {}

    def apply_gradients(self, grads_and_vars, *args: Any, **kwargs: Any):
        # The tables with sparse gradients get marks when the optimizer is
        # built, which Keras does inside this call, on its first step.
        grads_and_vars = list(grads_and_vars)
        for grad, var in grads_and_vars:
            if isinstance(grad, tf.IndexedSlices):
                self._sparse_keys.add(self._var_key(var))
        return super().apply_gradients(grads_and_vars, *args, **kwargs)

    def build(self, var_list) -> None:
        first = not getattr(self, "_built", False)
        super().build(var_list)
        if not first:
            return
        for var in var_list:
            key = self._var_key(var)
            if key in self._sparse_keys:
                self._marks[key] = (var, self.add_variable_from_reference(
                    var, "l2_mark", shape=var.shape[:1]))

    @staticmethod
    def _check_table_l2(table_l2: float) -> None:
        if not table_l2 > 0:
            raise ValueError("`table_l2` should be > 0. Received: "
                             f"`table_l2={table_l2}`")

    def _mark(self, variable) -> tf.Variable:
        """The marks of `variable`, a table with sparse gradients."""
        key = self._var_key(variable)
        if key not in self._marks:
            raise ValueError(
                f"`{type(self).__name__}` got a sparse gradient for "
                f"`{variable.name}`, which had a dense one when the "
                "optimizer was built; compile a new optimizer.")
        return self._marks[key][1]

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices):
            mark = self._mark(variable)
            step = tf.cast(self.iterations + 1, variable.dtype)
            rows = gradient.indices
            factor = self._factor(tf.gather(self._moments(variable)[1], rows),
                                  step - 1 - tf.gather(mark, rows),
                                  variable.dtype)
            variable.scatter_update(tf.IndexedSlices(
                tf.gather(variable, rows) * factor, rows))
            self._stamp(mark, rows, step)
        return super().update_step(gradient, variable)

    @staticmethod
    def _stamp(mark: tf.Variable, rows, step) -> None:
        """Marks `rows` up to date with `step`."""
        mark.scatter_update(tf.IndexedSlices(tf.fill(tf.shape(rows), step),
                                             rows))

    def _factor(self, v, gap, dtype) -> tf.Tensor:
        """max(0, 1 - alpha * table_l2 / (sqrt(v) + eps)) ** gap."""
        keep = tf.nn.relu(1.0 - self._alpha(dtype) * self.table_l2
                          / (tf.sqrt(v) + self.epsilon))
        return tf.pow(keep, gap[:, tf.newaxis])

    def settle(self) -> None:
        """Applies every row's pending pull (one pass over each table)."""
        for var, mark in self._marks.values():
            step = tf.cast(self.iterations, var.dtype)
            var.assign(var * self._factor(self._moments(var)[1], step - mark,
                                          var.dtype))
            mark.assign(tf.fill(tf.shape(mark), step))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["table_l2"] = self.table_l2
        return config


class SettleLazyL2(tf.keras.callbacks.Callback):
    """Brings every row of a `LazyAdamTableL2`'s tables up to date at each
    epoch end. Put it first in `fit`'s callbacks, so that validation,
    backups and early stopping's best weights see the settled rows."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.optimizer.settle()
