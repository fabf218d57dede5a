"""DS-MLP: a main MLP (the distilled student) and a parallel MLP, fused."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.layers import FeatureEmbedding, MLPBlock
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout


@dataclasses.dataclass(frozen=True)
class DualStreamMLPConfig(ModelConfig):
    """DS-MLP settings.

    Attributes:
      main_hidden_units: main (student) MLP, wider than the teacher's MLP
        (paper: 3 layers of 600 / 900 / 1000; public code 1024).
      parallel_hidden_units: parallel MLP (paper: the teacher's [400]*3).
      dropout, batch_norm, activation: hidden-layer settings of both MLPs;
        batch norm on the hidden layers is the paper's hidden-state
        alignment (the public code keeps it on in both stages).
      use_main / use_parallel: ablation switches (paper Table 6).
    """

    main_hidden_units: tuple[int, ...] = (600, 600, 600)
    parallel_hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.2
    batch_norm: bool = True
    use_main: bool = True
    use_parallel: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("dropout", self.dropout)
        if not (self.use_main or self.use_parallel):
            raise ValueError("At least one of `use_main` / `use_parallel` "
                             "should be true. Received: both false")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class DualStreamMLP(CTRModel):
    """z_M = MLP_M(E_M(x)), z_P = MLP_P(E_P(x)); logit = 0.5 * (z_M + z_P).

    Each stream has its own embedding table (`embedding` for the main MLP,
    `parallel_embedding` for the parallel MLP). With one stream disabled the
    logit is that stream's logit. `stream_logits` exposes both logits for
    the distillation and alignment losses.

    Args: vocab_sizes, num_numeric and the `DualStreamMLPConfig` fields.
    """

    config_class = DualStreamMLPConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, main_hidden_units=(600, 600, 600),
                 parallel_hidden_units=(400, 400, 400), activation="relu",
                 dropout=0.2, batch_norm=True, use_main=True,
                 use_parallel=True, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        if not (use_main or use_parallel):
            raise ValueError("At least one of `use_main` / `use_parallel` "
                             "should be true. Received: both false")
        self.main_hidden_units = list(main_hidden_units)
        self.parallel_hidden_units = list(parallel_hidden_units)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.use_main = use_main
        self.use_parallel = use_parallel
        mlp_args = dict(activation=activation, dropout=dropout,
                        batch_norm=batch_norm, output_dim=1)
        self.main_mlp = (MLPBlock(self.main_hidden_units, name="main_mlp",
                                  **mlp_args) if use_main else None)
        self.parallel_embedding = None
        self.parallel_mlp = None
        if use_parallel:
            self.parallel_embedding = FeatureEmbedding(
                self.vocab_sizes, num_numeric=self.num_numeric,
                embedding_dim=embedding_dim, embedding_l2=embedding_l2,
                l2_scope=self.embedding_l2_scope, name="parallel_embedding")
            self.parallel_mlp = MLPBlock(self.parallel_hidden_units,
                                         name="parallel_mlp", **mlp_args)

    def stream_logits(self, inputs, training=None,
                      streams=("main", "parallel")) -> dict[str, tf.Tensor]:
        """{"main": z_M, "parallel": z_P} for the enabled streams among
        `streams` (computing only those)."""
        out = {}
        if self.use_main and "main" in streams:
            _, flat = self.flat_embedding(inputs, training=training)
            out["main"] = self.main_mlp(flat, training=training)
        if self.use_parallel and "parallel" in streams:
            emb = self.parallel_embedding(inputs, training=training)
            flat = tf.reshape(emb, [-1, self.flat_dim])
            out["parallel"] = self.parallel_mlp(flat, training=training)
        return out

    @staticmethod
    def fuse(logits: dict[str, tf.Tensor]) -> tf.Tensor:
        """0.5 * (z_M + z_P), or the single enabled stream's logit."""
        if len(logits) == 2:
            return 0.5 * (logits["main"] + logits["parallel"])
        return next(iter(logits.values()))

    def call(self, inputs, training=None):
        return self.fuse(self.stream_logits(inputs, training=training))

    def stream_variables(self, stream: str) -> list[tf.Variable]:
        """Trainable variables of the "main" or "parallel" stream."""
        if stream == "main" and self.use_main:
            return (self.embedding.trainable_variables
                    + self.main_mlp.trainable_variables)
        if stream == "parallel" and self.use_parallel:
            return (self.parallel_embedding.trainable_variables
                    + self.parallel_mlp.trainable_variables)
        return []
