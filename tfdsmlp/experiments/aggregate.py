"""Tables (mean +- std over seeds) and plots from finished experiment jobs."""

from __future__ import annotations

import os
from collections import defaultdict

from tfdsmlp.experiments.plan import Job
from tfdsmlp.experiments.runner import job_metrics

import numpy as np


def _final(metrics: dict) -> dict:
    """The DS-MLP's (or, for a `train` run, the model's) valid/test
    metrics."""
    phases = metrics["phases"]
    return (phases.get("dsmlp") or phases.get("student")
            or phases["teacher"])


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def collect(jobs: list[Job], out_dir: str) -> dict[str, list]:
    """{(group, key): [(job, final metrics, teacher metrics)]}."""
    rows: dict = defaultdict(list)
    for job in jobs:
        m = job_metrics(out_dir, job)
        if m is None or job.command != "run":
            continue
        for group, key in job.memberships:
            rows[(group, key)].append(
                (job, _final(m), m["phases"]["teacher"]))
    return rows


def paired_delta(rows, group: str, key: str, base: str,
                 split: str = "test") -> str:
    """Mean over seeds of (row `key` - row `base`) DS-MLP AUC on `split`,
    using only the seeds both rows have ("-" for the base row or when they
    share none); the count of seeds in parentheses."""
    if key == base:
        return "-"
    base_auc = {it[0].seed: it[1][split]["auc"]
                for it in rows.get((group, base), [])}
    deltas = [it[1][split]["auc"] - base_auc[it[0].seed]
              for it in rows[(group, key)] if it[0].seed in base_auc]
    if not deltas:
        return "-"
    mean = round(float(np.mean(deltas)), 4) + 0.0  # no "-0.0000"
    return f"{mean:+.4f} ({len(deltas)})"


def table(rows, group: str, first_col: str, with_teacher: bool,
          base: tuple[str, str] | None = None) -> str:
    """Mean +- std per row of `group`; with `base` = (row, split), a column
    of the paired AUC difference to that row on that split."""
    head = f"| {first_col} | runs | "
    head += ("teacher test AUC | teacher test logloss | " if with_teacher
             else "")
    head += "DS-MLP valid AUC | DS-MLP test AUC | DS-MLP test logloss |"
    if base:
        head += f" {base[1]} AUC vs {base[0]}, same seeds (n) |"
    cols = head.count("|") - 1
    lines = [head, "|" + "---|" * cols]
    for (g, key), items in sorted(rows.items()):
        if g != group:
            continue
        auc = lambda part, s: [it[part][s]["auc"] for it in items]  # noqa
        loss = lambda part: [it[part]["test"]["logloss"] for it in items]  # noqa
        cells = [key, str(len(items))]
        if with_teacher:
            cells += [_ms(auc(2, "test")), _ms(loss(2))]
        cells += [_ms(auc(1, "valid")), _ms(auc(1, "test")), _ms(loss(1))]
        if base:
            cells.append(paired_delta(rows, group, key, *base))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def width_teachers(jobs: list[Job], out_dir: str) -> dict[int, dict]:
    """{w: final metrics} of the finished teachers of the width curve."""
    out = {}
    for job in jobs:
        m = job_metrics(out_dir, job)
        width = dict(job.memberships).get("width")
        if width and job.command == "train" and m:
            out[int(width)] = _final(m)
    return out


def width_table(rows, jobs: list[Job], out_dir: str) -> str:
    """Teacher of width w (its own run) beside the DS-MLP of width w
    (distilled from the preset teacher)."""
    teachers = width_teachers(jobs, out_dir)
    students = {int(k): items for (g, k), items in rows.items()
                if g == "width"}
    lines = [("| width w | teacher MLP w x 3: test AUC | teacher test logloss "
             "| DS-MLP main w x 3 + parallel (w/2) x 3: test AUC "
             "| DS-MLP test logloss | DS-MLP valid AUC |"),
             "|---|---|---|---|---|---|"]
    for w in sorted(set(teachers) | set(students)):
        t, items = teachers.get(w), students.get(w, [])
        cells = [str(w)]
        cells += ([f"{t['test']['auc']:.4f}", f"{t['test']['logloss']:.4f}"]
                  if t else ["-", "-"])
        cells += [_ms([it[1]["test"]["auc"] for it in items]),
                  _ms([it[1]["test"]["logloss"] for it in items]),
                  _ms([it[1]["valid"]["auc"] for it in items])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> bool:
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=120)
    pyplot().close(fig)
    return True


def compat_checks(rows) -> str:
    """The issue-6 quality targets, checked on the compat table's means."""
    means = {}
    for (g, key), items in sorted(rows.items()):
        if g == "compat":
            means[key] = (float(np.mean([it[2]["test"]["auc"]
                                         for it in items])),
                          float(np.mean([it[1]["test"]["auc"]
                                         for it in items])), len(items))
    if not means:
        return ""
    lines = ["Targets (mean test AUC over the runs of each row):", ""]
    for key, (teacher, dsmlp, n) in means.items():
        verdict = "above" if dsmlp > teacher else "NOT above"
        lines.append(f"- {key}: DS-MLP {dsmlp:.4f} is {verdict} its "
                     f"teacher's {teacher:.4f} ({dsmlp - teacher:+.4f}, "
                     f"{n} run{'s' * (n > 1)})")
    best_t = max(means, key=lambda k: means[k][0])
    best_d = max(means, key=lambda k: means[k][1])
    margin = means[best_d][1] - means[best_t][0]
    lines.append(f"- best DS-MLP ({best_d} teacher, {means[best_d][1]:.4f}) "
                 f"vs best teacher ({best_t}, {means[best_t][0]:.4f}): "
                 f"{margin:+.4f} (target >= +0.0010: "
                 f"{'met' if margin >= 0.001 else 'NOT met'})")
    return "\n".join(lines)


def width_plot(rows, jobs: list[Job], out_dir: str, path: str) -> bool:
    """Test AUC vs hidden width for the teacher and the DS-MLP student."""
    plt = pyplot()
    student = sorted((int(k), items[0][1]["test"]["auc"])
                     for (g, k), items in rows.items() if g == "width")
    teacher = [(w, m["test"]["auc"])
               for w, m in width_teachers(jobs, out_dir).items()]
    if not student and not teacher:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for pts, label in ((sorted(teacher), "teacher (MLP part)"),
                       (student, "DS-MLP (main w, parallel w/2)")):
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden width (3 layers)")
    ax.set_ylabel("test AUC")
    ax.legend()
    return save_figure(fig, path)


def sweep_plot(rows, path: str) -> bool:
    plt = pyplot()
    pts = sorted((k, items[0][1]["valid"]["auc"])
                 for (g, k), items in rows.items() if g == "sweep")
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([p[0] for p in pts], [p[1] for p in pts])
    ax.set_ylim(min(p[1] for p in pts) - 0.002, max(p[1] for p in pts)
                + 0.001)
    ax.set_ylabel("DS-MLP valid AUC")
    ax.tick_params(axis="x", rotation=30)
    return save_figure(fig, path)


def kd_plot(rows, path: str) -> bool:
    """Paper Figure 5's lambda axis over seeds: the DS-MLP's mean valid and
    test AUC (error bars: std over seeds) against the KD weight, with the
    teacher's mean test AUC as a line."""
    from tfdsmlp.experiments.plan import KD_ROW_WEIGHTS, kd_key

    items = {k: v for (g, k), v in rows.items() if g == "kd"}
    if not items:
        return False
    weight = KD_ROW_WEIGHTS.__getitem__
    keys = sorted(items, key=weight)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for split, marker in (("valid", "o"), ("test", "s")):
        aucs = [[it[1][split]["auc"] for it in items[k]] for k in keys]
        ax.errorbar([weight(k) for k in keys], [np.mean(a) for a in aucs],
                    yerr=[np.std(a) for a in aucs], marker=marker,
                    capsize=3, label=f"DS-MLP {split}")
    teacher = [it[2]["test"]["auc"] for k in keys for it in items[k]]
    ax.axhline(float(np.mean(teacher)), color="gray", linestyle="--",
               label="teacher test (mean)")
    ax.set_xlabel(f"KD weight lambda (0: w/o KD; {kd_key(1)})")
    ax.set_ylabel("AUC (mean ± std over seeds)")
    ax.legend()
    return save_figure(fig, path)


def markdown(jobs: list[Job], out_dir: str, plot_dir: str,
             command_line: str) -> str:
    rows = collect(jobs, out_dir)
    parts = [(f"Generated by `{command_line}` from the runs under "
             f"`{out_dir}`; every number below comes from that run "
             "directory's metrics.json files."), ""]
    sections = (("defaults", "stage-1 variant", False, None,
                 ("Stage-1 defaults (paper vs public code), chosen by "
                 "validation AUC")),
                ("compat", "teacher", True, None,
                 "Compatibility with teachers (Table 5 analogue)"),
                ("ablation", "variant", True, ("full", "test"),
                 "Ablation with the best teacher (Table 6 analogue)"),
                ("sweep", "setting", False, ("lambda1_ab1_1", "valid"),
                 "Hyper-parameter sweep on validation (Figure 5 analogue)"),
                ("width", "", True, None,
                 "Width scaling (Figure 2 analogue)"),
                ("align_lr", "stage-2 learning rate", False,
                 ("0.001 (preset)", "valid"),
                 "Stage 2's learning rate, chosen by validation AUC"),
                ("kd", "KD weight lambda", True, ("1 (preset)", "test"),
                 ("Where distillation pays: the KD weight over seeds "
                  "(Figure 5's lambda, w/o KD at 0)")))
    for group, col, with_teacher, base, title in sections:
        if not any(g == group for g, _ in rows):
            continue
        body = (width_table(rows, jobs, out_dir) if group == "width"
                else table(rows, group, col, with_teacher, base))
        parts += [f"### {title}", "", body, ""]
        if group == "compat":
            parts += [compat_checks(rows), ""]
    if width_plot(rows, jobs, out_dir, os.path.join(plot_dir,
                                                    "width.png")):
        parts += ["![width scaling](plots/width.png)", ""]
    if sweep_plot(rows, os.path.join(plot_dir, "sweep.png")):
        parts += ["![sweep](plots/sweep.png)", ""]
    if kd_plot(rows, os.path.join(plot_dir, "kd.png")):
        parts += ["![KD weight](plots/kd.png)", ""]
    return "\n".join(parts)
