"""Markdown tables from run directories' metrics.json files."""

from __future__ import annotations

import glob
import json
import os


def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def teacher_table(runs_dir: str) -> str:
    """One row per `runs_dir/<model>/metrics.json` written by `train`."""
    lines = ["| model | test AUC | test logloss | valid AUC | epochs "
             "| best epoch | params | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for path in sorted(glob.glob(os.path.join(runs_dir, "*",
                                              "metrics.json"))):
        m = _load(path)
        if "phases" in m:
            continue
        lines.append(
            f"| {m.get('model', os.path.basename(os.path.dirname(path)))} "
            f"| {m['test']['auc']:.4f} | {m['test']['logloss']:.4f} "
            f"| {m['valid']['auc']:.4f} | {m['epochs']} | {m['best_epoch']} "
            f"| {m['params']} | {m['train_seconds']} |")
    return "\n".join(lines)


def run_table(run_dir: str) -> str:
    """One row per phase of a `run` (metrics.json with "phases")."""
    m = _load(os.path.join(run_dir, "metrics.json"))
    lines = ["| phase | valid AUC | test AUC | test logloss "
             "| RelaImpr vs teacher (test) | epochs | params |",
             "|---|---|---|---|---|---|---|"]
    for name, p in m["phases"].items():
        lines.append(
            f"| {name} | {p['valid']['auc']:.4f} | {p['test']['auc']:.4f} "
            f"| {p['test']['logloss']:.4f} "
            f"| {p['test']['rela_impr_vs_teacher']:+.2f}% "
            f"| {p.get('epochs', '-')} | {p['params']} |")
    return "\n".join(lines)


def report(path: str) -> str:
    if os.path.exists(os.path.join(path, "metrics.json")):
        return run_table(path)
    return teacher_table(path)
