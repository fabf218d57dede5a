"""Common base of the CTR models: feature embedding in, logits out.

Every model maps a feature dict {"ids": int (b, C), "dense": float (b, N)} to
logits of shape (b, 1). Losses and metrics belong to the caller (Keras
`compile`, or a task / distiller), never to the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tfdsmlp.config import to_dict
from tfdsmlp.features import FeatureSpec
from tfdsmlp.layers import FeatureEmbedding
from tfdsmlp.layers.feature_embedding import L2_SCOPES


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Settings shared by every model.

    Attributes:
      embedding_dim: width of every field embedding (paper and BARS: 10).
      embedding_l2: FuxiCTR `embedding_regularizer`: adds
        (embedding_l2 / 2) * ||W||^2 over whole embedding tables each step.
      embedding_l2_scope: "table" (FuxiCTR, above) or "batch": the L2 term
        covers only the rows each batch looks up, so embedding gradients
        stay sparse (for `train.optimizer: lazy_adam`).
    """

    embedding_dim: int = 10
    embedding_l2: float = 0.0
    embedding_l2_scope: str = "table"

    def __post_init__(self) -> None:
        _check_positive(self, "embedding_dim")
        if self.embedding_l2 < 0:
            raise ValueError("`embedding_l2` should be >= 0. Received: "
                             f"`embedding_l2={self.embedding_l2}`")
        if self.embedding_l2_scope not in L2_SCOPES:
            raise ValueError(
                f"`embedding_l2_scope` should be one of {list(L2_SCOPES)}. "
                f"Received: `embedding_l2_scope={self.embedding_l2_scope!r}`")


def _check_positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value <= 0:
            raise ValueError(f"`{name}` should be positive. "
                             f"Received: `{name}={value}`")


def check_dropout(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` should be in [0, 1). "
                         f"Received: `{name}={value}`")


class CTRModel(tf.keras.Model):
    """Base class: owns the feature embedding and the config echo.

    Subclasses set `config_class`, build their layers in `__init__` and
    implement `call(inputs, training) -> logits (b, 1)`.
    """

    config_class: type[ModelConfig] = ModelConfig

    def __init__(self, vocab_sizes: list[int], num_numeric: int = 0,
                 embedding_dim: int = 10, embedding_l2: float = 0.0,
                 embedding_l2_scope: str = "table", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_sizes = [int(v) for v in vocab_sizes]
        self.num_numeric = int(num_numeric)
        self.embedding_dim = embedding_dim
        self.embedding_l2 = embedding_l2
        self.embedding_l2_scope = embedding_l2_scope
        self.num_fields = len(self.vocab_sizes) + self.num_numeric
        self.embedding = FeatureEmbedding(
            self.vocab_sizes, num_numeric=self.num_numeric,
            embedding_dim=embedding_dim, embedding_l2=embedding_l2,
            l2_scope=embedding_l2_scope, name="embedding")

    @property
    def flat_dim(self) -> int:
        return self.num_fields * self.embedding_dim

    def flat_embedding(self, inputs, training=None):
        emb = self.embedding(inputs, training=training)
        return emb, tf.reshape(emb, [-1, self.flat_dim])

    def hyperparameters(self) -> dict[str, Any]:
        """The model's config-class fields and their current values."""
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self.config_class)}

    def get_config(self) -> dict[str, Any]:
        return {"vocab_sizes": self.vocab_sizes,
                "num_numeric": self.num_numeric,
                "name": self.name,
                **self.hyperparameters()}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        return cls(**config)

    def build_from_config(self, config: dict[str, Any]) -> None:
        # Keras' default builds on float placeholders, but `ids` must be
        # integers: build by calling the model (`.keras` loading,
        # `deserialize_keras_object`).
        if not self.built:
            self(self.dummy_inputs(), training=False)

    @classmethod
    def from_feature_spec(cls, config: ModelConfig,
                          spec: FeatureSpec, **kwargs: Any) -> "CTRModel":
        """Builds the model for a dataset from its typed config."""
        if not isinstance(config, cls.config_class):
            raise TypeError(f"{cls.__name__} needs a "
                            f"{cls.config_class.__name__}. Received: "
                            f"{type(config).__name__}")
        return cls(vocab_sizes=spec.vocab_sizes,
                   num_numeric=spec.num_numeric,
                   **cls.resolve_config(config, spec), **kwargs)

    @classmethod
    def resolve_config(cls, config: ModelConfig,
                       spec: FeatureSpec) -> dict[str, Any]:
        """Constructor keyword arguments for `config` (override to map
        field names to indices and similar)."""
        return _plain(to_dict(config))

    def dummy_inputs(self, batch_size: int = 2) -> dict[str, tf.Tensor]:
        """All-padding inputs, for building the model's weights."""
        x = {"ids": tf.zeros([batch_size, len(self.vocab_sizes)], tf.int64)}
        if self.num_numeric:
            x["dense"] = tf.zeros([batch_size, self.num_numeric])
        return x


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
