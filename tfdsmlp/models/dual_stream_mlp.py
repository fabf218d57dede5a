"""DS-MLP: a main MLP (the distilled student) and a parallel MLP, fused."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FeatureEmbedding
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DualStreamMLPConfig(ModelConfig):
    """DS-MLP settings.

    Attributes (besides `ModelConfig`'s):
      main_hidden_units: main (student) MLP, wider than the teacher's MLP
        (paper: 3 layers of 600 / 900 / 1000; public code 1024). Defaults
        to (600, 600, 600). `main_mlp` gives the stream's `MLPConfig`.
      parallel_hidden_units: parallel MLP (paper: the teacher's [400]*3).
        Defaults to `MLPConfig`'s. `parallel_mlp` gives its `MLPConfig`.
      activation, dropout, batch_norm: hidden-layer settings of both MLPs
        (`MLPConfig`'s fields and defaults); batch norm on the hidden
        layers is the paper's hidden-state alignment (the public code
        keeps it on in both stages).
      use_main / use_parallel: ablation switches (paper Table 6); at least
        one should be true. Default to True.
    """

    main_hidden_units: tuple[int, ...] = (600, 600, 600)
    parallel_hidden_units: tuple[int, ...] = MLPConfig.hidden_units
    activation: str = MLPConfig.activation
    dropout: float = MLPConfig.dropout
    batch_norm: bool = MLPConfig.batch_norm
    use_main: bool = True
    use_parallel: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _ = self.main_mlp, self.parallel_mlp  # MLPConfig's checks
        if not (self.use_main or self.use_parallel):
            raise ValueError("At least one of `use_main` / `use_parallel` "
                             "should be true. Received: both false")

    @property
    def main_mlp(self) -> MLPConfig:
        return MLPConfig.from_fields(self, "main_", shared=_SHARED)

    @property
    def parallel_mlp(self) -> MLPConfig:
        return MLPConfig.from_fields(self, "parallel_", shared=_SHARED)


_SHARED = ("activation", "dropout", "batch_norm")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DualStreamMLP(CTRModel):
    """z_M = MLP_M(E_M(x)), z_P = MLP_P(E_P(x)); logit = 0.5 * (z_M + z_P).

    Each stream has its own embedding table (`embedding` for the main MLP,
    `parallel_embedding` for the parallel MLP). With one stream disabled the
    logit is that stream's logit. `stream_logits` exposes both logits for
    the distillation and alignment losses.

    Args:
      vocab_sizes: list of int. Ids per categorical field.
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `DualStreamMLPConfig`, or None for its defaults.
    """

    config_class = DualStreamMLPConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        cfg = self.config
        self.main_mlp = (cfg.main_mlp.block("main_mlp", output_dim=1)
                         if cfg.use_main else None)
        self.parallel_embedding = None
        self.parallel_mlp = None
        if cfg.use_parallel:
            self.parallel_embedding = FeatureEmbedding(
                self.vocab_sizes, num_numeric=self.num_numeric,
                embedding_dim=cfg.embedding_dim,
                embedding_l2=cfg.embedding_l2,
                l2_scope=cfg.embedding_l2_scope, name="parallel_embedding")
            self.parallel_mlp = cfg.parallel_mlp.block("parallel_mlp",
                                                       output_dim=1)

    def stream_logits(self, inputs, training=None,
                      streams=("main", "parallel")) -> dict[str, tf.Tensor]:
        """{"main": z_M, "parallel": z_P} for the enabled streams among
        `streams` (computing only those), float32 whatever the compute
        dtype."""
        out = {}
        if self.use_main and "main" in streams:
            _, flat = self.flat_embedding(inputs, training=training)
            out["main"] = self.main_mlp(flat, training=training)
        if self.use_parallel and "parallel" in streams:
            emb = self.parallel_embedding(inputs, training=training)
            flat = tf.reshape(emb, [-1, self.flat_dim])
            out["parallel"] = self.parallel_mlp(flat, training=training)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    @staticmethod
    def fuse(logits: dict[str, tf.Tensor]) -> tf.Tensor:
        """0.5 * (z_M + z_P), or the single enabled stream's logit."""
        if len(logits) == 2:
            return 0.5 * (logits["main"] + logits["parallel"])
        return next(iter(logits.values()))

    def call(self, inputs, training=None):
        return self.fuse(self.stream_logits(inputs, training=training))

    def stream_model(self, stream: str) -> DualStreamMLP:
        """A new, built DS-MLP with only `stream` ("main" or "parallel")
        enabled, holding a copy of that stream's weights: its logit is this
        model's z_M (or z_P). Used to export or serve one stream alone (a
        run selects it when it scores best on validation); built under the
        current Keras dtype policy."""
        if stream not in ("main", "parallel"):
            raise ValueError('`stream` should be "main" or "parallel". '
                             f"Received: {stream!r}")
        if not getattr(self, f"use_{stream}"):
            raise ValueError(f"This DS-MLP has no {stream} stream "
                             f"(use_{stream}=False).")
        cfg = dataclasses.replace(self.config, use_main=stream == "main",
                                  use_parallel=stream == "parallel")
        model = DualStreamMLP(self.vocab_sizes, self.num_numeric, cfg,
                              name=f"{self.name}_{stream}")
        model(model.dummy_inputs(), training=False)
        kept = (("embedding", "main_mlp") if stream == "main" else
                ("parallel_embedding", "parallel_mlp"))
        for attr in kept:
            getattr(model, attr).set_weights(getattr(self, attr).get_weights())
        return model

    def stream_variables(self, stream: str) -> list[tf.Variable]:
        """Trainable variables of the "main" or "parallel" stream."""
        if stream == "main" and self.use_main:
            return (self.embedding.trainable_variables
                    + self.main_mlp.trainable_variables)
        if stream == "parallel" and self.use_parallel:
            return (self.parallel_embedding.trainable_variables
                    + self.parallel_mlp.trainable_variables)
        return []
