"""Cross network: DCNv2 (TFRS `Cross`) or GDCN gated layers."""

from __future__ import annotations

from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v
from tfdsmlp.layers.gated_cross import GatedCrossNetwork

import tensorflow as tf
import tensorflow_recommenders as tfrs

CROSS_TYPES = ("dcnv2", "gated")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class CrossNetwork(tf.keras.layers.Layer):
    """Stack of `num_layers` explicit feature-cross layers over `x_0`.

    `cross_type="dcnv2"` composes TFRS `tfrs.layers.dcn.Cross` layers
    (full-rank, Glorot-normal kernel, zero bias):

    ```
    x_{l+1} = x_0 * (W_l x_l + b_l) + x_l
    ```

    `cross_type="gated"` delegates to `GatedCrossNetwork` (GDCN):

    ```
    x_{l+1} = x_0 * (W_l x_l + b_l) * sigmoid(Wg_l x_l) + x_l
    ```

    Args:
        num_layers: int. Number of cross layers, >= 1.
        cross_type: str. One of `"dcnv2"`, `"gated"`. Defaults to `"dcnv2"`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: float `(batch, d)`.

    Returns:
        float `(batch, d)`.

    Example:

    ```python
    cross = CrossNetwork(num_layers=4)  # DCNv2
    out = cross(tf.random.normal([8, 390]))  # (8, 390)
    ```

    References:
        - [Wang et al., 2021](https://arxiv.org/abs/2008.13535), "DCN V2".
    """

    def __init__(self, num_layers: int, cross_type: str = "dcnv2",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_layers = v.check_int("num_layers", num_layers, 1)
        if cross_type not in CROSS_TYPES:
            raise ValueError(
                f"`cross_type` should be one of {list(CROSS_TYPES)}. "
                f"Received: `cross_type={cross_type!r}`")
        self.cross_type = cross_type
        self.input_spec = tf.keras.layers.InputSpec(ndim=2)

    def build(self, input_shape: tf.TensorShape) -> None:
        if self.cross_type == "gated":
            self.cross_layers = [
                GatedCrossNetwork(self.num_layers, name="gated_cross")]
        else:
            self.cross_layers = [
                tfrs.layers.dcn.Cross(kernel_initializer="glorot_normal",
                                      bias_initializer="zeros",
                                      name=f"cross_{i}")
                for i in range(self.num_layers)]
        for layer in self.cross_layers:  # create every weight now
            layer.build(input_shape)
            dense = getattr(layer, "_dense", None)  # TFRS `Cross` builds it
            if dense is not None:                   # lazily otherwise
                dense.build(input_shape)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        if self.cross_type == "gated":
            return self.cross_layers[0](inputs)
        x = inputs
        for layer in self.cross_layers:
            x = layer(inputs, x)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_layers": self.num_layers,
                       "cross_type": self.cross_type})
        return config
