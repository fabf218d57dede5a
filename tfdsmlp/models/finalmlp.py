"""FinalMLP: two MLP streams over gated inputs, fused bilinearly."""

from __future__ import annotations

import dataclasses

import tfdsmlp  # noqa: F401
from tfdsmlp.features import FeatureSpec
from tfdsmlp.layers import (
    BilinearFusion,
    FeatureEmbedding,
    FeatureSelectionGate,
)
from tfdsmlp.models.base import CTRModel
from tfdsmlp.models.config import MLPConfig, ModelConfig, check_units

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class FinalMLPConfig(ModelConfig):
    """FinalMLP settings (BARS Frappe_x1: mlp1 [400] dropout 0.4, mlp2 [100]
    dropout 0.4, BN, fs hidden [400], fs1 ctx user, fs2 ctx item, 5 heads).

    Attributes (besides `ModelConfig`'s):
      mlp1_hidden_units, mlp1_dropout, mlp1_batch_norm: stream 1's MLP
        (`MLPConfig` fields; `mlp1` gives its `MLPConfig`). Default to
        (400,), 0.4 and `MLPConfig`'s batch norm.
      mlp2_hidden_units, mlp2_dropout, mlp2_batch_norm: stream 2's
        (`mlp2`). Default to (100,), 0.4 and `MLPConfig`'s batch norm.
      activation: str. Hidden activation of both streams. Defaults to
        `MLPConfig`'s.
      use_fs: bool. Feature-selection gates. Defaults to True.
      fs_hidden_units: tuple of int. Hidden widths of each gate's MLP.
        Defaults to (400,).
      fs1_context, fs2_context: categorical fields whose own context
        embeddings drive each stream's gate, by name (`from_feature_spec`
        maps names to indices) or by index; empty means a learned bias
        vector. Default to ().
      num_heads: int. Heads of the bilinear fusion; should divide both
        streams' last widths. Defaults to 5.
    """

    mlp1_hidden_units: tuple[int, ...] = (400,)
    mlp1_dropout: float = 0.4
    mlp1_batch_norm: bool = MLPConfig.batch_norm
    mlp2_hidden_units: tuple[int, ...] = (100,)
    mlp2_dropout: float = 0.4
    mlp2_batch_norm: bool = MLPConfig.batch_norm
    activation: str = MLPConfig.activation
    use_fs: bool = True
    fs_hidden_units: tuple[int, ...] = (400,)
    fs1_context: tuple[str | int, ...] = ()
    fs2_context: tuple[str | int, ...] = ()
    num_heads: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_units("fs_hidden_units", self.fs_hidden_units)
        for name, mlp in (("mlp1_hidden_units", self.mlp1),
                          ("mlp2_hidden_units", self.mlp2)):
            units = mlp.hidden_units
            if not units or units[-1] % self.num_heads:
                raise ValueError(
                    f"`{name}` should be non-empty with a last width "
                    f"divisible by `num_heads={self.num_heads}`. "
                    f"Received: `{name}={units}`")

    @property
    def mlp1(self) -> MLPConfig:
        return MLPConfig.from_fields(self, "mlp1_", shared=["activation"])

    @property
    def mlp2(self) -> MLPConfig:
        return MLPConfig.from_fields(self, "mlp2_", shared=["activation"])


@tf.keras.utils.register_keras_serializable(package="tfdsmlp")
class FinalMLP(CTRModel):
    """FinalMLP (Mao et al., AAAI 2023).

    x = concat_f e_f; g_i = 2 * sigmoid(MLP_fs_i(ctx_i)); x_i = x * g_i;
    h_1 = MLP_1(x_1), h_2 = MLP_2(x_2);
    logit = w_1.h_1 + w_2.h_2 + sum_k h_1k^T W_k h_2k + b.

    Args:
      vocab_sizes: list of int. Ids per categorical field.
      num_numeric: int. Numeric fields. Defaults to 0.
      config: `FinalMLPConfig`, or None for its defaults. Its
        `fs1_context` / `fs2_context` should be categorical field INDICES
        here (`from_feature_spec` and `build_model` map names to indices).
    """

    config_class = FinalMLPConfig

    def __init__(self, vocab_sizes, num_numeric=0, config=None, **kwargs):
        super().__init__(vocab_sizes, num_numeric, config, **kwargs)
        cfg = self.config
        for name in ("fs1_context", "fs2_context"):
            ctx = getattr(cfg, name)
            bad = [i for i in ctx if isinstance(i, str)
                   or not 0 <= i < len(self.vocab_sizes)]
            if bad:
                raise ValueError(
                    f"`{name}` should hold categorical field indices in "
                    f"[0, {len(self.vocab_sizes)}) (`from_feature_spec` "
                    f"maps field names to indices). Received: `{name}="
                    f"{ctx}`")
        self.mlp1 = cfg.mlp1.block("mlp1")
        self.mlp2 = cfg.mlp2.block("mlp2")
        self.fusion = BilinearFusion(num_heads=cfg.num_heads, output_dim=1,
                                     name="fusion")
        if cfg.use_fs:
            self.gate1, self.ctx1 = self._gate("fs1", cfg.fs1_context)
            self.gate2, self.ctx2 = self._gate("fs2", cfg.fs2_context)

    def _gate(self, prefix, context):
        # Tell the gate now whether it gets a context: Keras' SavedModel
        # loader builds it with `build(shape)`, not a call, and would
        # otherwise add a bias vector missing from the checkpoint.
        gate = FeatureSelectionGate.from_config({
            "hidden_units": list(self.fs_hidden_units),
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
    def resolve_config(cls, config, spec: FeatureSpec) -> FinalMLPConfig:
        """`config` with its context field names mapped to the indices of
        `spec`'s categorical fields."""
        names = [f.name for f in spec.categorical]
        indices = {}
        for key in ("fs1_context", "fs2_context"):
            context = getattr(config, key)
            unknown = [n for n in context
                       if isinstance(n, str) and n not in names]
            if unknown:
                raise ValueError(
                    f"`{key}` names unknown categorical field(s) {unknown}. "
                    f"Categorical fields: {names}")
            indices[key] = tuple(names.index(n) if isinstance(n, str)
                                 else n for n in context)
        return dataclasses.replace(config, **indices)
