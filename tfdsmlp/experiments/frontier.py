"""AUC vs inference cost of the exported teachers and DS-MLPs (issues 6, 16).

Every model of the frontier is exported as a TF Serving SavedModel under
OUT/saved_models/<label>/1 and timed through its `predict_indexed`
signature, interleaved over `rounds` (the median round counts), so the
ratios compare like with like on a noisy machine: in this process
(`tf.saved_model.load`) and, where a C compiler is found, in the C++
serving path (`tfdsmlp.serving_bench.harness`: TensorFlow's C API, as TF
Serving loads and runs a SavedModel, no Python). The C++ figures, when
measured, are the ones the frontier is judged by.
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
CPP = "cpp_"  # prefix of the C++ serving path's figures
# The DS-MLP that beats a teacher's AUC should serve at least this many
# times the teacher's batch-4096 throughput (issue 16; issue 6 asked 1x of
# GDCN and DCNv2 and 2x of the costlier teachers).
NEED = 2.0


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
    the width group. A teacher comes from its own `train` job once that has
    finished, whether or not the DS-MLPs distilled from it have."""
    entries = []
    first = min((j.seed for j in jobs), default=0)
    by_name = {j.name: j for j in jobs}
    for job in jobs:
        if job.command != "run" or job.seed != first:
            continue
        groups = dict(job.memberships)
        m = job_metrics(out_dir, job)
        if "compat" in groups:
            teacher = _teacher_entry(by_name.get(job.teacher_job), job, m,
                                     out_dir)
            if teacher is not None:
                entries.append(teacher)
        if m is None or not groups.keys() & {"compat", "width", "frontier"}:
            continue
        label = entry_label(job)
        if any(e["label"] == label for e in entries):
            continue
        dsmlp = m["phases"].get("dsmlp") or m["phases"]["student"]
        entries.append({"label": label, "kind": "dsmlp",
                        "teacher": job.model, "run": job_dir(out_dir, job),
                        "phase": "dsmlp",
                        "test_auc": dsmlp["test"]["auc"],
                        "params": dsmlp["params"]})
    return entries


def _teacher_entry(teacher_job: Job | None, run_job: Job, run_metrics,
                   out_dir: str) -> dict[str, Any] | None:
    """The teacher of a compat DS-MLP job: from its `train` job's run
    directory, else (a teacher job not run here) from the DS-MLP run that
    loaded it; None while neither has finished."""
    source, m = run_job, run_metrics
    if teacher_job is not None:
        teacher_metrics = job_metrics(out_dir, teacher_job)
        if teacher_metrics is not None:
            source, m = teacher_job, teacher_metrics
    if m is None:
        return None
    phase = m["phases"]["teacher"]
    return {"label": f"teacher_{run_job.model}", "kind": "teacher",
            "teacher": run_job.model, "run": job_dir(out_dir, source),
            "phase": "teacher", "test_auc": phase["test"]["auc"],
            "params": phase["params"]}


def _cpp_timer(out_dir: str, log) -> tuple[str | None, str | None]:
    """(the C harness's binary, None), or (None, why it cannot be built)."""
    from tfdsmlp.serving_bench.harness import HarnessError, build_timer
    try:
        return build_timer(os.path.join(out_dir, "build")), None
    except HarnessError as e:
        log(f"[frontier] the C++ serving path is not timed: {e}")
        return None, str(e)


def _cpp_inference(timer: str, path: str, rows, repeats: int
                   ) -> dict[str, float]:
    """`inference`'s figures for the export at `path`, in the C++ path."""
    from tfdsmlp.serving_bench.harness import time_batches
    timed = time_batches(timer, path, "predict_indexed", rows, (1, 4096),
                         repeats, min_large_calls=5)
    return {f"{CPP}batch1_p50_ms": timed[1]["p50_ms"],
            f"{CPP}batch1_p99_ms": timed[1]["p99_ms"],
            f"{CPP}{BIG}": timed[4096]["examples_per_s"]}


def measure(entries: list[dict[str, Any]], out_dir: str, data_dir: str,
            rounds: int = 3, repeats: int = 300, cpp: bool = True,
            log=print) -> dict:
    """Exports (once) and times every entry, in this process and (with
    `cpp`, if the harness builds) in the C++ serving path; returns and
    writes OUT/frontier.json ("cpp_error" says why C++ figures are
    missing)."""
    from tfdsmlp.bench import _saved_model_fn, inference
    from tfdsmlp.export import export_run
    from tfdsmlp.servecheck.raw_rows import read_raw_rows

    base = os.path.join(out_dir, "saved_models")
    fns = {}
    for e in entries:
        path = os.path.join(base, e["label"], "1")
        if not os.path.isdir(path):
            log(f"[frontier] export {e['label']} ({e['run']}, {e['phase']})")
            export_run(e["run"], e["label"], phase=e["phase"], version=1,
                       base_dir=base, data_dir=data_dir)
        fns[e["label"]] = (_saved_model_fn(path), path)
    timer, cpp_error = _cpp_timer(out_dir, log) if cpp else (
        None, "not asked for")
    rows = read_raw_rows(data_dir, "test", limit=4096) if timer else None
    timings: dict[str, list[dict]] = {label: [] for label in fns}
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        log(f"[frontier] timing round {r + 1}/{rounds}")
        for label, (fn, path) in fns.items():
            timed = inference(fn, data_dir, 4096, repeats)
            if timer:
                timed.update(_cpp_inference(timer, path, rows, repeats))
            timings[label].append(timed)
    result = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "load_average_before": load_before,
              "cpus": os.cpu_count(), "rounds": rounds, "repeats": repeats,
              "cpp_error": cpp_error, "models": []}
    for e in entries:
        runs = timings[e["label"]]
        timed = {k: float(np.median([t[k] for t in runs])) for k in runs[0]}
        result["models"].append({**e, **timed})
    with open(os.path.join(out_dir, "frontier.json"), "w",
              encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return result


def judged_path(models: list[dict]) -> str:
    """The prefix of the figures the frontier is judged by: `CPP` when
    every model has C++ serving figures, else "" (in-process)."""
    return CPP if models and all(f"{CPP}{BIG}" in m for m in models) else ""


def best_replacements(models: list[dict]) -> list[dict[str, Any]]:
    """Per teacher: the fastest (batch 4096) DS-MLP with a higher test AUC
    that is no slower at batch 1 (p50) and at batch 4096, among those
    distilled from that teacher if any qualifies; None if none. Speeds of
    the `judged_path`."""
    big, p50 = (f"{judged_path(models)}{k}" for k in (BIG, "batch1_p50_ms"))
    out = []
    for t in (m for m in models if m["kind"] == "teacher"):
        ok = [m for m in models if m["kind"] == "dsmlp"
              and m["test_auc"] > t["test_auc"]
              and m[p50] <= t[p50] and m[big] >= t[big]]
        # prefer the teacher's own students, else any DS-MLP
        own = [m for m in ok if m["teacher"] == t["teacher"]]
        best = max(own or ok, key=lambda m: m[big]) if ok else None
        out.append({"teacher": t, "dsmlp": best, "need": NEED,
                    "ratio": best[big] / t[big] if best else None})
    return out


def frontier_markdown(result: dict, plot_path: str | None = None) -> str:
    judged = judged_path(result["models"])
    models = sorted(result["models"], key=lambda m: -m[f"{judged}{BIG}"])
    paths = ["", CPP] if judged else [""]
    where = {"": "in this process (`tf.saved_model.load`)",
             CPP: "C++ serving path (TensorFlow C API)"}
    cpp_note = ("" if judged else " C++ serving path not timed: "
                f"{result.get('cpp_error') or 'not measured'}.")
    lines = [(f"Exported SavedModels (`predict_indexed`), median of "
             f"{result['rounds']} interleaved rounds, measured "
             f"{result['measured_at']} on {result['cpus']} CPUs (load "
             f"average {result['load_average_before']:.2f} before timing); "
             f"the speeds judged below: {where[judged]}.{cpp_note}"), "",
             "| model | distilled from | test AUC | params | "
             + " | ".join(f"{label}{col}" for label in
                          (("", "C++ ") if judged else ("",))
                          for col in ("batch-4096 examples/s",
                                      "batch-1 p50 ms", "batch-1 p99 ms"))
             + " |", "|---|---|---|---|" + "---|" * (3 * len(paths))]
    for m in models:
        src = m["teacher"] if m["kind"] == "dsmlp" else "-"
        cells = " | ".join(f"{m[p + BIG]:,.0f} | {m[p + 'batch1_p50_ms']:.2f}"
                           f" | {m[p + 'batch1_p99_ms']:.2f}" for p in paths)
        lines.append(f"| {m['label']} | {src} | {m['test_auc']:.4f} | "
                     f"{m['params']:,} | {cells} |")
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
    big = f"{judged_path(models)}{BIG}"
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for kind, marker in (("teacher", "s"), ("dsmlp", "o")):
        pts = [m for m in models if m["kind"] == kind]
        ax.scatter([m[big] for m in pts], [m["test_auc"] for m in pts],
                   marker=marker, label=kind)
        for m in pts:
            ax.annotate(m["label"].replace("teacher_", "").replace(
                "dsmlp_", "DS-"), (m[big], m["test_auc"]), fontsize=7,
                xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("exported SavedModel, batch-4096 examples/s"
                  + (" (C++ serving path)" if big.startswith(CPP) else ""))
    ax.set_ylabel("test AUC")
    ax.legend()
    return save_figure(fig, path)
