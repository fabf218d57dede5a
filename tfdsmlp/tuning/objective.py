"""One trial: an ordinary teacher phase, scored by validation AUC.

A trial draws its settings (`space.suggest`), puts them over the study's
base config (preset <- `--set`) and runs `run_dsmlp(..., until="teacher")`
into STUDY/trials/<n>: the same runner, run-directory layout, resume and
fingerprint rules as `python -m tfdsmlp train`, with `evaluate_test=False`
so the test split is never read. `PruningCallback` reports the exact
validation AUC after every epoch; the pruner may stop the trial there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections.abc import Callable
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.config import ConfigError, from_dict, to_dict
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.models.dual_stream_mlp import DualStreamMLPConfig
from tfdsmlp.run_dir import RunDir
from tfdsmlp.training.callbacks import NonFiniteLossError
from tfdsmlp.training.pipeline import PhaseDivergedError, run_dsmlp
from tfdsmlp.training.run_config import RunConfig
from tfdsmlp.tuning.space import (
    Distribution,
    dsmlp_trial_settings,
    suggest,
    trial_settings,
)
from tfdsmlp.tuning.storage import root_trial, worker_identity

import optuna
import tensorflow as tf
from optuna.trial import FrozenTrial

MONITOR = "val_auc"


class PruningCallback(tf.keras.callbacks.Callback):
    """Reports the epoch's exact validation AUC to an Optuna trial and
    raises `optuna.TrialPruned` when the pruner says so.

    It needs `val_auc` in the epoch logs: `run_dsmlp`'s `phase_callbacks`
    come after the schedule's `ExactValidation` (and after the epoch's
    backup, so a pruned or killed trial has backed up that epoch).

    Args:
      trial: `optuna.Trial`. The trial to report to.
      log: callable or None. Gets one line per epoch.
      offset: int. Added to the epoch for the reported step (a DS-MLP
        trial reports stage 2 after stage 1's `distill.train.epochs`, so
        steps increase over both phases).
      phase: str. Named in the log lines (empty: none).
    """

    def __init__(self, trial: optuna.Trial,
                 log: Callable[[str], None] | None = None,
                 offset: int = 0, phase: str = ""):
        super().__init__()
        self.trial = trial
        self.log = log
        self.offset, self.phase = offset, phase

    def on_epoch_end(self, epoch, logs=None):
        # epochs are 1-based in reports, as in logs
        step = self.offset + epoch + 1
        value = (logs or {}).get(MONITOR)
        if value is None:
            raise ValueError(f"PruningCallback needs `{MONITOR}` in the "
                             "epoch logs (from ExactValidation).")
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"non-finite {MONITOR} in epoch {step}")
        self.trial.report(float(value), step)
        if self.log:
            where = f"{self.phase} " if self.phase else ""
            self.log(f"  trial {self.trial.number} {where}epoch {step}: "
                     "val AUC "
                     f"{value:.4f}")
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {step} (val AUC "
                                     f"{value:.4f})")


def trial_config(base: RunConfig, model: str, values: dict[str, Any],
                 fixed: set[str]) -> RunConfig:
    """`base` with one trial's values (keys in `fixed` keep the user's
    `--set`), checked strictly and resolved."""
    settings = trial_settings(model, values, fixed)
    try:
        teacher = dataclasses.replace(
            base.teacher, params={**base.teacher.params,
                                  **settings["params"]},
            train=dataclasses.replace(base.teacher.train,
                                      **settings["train"]))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"trial settings {values} do not fit {model}: "
                          f"{e}") from None
    return dataclasses.replace(base, teacher=teacher).resolved()


class Objective:
    """`study.optimize`'s objective: returns a trial's validation AUC.

    A trial whose teacher diverges (`PhaseDivergedError`,
    `NonFiniteLossError`) is recorded as pruned, with the reason in its
    `diverged` user attribute; the study goes on. A retried trial (after
    its process was killed) runs in its first attempt's directory, where
    `run_dsmlp` resumes it from the last epoch backup.

    Args:
      out: study directory.
      data: `DatasetDir`.
      base: `RunConfig` of preset <- `--set`.
      model: teacher model name.
      dims: {setting: distribution} searched.
      fixed: config keys given with `--set` (not searched).
      deterministic: TensorFlow op determinism in every trial.
      log: callable or None. Per-epoch lines.
    """

    def __init__(self, out: str, data: DatasetDir, base: RunConfig,
                 model: str, dims: dict[str, Distribution],
                 fixed: set[str], deterministic: bool = False,
                 log: Callable[[str], None] | None = None):
        self.out, self.data, self.base = out, data, base
        self.model, self.dims, self.fixed = model, dims, fixed
        self.deterministic, self.log = deterministic, log

    def run_dir(self, number: int) -> str:
        return os.path.join(self.out, "trials", str(number))

    # Phases whose epoch backups a pruned or diverged trial leaves behind.
    phases: tuple[str, ...] = ("teacher",)

    def config(self, values: dict[str, Any]) -> RunConfig:
        """The trial's run settings."""
        return trial_config(self.base, self.model, values, self.fixed)

    def run_options(self, trial: optuna.Trial, cfg: RunConfig
                    ) -> dict[str, Any]:
        """`run_dsmlp` arguments particular to this kind of study."""
        callback = PruningCallback(trial, self.log)
        return {"until": "teacher",
                "phase_callbacks": lambda phase: [callback]}

    def reuse(self, trial: optuna.Trial, twin: FrozenTrial) -> float:
        """`twin`'s result for `trial`, which drew the same settings: the
        same run would be trained again (with the same seed), so its
        figures and run directory are recorded instead, and the trial
        names it (`same_as`; trials.md: "same settings as #k"). A small
        discrete space (a grid of a few values) makes such draws
        common, and a trial at full size takes hours."""
        for key, value in twin.user_attrs.items():
            if key not in ("worker", "interrupted", "base_trial",
                           "copied_from", "same_as"):
                trial.set_user_attr(key, value)
        trial.set_user_attr("same_as", twin.number)
        if self.log:
            self.log(f"  trial {trial.number} drew the settings of trial "
                     f"{twin.number}: its result taken, not trained again")
        return float(twin.value)

    def record(self, trial: optuna.Trial, metrics: dict[str, Any]) -> float:
        """Stores the finished run's figures on `trial`; returns its
        value."""
        teacher = metrics["phases"]["teacher"]
        trial.set_user_attr("epochs", int(teacher.get("epochs", 0)))
        trial.set_user_attr("best_epoch", int(teacher.get("best_epoch", 0)))
        trial.set_user_attr("val_logloss", teacher["valid"]["logloss"])
        if "resumed_from_epoch" in teacher:
            trial.set_user_attr("resumed_from_epoch",
                                int(teacher["resumed_from_epoch"]))
        return float(teacher["valid"]["auc"])

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_identity())
        trial.set_user_attr("interrupted", False)
        values = suggest(trial, self.dims)
        twin = finished_twin(trial, values)
        if twin is not None:
            return self.reuse(trial, twin)
        path = self.run_dir(root_trial(trial))
        trial.set_user_attr("run_dir", os.path.relpath(path, self.out))
        cfg = self.config(values)
        # Each trial builds new models: drop the previous trial's graph.
        tf.keras.backend.clear_session()
        try:
            result = run_dsmlp(
                self.data, cfg, path, verbose=0,
                deterministic=self.deterministic, evaluate_test=False,
                **self.run_options(trial, cfg))
        except (PhaseDivergedError, NonFiniteLossError) as e:
            trial.set_user_attr("diverged", str(e).split(". ")[0])
            _drop_backup(path, self.phases)
            raise optuna.TrialPruned(f"diverged: {e}") from None
        except optuna.TrialPruned:
            _drop_backup(path, self.phases)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        return self.record(trial, result.metrics)


def finished_twin(trial: optuna.Trial, values: dict[str, Any]
                  ) -> FrozenTrial | None:
    """The first complete trial of `trial`'s study whose settings are
    `values` exactly (None: none)."""
    for other in trial.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if other.number != trial.number and other.params == values:
            return other
    return None


def _drop_backup(path: str, phases: tuple[str, ...] = ("teacher",)) -> None:
    """A pruned or diverged trial is never resumed: its epoch backups
    (weights and optimizer state) would only take disk space."""
    for phase in phases:
        shutil.rmtree(RunDir(path).backup_dir(phase), ignore_errors=True)


def dsmlp_trial_config(base: RunConfig, values: dict[str, Any]
                       ) -> RunConfig:
    """`base` (teacher of the teacher run, preset <- `--set`) with one
    DS-MLP trial's values, checked strictly and resolved."""
    depth = len(base.student.params.get("parallel_hidden_units")
                or DualStreamMLPConfig.parallel_hidden_units)
    data = to_dict(base)
    for key, value in dsmlp_trial_settings(values, depth).items():
        node = data
        *parents, name = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = value
    try:
        return from_dict(RunConfig, data).resolved()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"trial settings {values} do not fit dsmlp: "
                          f"{e}") from None


class DSMLPObjective(Objective):
    """The objective of `tune --model dsmlp --teacher RUN_DIR`: a trial is
    `run_dsmlp(..., until="align", teacher_checkpoint=RUN_DIR)` (the
    teacher loaded, never trained); its value is the validation AUC of the
    model the run selects (`select_by_validation`: the stage-2 DS-MLP, the
    stage-1 student, or one stream of the DS-MLP alone). Pruning sees
    stage 1's per-epoch validation AUC at steps 1..E (E =
    `distill.train.epochs`), then stage 2's at steps E+1.. .

    Args (besides `Objective`'s, whose `model` is "dsmlp"):
      teacher_run: the teacher run directory.
    """

    phases = ("distill", "align")

    def __init__(self, out, data, base, dims, fixed, teacher_run: str,
                 deterministic: bool = False, log=None):
        super().__init__(out, data, base, "dsmlp", dims, fixed,
                         deterministic, log)
        self.teacher_run = teacher_run

    def config(self, values: dict[str, Any]) -> RunConfig:
        return dsmlp_trial_config(self.base, values)

    def run_options(self, trial: optuna.Trial, cfg: RunConfig
                    ) -> dict[str, Any]:
        offsets = {"distill": 0, "align": cfg.distill.train.epochs}

        def callbacks(phase):
            if phase not in offsets:
                return []
            return [PruningCallback(trial, self.log, offset=offsets[phase],
                                    phase=phase)]

        return {"until": "align", "teacher_checkpoint": self.teacher_run,
                "phase_callbacks": callbacks}

    def record(self, trial: optuna.Trial, metrics: dict[str, Any]) -> float:
        selected = metrics["selected"]
        stats = metrics["phases"]
        done = [stats[k] for k in ("student", "dsmlp") if k in stats]
        trial.set_user_attr("epochs", int(sum(p.get("epochs", 0)
                                              for p in done)))
        trial.set_user_attr("selected", selected["phase"])
        trial.set_user_attr("val_logloss",
                            stats[selected["phase"]]["valid"]["logloss"])
        return float(selected["valid_auc"])
