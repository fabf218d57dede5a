"""FinalMLP feature-selection gate for one stream."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v
from tfdsmlp.layers.mlp_block import MLPBlock

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FeatureSelectionGate(tf.keras.layers.Layer):
    """Gates flat embeddings by a context, as FinalMLP's feature selection.

    ```
    gate = 2 * sigmoid(MLP(ctx))         # (batch, D), MLP ends in Dense(D)
    out  = flat_emb * gate
    ```

    `MLP` is `hidden_units` dense layers with ReLU (no batch norm) followed
    by `Dense(D)` (an `MLPBlock`). `ctx` is the `context` tensor when one is
    given (e.g. the flattened user-field embeddings); otherwise a learned
    bias vector of shape `(1, context_dim)`, initialised to zeros and
    broadcast to the batch (FuxiCTR uses `context_dim = embedding_dim`). At
    initialisation with the bias context, the gate is exactly 1.

    Whether the layer uses a `context` is fixed by its first call (and kept
    in `get_config()` as `uses_context`): the bias vector only exists for a
    layer first called without `context`, so a context-gated layer carries
    no unused, gradient-less weight.

    Args:
        hidden_units: list of int. Hidden widths of the gate MLP; may be
            empty.
        context_dim: int. Width of the learned bias context, used only when
            `context` is not given. Defaults to `10`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        flat_emb: float `(batch, D)`.
        context: optional float `(batch, c)`.

    Returns:
        float `(batch, D)`.

    Example:

    ```python
    gate = FeatureSelectionGate([400], context_dim=10)
    gated = gate(tf.random.normal([8, 390]))  # (8, 390)
    user_gate = FeatureSelectionGate([400])
    gated = user_gate(tf.random.normal([8, 390]),
                      context=tf.random.normal([8, 20]))
    ```

    References:
        - [Mao et al., 2023](https://arxiv.org/abs/2304.00902), "FinalMLP".
    """

    def __init__(self, hidden_units: list[int], context_dim: int = 10,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_units = v.check_int_list("hidden_units", hidden_units)
        self.context_dim = v.check_int("context_dim", context_dim, 1)
        self.context_bias: tf.Variable | None = None
        self._uses_context: bool | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Keras 2 passes only the first argument's shape to `build`; record
        # here whether a context comes too, so that `build` creates the bias
        # vector only when it will be used.
        if not self.built and self._uses_context is None:
            context = kwargs.get("context", args[1] if len(args) > 1 else None)
            self._uses_context = context is not None
        return super().__call__(*args, **kwargs)

    def build(self, input_shape: tf.TensorShape) -> None:
        width = tf.TensorShape(input_shape)[-1]
        if width is None:
            raise ValueError("`FeatureSelectionGate` needs a known input "
                             f"width. Received input shape {input_shape}")
        self.gate_mlp = MLPBlock(self.hidden_units, activation="relu",
                                 output_dim=width,
                                 output_activation="sigmoid", name="gate_mlp")
        if not self._uses_context:
            self.context_bias = self.add_weight(
                name="context_bias", shape=(1, self.context_dim),
                initializer="zeros", trainable=True)
            self.gate_mlp.build((None, self.context_dim))
        super().build(input_shape)

    def call(self, flat_emb: tf.Tensor,
             context: tf.Tensor | None = None) -> tf.Tensor:
        if context is None:
            if self.context_bias is None:
                raise ValueError("This `FeatureSelectionGate` was first "
                                 "called with a `context`; pass one again.")
            batch = tf.shape(flat_emb)[0]
            context = tf.tile(self.context_bias, [batch, 1])
        elif self.context_bias is not None:
            raise ValueError("This `FeatureSelectionGate` was first called "
                             "without a `context`; it cannot take one now.")
        gate = 2.0 * self.gate_mlp(context)
        return flat_emb * tf.cast(gate, flat_emb.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"hidden_units": list(self.hidden_units),
                       "context_dim": self.context_dim,
                       # State, not a constructor argument: every loader
                       # (`.keras`, SavedModel) rebuilds the layer from its
                       # config before any call, so it must know whether
                       # to create the bias vector.
                       "uses_context": self._uses_context})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureSelectionGate:
        config = dict(config)
        uses_context = config.pop("uses_context", None)
        layer = cls(**config)
        layer._uses_context = uses_context
        return layer
