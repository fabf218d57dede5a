"""FinalMLP: two MLP streams over gated inputs, fused bilinearly."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.features import FeatureSpec
from tfdsmlp.layers import (BilinearFusion, FeatureEmbedding,
                            FeatureSelectionGate, MLPBlock)
from tfdsmlp.models.base import CTRModel, ModelConfig, check_dropout


@dataclasses.dataclass(frozen=True)
class FinalMLPConfig(ModelConfig):
    """FinalMLP settings (BARS Frappe_x1: mlp1 [400] dropout 0.4, mlp2 [100]
    dropout 0.4, BN, fs hidden [400], fs1 ctx user, fs2 ctx item, 5 heads).

    `fs1_context` / `fs2_context` name categorical fields whose own context
    embeddings drive each stream's feature-selection gate; empty means a
    learned bias vector.
    """

    mlp1_hidden_units: tuple[int, ...] = (400,)
    mlp1_dropout: float = 0.4
    mlp1_batch_norm: bool = True
    mlp2_hidden_units: tuple[int, ...] = (100,)
    mlp2_dropout: float = 0.4
    mlp2_batch_norm: bool = True
    activation: str = "relu"
    use_fs: bool = True
    fs_hidden_units: tuple[int, ...] = (400,)
    fs1_context: tuple[str, ...] = ()
    fs2_context: tuple[str, ...] = ()
    num_heads: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dropout("mlp1_dropout", self.mlp1_dropout)
        check_dropout("mlp2_dropout", self.mlp2_dropout)
        for name in ("mlp1_hidden_units", "mlp2_hidden_units"):
            units = getattr(self, name)
            if not units or units[-1] % self.num_heads:
                raise ValueError(
                    f"`{name}` should be non-empty with a last width "
                    f"divisible by `num_heads={self.num_heads}`. "
                    f"Received: `{name}={units}`")


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FinalMLP(CTRModel):
    """FinalMLP (Mao et al., AAAI 2023).

    x = concat_f e_f; g_i = 2 * sigmoid(MLP_fs_i(ctx_i)); x_i = x * g_i;
    h_1 = MLP_1(x_1), h_2 = MLP_2(x_2);
    logit = w_1.h_1 + w_2.h_2 + sum_k h_1k^T W_k h_2k + b.

    Args: vocab_sizes, num_numeric, the `FinalMLPConfig` fields, where
    `fs1_context` / `fs2_context` are categorical field INDICES here
    (`from_feature_spec` maps names to indices).
    """

    config_class = FinalMLPConfig

    def __init__(self, vocab_sizes, num_numeric=0, embedding_dim=10,
                 embedding_l2=0.0, mlp1_hidden_units=(400,), mlp1_dropout=0.4,
                 mlp1_batch_norm=True, mlp2_hidden_units=(100,),
                 mlp2_dropout=0.4, mlp2_batch_norm=True, activation="relu",
                 use_fs=True, fs_hidden_units=(400,), fs1_context=(),
                 fs2_context=(), num_heads=5, **kwargs):
        super().__init__(vocab_sizes, num_numeric, embedding_dim,
                         embedding_l2, **kwargs)
        self.mlp1_hidden_units = list(mlp1_hidden_units)
        self.mlp1_dropout = mlp1_dropout
        self.mlp1_batch_norm = mlp1_batch_norm
        self.mlp2_hidden_units = list(mlp2_hidden_units)
        self.mlp2_dropout = mlp2_dropout
        self.mlp2_batch_norm = mlp2_batch_norm
        self.activation = activation
        self.use_fs = use_fs
        self.fs_hidden_units = list(fs_hidden_units)
        self.fs1_context = [int(i) for i in fs1_context]
        self.fs2_context = [int(i) for i in fs2_context]
        self.num_heads = num_heads
        for name, ctx in (("fs1_context", self.fs1_context),
                          ("fs2_context", self.fs2_context)):
            bad = [i for i in ctx if not 0 <= i < len(self.vocab_sizes)]
            if bad:
                raise ValueError(
                    f"`{name}` should hold categorical field indices in "
                    f"[0, {len(self.vocab_sizes)}). Received: {ctx}")
        self.mlp1 = MLPBlock(self.mlp1_hidden_units, activation=activation,
                             dropout=mlp1_dropout,
                             batch_norm=mlp1_batch_norm, name="mlp1")
        self.mlp2 = MLPBlock(self.mlp2_hidden_units, activation=activation,
                             dropout=mlp2_dropout,
                             batch_norm=mlp2_batch_norm, name="mlp2")
        self.fusion = BilinearFusion(num_heads=num_heads, output_dim=1,
                                     name="fusion")
        if use_fs:
            self.gate1, self.ctx1 = self._gate("fs1", self.fs1_context)
            self.gate2, self.ctx2 = self._gate("fs2", self.fs2_context)

    def _gate(self, prefix, context):
        # Tell the gate now whether it gets a context: Keras' SavedModel
        # loader builds it with `build(shape)`, not a call, and would
        # otherwise add a bias vector missing from the checkpoint.
        gate = FeatureSelectionGate.from_config({
            "hidden_units": self.fs_hidden_units,
            "context_dim": self.embedding_dim, "name": f"{prefix}_gate",
            "uses_context": bool(context)})
        ctx_emb = None
        if context:
            ctx_emb = FeatureEmbedding(
                [self.vocab_sizes[i] for i in context],
                embedding_dim=self.embedding_dim,
                embedding_l2=self.embedding_l2,
                l2_scope=self.embedding_l2_scope, name=f"{prefix}_context")
        return gate, ctx_emb

    def _context(self, inputs, indices, ctx_emb):
        if ctx_emb is None:
            return None
        ids = tf.gather(inputs["ids"], indices, axis=1)
        emb = ctx_emb({"ids": ids})
        return tf.reshape(emb, [-1, len(indices) * self.embedding_dim])

    def call(self, inputs, training=None):
        _, flat = self.flat_embedding(inputs, training=training)
        x1 = x2 = flat
        if self.use_fs:
            x1 = self.gate1(flat, self._context(inputs, self.fs1_context,
                                                self.ctx1))
            x2 = self.gate2(flat, self._context(inputs, self.fs2_context,
                                                self.ctx2))
        h1 = self.mlp1(x1, training=training)
        h2 = self.mlp2(x2, training=training)
        return self.fusion([h1, h2])

    @classmethod
    def resolve_config(cls, config, spec: FeatureSpec):
        kwargs = super().resolve_config(config, spec)
        names = [f.name for f in spec.categorical]
        for key in ("fs1_context", "fs2_context"):
            unknown = [n for n in kwargs[key] if n not in names]
            if unknown:
                raise ValueError(
                    f"`{key}` names unknown categorical field(s) {unknown}. "
                    f"Categorical fields: {names}")
            kwargs[key] = [names.index(n) for n in kwargs[key]]
        return kwargs
