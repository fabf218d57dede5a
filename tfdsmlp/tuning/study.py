"""`run_study`: the hyperparameter search behind `python -m tfdsmlp tune`.

Why Optuna rather than KerasTuner: Optuna keeps the whole study in an SQL
database (here SQLite at STUDY/study.db), so a study resumes after
`kill -9` and several processes can work on one study at once; its
heartbeat and `RetryHeartbeatStaleTrialCallback` turn a killed trial into
a queued retry; its pruning API (`trial.report` / `should_prune`, median
and Hyperband pruners) is a two-line Keras callback; and it does not
depend on Keras, whereas current KerasTuner releases target Keras 3 while
this package trains with Keras 2 (tf-keras). KerasTuner's oracle also
keeps its state in per-trial JSON files that one chief process owns.

Each trial is an ordinary teacher phase (`objective.Objective`) in
STUDY/trials/<n>; the study stops when `trials` trials have finished
(complete or pruned), or, for new trials, when `time_budget` seconds have
passed. docs/TUNING.md describes the space, the outputs and resuming.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable

import tfdsmlp  # noqa: F401
from tfdsmlp.config import ConfigError, to_dict
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.models.registry import build_model
from tfdsmlp.predict.progress import duration
from tfdsmlp.run_dir import RunDir, trained_with
from tfdsmlp.training.presets import build_run_config
from tfdsmlp.training.train_config import TrainConfig
from tfdsmlp.tuning import report
from tfdsmlp.tuning.base_trial import enqueue_base_trial
from tfdsmlp.tuning.objective import DSMLPObjective, Objective
from tfdsmlp.tuning.sampler import TrialSeededTPESampler
from tfdsmlp.tuning.space import (
    SETTINGS,
    DSMLPSpace,
    SearchSpace,
    searched_only,
)
from tfdsmlp.tuning.space_file import to_record
from tfdsmlp.tuning.storage import (
    STUDY_NAME,
    open_storage,
    open_study,
    recover_interrupted,
    retry_interrupted_here,
)
from tfdsmlp.tuning.warm_start import copy_trials, load_earlier

import optuna

PRUNERS = ("stalled", "median", "hyperband", "none")


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """What `run_study` returns.

    Attributes:
      out: the study directory.
      finished: trials complete or pruned (all processes).
      best_number: the best trial's number (None: none completed).
      best_value: its validation AUC.
      best_yaml: path of best.yaml (None: none completed).
      trials_md: path of trials.md.
      edges: warnings for the best trial's settings on the edge of their
        searched range (`report.edge_warnings`).
    """

    out: str
    finished: int
    best_number: int | None
    best_value: float | None
    best_yaml: str | None
    trials_md: str
    edges: tuple[str, ...] = ()


def make_pruner(name: str | optuna.pruners.BasePruner, max_epochs: int
                ) -> optuna.pruners.BasePruner:
    """The pruner named `name` (an Optuna pruner is returned as is).

    "stalled" (the default): "median", asked only after an epoch that did
    not raise the trial's best validation AUC, so a trial still improving
    is never stopped. Measured on the 1M-row planted Criteo-shaped data
    (docs/RESULTS.md, "Tuned GDCN teacher on planted Criteo-shaped data"):
    the GDCN study's best trial (embedding L2 0.1) had the lowest epoch-1
    AUC of trials 1-9, 0.7404 against 0.7497-0.7598, and rose for 30
    epochs to 0.7644, while "median" cut five trials at epoch 1 (the
    median of three finished trials was 0.7578); had three other trials
    finished before it, "median" would have cut it at epoch 1 too.
    "median": stops a trial whose best validation AUC after an epoch is
    below the median of finished trials' at that epoch (after 3 finished
    trials; epoch 1 already counts); "hyperband": Hyperband over epochs
    1..`max_epochs`; "none": never."""
    if isinstance(name, optuna.pruners.BasePruner):
        return name
    median = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "stalled":
        # patience=0: the last epoch alone must have failed to set a new
        # best before the median pruner is asked (Optuna's PatientPruner,
        # marked experimental since 2.8; its warning would show on every
        # `tune`).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.PatientPruner(median, patience=0)
    if name == "median":
        return median
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(1, max_epochs),
            reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"`pruner` should be one of {list(PRUNERS)}. "
                     f"Received: `pruner={name!r}`")


def fixed_keys(overrides: list[str]) -> set[str]:
    """Config keys ("params.dropout", "train.batch_size") that the teacher
    `--set` overrides fix."""
    keys = set()
    for text in overrides:
        path = text.split("=", 1)[0].strip().split(".")
        if path[0] == "teacher":
            path = path[1:]
        keys.add(".".join(path[:2]))
    return keys


Pruner = str | optuna.pruners.BasePruner


def run_study(data: str | DatasetDir, model: str, out: str,
              trials: int = 20, time_budget: float | None = None,
              preset: str | None = None, overrides: list[str] | None = None,
              seed: int = 0, pruner: Pruner = "stalled",
              space: SearchSpace | DSMLPSpace | None = None,
              deterministic: bool = False,
              log: Callable[[str], None] | None = print,
              teacher: str | None = None,
              warm_start: str | None = None,
              base_trial: bool = True,
              search: list[str] | None = None) -> StudyResult:
    """Searches `space` for `model` on `data` by validation AUC.

    Args:
      data: dataset directory (its test split is never read).
      model: teacher model name (registry).
      out: study directory (created; rerun to resume or extend).
      trials: stop when this many trials are complete or pruned.
      time_budget: seconds after which this process starts no new trial.
      preset: preset name or file under the search (None: defaults).
      overrides: `--set` values as `train` takes them ("train.epochs=20",
        "params.batch_norm=false"); a searched key given here is fixed.
      seed: seed of the sampler (trial n draws from (seed, n)).
      pruner: "stalled", "median", "hyperband", "none" or an Optuna
        pruner (see `make_pruner`).
      space: `SearchSpace` (`DSMLPSpace` for "dsmlp"; default: the
        documented one; `space_file.load_space` reads `tune --space`).
      deterministic: TensorFlow op determinism in every trial.
      log: progress lines (None: silent).
      teacher: with `model="dsmlp"` (and only then): a finished teacher
        run directory (`train --out`), or a teacher study's directory
        (its best trial's run, `teacher_of_study`). Trials are then whole DS-MLP runs
        (`run_dsmlp(..., until="align", teacher_checkpoint=teacher)`)
        over `DSMLPSpace`, scored by the selected model's validation AUC;
        `overrides` are `run`'s full keys ("distill.train.epochs=5").
      warm_start: directory of an earlier study of the same model,
        preset, overrides, data (and teacher) whose finished trials a new
        study starts from (`warm_start.copy_trials`); recorded in the
        setup.
      base_trial: a new study's first trial takes the base settings
        (preset <- `--set`) where they lie in the space
        (`base_trial.enqueue_base_trial`); False: the sampler draws it.
      search: the names of the space's settings to search (`tune
        --search`, `searched_only`); the others keep their base values.
        None: every setting of the space. Recorded with the space.

    Raises `StudyError` when `out` holds a study with another setup, and
    `ConfigError` for settings that do not fit the model or the data."""
    if trials <= 0 or (time_budget is not None and time_budget <= 0):
        raise ValueError("`trials` and `time_budget` should be positive. "
                         f"Received: `trials={trials}`, "
                         f"`time_budget={time_budget}`")
    say = log or (lambda *_: None)
    data = DatasetDir.open(data)
    if model == "dsmlp" or teacher is not None:
        if model != "dsmlp":
            raise ConfigError(
                f"--teacher is for `--model dsmlp` only; --model {model} "
                "is a teacher, tuned without one.")
        if teacher is None:
            raise ConfigError(
                "--model dsmlp needs --teacher RUN_DIR: a finished teacher "
                "run (`python -m tfdsmlp train --out RUN_DIR`) whose "
                "teacher every trial loads.")
        return _run_dsmlp_study(data, out, teacher, trials, time_budget,
                                preset, overrides or [], seed, pruner,
                                space or DSMLPSpace(), deterministic, say,
                                warm_start, base_trial, search)
    space = space or SearchSpace()
    if not isinstance(space, SearchSpace):
        raise ValueError("`space` should be a `SearchSpace` for a teacher. "
                         f"Received: {type(space).__name__}")
    overrides = [f"teacher.{o}" if o.split(".")[0] in ("model", "params",
                                                       "train") else o
                 for o in (overrides or [])]
    base = build_run_config(preset, model, None, overrides,
                            teacher_only=True)
    # The model's settings must fit the data before any trial runs.
    build_model(model, base.teacher.params, data.spec)
    fixed = fixed_keys(overrides)
    dims = searched_only(space.dimensions(model, fixed), search,
                         list(SETTINGS), model)
    if not dims:
        raise ConfigError(f"Nothing to search for {model}: every setting "
                          "of the space is fixed by --set.")
    setup = {"model": model, "preset": preset, "overrides": overrides,
             "base": to_dict(base.teacher), **_warm_start(warm_start)}
    return _search(
        out, data, setup, seed, pruner, deterministic, dims, trials,
        time_budget, base.teacher.train.epochs, say, base_trial,
        header=f"{model}: searching",
        objective=Objective(out, data, base, model, dims, fixed,
                            deterministic, log=say),
        write=lambda study: report.write_outputs(study, out, model, preset,
                                                 data.path))


def _search(out, data, setup, seed, pruner, deterministic, dims, trials,
            time_budget, max_epochs, say, base_trial, header, objective,
            write) -> StudyResult:
    """Opens (or resumes) the study of `setup` over `dims` and runs
    `objective` until `trials` trials have finished; `write(study)`
    rewrites the outputs after each trial and at the end. A new study
    starts with the base settings' trial when `base_trial`."""
    pruner_name = pruner if isinstance(pruner, str) else type(pruner).__name__
    setup = {**setup, "dataset_fingerprint": data.fingerprint, "seed": seed,
             "pruner": pruner_name,
             "space": {k: to_record(v) for k, v in dims.items()},
             "deterministic": deterministic}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = setup.get("warm_start")
    # Checked before the new study exists, so a refused command leaves
    # nothing behind.
    earlier = load_earlier(out, source, setup, dims) if source else None
    study = open_study(out, setup, TrialSeededTPESampler(seed),
                       make_pruner(pruner, max_epochs))
    new = not study.get_trials(deepcopy=False)
    if earlier is not None and new:
        copy_trials(study, out, earlier, source, dims, say)
    if base_trial and new and report.finished_count(study) < trials:
        enqueue_base_trial(study, objective.config, objective.model, dims,
                           say)
    for number in recover_interrupted(study):
        say(f"[tune] trial {number} was interrupted (its process is "
            "gone): queued again, to resume in its directory")
    report.write_hparams_config(out, dims)
    done = report.finished_count(study)
    say(f"[tune] {header} {', '.join(dims)} ({done}/{trials} trials "
        f"finished; study {out}/study.db)")
    progress = _Progress(out, trials, time_budget, say,
                         write=lambda: write(study))
    if done < trials:
        stop = optuna.study.MaxTrialsCallback(trials,
                                              states=report.FINISHED)
        try:
            study.optimize(objective, timeout=time_budget,
                           callbacks=[progress, stop],
                           catch=(ConfigError,), gc_after_trial=True)
        except KeyboardInterrupt:
            retry_interrupted_here(study)
            write(study)
            raise
    write(study)
    best = report.best_trial(study)
    return StudyResult(
        out=out, finished=report.finished_count(study),
        best_number=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_yaml=None if best is None else os.path.join(out, "best.yaml"),
        trials_md=os.path.join(out, "trials.md"),
        edges=tuple(report.edge_warnings(study, best)))


def _warm_start(path: str | None) -> dict[str, str]:
    """The setup's record of `--warm-start` (none without it, so that
    studies made before the option resume)."""
    return {} if path is None else {"warm_start": os.path.abspath(path)}


def teacher_of_study(teacher: str, say: Callable[[str], None],
                     flag: str = "--teacher") -> str:
    """The run directory that `--teacher` names: `teacher` itself, or for
    a teacher study's directory (it holds study.db) its best trial's
    `STUDY/trials/<n>`, so that `tune --model dsmlp --teacher STUDY`
    follows `tune --model gdcn --out STUDY` (docs/TUNING.md, "From data to
    an export"), and `run --teacher-checkpoint STUDY` (`flag` names the
    option in messages)."""
    if not os.path.isfile(os.path.join(teacher, "study.db")):
        return teacher
    study = optuna.load_study(study_name=STUDY_NAME,
                              storage=open_storage(teacher))
    if (study.user_attrs.get("setup") or {}).get("model") == "dsmlp":
        raise ConfigError(
            f"{flag} {teacher}: a DS-MLP study, not a teacher one; give "
            "a teacher study (`tune --model gdcn --out STUDY`) or a "
            "finished teacher run (`train --out RUN_DIR`).")
    best = report.best_trial(study)
    if best is None:
        raise ConfigError(
            f"{flag} {teacher}: this teacher study has no complete trial "
            "yet; run it further (the same `tune` command) first.")
    run_dir = os.path.join(teacher, best.user_attrs["run_dir"])
    say(f"{flag} {teacher} is a teacher study: its best trial "
        f"{best.number} (validation AUC {best.value:.4f}), {run_dir}")
    return run_dir


def _teacher_settings(teacher: str) -> dict:
    """{model, params, train} of the teacher of run directory `teacher`
    (train: the settings that trained it, from its phase's fingerprint,
    `trained_with`; {} for weights copied out of their run), as
    best_run.yaml records them for reference."""
    run = RunDir(teacher)
    if not run.is_done("teacher"):
        raise ConfigError(f"--teacher {teacher}: not a finished teacher run "
                          "(no finished teacher phase; run `python -m "
                          f"tfdsmlp train --out {teacher}` first).")
    done = run.read_done("teacher")
    settings = done["settings"]
    theirs = trained_with(done.get("fingerprint")) or {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    train = {k: v for k, v in theirs.items() if k in known}
    return {"model": settings["model"], "params": settings["params"],
            "train": train}


def _run_dsmlp_study(data, out, teacher, trials, time_budget, preset,
                     overrides, seed, pruner, space, deterministic, say,
                     warm_start=None, base_trial=True, search=None):
    """`run_study` for `--model dsmlp --teacher RUN_DIR`."""
    if not isinstance(space, DSMLPSpace):
        raise ValueError("`space` should be a `DSMLPSpace` for dsmlp. "
                         f"Received: {type(space).__name__}")
    teacher = teacher_of_study(teacher, say)
    tsettings = _teacher_settings(teacher)
    tmodel = tsettings["model"]
    base = build_run_config(preset, tmodel, None, overrides,
                            trained_teacher=tsettings)
    build_model("dsmlp", base.student.params, data.spec)
    fixed = {o.split("=", 1)[0].strip() for o in overrides}
    dims = searched_only(space.dimensions(fixed), search,
                         [f.name for f in dataclasses.fields(DSMLPSpace)],
                         "dsmlp")
    if "embedding_dim" in dims and base.distill.init_main_from_teacher:
        raise ConfigError(
            "The --space searches the student's embedding_dim, but "
            "distill.init_main_from_teacher (on in this base config) starts "
            "the student's table from the teacher's, so its width is the "
            f"teacher's ({base.teacher.params['embedding_dim']}). Drop "
            "embedding_dim from the --space file, or search the student's "
            "own table with --set distill.init_main_from_teacher=false.")
    if not dims:
        raise ConfigError("Nothing to search for dsmlp: every setting of "
                          "the space is fixed by --set.")
    setup = {"model": "dsmlp", "teacher": os.path.abspath(teacher),
             "teacher_model": tmodel, "preset": preset,
             "overrides": overrides, "base": to_dict(base),
             **_warm_start(warm_start)}
    return _search(
        out, data, setup, seed, pruner, deterministic, dims, trials,
        time_budget, base.distill.train.epochs + base.align.train.epochs,
        say, base_trial,
        header=f"dsmlp (teacher {tmodel} of {teacher}): searching",
        objective=DSMLPObjective(out, data, base, dims, fixed, teacher,
                                 deterministic, log=say),
        write=lambda study: report.write_dsmlp_outputs(
            study, out, tsettings, teacher, data.path))


class _Progress:
    """After each trial: rewrite the outputs, log n/N, best, ETA."""

    def __init__(self, out, trials, time_budget, say, write):
        self.out, self.trials, self.write = out, trials, write
        self.time_budget, self.say = time_budget, say
        self.start, self.durations = time.time(), []

    def __call__(self, study: optuna.Study, trial) -> None:
        report.write_trial_hparams(self.out, trial)
        self.write()
        secs = report.seconds(trial) or 0.0
        if "same_as" not in trial.user_attrs:  # a twin trains nothing
            self.durations.append(secs)
        done = report.finished_count(study)
        what = _outcome(trial)
        best = report.best_trial(study)
        best_text = ("no complete trial yet" if best is None else
                     f"best {best.value:.4f} (trial {best.number})")
        self.say(f"[tune] trial {trial.number} {what} in {secs:.1f} s; "
                 f"{done}/{self.trials} finished; {best_text}; "
                 f"ETA {self._eta(done)}")

    def _eta(self, done: int) -> str:
        left = max(0, self.trials - done)
        if left == 0:
            return "done"
        if not self.durations:
            return "unknown until a trial has trained"
        eta = left * sum(self.durations) / len(self.durations)
        if self.time_budget is not None:
            budget_left = self.time_budget - (time.time() - self.start)
            if budget_left < eta:
                return f"{duration(max(0.0, budget_left))} (time budget)"
        return duration(eta)


def _outcome(trial) -> str:
    state = trial.state.name.lower()
    if trial.state == optuna.trial.TrialState.COMPLETE:
        twin = trial.user_attrs.get("same_as")
        return (f"complete{'' if twin is None else f' (as trial {twin})'}"
                f": val AUC {trial.value:.4f}, {report.epochs(trial)} "
                "epochs")
    if trial.user_attrs.get("diverged"):
        return f"diverged (pruned): {trial.user_attrs['diverged']}"
    if trial.state == optuna.trial.TrialState.PRUNED:
        return f"pruned after epoch {report.epochs(trial)}"
    return state


def describe(result: StudyResult) -> list[str]:
    """Closing lines for the command line."""
    lines = [f"{result.finished} trials finished -> {result.trials_md}"]
    if result.best_yaml:
        lines.append(f"best: trial {result.best_number}, validation AUC "
                     f"{result.best_value:.4f} -> {result.best_yaml}")
    else:
        lines.append("no trial completed: best.yaml not written")
    lines += [f"warning: {edge}" for edge in result.edges]
    return lines
