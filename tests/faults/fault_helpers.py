"""Helpers of the fault-tolerance tests (subprocess runs of the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tiny_data import REPO_ROOT

# Tiny models (a few thousand parameters); dropout and batch norm stay on
# (the synthetic preset's defaults) so their state is part of what a resume
# has to restore.
TINY_RUN = [
    "teacher.params.hidden_units=[16]", "teacher.params.num_cross_layers=1",
    "student.params.main_hidden_units=[16]",
    "student.params.parallel_hidden_units=[8]",
    "teacher.train.epochs=1", "distill.train.epochs=3",
    "align.train.epochs=1",
] + [f"{phase}.train.{key}={value}"
     for phase in ("teacher", "distill", "align")
     for key, value in (("batch_size", 32), ("shuffle_buffer", 1000))]

VOLATILE = {"train_seconds", "startup", "finished_at", "resumed_from_epoch"}


def run_args(data_dir: str, out: str, sets=TINY_RUN, *extra: str
             ) -> list[str]:
    args = ["run", "--data", data_dir, "--preset", "synthetic",
            "--teacher", "gdcn", "--out", out, "--quiet", *extra]
    for kv in sets:
        args += ["--set", kv]
    return args


def cli_env(**extra: str) -> dict[str, str]:
    """Environment of a `python -m tfdsmlp` subprocess (works without an
    installed package)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(
                   [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("TF_CONFIG", None)
    env.pop("TFDSMLP_FAULT_INJECT", None)
    env.update(extra)
    return env


def popen_cli(args: list[str], log_path, env: dict, cwd=None
              ) -> subprocess.Popen:
    with open(log_path, "w") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "tfdsmlp", *args],
                                cwd=str(cwd or REPO_ROOT), env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_all(procs, timeout: float) -> None:
    """Waits for every process; kills the ones still running (finally)."""
    try:
        for p in procs:
            p.wait(timeout=timeout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def tail(path, n: int = 3000) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-n:]


def numeric_diffs(a, b, path="") -> list[tuple[str, float]]:
    """(path, |a - b|) of every differing number in two JSON trees, and
    (path, inf) for keys present in one only (VOLATILE keys skipped)."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in VOLATILE:
                continue
            if key not in a or key not in b:
                out.append((f"{path}/{key}", float("inf")))
            else:
                out += numeric_diffs(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            out += numeric_diffs(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != b:
            out.append((path, abs(a - b)))
    elif a != b:
        out.append((path, float("inf")))
    return out


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
