"""Field embeddings for categorical ids and numeric values (FuxiCTR style)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import tfdsmlp  # noqa: F401  (makes `tf.keras` Keras 2 before TF loads)
from tfdsmlp.layers import _validation as v

import numpy as np
import tensorflow as tf

# Where the embedding L2 term applies (see `FeatureEmbedding`).
L2_SCOPES = ("table", "batch", "lazy")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FeatureEmbedding(tf.keras.layers.Layer):
    """Embeds every field of an example into a `(num_fields, dim)` tensor.

    Categorical field `f` with id `i` maps to row `i` of its own table `E_f`
    (`vocab_sizes[f]` rows); id 0 is padding and maps to the zero vector.
    Numeric field `j` with value `x_j` maps to `x_j * v_j` (learned `v_j`, no
    bias). Categorical fields come first, then numeric ones:

    ```
    out[b] = [E_1[ids[b,1]], ..., E_F[ids[b,F]], x[b,1] v_1, ..., x[b,N] v_N]
    ```

    All tables live in ONE `(sum(vocab_sizes), embedding_dim)` variable; field
    `f` owns the rows `[offset_f, offset_f + vocab_sizes[f])`, so a batch is
    one `tf.gather` (and its gradient one `IndexedSlices` over the gathered
    rows). Padding rows are masked in the output, so they receive no gradient
    from the data. Ids must lie in `[0, vocab_sizes[f])`: an id beyond its
    field's vocabulary would read the next field's rows.

    With `embedding_l2 > 0` the layer adds FuxiCTR's embedding regulariser
    `(embedding_l2 / 2) * sum(W ** 2)` over the whole table and over the
    numeric vectors to `layer.losses` (a Keras `l2(embedding_l2 / 2)`).
    Its gradient `embedding_l2 * W` is dense: every row moves every step.
    With `l2_scope="batch"` the term covers only the rows this batch looked
    up, each once, `(embedding_l2 / 2) * sum_{r in unique(batch ids)}
    ||E[r]||^2` (+ the numeric vectors), so the table's gradient stays an
    `IndexedSlices` over those rows (see `LazyAdam`). `l2_scope="lazy"`
    adds the same batch-row term here; `LazyAdamTableL2` (the optimizer
    `lazy_adam` picks for it) or `CatchUpAdam` (`catch_up_adam`) applies
    the term's pull to the rows absent from the batch, so that the whole
    table is regularised as with `"table"` under Adam at LazyAdam's cost.

    Weights are drawn from `N(0, initializer_stddev ** 2)` (FuxiCTR: 1e-4).

    Args:
        vocab_sizes: list of int. Rows of each categorical field's table,
            padding id 0 included; each must be >= 2.
        num_numeric: int. Number of numeric fields. Defaults to `0`.
        embedding_dim: int. Size of each field embedding. Defaults to `10`.
        embedding_l2: float. FuxiCTR's `embedding_regularizer`. Defaults to
            `0.0`.
        initializer_stddev: float. Standard deviation of the normal
            initialiser. Defaults to `1e-4`.
        l2_scope: str. `"table"` (FuxiCTR: whole table each step),
            `"batch"` (the rows looked up by the batch) or `"lazy"` (the
            batch's rows here, the others by `LazyAdamTableL2` or
            `CatchUpAdam`). Defaults to `"table"`.
        **kwargs: Standard `tf.keras.layers.Layer` arguments.

    Call arguments:
        inputs: dict with `"ids"`, integer `(batch, len(vocab_sizes))`, and,
            when `num_numeric > 0`, `"dense"`, float `(batch, num_numeric)`.
            Other keys are ignored. A bare ids tensor is accepted when
            `num_numeric == 0`. Non-integer ids are cast to int64, as Keras'
            `Embedding` does.

    Returns:
        float `(batch, len(vocab_sizes) + num_numeric, embedding_dim)`.

    Example:

    ```python
    layer = FeatureEmbedding([100, 20], num_numeric=1, embedding_dim=4)
    emb = layer({"ids": tf.constant([[3, 0]]), "dense": tf.constant([[0.5]])})
    emb.shape  # (1, 3, 4); emb[0, 1] is zero (padding id)
    ```
    """

    def __init__(self, vocab_sizes: list[int], num_numeric: int = 0,
                 embedding_dim: int = 10, embedding_l2: float = 0.0,
                 initializer_stddev: float = 1e-4, l2_scope: str = "table",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_sizes = v.check_int_list("vocab_sizes", vocab_sizes,
                                            minimum=2)
        self.num_numeric = v.check_int("num_numeric", num_numeric, 0)
        self.embedding_dim = v.check_int("embedding_dim", embedding_dim, 1)
        self.embedding_l2 = v.check_non_negative("embedding_l2", embedding_l2)
        self.initializer_stddev = v.check_positive("initializer_stddev",
                                                   initializer_stddev)
        self.l2_scope = v.check_choice("l2_scope", l2_scope, L2_SCOPES)
        if not self.vocab_sizes and not self.num_numeric:
            raise ValueError(
                "`FeatureEmbedding` needs at least one field. Received: "
                f"`vocab_sizes={vocab_sizes!r}`, `num_numeric={num_numeric!r}`")
        self._offsets = np.cumsum([0] + self.vocab_sizes[:-1]).astype(np.int64)
        self.embeddings: tf.Variable | None = None
        self.numeric_embeddings: tf.Variable | None = None

    @property
    def num_fields(self) -> int:
        """Number of output fields: categorical plus numeric."""
        return len(self.vocab_sizes) + self.num_numeric

    def _weight(self, name: str, rows: int,
                whole_table: bool = True) -> tf.Variable:
        regularizer = (tf.keras.regularizers.L2(self.embedding_l2 / 2.0)
                       if self.embedding_l2 > 0 and whole_table else None)
        return self.add_weight(
            name=name, shape=(rows, self.embedding_dim),
            initializer=tf.keras.initializers.RandomNormal(
                stddev=self.initializer_stddev),
            regularizer=regularizer, trainable=True)

    def build(self, input_shape: Any) -> None:
        if self.vocab_sizes:
            self.embeddings = self._weight(
                "embeddings", sum(self.vocab_sizes),
                whole_table=self.l2_scope == "table")
        if self.num_numeric:
            self.numeric_embeddings = self._weight("numeric_embeddings",
                                                   self.num_numeric)
        super().build(input_shape)

    def _unpack(self, inputs: Any) -> tuple[tf.Tensor | None, tf.Tensor | None]:
        if isinstance(inputs, Mapping):
            if self.vocab_sizes and "ids" not in inputs:
                raise ValueError(
                    "`FeatureEmbedding` expects a dict with an 'ids' entry. "
                    f"Received keys: {sorted(inputs)}")
            ids, dense = inputs.get("ids"), inputs.get("dense")
        else:
            ids, dense = inputs, None
        if self.vocab_sizes:
            ids = tf.convert_to_tensor(ids)
            expected = len(self.vocab_sizes)
            if ids.shape.rank != 2 or ids.shape[-1] not in (None, expected):
                raise ValueError(
                    f"`ids` should have shape (batch, {expected}), one column "
                    f"per entry of `vocab_sizes`. Received: `ids` of shape "
                    f"{tuple(ids.shape)}")
        if self.num_numeric:
            if dense is None:
                raise ValueError(
                    f"`FeatureEmbedding` was built with `num_numeric="
                    f"{self.num_numeric}` but the inputs have no 'dense' entry")
            dense = tf.convert_to_tensor(dense)
            if dense.shape.rank != 2 or dense.shape[-1] not in (
                    None, self.num_numeric):
                raise ValueError(
                    f"`dense` should have shape (batch, {self.num_numeric}). "
                    f"Received: `dense` of shape {tuple(dense.shape)}")
        elif dense is not None and tf.convert_to_tensor(dense).shape[-1]:
            raise ValueError(
                "Received a non-empty 'dense' input but `num_numeric=0`")
        return ids, dense

    def call(self, inputs: Any) -> tf.Tensor:
        ids, dense = self._unpack(inputs)
        parts = []
        if self.vocab_sizes:
            if ids.dtype not in (tf.int32, tf.int64):
                # Like Keras' `Embedding`; Keras builds subclassed models
                # (`Model.build(shape)`, SavedModel loading) on float
                # placeholders.
                ids = tf.cast(ids, tf.int64)
            offsets = tf.constant(self._offsets, dtype=ids.dtype)
            rows = ids + offsets
            emb = _lookup(self, rows)
            if self.l2_scope != "table" and self.embedding_l2 > 0:
                touched = _lookup(self, tf.unique(tf.reshape(rows, [-1]))[0])
                self.add_loss(self.embedding_l2 / 2.0
                              * tf.reduce_sum(tf.square(touched)))
            mask = tf.cast(tf.not_equal(ids, 0), emb.dtype)
            parts.append(emb * mask[..., tf.newaxis])
        if self.num_numeric:
            x = tf.cast(dense, self.compute_dtype)[..., tf.newaxis]
            parts.append(x * self.numeric_embeddings)
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "vocab_sizes": list(self.vocab_sizes),
            "num_numeric": self.num_numeric,
            "embedding_dim": self.embedding_dim,
            "embedding_l2": self.embedding_l2,
            "initializer_stddev": self.initializer_stddev,
            "l2_scope": self.l2_scope,
        })
        return config


def _lookup(layer: FeatureEmbedding, rows: tf.Tensor) -> tf.Tensor:
    """layer.embeddings[rows]. A row-sharded table (`ShardedVariable`, made by
    ParameterServerStrategy's `variable_partitioner`) goes through
    `tf.nn.embedding_lookup`, which fetches only the rows from each shard
    (`tf.gather` on it takes only 1-D indices) when traced; run eagerly (a
    model's first call on the coordinator), it read every shard whole
    into the calling process (+750 MB for a 5M x 16 table on 2 servers,
    `tfdsmlp.experiments.ps_scale`), so eager calls go through a function
    traced once per layer, the table captured."""
    table = layer.embeddings
    if isinstance(table, tf.__internal__.distribute.ShardedVariable):
        if tf.executing_eagerly():
            fn = _EAGER_LOOKUPS.get(layer)
            if fn is None:
                ref = weakref.ref(layer)
                fn = tf.function(
                    lambda r: tf.nn.embedding_lookup(ref().embeddings, r),
                    reduce_retracing=True)
                _EAGER_LOOKUPS[layer] = fn
            return fn(rows)
        return tf.nn.embedding_lookup(table, rows)
    return tf.gather(table, rows)


_EAGER_LOOKUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
