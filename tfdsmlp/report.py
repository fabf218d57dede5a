"""Markdown tables from run directories' metrics.json files."""

from __future__ import annotations

import os

from tfdsmlp.run_dir import RunDir


def teacher_table(runs_dir: str) -> str:
    """One row per run directory in `runs_dir` (its teacher phase: the
    model of a `train` run, the teacher of a `run`)."""
    lines = [("| run | model | test AUC | test logloss | valid AUC | epochs "
             "| best epoch | params | train s |"),
             "|---|---|---|---|---|---|---|---|---|"]
    runs = sorted(e.path for e in os.scandir(runs_dir)
                  if e.is_dir() and RunDir.is_run_dir(e.path))
    for path in runs:
        run = RunDir(path)
        if not os.path.exists(run.metrics_path):
            continue
        m = run.read_metrics()
        t = m["phases"]["teacher"]
        lines.append(
            f"| {os.path.basename(path)} | {m['models']['teacher']} "
            f"| {t['test']['auc']:.4f} | {t['test']['logloss']:.4f} "
            f"| {t['valid']['auc']:.4f} | {t.get('epochs', '-')} "
            f"| {t.get('best_epoch', '-')} | {t['params']} "
            f"| {t.get('train_seconds', '-')} |")
    if len(lines) == 2:
        raise FileNotFoundError(
            f"{runs_dir} is neither a finished run directory (no "
            "metrics.json) nor a directory holding finished runs.")
    return "\n".join(lines)


def run_table(run_dir: str) -> str:
    """One row per phase of a run."""
    m = RunDir.open(run_dir).read_metrics()
    lines = [("| phase | valid AUC | test AUC | test logloss "
             "| RelaImpr vs teacher (test) | epochs | params |"),
             "|---|---|---|---|---|---|---|"]
    for name, p in m["phases"].items():
        lines.append(
            f"| {name} | {p['valid']['auc']:.4f} | {p['test']['auc']:.4f} "
            f"| {p['test']['logloss']:.4f} "
            f"| {p['test']['rela_impr_vs_teacher']:+.2f}% "
            f"| {p.get('epochs', '-')} | {p['params']} |")
    lines += m.get("warnings", [])
    return "\n".join(lines)


def report(path: str) -> str:
    """`run_table` for a run directory, else `teacher_table`."""
    if RunDir.is_run_dir(path):
        return run_table(path)
    return teacher_table(path)
