"""Run the jobs of a plan as `python -m tfdsmlp` subprocesses, resumably."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from tfdsmlp.experiments.plan import Job
from tfdsmlp.predict.progress import duration
from tfdsmlp.run_dir import RunDir


def job_dir(out_dir: str, job: Job) -> str:
    return os.path.join(out_dir, "runs", job.name)


def job_metrics(out_dir: str, job: Job) -> dict | None:
    """The job's metrics.json (None until it has finished)."""
    run = RunDir(job_dir(out_dir, job))
    if not os.path.exists(run.metrics_path):
        return None
    return run.read_metrics()


def command(job: Job, data_dir: str, out_dir: str, preset: str) -> list[str]:
    """The job's `train` / `run` command; its progress lines (a line every
    30 s and one per epoch) go to the job's log, OUT/logs/JOB.log."""
    cmd = [sys.executable, "-m", "tfdsmlp", job.command, "--data", data_dir,
           "--preset", preset, "--out", job_dir(out_dir, job),
           "--progress", "lines"]
    if job.command == "train":
        cmd += ["--model", job.model]
    else:
        cmd += ["--teacher", job.model, "--teacher-checkpoint",
                os.path.join(out_dir, "runs", job.teacher_job)]
    for value in job.overrides:
        cmd += ["--set", value]
    return cmd


def reuse_distill(job: Job, out_dir: str, log=print) -> bool:
    """Copies the finished distill phase of `job.distill_from` (same teacher
    checkpoint, seed and stage-1 settings) into the job's run directory, so
    that `tfdsmlp run` loads it instead of training it again. Returns
    whether it did (not when the source has not finished stage 1 or the
    job already has a distill phase)."""
    if not job.distill_from:
        return False
    source = RunDir(os.path.join(out_dir, "runs", job.distill_from))
    src = source.phase_dir("distill")
    dst = RunDir(job_dir(out_dir, job)).phase_dir("distill")
    if not source.is_done("distill") or os.path.exists(dst):
        return False
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".copying"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("backup"))
    os.replace(tmp, dst)  # a half-copied phase never looks finished
    log(f"[experiments] {job.name}: stage 1 copied from {job.distill_from} "
        f"(identical teacher, seed and distill settings)")
    return True


def run_jobs(jobs: list[Job], data_dir: str, out_dir: str,
             preset: str = "frappe", dry_run: bool = False,
             log=print) -> list[Job]:
    """Runs every job without metrics.json; returns the failed ones."""
    os.makedirs(os.path.join(out_dir, "logs"), exist_ok=True)
    failed = []
    todo = [j for j in jobs if job_metrics(out_dir, j) is None]
    log(f"[experiments] {len(jobs)} jobs, {len(jobs) - len(todo)} done, "
        f"{len(todo)} to run")
    seconds: list[float] = []
    for i, job in enumerate(todo, 1):
        cmd = command(job, data_dir, out_dir, preset)
        if dry_run:
            log(" ".join(cmd))
            continue
        log_path = os.path.join(out_dir, "logs", f"{job.name}.log")
        log(f"[experiments] {i}/{len(todo)} {job.name} ... (log: "
            f"{log_path})")
        reuse_distill(job, out_dir, log)
        start = time.time()
        # Appended: a job resumed by a rerun keeps the log of its first
        # epochs above the new lines.
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} "
                    f"{' '.join(cmd)}\n")
            f.flush()
            done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
        seconds.append(time.time() - start)
        status = "ok" if done.returncode == 0 else f"FAILED ({log_path})"
        left = len(todo) - i
        eta = (f"; ETA {duration(left * sum(seconds) / len(seconds))} "
               f"for the {left} left (their mean so far; jobs differ)"
               if left else "")
        log(f"[experiments] {i}/{len(todo)} {job.name} {status} in "
            f"{duration(seconds[-1])}{eta}")
        if done.returncode:
            failed.append(job)
    return failed


def wait_peak_rss(proc: subprocess.Popen) -> float:
    """Waits for `proc` (sets its returncode); its peak RSS in MiB
    (`ru_maxrss` from `os.wait4`: exact, not sampled)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024
