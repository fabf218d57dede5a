"""First-order (logistic regression) term of a CTR model."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v
from tfdsmlp.layers.feature_embedding import L2_SCOPES, FeatureEmbedding

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class LinearTerm(tf.keras.layers.Layer):
    """Logistic-regression logit over categorical ids and numeric values.

    ```
    logit = b + sum_f w_f[ids_f] + sum_j x_j * u_j
    ```

    As FuxiCTR's `LogisticRegression`: a one-dimensional `FeatureEmbedding`
    (same padding rule, so id 0 contributes 0; same `N(0, 1e-4)`
    initialiser; same `(embedding_l2 / 2) * sum(w ** 2)` regulariser) summed
    over the fields, plus a scalar bias initialised to zero.

    Args:
        vocab_sizes: list of int. Rows of each categorical field's table,
            padding id 0 included; each must be >= 2.
        num_numeric: int. Number of numeric fields. Defaults to `0`.
        embedding_l2: float. L2 coefficient on the weights, as FuxiCTR's
            `embedding_regularizer`. Defaults to `0.0`.
        l2_scope: str. `"table"` or `"batch"`, as `FeatureEmbedding`.
            Defaults to `"table"`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: the same dict as `FeatureEmbedding` takes (`"ids"`, and
            `"dense"` when `num_numeric > 0`).

    Returns:
        float `(batch, 1)` logit.

    Example:

    ```python
    lr = LinearTerm([100, 20], num_numeric=1)
    logit = lr({"ids": tf.constant([[3, 0]]), "dense": tf.constant([[0.5]])})
    logit.shape  # (1, 1)
    ```
    """

    def __init__(self, vocab_sizes: list[int], num_numeric: int = 0,
                 embedding_l2: float = 0.0, l2_scope: str = "table",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_sizes = v.check_int_list("vocab_sizes", vocab_sizes,
                                            minimum=2)
        self.num_numeric = v.check_int("num_numeric", num_numeric, 0)
        self.embedding_l2 = v.check_non_negative("embedding_l2", embedding_l2)
        self.l2_scope = v.check_choice("l2_scope", l2_scope, L2_SCOPES)
        if not self.vocab_sizes and not self.num_numeric:
            raise ValueError(
                "`LinearTerm` needs at least one field. Received: "
                f"`vocab_sizes={vocab_sizes!r}`, `num_numeric={num_numeric!r}`")

    def build(self, input_shape: Any) -> None:
        self.weights_layer = FeatureEmbedding(
            self.vocab_sizes, num_numeric=self.num_numeric, embedding_dim=1,
            embedding_l2=self.embedding_l2, l2_scope=self.l2_scope,
            name="feature_weights")
        self.weights_layer.build(input_shape)
        self.bias = self.add_weight(name="bias", shape=(1,),
                                    initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs: Any) -> tf.Tensor:
        per_field = self.weights_layer(inputs)  # (batch, fields, 1)
        return tf.reduce_sum(per_field, axis=1) + self.bias

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "vocab_sizes": list(self.vocab_sizes),
            "num_numeric": self.num_numeric,
            "embedding_l2": self.embedding_l2,
            "l2_scope": self.l2_scope,
        })
        return config
