"""Lazy (sparse) Adam: touch only the embedding rows a batch looked up."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf


class SlotsMadeInPlace:
    """Optimizer mixin: each slot variable (Adam's m, v) is filled with
    zeros on the device that holds it, not built in this process and sent.

    Keras builds a slot's initial value as `tf.zeros(shape)` where the
    optimizer runs, then creates the variable beside its model variable.
    Under ParameterServerStrategy that is the coordinator: every block of
    every sharded table was materialised there and sent to its server
    (for a 50M x 16 table, 2 x 3.2 GB through the coordinator at the first
    step). A callable initial value runs under the slot's device instead.
    """

    def add_variable_from_reference(self, model_variable, variable_name,
                                    shape=None, initial_value=None):
        if initial_value is None and (shape is not None
                                      or model_variable.shape.rank
                                      is not None):
            dtype = getattr(model_variable, "true_dtype",
                            model_variable.dtype)
            full = model_variable.shape if shape is None else shape

            def initial_value():
                return tf.zeros(full, dtype=dtype)
        return super().add_variable_from_reference(
            model_variable, variable_name, shape=shape,
            initial_value=initial_value)


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class Adam(SlotsMadeInPlace, tf.keras.optimizers.Adam):
    """Keras' Adam, its slots made where they live (`SlotsMadeInPlace`)."""


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class LazyAdam(Adam):
    """Adam whose sparse updates read and write only the gathered rows.

    Keras' Adam treats an `IndexedSlices` gradient (an embedding lookup's)
    by decaying the moments of the WHOLE table every step, so each step
    costs O(table rows) however few rows the batch used. LazyAdam (as TF
    Addons' `LazyAdam`) updates only the rows `r` present in the gradient:

    ```
    m[r] <- beta_1 * m[r] + (1 - beta_1) * g[r]
    v[r] <- beta_2 * v[r] + (1 - beta_2) * g[r] ** 2
    w[r] <- w[r] - lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
                   * m[r] / (sqrt(v[r]) + epsilon)
    ```

    Rows absent from the batch keep their weights and moments (plain Adam
    would still move them with their decayed momentum). Dense gradients get
    plain Adam. The gradient is sparse only when nothing adds a dense term
    to the table: use it with `embedding_l2 = 0` or with
    `embedding_l2_scope = "batch"` (the L2 term on the looked-up rows).

    Args: as `tf.keras.optimizers.Adam`; `amsgrad` must be False.

    Example:

    ```python
    model.compile(optimizer=LazyAdam(learning_rate=1e-3), loss=...)
    ```
    """

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, name: str = "LazyAdam",
                 **kwargs: Any) -> None:
        if amsgrad:
            raise ValueError("`LazyAdam` does not support `amsgrad=True`. "
                             "Received: `amsgrad=True`")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, amsgrad=False,
                         name=name, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        m, v = self._moments(variable)
        # Keras' apply_gradients has already summed duplicate indices.
        rows, g = gradient.indices, gradient.values
        m_rows, v_rows, delta = self._adam_rows(
            tf.gather(m, rows), tf.gather(v, rows), g, variable.dtype)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(delta, rows))

    def _moments(self, variable) -> tuple[tf.Variable, tf.Variable]:
        """Adam's (m, v) slots of `variable`."""
        index = self._index_dict[self._var_key(variable)]
        return self._momentums[index], self._velocities[index]

    def _adam_rows(self, m_rows, v_rows, g, dtype):
        """(m, v, step) of rows with moments `m_rows`, `v_rows` after the
        gradient `g`: the rows' new moments and what Adam subtracts."""
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        m_rows = beta_1 * m_rows + (1 - beta_1) * g
        v_rows = beta_2 * v_rows + (1 - beta_2) * tf.square(g)
        return m_rows, v_rows, (self._alpha(dtype) * m_rows
                                / (tf.sqrt(v_rows) + self.epsilon))

    def _alpha(self, dtype) -> tf.Tensor:
        """Adam's bias-corrected step size at this step,
        `lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)`."""
        local_step = tf.cast(self.iterations + 1, dtype)
        return (tf.cast(self.learning_rate, dtype)
                * tf.sqrt(1 - tf.pow(tf.cast(self.beta_2, dtype), local_step))
                / (1 - tf.pow(tf.cast(self.beta_1, dtype), local_step)))
