"""Settings of the DS-MLP trainers, the one source of their defaults.

`Distiller` and `Aligner` take these configs (or the same names as keyword
arguments), and the `run` command's `distill:` / `align:` sections
(`DistillConfig`, `AlignConfig` in `tfdsmlp.training.run_config`) extend
them with the training settings, so the Python API and the command line
share every default and check.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from tfdsmlp.distill.kd_loss import KD_KINDS

C = TypeVar("C")


@dataclasses.dataclass(frozen=True)
class DistillerConfig:
    """Stage 1: loss = BCE(y, z_ctr) + kd_weight * KD(z_T, z_M) + L2.

    Attributes:
      kd_weight: float >= 0. lambda; 0 is the "w/o KD" ablation. Defaults
        to 1.0.
      kd_loss: str. KD loss kind, one of `KD_KINDS` ("bce", "kl",
        "mse_prob", "mse_logit"). Defaults to "bce".
      temperature: float > 0. T of the "bce" / "kl" KD losses. Defaults to
        1.0.
      train_parallel: bool. Also train the parallel MLP in stage 1, on the
        fused CTR logit z_ctr = 0.5 * (z_M + z_P) (public code), instead of
        the main MLP alone on z_ctr = z_M (paper). Defaults to True: the
        best validation AUC of the stage-1 variants on Frappe
        (docs/RESULTS.md).
    """

    kd_weight: float = 1.0
    kd_loss: str = "bce"
    temperature: float = 1.0
    train_parallel: bool = True

    def __post_init__(self) -> None:
        _check_non_negative(self, "kd_weight")
        if self.kd_loss not in KD_KINDS:
            raise ValueError(f"`kd_loss` should be one of {KD_KINDS}. "
                             f"Received: `kd_loss={self.kd_loss!r}`")
        if self.temperature <= 0:
            raise ValueError("`temperature` should be positive. Received: "
                             f"`temperature={self.temperature}`")


@dataclasses.dataclass(frozen=True)
class AlignerConfig:
    """Stage 2: loss = BCE(y, 0.5 * (z_M + z_P)) + alpha * BCE(y, z_M)
    + beta * BCE(y, z_P) + L2 (alpha = beta = 0 is the "w/o alignment
    loss" ablation).

    Attributes:
      alpha: float >= 0. Weight of the main MLP's own BCE. Defaults to 1.0.
      beta: float >= 0. Weight of the parallel MLP's own BCE. Defaults to
        1.0.
    """

    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        _check_non_negative(self, "alpha", "beta")


def _check_non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value < 0:
            raise ValueError(f"`{name}` should be >= 0. Received: "
                             f"`{name}={value}`")


def with_overrides(config_class: type[C], config: C | None,
                   kwargs: dict[str, Any]) -> C:
    """`config` (None: `config_class()`) with the `config_class` fields
    found in `kwargs` replaced; those keys are removed from `kwargs`."""
    if config is None:
        config = config_class()
    if not isinstance(config, config_class):
        raise TypeError(f"`config` should be a {config_class.__name__}. "
                        f"Received: {type(config).__name__}")
    names = [f.name for f in dataclasses.fields(config_class)]
    values = {name: kwargs.pop(name) for name in names if name in kwargs}
    return dataclasses.replace(config, **values) if values else config
