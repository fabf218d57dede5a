"""`tune` killed with SIGKILL in the middle of a trial, then the same
command again: the killed trial is retried in its own directory, resuming
from its last epoch backup, and the study ends with N finished trials
without training a finished one again.

The kill is the documented test hook TFDSMLP_FAULT_INJECT=teacher:2:1
(SIGKILL at the start of batch 1 of epoch 2 of a teacher phase), set for
the first process only: it hits that process's first trial after its
epoch-1 backup."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from tune_helpers import (
    TINY_TUNE,
    load,
    read,
    run_tune,
    states,
    without_test_split,
)


def _tune(data: str, out: str, **env: str) -> subprocess.CompletedProcess:
    return run_tune(["--data", data, "--model", "gdcn", "--preset",
                     "synthetic", "--trials", "3", "--pruner", "none",
                     "--out", out], TINY_TUNE, **env)


def test_killed_study_resumes_to_n_trials(tiny_dataset_dir, tmp_path):
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out = str(tmp_path / "study")
    killed = _tune(data, out, TFDSMLP_FAULT_INJECT="teacher:2:1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:]
    assert states(load(out)) == ["RUNNING"]
    assert os.path.exists(os.path.join(out, "trials", "0", "teacher",
                                       "backup", "state.json"))

    resumed = _tune(data, out)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert "trial 0 was interrupted" in log
    study = load(out)
    assert states(study) == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    retry = study.trials[1]
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == study.trials[0].params
    assert retry.user_attrs["run_dir"] == os.path.join("trials", "0")
    assert list(retry.intermediate_values) == [1, 2]  # epoch 1 inherited
    # The retry continued trial 0's phase from its epoch-1 backup, in its
    # directory; no trial ran twice.
    with open(os.path.join(out, "trials", "0", "metrics.json")) as f:
        teacher = json.load(f)["phases"]["teacher"]
    assert teacher["resumed_from_epoch"] == 1 and teacher["epochs"] == 2
    assert sorted(os.listdir(os.path.join(out, "trials"))) == ["0", "2",
                                                               "3"]
    assert "retry of #0" in read(out, "trials.md")
    assert os.path.exists(os.path.join(out, "best.yaml"))
