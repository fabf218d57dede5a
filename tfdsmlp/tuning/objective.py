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
from tfdsmlp.config import ConfigError
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.run_dir import RunDir
from tfdsmlp.training.callbacks import NonFiniteLossError
from tfdsmlp.training.pipeline import PhaseDivergedError, run_dsmlp
from tfdsmlp.training.run_config import RunConfig
from tfdsmlp.tuning.space import Distribution, suggest, trial_settings
from tfdsmlp.tuning.storage import root_trial, worker_identity

import optuna
import tensorflow as tf

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
    """

    def __init__(self, trial: optuna.Trial,
                 log: Callable[[str], None] | None = None):
        super().__init__()
        self.trial = trial
        self.log = log

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1  # epochs are 1-based in reports, as in logs
        value = (logs or {}).get(MONITOR)
        if value is None:
            raise ValueError(f"PruningCallback needs `{MONITOR}` in the "
                             "epoch logs (from ExactValidation).")
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"non-finite {MONITOR} in epoch {step}")
        self.trial.report(float(value), step)
        if self.log:
            self.log(f"  trial {self.trial.number} epoch {step}: val AUC "
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

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_identity())
        trial.set_user_attr("interrupted", False)
        values = suggest(trial, self.dims)
        path = self.run_dir(root_trial(trial))
        trial.set_user_attr("run_dir", os.path.relpath(path, self.out))
        cfg = trial_config(self.base, self.model, values, self.fixed)
        # Each trial builds new models: drop the previous trial's graph.
        tf.keras.backend.clear_session()
        callback = PruningCallback(trial, self.log)
        try:
            result = run_dsmlp(
                self.data, cfg, path, verbose=0, until="teacher",
                deterministic=self.deterministic, evaluate_test=False,
                phase_callbacks=lambda phase: [callback])
        except (PhaseDivergedError, NonFiniteLossError) as e:
            trial.set_user_attr("diverged", str(e).split(". ")[0])
            _drop_backup(path)
            raise optuna.TrialPruned(f"diverged: {e}") from None
        except optuna.TrialPruned:
            _drop_backup(path)
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        teacher = result.metrics["phases"]["teacher"]
        trial.set_user_attr("epochs", int(teacher.get("epochs", 0)))
        trial.set_user_attr("best_epoch", int(teacher.get("best_epoch", 0)))
        trial.set_user_attr("val_logloss", teacher["valid"]["logloss"])
        if "resumed_from_epoch" in teacher:
            trial.set_user_attr("resumed_from_epoch",
                                int(teacher["resumed_from_epoch"]))
        return float(teacher["valid"]["auc"])


def _drop_backup(path: str) -> None:
    """A pruned or diverged trial is never resumed: its epoch backup
    (weights and optimizer state) would only take disk space."""
    shutil.rmtree(RunDir(path).backup_dir("teacher"), ignore_errors=True)
