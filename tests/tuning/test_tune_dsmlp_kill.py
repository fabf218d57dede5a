"""`tune --model dsmlp` killed with SIGKILL in the middle of a trial's
distillation, then the same command again: the killed trial is retried in
its own directory from its distillation backup (the loaded teacher is not
trained), and the study ends with N finished trials, none trained twice.

The kill is the documented test hook TFDSMLP_FAULT_INJECT=distill:2:1
(SIGKILL at the start of batch 1 of epoch 2 of a distill phase), set for
the first process only."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import tfdsmlp  # noqa: F401
from tfdsmlp import cli

from tune_helpers import load, run_tune, states, without_test_split

TEACHER = ["--set", "train.epochs=1", "--set", "train.batch_size=32",
           "--set", "params.hidden_units=[16]", "--set",
           "params.embedding_dim=4", "--set", "train.check_learned=false"]
# Widths fixed (the study searches lambda, T, alpha, beta, the stage
# learning rates and dropout); 2 + 1 epochs of 10 steps.
TINY_RUN = ["student.params.main_hidden_units=[16]",
            "student.params.parallel_hidden_units=[8]",
            "student.params.embedding_dim=4", "distill.train.epochs=2",
            "align.train.epochs=1"] + [
    f"{phase}.train.{key}" for phase in ("distill", "align")
    for key in ("batch_size=32", "check_learned=false",
                "shuffle_buffer=1000")]


def _tune(data: str, teacher: str, out: str, **env: str
          ) -> subprocess.CompletedProcess:
    return run_tune(["--data", data, "--model", "dsmlp", "--teacher",
                     teacher, "--preset", "synthetic", "--trials", "2",
                     "--pruner", "none", "--out", out], TINY_RUN,
                    timeout=600, **env)


def test_killed_dsmlp_study_resumes_to_n_trials(tiny_dataset_dir, tmp_path):
    teacher = str(tmp_path / "teacher")
    assert cli.main(["train", "--data", tiny_dataset_dir, "--model", "dnn",
                     "--preset", "synthetic", "--out", teacher, "--quiet",
                     *TEACHER]) == 0
    data = without_test_split(tiny_dataset_dir, str(tmp_path / "data"))
    out = str(tmp_path / "study")
    killed = _tune(data, teacher, out, TFDSMLP_FAULT_INJECT="distill:2:1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:]
    assert states(load(out)) == ["RUNNING"]
    trial0 = os.path.join(out, "trials", "0")
    assert os.path.exists(os.path.join(trial0, "distill", "backup",
                                       "state.json"))

    resumed = _tune(data, teacher, out)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert "trial 0 was interrupted" in log
    study = load(out)
    assert states(study) == ["FAIL", "COMPLETE", "COMPLETE"]
    retry = study.trials[1]
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.params == study.trials[0].params
    assert retry.user_attrs["run_dir"] == os.path.join("trials", "0")
    with open(os.path.join(trial0, "metrics.json")) as f:
        phases = json.load(f)["phases"]
    # The teacher was loaded, not trained; distillation continued from its
    # epoch-1 backup.
    assert phases["teacher"]["loaded_from"].startswith(teacher)
    assert phases["student"]["resumed_from_epoch"] == 1
    assert phases["student"]["epochs"] == 2
    assert sorted(os.listdir(os.path.join(out, "trials"))) == ["0", "2"]
    assert os.path.exists(os.path.join(out, "best_run.yaml"))
