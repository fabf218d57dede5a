"""AUC vs inference cost of the exported teachers and DS-MLPs (issue 6).

Every model of the frontier is exported as a TF Serving SavedModel under
OUT/saved_models/<label>/1 and timed through its `predict_indexed`
signature, all in one process and interleaved over `rounds` (the median
round counts), so the ratios compare like with like on a noisy machine.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tfdsmlp.experiments.aggregate import pyplot, save_figure
from tfdsmlp.experiments.plan import Job
from tfdsmlp.experiments.runner import job_dir, job_metrics

import numpy as np

BIG = "batch4096_examples_per_s"
# Teachers whose batch-4096 throughput the DS-MLP should at least double.
COSTLY = ("finalmlp", "autoint", "xdeepfm")


def entry_label(job: Job) -> str:
    """dsmlp_<teacher> for the preset DS-MLP, dsmlp_<teacher>_w<width>
    for a width variant (from the content-derived job name)."""
    variant = job.name[len(f"dsmlp_{job.model}_"):].rsplit("_s", 1)[0]
    if variant == "full":
        return f"dsmlp_{job.model}"
    return f"dsmlp_{job.model}_{variant.replace('width', 'w')}"


def frontier_entries(jobs: list[Job], out_dir: str) -> list[dict[str, Any]]:
    """Finished models of the frontier (first seed): each compat teacher,
    its preset DS-MLP and its narrow (frontier) DS-MLP, and every DS-MLP of
    the width group."""
    entries = []
    first = min((j.seed for j in jobs), default=0)
    for job in jobs:
        m = job_metrics(out_dir, job)
        if m is None or job.command != "run" or job.seed != first:
            continue
        groups = dict(job.memberships)
        dsmlp = m["phases"].get("dsmlp") or m["phases"]["student"]
        if "compat" in groups:
            entries.append({"label": f"teacher_{job.model}", "kind": "teacher",
                            "teacher": job.model, "run": job_dir(out_dir, job),
                            "phase": "teacher",
                            "test_auc": m["phases"]["teacher"]["test"]["auc"],
                            "params": m["phases"]["teacher"]["params"]})
        if groups.keys() & {"compat", "width", "frontier"}:
            label = entry_label(job)
            if any(e["label"] == label for e in entries):
                continue
            entries.append({"label": label, "kind": "dsmlp",
                            "teacher": job.model, "run": job_dir(out_dir, job),
                            "phase": "dsmlp",
                            "test_auc": dsmlp["test"]["auc"],
                            "params": dsmlp["params"]})
    return entries


def measure(entries: list[dict[str, Any]], out_dir: str, data_dir: str,
            rounds: int = 3, repeats: int = 300, log=print) -> dict:
    """Exports (once) and times every entry; returns and writes
    OUT/frontier.json."""
    from tfdsmlp.bench import _saved_model_fn, inference
    from tfdsmlp.export import export_run

    base = os.path.join(out_dir, "saved_models")
    fns = {}
    for e in entries:
        path = os.path.join(base, e["label"], "1")
        if not os.path.isdir(path):
            log(f"[frontier] export {e['label']} ({e['run']}, {e['phase']})")
            export_run(e["run"], e["label"], phase=e["phase"], version=1,
                       base_dir=base, data_dir=data_dir)
        fns[e["label"]] = _saved_model_fn(path)
    timings: dict[str, list[dict]] = {label: [] for label in fns}
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        log(f"[frontier] timing round {r + 1}/{rounds}")
        for label, fn in fns.items():
            timings[label].append(inference(fn, data_dir, 4096, repeats))
    result = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "load_average_before": load_before,
              "cpus": os.cpu_count(), "rounds": rounds, "repeats": repeats,
              "models": []}
    for e in entries:
        runs = timings[e["label"]]
        timed = {k: float(np.median([t[k] for t in runs])) for k in runs[0]}
        result["models"].append({**e, **timed})
    with open(os.path.join(out_dir, "frontier.json"), "w",
              encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return result


def best_replacements(models: list[dict]) -> list[dict[str, Any]]:
    """Per teacher: the fastest (batch 4096) DS-MLP with a higher test AUC
    that is no slower at batch 1 (p50) and at batch 4096, among those
    distilled from that teacher if any qualifies; None if none."""
    out = []
    for t in (m for m in models if m["kind"] == "teacher"):
        ok = [m for m in models if m["kind"] == "dsmlp"
              and m["test_auc"] > t["test_auc"]
              and m["batch1_p50_ms"] <= t["batch1_p50_ms"]
              and m[BIG] >= t[BIG]]
        # prefer the teacher's own students, else any DS-MLP
        own = [m for m in ok if m["teacher"] == t["teacher"]]
        best = max(own or ok, key=lambda m: m[BIG]) if ok else None
        need = 2.0 if t["teacher"] in COSTLY else 1.0
        out.append({"teacher": t, "dsmlp": best, "need": need,
                    "ratio": best[BIG] / t[BIG] if best else None})
    return out


def frontier_markdown(result: dict, plot_path: str | None = None) -> str:
    models = sorted(result["models"], key=lambda m: -m[BIG])
    lines = [(f"Exported SavedModels (`predict_indexed`), median of "
             f"{result['rounds']} interleaved rounds, measured "
             f"{result['measured_at']} on {result['cpus']} CPUs (load "
             f"average {result['load_average_before']:.2f} before timing)."),
             "", ("| model | distilled from | test AUC | params | batch-4096 "
             "examples/s | batch-1 p50 ms | batch-1 p99 ms |"),
             "|---|---|---|---|---|---|---|"]
    for m in models:
        src = m["teacher"] if m["kind"] == "dsmlp" else "-"
        lines.append(f"| {m['label']} | {src} | {m['test_auc']:.4f} | "
                     f"{m['params']:,} | {m[BIG]:,.0f} | "
                     f"{m['batch1_p50_ms']:.2f} | {m['batch1_p99_ms']:.2f} |")
    lines += ["", ("| teacher | test AUC | fastest DS-MLP beating it, no "
              "slower at batch 1 and 4096 (its own if any) | its test AUC "
              "| batch-4096 ratio | target | met |"),
              "|---|---|---|---|---|---|---|"]
    for r in best_replacements(result["models"]):
        t, d = r["teacher"], r["dsmlp"]
        target = f">= {r['need']:.0f}x"
        if d is None:
            lines.append(f"| {t['teacher']} | {t['test_auc']:.4f} | none | "
                         f"- | - | {target} | no |")
            continue
        met = "yes" if r["ratio"] >= r["need"] else "no"
        lines.append(f"| {t['teacher']} | {t['test_auc']:.4f} | "
                     f"{d['label']} | {d['test_auc']:.4f} | "
                     f"{r['ratio']:.2f}x | {target} | {met} |")
    if plot_path and frontier_plot(models, plot_path):
        lines += ["", (f"![AUC vs inference cost](plots/"
                      f"{os.path.basename(plot_path)})")]
    return "\n".join(lines)


def frontier_plot(models: list[dict], path: str) -> bool:
    if not models:
        return False
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for kind, marker in (("teacher", "s"), ("dsmlp", "o")):
        pts = [m for m in models if m["kind"] == kind]
        ax.scatter([m[BIG] for m in pts], [m["test_auc"] for m in pts],
                   marker=marker, label=kind)
        for m in pts:
            ax.annotate(m["label"].replace("teacher_", "").replace(
                "dsmlp_", "DS-"), (m[BIG], m["test_auc"]), fontsize=7,
                xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("exported SavedModel, batch-4096 examples/s")
    ax.set_ylabel("test AUC")
    ax.legend()
    return save_figure(fig, path)
