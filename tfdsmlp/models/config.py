"""Typed model settings: `ModelConfig` (every model) and `MLPConfig`.

Each setting of a model, its default and its checks are written once, in
the model's frozen config dataclass; the model takes that object
(`DNN(vocab_sizes, config=DNNConfig(...))`) and `get_config` echoes it.

Model params stay flat mappings (presets, YAML, `--set params.dropout=0.3`,
`dataclasses.asdict` in resolved run configs), so the MLP settings are not a
nested section:

- a model with one MLP (DNN, DeepFM, DCNv2, GDCN, xDeepFM, AutoInt+) has a
  config that inherits `MLPConfig`: its `hidden_units`, `activation`,
  `dropout` and `batch_norm` keys, defaults and checks are `MLPConfig`'s
  (a model overrides a default only where its preset differs, e.g.
  DCNv2's dropout 0.4); `config.mlp` is the plain `MLPConfig`;
- a model with several MLPs keeps prefixed keys (FinalMLP `mlp1_dropout`,
  DS-MLP `main_hidden_units`) and builds each stream's `MLPConfig` with
  `MLPConfig.from_fields(config, prefix)`, which runs the same checks and
  names the model's own key in its errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from tfdsmlp.layers import MLPBlock
from tfdsmlp.layers.feature_embedding import L2_SCOPES

MLP_FIELDS = ("hidden_units", "activation", "dropout", "batch_norm")


def check_dropout(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` should be in [0, 1). "
                         f"Received: `{name}={value}`")


def check_units(name: str, units: Iterable[int], empty: bool = True) -> None:
    """Widths should be positive integers (and the list non-empty unless
    `empty`)."""
    units = tuple(units)
    if (not units and not empty) or not all(
            isinstance(u, int) and not isinstance(u, bool) and u > 0
            for u in units):
        kind = "a non-empty list of" if not empty else "a list of"
        raise ValueError(f"`{name}` should be {kind} positive integers. "
                         f"Received: `{name}={units}`")


def _chain_post_init(cls: type, obj: Any) -> None:
    """Runs the next `__post_init__` in `obj`'s MRO after `cls` (configs
    combine `ModelConfig` and `MLPConfig`, each with its own checks)."""
    parent = getattr(super(cls, obj), "__post_init__", None)
    if parent is not None:
        parent()


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Settings shared by every model.

    Attributes:
      embedding_dim: int. Width of every field embedding (paper and BARS:
        10). Defaults to 10.
      embedding_l2: float >= 0. FuxiCTR `embedding_regularizer`: adds
        (embedding_l2 / 2) * ||W||^2 over whole embedding tables each step.
        Defaults to 0.
      embedding_l2_scope: str. "table" (FuxiCTR, above), "batch": the L2
        term covers only the rows each batch looks up, so embedding
        gradients stay sparse (for `train.optimizer: lazy_adam` or
        `catch_up_adam`), or "lazy": the batch's rows in the loss and the
        other rows' pull applied lazily by `train.optimizer: lazy_adam`
        (`LazyAdamTableL2`) or `catch_up_adam` (`CatchUpAdam`): the whole
        table regularised as under Adam, at LazyAdam's cost. Defaults to
        "table".
    """

    embedding_dim: int = 10
    embedding_l2: float = 0.0
    embedding_l2_scope: str = "table"

    def __post_init__(self) -> None:
        if self.embedding_dim <= 0:
            raise ValueError("`embedding_dim` should be positive. Received: "
                             f"`embedding_dim={self.embedding_dim}`")
        if self.embedding_l2 < 0:
            raise ValueError("`embedding_l2` should be >= 0. Received: "
                             f"`embedding_l2={self.embedding_l2}`")
        if self.embedding_l2_scope not in L2_SCOPES:
            raise ValueError(
                f"`embedding_l2_scope` should be one of {list(L2_SCOPES)}. "
                f"Received: `embedding_l2_scope={self.embedding_l2_scope!r}`")
        _chain_post_init(ModelConfig, self)


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """Settings of one MLP (`MLPBlock`): per width h in `hidden_units`,
    x = Dropout(activation(BatchNorm(W x + b))).

    The defaults are BARS Frappe_x1's DNN. Model configs with one MLP
    inherit this class (flat keys, see the module docstring).

    Attributes:
      hidden_units: tuple of int. Hidden widths (positive; may be empty).
        Defaults to (400, 400, 400).
      activation: str. Hidden activation. Defaults to "relu".
      dropout: float in [0, 1). Dropout after each hidden layer. Defaults
        to 0.2.
      batch_norm: bool. Batch norm before each hidden activation. Defaults
        to True.
    """

    hidden_units: tuple[int, ...] = (400, 400, 400)
    activation: str = "relu"
    dropout: float = 0.2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        _check_mlp({name: getattr(self, name) for name in MLP_FIELDS})
        _chain_post_init(MLPConfig, self)

    @property
    def mlp(self) -> MLPConfig:
        """These settings as a plain `MLPConfig` (for a model config that
        inherits this class)."""
        return MLPConfig.from_fields(self)

    @staticmethod
    def from_fields(source: Any, prefix: str = "",
                    shared: Iterable[str] = ()) -> MLPConfig:
        """The `MLPConfig` stored flat in config `source`.

        Args:
          source: a config with the MLP settings as attributes.
          prefix: str. Prefix of the keys in `source` (FinalMLP "mlp1_").
          shared: names of `MLP_FIELDS` that `source` keeps unprefixed,
            shared by its MLPs (FinalMLP "activation").
        """
        shared = set(shared)
        keys = {name: name if name in shared else prefix + name
                for name in MLP_FIELDS}
        values = {name: getattr(source, key) for name, key in keys.items()}
        _check_mlp(values, keys)  # errors name `source`'s own keys
        return MLPConfig(**values)

    def block(self, name: str, output_dim: int | None = None) -> MLPBlock:
        """The `MLPBlock` layer with these settings."""
        return MLPBlock(list(self.hidden_units), activation=self.activation,
                        dropout=self.dropout, batch_norm=self.batch_norm,
                        output_dim=output_dim, name=name)


def _check_mlp(values: Mapping[str, Any],
               keys: Mapping[str, str] | None = None) -> None:
    """The checks of the MLP settings `values`; `keys` maps each to the key
    an error should name."""
    keys = keys or {name: name for name in MLP_FIELDS}
    check_units(keys["hidden_units"], values["hidden_units"])
    check_dropout(keys["dropout"], values["dropout"])
