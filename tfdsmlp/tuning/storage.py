"""The study's storage: Optuna's RDB storage on SQLite at STUDY/study.db.

Every trial is a row in one SQLite file, so a study survives `kill -9` and
several `tune` processes can share it. An interrupted trial is found in
two ways and retried by `RetryHeartbeatStaleTrialCallback`, which queues a
new trial with the same parameters (and the validation AUCs reported so
far) that runs in the interrupted trial's directory, where the phase
runner resumes it from its last epoch backup:

- at start, a RUNNING trial whose process (recorded on this host as
  `worker`: host, pid, start time) no longer exists is failed at once;
- while a study runs, Optuna's heartbeat (every `HEARTBEAT_S` seconds)
  fails a RUNNING trial whose heartbeat is older than `GRACE_S` seconds,
  e.g. one of a process on another host that shares the file.

Failing a trial is one transaction (`set_trial_state_values` refuses a
trial that is already finished), so two processes never retry it twice.
"""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any

from tfdsmlp.run_dir import differences

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

STUDY_NAME = "tfdsmlp-tune"
HEARTBEAT_S = 10
GRACE_S = 60
# A trial interrupted this many times (e.g. a setting that makes the
# process run out of memory every time) is not retried again.
MAX_RETRY = 3


class StudyError(ValueError):
    """A study directory does not fit the command (another model, preset,
    settings, data or search space)."""


def retry_callback() -> RetryHeartbeatStaleTrialCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(
            max_retry=MAX_RETRY, inherit_intermediate_values=True)


def open_storage(out: str) -> RDBStorage:
    """The RDB storage of study directory `out` (created if needed)."""
    os.makedirs(out, exist_ok=True)
    url = "sqlite:///" + os.path.abspath(os.path.join(out, "study.db"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=retry_callback(),
            # Writers wait for each other instead of failing at once.
            engine_kwargs={"connect_args": {"timeout": 60}})


def open_study(out: str, setup: dict[str, Any], sampler, pruner
               ) -> optuna.Study:
    """Creates or loads the study in `out`. `setup` (model, preset,
    settings, data fingerprint, space, pruner, seed) is recorded when the
    study is created; loading it with another setup raises `StudyError`
    naming the differing keys (as a run directory does)."""
    study = optuna.create_study(
        storage=open_storage(out), study_name=STUDY_NAME,
        direction="maximize", sampler=sampler, pruner=pruner,
        load_if_exists=True)
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", setup)
        return study
    diff = setup_differences(stored, setup)
    if diff:
        hint = ("\nThe base.* lines are the preset's resolved settings: "
                "the preset changed since the study was made (an edited "
                "preset file, or another tfdsmlp version). Resume with the "
                "preset the study was made with, or use another --out."
                if any(d.startswith("base.") for d in diff) else
                "\nRerun with that study's settings, or use another --out.")
        raise StudyError(
            f"{out} holds a study made with other settings or data; "
            "nothing was done:\n" + "\n".join(f"  {d}" for d in diff[:12])
            + hint)
    if "base" not in stored and "base" in setup:
        study.set_user_attr("setup", {**stored, "base": setup["base"]})
    return study


def setup_differences(stored: dict[str, Any], now: dict[str, Any]
                      ) -> list[str]:
    """`differences` of two study setups. A setup's "base" is the
    resolved settings every trial starts from (the preset with `--set`
    applied), so that a preset file edited between two `tune` commands
    is caught even though its name is the same. Studies made before it
    was recorded have none: for them it is not compared, and `open_study`
    records it at their next resume."""
    if "base" not in stored:
        now = {k: v for k, v in now.items() if k != "base"}
    return differences(stored, now)


# -- interrupted trials ---------------------------------------------------
def worker_identity() -> dict[str, Any]:
    """This process: host, pid and start time (so a reused pid is not
    taken for it)."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": _start_time(os.getpid())}


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (/proc/PID/stat field 22),
    "zombie" for an exited, unreaped process; None where /proc is absent
    or the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii",
                  errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "zombie" if fields[0] in ("Z", "X") else fields[19]


def _is_gone(worker: dict[str, Any]) -> bool:
    """Whether the process `worker` (on this host) has ended."""
    if worker.get("host") != socket.gethostname():
        return False  # the heartbeat decides
    pid = int(worker.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    except OSError:
        return True
    started = worker.get("started")
    now = _start_time(pid)
    return now == "zombie" or (started is not None and now is not None
                               and now != started)


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fails the RUNNING trials whose process on this host has ended and
    queues their retries; returns the failed trials' numbers."""
    storage = study._storage  # the study's own (no public accessor)
    retry = retry_callback()
    failed = []
    for trial in study.get_trials(deepcopy=False,
                                  states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not worker or not _is_gone(worker):
            continue
        try:
            # FrozenTrial._trial_id: the storage's key (Optuna's own
            # fail_stale_trials uses the same).
            changed = storage.set_trial_state_values(trial._trial_id,
                                                     TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        if changed:
            retry(study, storage.get_trial(trial._trial_id))
            failed.append(trial.number)
    return failed


def retry_interrupted_here(study: optuna.Study) -> list[int]:
    """After Ctrl-C: queues retries of this process's trials that Optuna
    marked FAIL because they were interrupted (not for an error)."""
    me = worker_identity()
    retry, out = retry_callback(), []
    retried = {t.system_attrs.get("retry_history", [None])[-1]
               for t in study.get_trials(deepcopy=False)}
    for trial in study.get_trials(deepcopy=False,
                                  states=(TrialState.FAIL,)):
        worker = trial.user_attrs.get("worker") or {}
        if (trial.user_attrs.get("interrupted") and trial.number
                not in retried and worker.get("pid") == me["pid"]
                and worker.get("host") == me["host"]):
            retry(study, trial)
            out.append(trial.number)
    return out


def root_trial(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The number of the first trial of a retry series (whose directory
    the retries resume); the trial's own number when it is no retry."""
    attrs = getattr(trial, "system_attrs", None)
    if attrs is None:  # a live `Trial` reads them from its storage
        attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    return int(attrs.get("failed_trial", trial.number))
