"""`report DIR --sweep KEY`: one setting swept over seeds, e.g. the KD
weight lambda of the paper's Figure 5 (`distill.kd_weight`).

The runs of DIR are grouped as `report DIR` groups them (config.yaml equal
but for the seeds); the sweep is the largest family of groups whose
configs differ in KEY alone. Each value of KEY gets the mean ± standard
deviation over its runs of the compared model's validation AUC, test AUC
and test log loss, and the value with the best mean validation AUC is
named: the choice a user makes without looking at test. The teacher the
runs distilled from is the reference line (its figures, or their mean
when the runs had several teachers), in the table's notes and the plot.
Runs outside the family (other settings changed too) are named below the
table, never mixed in.
"""

from __future__ import annotations

import difflib
import json
import os
import statistics
from typing import Any

from tfdsmlp.report import (
    RunRecord,
    config_groups,
    config_leaves,
    left_out_lines,
    load_runs,
    mean_sd,
    selected_model,
    without_seeds,
)

_METRICS = (("valid", "auc"), ("test", "auc"), ("test", "logloss"))


def _sort_key(value: Any) -> tuple:
    """Numbers in numeric order, then everything else by its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def sweep_family(runs: list[RunRecord], key: str
                 ) -> tuple[list[tuple[Any, list[RunRecord]]],
                            list[RunRecord]]:
    """([(value of `key`, runs)] sorted by value, runs left out): the
    largest family of seed groups whose configs differ in `key` alone
    (most values, then most runs; the first met on a tie)."""
    if key.split(".")[-1] == "seed":
        raise ValueError(
            f"{key!r} is a seed, what the sweep averages over; sweep a "
            "setting (e.g. distill.kd_weight), or compare seeds with "
            "`report DIR` (a row per run).")
    families: dict[str, list[tuple[Any, list[RunRecord]]]] = {}
    known: set[str] = set()
    for _, members in config_groups(runs):
        leaves = config_leaves(without_seeds(members[0].config))
        known |= leaves.keys()
        rest = json.dumps({k: v for k, v in leaves.items() if k != key},
                          sort_keys=True, default=str)
        families.setdefault(rest, []).append((leaves.get(key), members))
    if key not in known:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        raise ValueError(
            f"no run has a setting {key!r} in its config.yaml"
            + (f"; did you mean {', '.join(close)}?" if close else
               "; name a dotted key of config.yaml, e.g. "
               "distill.kd_weight."))
    family = max(families.values(),
                 key=lambda f: (len(f), sum(len(m) for _, m in f)))
    if len(family) < 2:
        raise ValueError(
            f"no two groups of runs differ in {key!r} alone (seeds aside); "
            "`report DIR` lists the groups and how they differ.")
    left_out = [r for f in families.values() if f is not family
                for _, members in f for r in members]
    return sorted(family, key=lambda item: _sort_key(item[0])), left_out


def family_teachers(family: list[tuple[Any, list[RunRecord]]]
                    ) -> list[dict[str, Any]]:
    """The distinct teachers of the family's runs (their metrics.json
    `teacher` phase; a teacher loaded by every run counts once), in the
    order first met."""
    seen: dict[tuple, dict[str, Any]] = {}
    for _, members in family:
        for m in members:
            teacher = m.metrics["phases"].get("teacher")
            if teacher is not None:
                seen.setdefault(tuple(teacher[s][k] for s, k in _METRICS),
                                teacher)
    return list(seen.values())


def _teacher_line(teachers: list[dict[str, Any]]) -> str:
    cells = [f"{name} {mean_sd([t[s][k] for t in teachers])}"
             if len(teachers) > 1 else f"{name} {teachers[0][s][k]:.5f}"
             for name, (s, k) in zip(("valid AUC", "test AUC",
                                      "test logloss"), _METRICS)]
    which = ("one teacher, in every run" if len(teachers) == 1 else
             f"mean ± sd of the {len(teachers)} distinct teachers")
    return f"Teacher ({which}): " + ", ".join(cells) + "."


def sweep_table(runs_dir: str, key: str, phase: str | None = None,
                plot: str | None = None) -> str:
    """Markdown: one row per value of `key` (see the module docstring),
    of each run's selected model or of `phase`'s; with `plot`, also a PNG
    of validation and test AUC (mean ± standard deviation) against the
    value."""
    runs, missing, unfinished = load_runs(runs_dir, phase)
    family, left_out = sweep_family(runs, key)
    scores = {r.path: selected_model(r.metrics, phase)[1] for r in runs}
    lines = [f"| {key} | runs | valid AUC | test AUC | test logloss |",
             "|---|---|---|---|---|"]
    means = []
    for value, members in family:
        cells = [mean_sd([scores[m.path][s][k] for m in members])
                 for s, k in _METRICS]
        means.append((value, statistics.fmean(
            scores[m.path]["valid"]["auc"] for m in members), members))
        lines.append(f"| {value} | {len(members)} ("
                     + ", ".join(m.name for m in members) + ") | "
                     + " | ".join(cells) + " |")
    best = max(means, key=lambda m: m[1])
    lines += ["", (f"Best by validation AUC: {key} = {best[0]} "
                   f"(mean {best[1]:.5f} over {len(best[2])} run(s)).")]
    teachers = family_teachers(family) if phase != "teacher" else []
    if teachers:
        lines.append(_teacher_line(teachers))
    if left_out:
        lines.append("Not in the sweep (other settings differ too): "
                     + ", ".join(r.name for r in left_out) + ".")
    lines += left_out_lines(missing, unfinished, phase)
    if plot:
        _plot(family, scores, key, plot, teachers, phase or "selected model")
        lines.append(f"Plot: {plot}")
    return "\n".join(lines)


def _plot(family, scores, key: str, path: str, teachers, label: str) -> None:
    from tfdsmlp.experiments.aggregate import pyplot, save_figure

    numeric = all(_sort_key(v)[0] == 0 for v, _ in family)
    xs = [float(v) if numeric else i for i, (v, _) in enumerate(family)]
    fig, axes = pyplot().subplots(1, 2, figsize=(8, 3.2))
    for ax, split in zip(axes, ("valid", "test")):
        values = [[scores[m.path][split]["auc"] for m in members]
                  for _, members in family]
        means = [statistics.fmean(v) for v in values]
        ax.errorbar(xs, means,
                    yerr=[statistics.stdev(v) if len(v) > 1 else 0.0
                          for v in values], marker="o", capsize=3,
                    label=label)
        for x, mean, v in zip(xs, means, values):  # runs behind each point
            ax.annotate(f"n={len(v)}", (x, mean), textcoords="offset points",
                        xytext=(5, -11), fontsize=7)
        if teachers:
            ax.axhline(statistics.fmean(t[split]["auc"] for t in teachers),
                       color="gray", linestyle="--", label="teacher")
        ax.legend()
        ax.set_xlabel(key)
        ax.set_ylabel(f"{split} AUC (mean ± sd)")
        if not numeric:
            ax.set_xticks(xs, [str(v) for v, _ in family])
    save_figure(fig, os.path.abspath(path))
