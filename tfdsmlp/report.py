"""Markdown tables from run directories' metrics.json files."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from typing import Any

from tfdsmlp.run_dir import PHASES, RunDir


def without_seeds(value: Any) -> Any:
    """A config with every `seed` key dropped (to group seed repeats)."""
    if isinstance(value, dict):
        return {k: without_seeds(v) for k, v in value.items()
                if k != "seed"}
    if isinstance(value, list):
        return [without_seeds(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A finished run directory's name, config.yaml and metrics.json, each
    read once for the tables."""
    path: str
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @classmethod
    def load(cls, run: RunDir) -> RunRecord:
        return cls(run.path, run.read_config(), run.read_metrics())


def config_groups(runs: list[RunRecord]) -> list[tuple[str, list[RunRecord]]]:
    """Every group of runs whose config.yaml differ in their seeds only
    (data included), as (label, runs) in `runs`' order. The label is the
    members' common name prefix without trailing digits ("gdcn_tuned" for
    gdcn_tuned_2021 .. _2023), else their names joined by "+"; a run alone
    is labelled by its name."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        key = json.dumps(without_seeds(run.config), sort_keys=True,
                         default=str)
        groups.setdefault(key, []).append(run)
    out = []
    for members in groups.values():
        names = [m.name for m in members]
        label = (names[0] if len(names) == 1 else
                 os.path.commonprefix(names).rstrip("0123456789_-.")
                 or "+".join(names))
        out.append((label, members))
    return out


def config_leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of a config's leaves ("distill.kd_weight")."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(config_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def _seeds(run: RunRecord) -> tuple:
    """The run's seed settings, to pair it with a run of another group."""
    return tuple(sorted((k, v) for k, v in config_leaves(run.config).items()
                        if k.split(".")[-1] == "seed"))


def paired_rows(groups: list[tuple[str, list[RunRecord]]],
                selected: dict[str, tuple], max_keys: int = 3) -> list[str]:
    """Markdown rows comparing each two of `groups` (`config_groups`) whose
    configs differ in 1..`max_keys` settings (seeds aside), on the runs of
    equal seeds: B - A of the selected models' test AUC, test log loss and
    valid AUC, mean ± standard deviation over those pairs (A is the group
    met first)."""
    leaves = [(label, members, config_leaves(without_seeds(members[0].config)))
              for label, members in groups]
    rows = []
    for i, (label_a, runs_a, leaves_a) in enumerate(leaves):
        by_seed = {_seeds(r): r for r in runs_a}
        for label_b, runs_b, leaves_b in leaves[i + 1:]:
            keys = sorted(k for k in leaves_a.keys() | leaves_b.keys()
                          if leaves_a.get(k) != leaves_b.get(k))
            pairs = [(by_seed[_seeds(r)], r) for r in runs_b
                     if _seeds(r) in by_seed]
            if not pairs or not 0 < len(keys) <= max_keys:
                continue
            cells = []
            for split, metric in (("test", "auc"), ("test", "logloss"),
                                  ("valid", "auc")):
                deltas = [selected[b.path][1][split][metric]
                          - selected[a.path][1][split][metric]
                          for a, b in pairs]
                cells.append(mean_sd(deltas, sign=True))
            change = "; ".join(f"{k}: {leaves_a.get(k, '-')} -> "
                               f"{leaves_b.get(k, '-')}" for k in keys)
            rows.append(f"| {label_a} | {label_b} | {change} | "
                        f"{len(pairs)} | " + " | ".join(cells) + " |")
    return rows


def mean_sd(values: list[float], sign: bool = False) -> str:
    """"mean ± sample standard deviation" ("mean ± -" for one value)."""
    mean = round(statistics.fmean(values), 5) + 0.0  # no "-0.00000"
    sd = (f"{statistics.stdev(values):.5f}" if len(values) > 1 else "-")
    return f"{mean:{'+' if sign else ''}.5f} ± {sd}"


def load_runs(runs_dir: str, phase: str | None = None
              ) -> tuple[list[RunRecord], list[RunRecord], list[str]]:
    """(runs, missing, unfinished): the finished runs in `runs_dir` by
    name, each config.yaml and metrics.json read once; with `phase`, the
    runs without that phase are moved to `missing`; `unfinished`: the
    names of run directories without a metrics.json yet (still training,
    or stopped), which the tables name instead of leaving out silently."""
    dirs = [RunDir(e.path) for e in sorted(os.scandir(runs_dir),
                                           key=lambda e: e.name)
            if e.is_dir() and RunDir.is_run_dir(e.path)]
    runs = [RunRecord.load(r) for r in dirs
            if os.path.exists(r.metrics_path)]
    unfinished = [os.path.basename(r.path) for r in dirs
                  if not os.path.exists(r.metrics_path)]
    if not runs:
        raise FileNotFoundError(
            f"{runs_dir} is neither a finished run directory (no "
            "metrics.json) nor a directory holding finished runs"
            + (f"; not finished yet: {', '.join(unfinished)}."
               if unfinished else "."))
    if phase is None:
        return runs, [], unfinished
    missing = [r for r in runs if phase not in r.metrics["phases"]]
    runs = [r for r in runs if r not in missing]
    if not runs:
        raise ValueError(f"no run in {runs_dir} has a phase {phase!r}")
    return runs, missing, unfinished


def left_out_lines(missing: list[RunRecord], unfinished: list[str],
                   phase: str | None) -> list[str]:
    """The notes naming the runs `load_runs` kept out of the tables: those
    without `phase` (`missing`) and those without metrics.json yet
    (`unfinished`); none: no lines."""
    lines = []
    if missing:
        lines.append(f"Runs without a {phase!r} phase, not in the tables: "
                     + ", ".join(r.name for r in missing) + ".")
    if unfinished:
        lines.append("Not finished (no metrics.json yet), not in the "
                     "tables: " + ", ".join(unfinished) + ".")
    return lines


def runs_table(runs_dir: str, phase: str | None = None) -> str:
    """One row per run directory in `runs_dir`: the model it selected by
    validation AUC (`metrics.json` `selected`; the teacher of a `train`
    run), or with `phase` that phase's model ("student": the stage-1
    student; runs without it are named below the table). Then, where runs
    differ only in their seeds (`config_groups`), the mean ± standard
    deviation of each group; and where groups differ in one to three
    settings, their paired differences on equal seeds (`paired_rows`).
    Each run's config.yaml and metrics.json are read once."""
    lines = [("| run | model | test AUC | test logloss | valid AUC "
              "| valid logloss | epochs | best epoch | params | train s |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    runs, missing, unfinished = load_runs(runs_dir, phase)
    selected = {run.path: selected_model(run.metrics, phase) for run in runs}
    for run in runs:
        name, p = selected[run.path]
        lines.append(
            f"| {run.name} | {name} "
            f"| {p['test']['auc']:.4f} | {p['test']['logloss']:.4f} "
            f"| {p['valid']['auc']:.4f} | {p['valid']['logloss']:.4f} "
            f"| {p.get('epochs', '-')} | {p.get('best_epoch', '-')} "
            f"| {p['params']} | {p.get('train_seconds', '-')} |")
    groups = config_groups(runs)
    repeated = [(label, members) for label, members in groups
                if len(members) > 1]
    if repeated:
        lines += ["", ("Runs that differ only in their seeds (mean ± "
                  "standard deviation):"), "",
                  ("| runs | n | test AUC | test logloss | valid AUC "
                   "| valid logloss |"), "|---|---|---|---|---|---|"]
        for label, members in repeated:
            phases = [selected[m.path][1] for m in members]
            cells = [mean_sd([p[split][metric] for p in phases])
                     for split, metric in (("test", "auc"),
                                           ("test", "logloss"),
                                           ("valid", "auc"),
                                           ("valid", "logloss"))]
            lines.append(f"| {label} | {len(members)} | "
                         + " | ".join(cells) + " |")
    paired = paired_rows(groups, selected)
    if paired:
        lines += ["", ("Runs that differ in one to three settings, paired "
                       "by their seeds (B - A, mean ± standard deviation "
                       "over the pairs):"), "",
                  ("| A | B | settings (A -> B) | pairs | test AUC "
                   "| test logloss | valid AUC |"),
                  "|---|---|---|---|---|---|---|", *paired]
    left_out = left_out_lines(missing, unfinished, phase)
    if left_out:
        lines += ["", *left_out]
    return "\n".join(lines)


def selected_model(metrics: dict[str, Any], phase: str | None = None
              ) -> tuple[str, dict[str, Any]]:
    """(model name, metrics) of a run's selected phase (or of `phase`) from
    its metrics.json: the teacher's model name for a teacher, else
    "dsmlp" / "student" and the teacher's (`dsmlp (gdcn)`)."""
    phase = phase or (metrics.get("selected") or {}).get("phase", "teacher")
    teacher = metrics["models"]["teacher"]
    name = teacher if phase == "teacher" else f"{phase} ({teacher})"
    return name, metrics["phases"][phase]


def selected_line(metrics: dict[str, Any]) -> str | None:
    """"selected for export: PHASE (valid AUC a, +m over RUNNER_UP)" from
    a run's metrics (`selected`), or None for a teacher-only run (or a
    run from before selection was recorded)."""
    selected = metrics.get("selected") or {}
    if selected.get("phase", "teacher") == "teacher":
        return None
    margin = selected.get("margin")
    runner_up = selected.get("runner_up") or "the other stage"
    return (f"selected for export: {selected['phase']} (valid AUC "
            f"{selected['valid_auc']:.4f}"
            + (f", {margin:+.4f} over {runner_up}" if margin is not None
               else "") + ")")


def run_table(run_dir: str) -> str:
    """One row per phase of a run (its training seconds; "loaded" for a
    teacher loaded with --teacher-checkpoint, "-" for a stream, scored
    from its phase's model), then the model selected for export and the
    run's warnings."""
    m = RunDir.open(run_dir).read_metrics()
    lines = [("| phase | valid AUC | test AUC | test logloss "
             "| RelaImpr vs teacher (test) | epochs | params | train s |"),
             "|---|---|---|---|---|---|---|---|"]
    for name, p in m["phases"].items():
        seconds = p.get("train_seconds")
        seconds = (f"{seconds:.0f}" if seconds is not None else
                   "loaded" if p.get("loaded_from") else "-")
        lines.append(
            f"| {name} | {p['valid']['auc']:.4f} | {p['test']['auc']:.4f} "
            f"| {p['test']['logloss']:.4f} "
            f"| {p['test']['rela_impr_vs_teacher']:+.2f}% "
            f"| {p.get('epochs', '-')} | {p['params']} | {seconds} |")
    line = selected_line(m)
    lines += ([line] if line else []) + m.get("warnings", [])
    return "\n".join(lines)


def epochs_table(run_dir: str) -> str:
    """One row per epoch of each trained phase of a run directory: the
    exact validation AUC and log loss and the learning rate of that epoch,
    from the phase's `done.json` (or, for a phase still training, its
    backup's `state.json`, marked "in progress"); the epoch the schedule
    kept (`best_epoch`) is marked. Needs no metrics.json, so it also reads
    a run that is still going (e.g. one started with --quiet)."""
    run = RunDir.open(run_dir)
    lines = [("| phase | epoch | valid AUC | valid logloss | learning rate "
              "| kept |"), "|---|---|---|---|---|---|"]
    found = False
    for phase in PHASES:
        state = os.path.join(run.backup_dir(phase), "state.json")
        if run.is_done(phase):
            info, label = run.read_done(phase)["info"], phase
            best = info.get("best_epoch")
        elif os.path.exists(state):
            with open(state, encoding="utf-8") as f:
                info, label = json.load(f), f"{phase} (in progress)"
            best = None
        else:
            continue
        history = info.get("history") or {}
        aucs = history.get("val_auc") or []
        if not aucs:  # a loaded phase (--teacher-checkpoint): no epochs
            continue
        found = True
        # val_logloss comes with val_auc (`ExactValidation`); the learning
        # rate is not logged when it is a schedule.
        rates = history.get("learning_rate") or [None] * len(aucs)
        for i, (auc, loss, lr) in enumerate(
                zip(aucs, history["val_logloss"], rates), 1):
            lines.append(
                f"| {label} | {i} | {auc:.4f} | {loss:.4f} | "
                + (f"{lr:.3g}" if lr is not None else "-") + " | "
                + ("yes" if best == i else "") + " |")
    if not found:
        raise FileNotFoundError(
            f"{run_dir}: no phase has trained an epoch yet (no done.json "
            "with a history, no backup state.json).")
    return "\n".join(lines)


def report(path: str, epochs: bool = False, phase: str | None = None,
           sweep: str | None = None, plot: str | None = None) -> str:
    """`epochs_table` with `epochs`, else `run_table` for a run directory,
    and for a directory of runs `sweep_table` of the setting `sweep` (with
    its `plot`), else `runs_table` (of `phase`'s models, if given)."""
    if plot and not sweep:
        raise ValueError("--plot draws a sweep; give --sweep KEY "
                         "(e.g. --sweep distill.kd_weight).")
    if sweep and (epochs or RunDir.is_run_dir(path)):
        raise ValueError("--sweep compares the runs of a directory of "
                         "runs; give that directory, without --epochs.")
    if epochs:
        return epochs_table(path)
    if RunDir.is_run_dir(path):
        if phase is not None:
            raise ValueError("--phase compares the runs of a directory of "
                             "runs; for one run, `report RUN` shows every "
                             "phase.")
        return run_table(path)
    if sweep:
        from tfdsmlp.sweep_report import sweep_table  # imports this module

        return sweep_table(path, sweep, phase, plot)
    return runs_table(path, phase)
