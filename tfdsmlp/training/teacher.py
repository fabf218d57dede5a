"""Typed config of the teacher (or baseline) phase.

`python -m tfdsmlp train` runs this phase alone through the one runner,
`tfdsmlp.training.pipeline.run_dsmlp(..., until="teacher")`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfdsmlp.config import from_dict
from tfdsmlp.models.registry import model_config
from tfdsmlp.training.train_config import TrainConfig


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """One model trained on one dataset.

    Attributes:
      model: registry name ("gdcn", "dcnv2", "finalmlp", "autoint",
        "xdeepfm", "deepfm", "dnn").
      params: the model's config fields (checked strictly against the
        model's config dataclass).
      train: `TrainConfig`.
    """

    model: str = "gdcn"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        model_config(self.model, self.params)  # raises on unknown keys

    def resolved(self) -> TeacherConfig:
        """Same config with every model default written out."""
        full = dataclasses.asdict(model_config(self.model, self.params))
        return dataclasses.replace(self, params=full)


def teacher_config(data: dict[str, Any]) -> TeacherConfig:
    return from_dict(TeacherConfig, data).resolved()


def preset(dataset: str, model: str) -> dict[str, Any]:
    """{model, params, train} of `model` in preset `dataset` (see
    `tfdsmlp.training.presets.model_preset`)."""
    from tfdsmlp.training.presets import model_preset

    return model_preset(dataset, model)
