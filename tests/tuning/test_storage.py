"""Interrupted trials: a RUNNING trial whose process is gone is failed
and queued again (once, with its settings and reported AUCs); a trial of
a live process or of another host is left to run (or to the heartbeat)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tfdsmlp.tuning.storage import (
    open_study,
    recover_interrupted,
    root_trial,
    worker_identity,
)

import optuna
import pytest
from tune_helpers import states

pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage:UserWarning")


def _running(study, worker):
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    trial.report(0.7, 1)
    trial.set_user_attr("worker", worker)
    return trial


def test_trials_of_ended_processes_are_retried_once(tmp_path):
    study = open_study(str(tmp_path), {"model": "gdcn"},
                       optuna.samplers.RandomSampler(0),
                       optuna.pruners.NopPruner())
    code = "import os; print(os.getpid())"
    child = subprocess.run([sys.executable, "-c", code],
                           capture_output=True, text=True)
    dead = {"host": socket.gethostname(), "pid": int(child.stdout),
            "started": "1"}
    gone = _running(study, dead)
    _running(study, worker_identity())                  # this process
    _running(study, {**dead, "host": "another-host"})   # the heartbeat's
    assert recover_interrupted(study) == [gone.number]
    assert recover_interrupted(study) == []             # not twice
    assert states(study) == ["FAIL", "RUNNING", "RUNNING", "WAITING"]
    retry = study.get_trials()[3]
    assert root_trial(retry) == gone.number
    assert retry.params == study.get_trials()[0].params
    assert retry.intermediate_values == {1: 0.7}
    # The queued retry is the next trial asked for, with those settings.
    trial = study.ask()
    assert trial.number == 3 and root_trial(trial) == gone.number
    assert os.path.exists(tmp_path / "study.db")
