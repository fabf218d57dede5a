"""What a study writes besides study.db: trials.md, best.yaml,
best_teacher.yaml (teacher studies), best_run.yaml (DS-MLP studies), tb/.

All are rebuilt from the storage (and the best trial's run
directory), so any process sharing the study can write them, and a study
resumed after `kill -9` writes them whole. Files are replaced atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.run_dir import RunDir
from tfdsmlp.training.presets import STAGES, load_preset
from tfdsmlp.tuning.space import Choice, Distribution, IntRange
from tfdsmlp.tuning.space_file import at_edges, from_record

import optuna
import tensorflow as tf
import yaml
from optuna.trial import FrozenTrial, TrialState
from tensorboard.plugins.hparams import api as hp

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards `--trials`: complete or pruned."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value) if done else None


def seconds(trial: FrozenTrial) -> float | None:
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete
                - trial.datetime_start).total_seconds()
    return None


def epochs(trial: FrozenTrial) -> int:
    """Epochs trained: recorded for complete trials, else the last
    reported epoch."""
    return int(trial.user_attrs.get(
        "epochs", max(trial.intermediate_values, default=0)))


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _note(trial: FrozenTrial, retried: dict[int, int]) -> str:
    notes = []
    if "copied_from" in trial.user_attrs:
        notes.append(f"copied from {trial.user_attrs['copied_from']} "
                     "(--warm-start)")
    base = trial.user_attrs.get("base_trial")
    if base == "all":
        notes.append("the base settings (preset <- --set)")
    elif base:
        notes.append("the base settings, except " + "; ".join(base)
                     + ", drawn")
    if "same_as" in trial.user_attrs:
        notes.append(f"same settings as #{trial.user_attrs['same_as']}: "
                     "its result, not trained again")
    history = trial.system_attrs.get("retry_history", [])
    if history:
        notes.append(f"retry of #{history[-1]} (in "
                     f"{trial.user_attrs.get('run_dir', '?')})")
    if "resumed_from_epoch" in trial.user_attrs:
        notes.append(f"resumed after epoch "
                     f"{trial.user_attrs['resumed_from_epoch']}")
    if trial.user_attrs.get("diverged"):
        notes.append(f"diverged: {trial.user_attrs['diverged']}")
    elif trial.state == TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        notes.append(f"pruned after epoch {step} (val AUC "
                     f"{trial.intermediate_values[step]:.4f})")
    if trial.number in retried:
        notes.append(f"interrupted; retried as #{retried[trial.number]}")
    return "; ".join(notes)


def edge_warnings(study: optuna.Study, best: FrozenTrial | None
                  ) -> list[str]:
    """`space_file.at_edges` for `best` (the study's `best_trial`), over
    the space recorded in the study's setup (so studies made before the
    check get it too); none before a trial completes."""
    if best is None:
        return []
    space = (study.user_attrs.get("setup") or {}).get("space") or {}
    return at_edges({name: from_record(r) for name, r in space.items()},
                    best.params)


def trials_markdown(study: optuna.Study, model: str) -> str:
    """A Markdown table: number, state, params, val AUC, epochs, seconds,
    note (pruning, divergence, retries)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["retry_history"][-1]: t.number
               for t in trials if t.system_attrs.get("retry_history")}
    best = best_trial(study)
    lines = [f"# Tuning study: {model}", ""]
    if best is not None:
        lines += [(f"Best: trial {best.number}, validation AUC "
                   f"{best.value:.4f} (settings in best.yaml)."), ""]
        lines += [f"Warning: {edge}" for edge in edge_warnings(study, best)]
        lines += [""] if lines[-1] else []
    lines += ["| # | state | params | val AUC | epochs | seconds | note |",
              "|---|---|---|---|---|---|---|"]
    for t in trials:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        auc = f"{t.value:.4f}" if t.state == TrialState.COMPLETE else ""
        secs = seconds(t)
        lines.append(f"| {t.number} | {t.state.name} | {params} | {auc} | "
                     f"{epochs(t)} | "
                     f"{'' if secs is None else f'{secs:.1f}'} | "
                     f"{_note(t, retried)} |")
    return "\n".join(lines) + "\n"


def best_preset(teacher: dict[str, Any], model: str,
                preset: str | None) -> dict[str, Any]:
    """The base preset with `model`'s entry replaced by the best trial's
    `teacher` config section: its params, and its training settings as
    the entry's own `train:`, so that the other models and the student's
    stages keep the base preset's training settings."""
    base = load_preset(preset) if preset else {}
    models = dict(base.get("models") or {})
    models[model] = {**teacher["params"], "train": teacher["train"]}
    return json.loads(json.dumps({**base, "models": models}))


def write_outputs(study: optuna.Study, out: str, model: str,
                  preset: str | None, data: str) -> None:
    """Rewrites trials.md and (once a trial completed) best.yaml and
    best_teacher.yaml."""
    _write(os.path.join(out, "trials.md"), trials_markdown(study, model))
    best = best_trial(study)
    if best is None:
        return
    run_dir = os.path.join(out, best.user_attrs["run_dir"])
    teacher = RunDir(run_dir).read_config()["teacher"]
    preset_data = best_preset(teacher, model, preset)
    header = (
        f"# Best trial {best.number} of the tuning study {out} "
        f"(validation AUC {best.value:.4f}).\n"
        f"# A preset: .venv/bin/python -m tfdsmlp train --data {data} "
        f"--model {model} --preset {os.path.join(out, 'best.yaml')} "
        "--out RUN\n"
        f"# Its trained teacher: {run_dir} (for `run "
        "--teacher-checkpoint`).\n")
    _write(os.path.join(out, "best.yaml"),
           header + yaml.safe_dump(preset_data, sort_keys=False))
    base = f" --preset {preset}" if preset else ""
    _write(os.path.join(out, "best_teacher.yaml"), (
        f"# Best trial {best.number}'s teacher as a `--config` file: only "
        "the teacher's settings,\n# so that the student, distillation and "
        "alignment keep the base preset's:\n"
        f"# .venv/bin/python -m tfdsmlp run --data {data} --teacher {model}"
        f"{base} --config {os.path.join(out, 'best_teacher.yaml')} "
        f"--teacher-checkpoint {run_dir} --out RUN\n")
        + yaml.safe_dump({"teacher": {k: teacher[k] for k in
                                      ("model", "params", "train")}},
                         sort_keys=False))


def write_dsmlp_outputs(study: optuna.Study, out: str,
                        teacher: dict[str, Any], teacher_run: str,
                        data: str) -> None:
    """trials.md and, once a trial completed, for `tune --model dsmlp`:
    best.yaml, a preset (`train:` the teacher run's training settings;
    `models:` the teacher's params and the best student's as `dsmlp`;
    `distill:` and `align:` the best trial's stage settings), and
    best_run.yaml, a `run --config` file with the same settings as
    `teacher`, `student`, `distill` and `align` sections."""
    _write(os.path.join(out, "trials.md"), trials_markdown(study, "dsmlp"))
    best = best_trial(study)
    if best is None:
        return
    trial_dir = os.path.join(out, best.user_attrs["run_dir"])
    cfg = RunDir(trial_dir).read_config()
    tmodel = teacher["model"]
    run_cfg = {"teacher": {k: teacher[k] for k in ("model", "params",
                                                   "train")},
               **{k: cfg[k] for k in ("student", *STAGES)}}
    # the same settings as a preset
    preset = {"train": teacher["train"],
              "models": {tmodel: teacher["params"],
                         "dsmlp": cfg["student"]["params"]},
              **{k: cfg[k] for k in STAGES}}
    best_run = os.path.join(out, "best_run.yaml")
    header = (
        f"# Best trial {best.number} of the DS-MLP tuning study {out} "
        f"(validation AUC {best.value:.4f}, teacher {tmodel} of "
        f"{teacher_run}).\n"
        f"# .venv/bin/python -m tfdsmlp run --data {data} --config "
        f"{best_run} --teacher-checkpoint {teacher_run} --out RUN\n")
    copy = ("# To score this trial on test without training it again, "
            f"copy its run first (its finished phases load): cp -r "
            f"{trial_dir} RUN\n")
    _write(os.path.join(out, "best.yaml"), header + (
        "# A preset (the settings of best_run.yaml): run --preset THIS "
        f"--teacher {tmodel}\n") + yaml.safe_dump(
            json.loads(json.dumps(preset)), sort_keys=False))
    _write(best_run, header + copy + yaml.safe_dump(
        json.loads(json.dumps(run_cfg)), sort_keys=False))


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# -- TensorBoard HParams ----------------------------------------------------
def _domain(dist: Distribution) -> hp.Domain:
    if isinstance(dist, Choice):
        return hp.Discrete(list(dist.options))
    if isinstance(dist, IntRange):
        return hp.IntInterval(dist.low, dist.high)
    return hp.RealInterval(float(dist.low), float(dist.high))


def write_hparams_config(out: str, dims: dict[str, Distribution]) -> None:
    """The experiment (searched settings and metrics) in STUDY/tb/, once."""
    root = os.path.join(out, "tb")
    if os.path.isdir(root) and any(n.startswith("events.")
                                   for n in os.listdir(root)):
        return
    hparams = [hp.HParam(name, _domain(d)) for name, d in dims.items()]
    hparams.append(hp.HParam("state", hp.Discrete(
        [s.name for s in (TrialState.COMPLETE, TrialState.PRUNED)])))
    metrics = [hp.Metric("val_auc", display_name="validation AUC"),
               hp.Metric("val_logloss", display_name="validation logloss"),
               hp.Metric("epochs"), hp.Metric("seconds")]
    with tf.summary.create_file_writer(root).as_default():
        hp.hparams_config(hparams=hparams, metrics=metrics)


def write_trial_hparams(out: str, trial: FrozenTrial) -> None:
    """One finished trial in STUDY/tb/<number>/: its settings, validation
    AUC (the last reported one when pruned), logloss, epochs, seconds, and
    the per-epoch validation AUC as `epoch_val_auc`."""
    if trial.state not in FINISHED:
        return
    values = trial.intermediate_values
    auc = (trial.value if trial.state == TrialState.COMPLETE
           else values[max(values)] if values else None)
    writer = tf.summary.create_file_writer(
        os.path.join(out, "tb", str(trial.number)))
    with writer.as_default():
        hp.hparams({**trial.params, "state": trial.state.name},
                   trial_id=str(trial.number))
        for step, value in sorted(values.items()):
            tf.summary.scalar("epoch_val_auc", value, step=step)
        scalars = {"val_auc": auc, "epochs": epochs(trial),
                   "seconds": seconds(trial),
                   "val_logloss": trial.user_attrs.get("val_logloss")}
        for name, value in scalars.items():
            if value is not None:
                tf.summary.scalar(name, float(value), step=1)
    writer.close()
