"""Typed config of a full DS-MLP run (teacher -> distill -> align)."""

from __future__ import annotations

import dataclasses
from typing import Any

from tfdsmlp.distill.config import AlignerConfig, DistillerConfig
from tfdsmlp.models.registry import model_config
from tfdsmlp.training.teacher import TeacherConfig
from tfdsmlp.training.train_config import TrainConfig

TEACHER_PARALLEL = "teacher_parallel"


@dataclasses.dataclass(frozen=True)
class StudentConfig:
    """The student: "dsmlp" (DualStreamMLP); for the "w/o dual MLP"
    ablation any registry model (e.g. "dcnv2"); for the "w/o main MLP"
    ablation "teacher_parallel" (the teacher plus a parallel MLP built from
    the DualStreamMLP `params`; stage 1 is skipped)."""

    model: str = "dsmlp"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        model_config(self._registry_model, self.params)

    @property
    def _registry_model(self) -> str:
        return "dsmlp" if self.model == TEACHER_PARALLEL else self.model

    def resolved(self) -> StudentConfig:
        full = dataclasses.asdict(model_config(self._registry_model,
                                               self.params))
        return dataclasses.replace(self, params=full)


@dataclasses.dataclass(frozen=True)
class DistillConfig(DistillerConfig):
    """Stage 1: the `Distiller`'s settings, defaults and checks
    (`DistillerConfig`: kd_weight = lambda, 0 is the "w/o KD" ablation;
    kd_loss; temperature; train_parallel, true by default as chosen by
    validation AUC on Frappe, see docs/RESULTS.md), plus
    init_main_from_teacher, which starts the main MLP's embedding table
    from the teacher's (the public code shares the table), and the
    training settings."""

    init_main_from_teacher: bool = False
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


@dataclasses.dataclass(frozen=True)
class AlignConfig(AlignerConfig):
    """Stage 2: the `Aligner`'s settings, defaults and checks
    (`AlignerConfig`: loss = BCE(p) + alpha BCE(main) + beta
    BCE(parallel)), plus enabled (false skips stage 2) and the training
    settings."""

    enabled: bool = True
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a `python -m tfdsmlp run` does."""

    teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
    student: StudentConfig = dataclasses.field(default_factory=StudentConfig)
    distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
    align: AlignConfig = dataclasses.field(default_factory=AlignConfig)
    export_name: str = ""

    def resolved(self) -> RunConfig:
        """Every model default written out. A DS-MLP student whose main
        table starts from the teacher's (`distill.init_main_from_teacher`)
        and which names no `embedding_dim` takes the teacher's width, so
        that one preset serves teachers of any width; a width it names is
        kept (and checked against the teacher's before training)."""
        teacher = self.teacher.resolved()
        student = self.student
        if (self.distill.init_main_from_teacher
                and student.model == "dsmlp"
                and "embedding_dim" not in student.params):
            student = dataclasses.replace(student, params={
                **student.params,
                "embedding_dim": teacher.params["embedding_dim"]})
        return dataclasses.replace(self, teacher=teacher,
                                   student=student.resolved())
