"""Common base of the CTR models: feature embedding in, logits out.

Every model maps a feature dict {"ids": int (b, C), "dense": float (b, N)} to
logits of shape (b, 1). Losses and metrics belong to the caller (Keras
`compile`, or a task / distiller), never to the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2: loaded as the parent package)
from tfdsmlp.config import from_dict, to_dict
from tfdsmlp.features import FeatureSpec
from tfdsmlp.layers import FeatureEmbedding
from tfdsmlp.models.config import MLPConfig, ModelConfig

import tensorflow as tf

# The configs are re-exported: they lived here before models/config.py.
__all__ = ["CTRModel", "MLPConfig", "ModelConfig"]


class CTRModel(tf.keras.Model):
    """Base class: owns the feature embedding and the config echo.

    A model takes its frozen config dataclass (`config_class`; None means
    its defaults), keeps it as `self.config`, and shows each config field
    as a read-only attribute (`model.embedding_l2`, `model.use_parallel`).
    `get_config` returns the fields plus `vocab_sizes`, `num_numeric` and
    `name`; `from_config` rebuilds the same model.

    Subclasses set `config_class`, build their layers in `__init__` from
    `self.config` and implement `call(inputs, training) -> logits (b, 1)`.

    Args:
      vocab_sizes: list of int. Ids per categorical field (with the
        reserved padding and OOV ids).
      num_numeric: int. Numeric fields. Defaults to 0.
      config: the model's `config_class` instance, or None for its
        defaults.
      **kwargs: standard `tf.keras.Model` arguments (`name`).
    """

    config_class: type[ModelConfig] = ModelConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _expose_config_fields(cls)

    def __init__(self, vocab_sizes: Sequence[int], num_numeric: int = 0,
                 config: ModelConfig | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if config is None:
            config = self.config_class()
        self.config = self.check_config_type(config)
        self.vocab_sizes = [int(v) for v in vocab_sizes]
        self.num_numeric = int(num_numeric)
        self.num_fields = len(self.vocab_sizes) + self.num_numeric
        self.embedding = FeatureEmbedding(
            self.vocab_sizes, num_numeric=self.num_numeric,
            embedding_dim=config.embedding_dim,
            embedding_l2=config.embedding_l2,
            l2_scope=config.embedding_l2_scope, name="embedding")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Logits in float32 whatever the compute dtype: under the
        mixed_bfloat16 policy (`tfdsmlp.training.precision`) the body runs
        in bfloat16, the losses and metrics on float32 logits."""
        out = super().__call__(*args, **kwargs)
        if isinstance(out, tf.Tensor) and out.dtype != tf.float32:
            out = tf.cast(out, tf.float32)
        return out

    @property
    def flat_dim(self) -> int:
        return self.num_fields * self.embedding_dim

    def flat_embedding(self, inputs, training=None):
        emb = self.embedding(inputs, training=training)
        return emb, tf.reshape(emb, [-1, self.flat_dim])

    def get_config(self) -> dict[str, Any]:
        return {"vocab_sizes": list(self.vocab_sizes),
                "num_numeric": self.num_numeric,
                "name": self.name,
                **to_dict(self.config)}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        fields = dict(config)
        vocab_sizes = fields.pop("vocab_sizes")
        num_numeric = fields.pop("num_numeric")
        name = fields.pop("name", None)
        return cls(vocab_sizes, num_numeric,
                   config=from_dict(cls.config_class, fields,
                                    where=cls.__name__),
                   name=name)

    def build_from_config(self, config: dict[str, Any]) -> None:
        # Keras' default builds on float placeholders, but `ids` must be
        # integers: build by calling the model (`.keras` loading,
        # `deserialize_keras_object`).
        if not self.built:
            self(self.dummy_inputs(), training=False)

    @classmethod
    def from_feature_spec(cls, config: ModelConfig,
                          spec: FeatureSpec, **kwargs: Any) -> CTRModel:
        """Builds the model for a dataset from its typed config."""
        config = cls.resolve_config(cls.check_config_type(config), spec)
        return cls(spec.vocab_sizes, spec.num_numeric, config=config,
                   **kwargs)

    @classmethod
    def check_config_type(cls, config: ModelConfig) -> ModelConfig:
        """`config`, if it is a `config_class` (else a TypeError)."""
        if not isinstance(config, cls.config_class):
            raise TypeError(f"{cls.__name__} needs a "
                            f"{cls.config_class.__name__}. Received: "
                            f"{type(config).__name__}")
        return config

    @classmethod
    def resolve_config(cls, config: ModelConfig,
                       spec: FeatureSpec) -> ModelConfig:
        """`config` for the dataset `spec` (override to map field names to
        indices and similar)."""
        return config

    def dummy_inputs(self, batch_size: int = 2) -> dict[str, tf.Tensor]:
        """All-padding inputs, for building the model's weights."""
        x = {"ids": tf.zeros([batch_size, len(self.vocab_sizes)], tf.int64)}
        if self.num_numeric:
            x["dense"] = tf.zeros([batch_size, self.num_numeric])
        return x


class _ConfigField(property):
    """A model attribute that reads config field `name` (read-only)."""

    def __init__(self, name: str) -> None:
        super().__init__(lambda model: getattr(model.config, name),
                         doc=f"`config.{name}` (read-only).")


def _expose_config_fields(cls: type[CTRModel]) -> None:
    """Makes every field of `cls.config_class` a read-only attribute of
    `cls`, read from `self.config` (the one place it is stored)."""
    for field in dataclasses.fields(cls.config_class):
        current = getattr(cls, field.name, None)
        if current is not None and not isinstance(current, _ConfigField):
            raise TypeError(f"{cls.__name__}.{field.name} hides the config "
                            f"field `{field.name}`.")
        setattr(cls, field.name, _ConfigField(field.name))


_expose_config_fields(CTRModel)
