"""Second-order factorisation machine term."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FactorizationMachine(tf.keras.layers.Layer):
    """Pairwise interaction term of a factorisation machine (DeepFM).

    On field embeddings `e` of shape `(batch, f, d)`:

    ```
    fm = 0.5 * sum_d [ (sum_f e_f)^2 - sum_f e_f^2 ]  =  sum_{i<j} <e_i, e_j>
    ```

    The layer has no weights; the first-order term is `LinearTerm`.

    Args:
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: float `(batch, num_fields, embedding_dim)`.

    Returns:
        float `(batch, 1)`.

    Example:

    ```python
    fm = FactorizationMachine()
    term = fm(tf.random.normal([8, 39, 10]))  # (8, 1)
    ```

    References:
        - [Guo et al., 2017](https://arxiv.org/abs/1703.04247), "DeepFM".
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_spec = tf.keras.layers.InputSpec(ndim=3)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        square_of_sum = tf.square(tf.reduce_sum(inputs, axis=1))
        sum_of_square = tf.reduce_sum(tf.square(inputs), axis=1)
        return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=-1,
                                   keepdims=True)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
