"""The one phase runner: teacher -> distillation -> alignment -> evaluation.

`run_dsmlp(data, cfg, run_dir, until=...)` runs the phases up to `until`
("teacher" for `python -m tfdsmlp train`, "align" for `run`) into a
`RunDir` (layout in `tfdsmlp.run_dir`) and returns a `RunResult`.

Rerunning it reuses each finished phase whose fingerprint (data, model
classes, resolved settings of the phase and the phases before it) is
unchanged, resumes an interrupted phase from its last finished epoch (after
any crash, `kill -9` included; with `deterministic=True` bit-identical to
an uninterrupted run), and stops before any work, naming the differing
keys, when a stored phase was made with other settings or data
(`restart_from` trains again from a named phase).

A phase whose best validation AUC is no better than chance, or whose
validation log loss is worse than predicting the base rate, raises
`PhaseDivergedError`; a non-finite loss, weight or prediction raises
`NonFiniteLossError`; in both cases nothing of the phase is saved.

Under `MultiWorkerMirroredStrategy` (TF_CONFIG) every worker runs this same
function; only the chief writes into the run directory (other workers
write weights and backups into temporary directories, as TensorFlow
requires every worker to take part in a save), and all of them read
finished phases and backups from it, so it must be on a filesystem every
worker sees.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp import metrics as M
from tfdsmlp.config import ConfigError, to_dict
from tfdsmlp.data.reader import make_dataset
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP
from tfdsmlp.models.registry import build_model, model_class
from tfdsmlp.models.teacher_parallel import TeacherParallel
from tfdsmlp.run_dir import (
    PHASES,
    RunDir,
    RunDirError,
    differences,
    trained_with,
)
from tfdsmlp.training.backup import checkpointable_dropout
from tfdsmlp.training.callbacks import NonFiniteLossError
from tfdsmlp.training.checkpoints import load_weights_checked, resolve_weights
from tfdsmlp.training.evaluation import evaluate_logits, predict_logits
from tfdsmlp.training.faults import inject_boundary_fault
from tfdsmlp.training.fit import (
    compile_ctr_model,
    compile_trainer,
    evaluate_splits,
    fit_phase,
    named_data_errors,
    skipped_record_counts,
)
from tfdsmlp.training.parameter_server import (
    MIN_SHARD_ROWS,
    is_parameter_server,
    shard_layout,
)
from tfdsmlp.training.precision import precision_policy
from tfdsmlp.training.run_config import TEACHER_PARALLEL, RunConfig
from tfdsmlp.training.selection import (
    SELECTABLE,
    select_by_validation,
    summary_warnings,
)
from tfdsmlp.training.server_weights import copy_weights, non_finite_weights
from tfdsmlp.training.strategy import get_strategy, is_chief

import numpy as np
import tensorflow as tf


class PhaseDivergedError(RuntimeError):
    """A phase ended no better than chance (or than the base rate)."""


@dataclasses.dataclass
class RunResult:
    """What `run_dsmlp` returns.

    Attributes:
      run_dir: the `RunDir` written.
      metrics: the content of metrics.json.
      teacher: the teacher model (trained or loaded).
      student: the DS-MLP (None when `until="teacher"`).
      chief: whether this process wrote the run directory (multi-worker).
      warnings: lines for the user (e.g. the DS-MLP ends below its teacher).
    """

    run_dir: RunDir
    metrics: dict[str, Any]
    teacher: tf.keras.Model
    student: tf.keras.Model | None
    chief: bool = True
    warnings: list[str] = dataclasses.field(default_factory=list)


def _model_part(name: str, params: dict[str, Any]) -> dict[str, Any]:
    cls = model_class("dsmlp" if name == TEACHER_PARALLEL else name)
    return {"model": name, "class": f"{cls.__module__}.{cls.__qualname__}",
            "params": params}


def phase_fingerprints(cfg: RunConfig, data: DatasetDir,
                       teacher_source: dict[str, Any] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """{phase: fingerprint} of the phases of `cfg` (each one includes the
    fingerprints of the phases it builds on)."""
    teacher = {"dataset": data.fingerprint,
               **_model_part(cfg.teacher.model, cfg.teacher.params)}
    if teacher_source is not None:
        teacher["loaded_from"] = teacher_source
    else:
        teacher["train"] = to_dict(cfg.teacher.train)
    out = {"teacher": teacher}
    student = {"teacher": teacher,
               **_model_part(cfg.student.model, cfg.student.params)}
    if cfg.student.model != TEACHER_PARALLEL:
        out["distill"] = {**student, "distill": to_dict(cfg.distill)}
        student = out["distill"]
    if cfg.align.enabled:
        out["align"] = {"previous": student, "align": to_dict(cfg.align)}
    return out


def run_dsmlp(data: str | DatasetDir, cfg: RunConfig,
              run_dir: str | RunDir, strategy: str = "auto",
              teacher_checkpoint: str | None = None, verbose: int = 1,
              deterministic: bool = False, until: str = "align",
              restart_from: str | None = None,
              phase_callbacks: Callable[[str], list] | None = None,
              evaluate_test: bool = True,
              min_shard_rows: int = MIN_SHARD_ROWS) -> RunResult:
    """Runs (or resumes) the phases of `cfg` up to `until` on `data`.

    Args:
      data: dataset directory (path or `DatasetDir`).
      cfg: `RunConfig` (resolved here).
      run_dir: run directory (path or `RunDir`).
      strategy: "auto", "default", "mirrored", "multiworker" or
        "parameter_server" (`get_strategy`).
      teacher_checkpoint: a run directory (its teacher phase) or a weights
        prefix to load instead of training the teacher.
      verbose: 0 silences progress, 1 shows progress bars, 2 progress
        lines (`--progress lines`: one every 30 s and one per epoch).
      deterministic: TensorFlow op determinism: reruns, and runs resumed
        after an interruption, give identical results.
      until: last phase: "teacher", "distill" or "align".
      restart_from: a phase to train again (it and the later phases are
        removed first).
      phase_callbacks: `phase -> [keras callbacks]` added to the fit of
        each trained phase, after the schedule's (their epoch logs hold the
        exact `val_auc` / `val_logloss`), e.g. a tuner's pruning callback.
      evaluate_test: score the test split for metrics.json. False never
        reads it (metrics.json then holds validation only), e.g. for the
        trials of a hyperparameter search (`tfdsmlp.tuning`).
      min_shard_rows: under "parameter_server", variables of at least this
        many rows (the embedding tables) are split over the parameter
        servers (`tfdsmlp.training.parameter_server.RowPartitioner`).

    Raises `RunDirError` when the run directory holds phases made with
    other settings, `WeightsMismatchError` for teacher weights of another
    model, `NonFiniteLossError` and `PhaseDivergedError` when a phase
    diverges (nothing of it is saved; its last good backup is kept)."""
    if until not in PHASES:
        raise ValueError(f"`until` should be one of {PHASES}. Received: "
                         f"{until!r}")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with checkpointable_dropout():  # resumed phases draw the same masks
        return _Runner(DatasetDir.open(data), cfg.resolved(),
                       run_dir if isinstance(run_dir, RunDir)
                       else RunDir(run_dir),
                       strategy, teacher_checkpoint, verbose, until,
                       restart_from, phase_callbacks, evaluate_test,
                       min_shard_rows).run()


class _Runner:
    """One call of `run_dsmlp` (state shared by its phases)."""

    def __init__(self, data, cfg, run, strategy, teacher_checkpoint,
                 verbose, until, restart_from, phase_callbacks=None,
                 evaluate_test=True, min_shard_rows=MIN_SHARD_ROWS):
        self.data, self.cfg, self.run_dir = data, cfg, run
        self.splits = ("valid", "test") if evaluate_test else ("valid",)
        self.strategy_name, self.until = strategy, until
        self.min_shard_rows = min_shard_rows
        self.verbose = verbose
        self.log: Callable[..., None] = (print if verbose
                                         else (lambda *_: None))
        self.teacher_ckpt, self.teacher_source = None, None
        if teacher_checkpoint:
            self.teacher_ckpt, self.teacher_source = self._teacher_source(
                teacher_checkpoint)
        # Every stored phase is checked, also past `until`: none may
        # disagree with the config.yaml this run writes.
        self.fingerprints = phase_fingerprints(cfg, data,
                                               self.teacher_source)
        self.restart_from = restart_from
        self.phase_callbacks = phase_callbacks or (lambda phase: [])
        if restart_from is not None and restart_from not in PHASES:
            raise ValueError(f"--restart-from should be one of {PHASES}. "
                             f"Received: {restart_from!r}")

    def _teacher_source(self, path: str):
        prefix, done = resolve_weights(path, "teacher")
        source = {"weights": os.path.abspath(prefix)}
        if done is not None:
            theirs, ours = done["fingerprint"], {
                "dataset": self.data.fingerprint,
                **_model_part(self.cfg.teacher.model,
                              self.cfg.teacher.params)}
            diff = differences({k: theirs.get(k) for k in ours}, ours)
            if diff:
                raise RunDirError(
                    f"--teacher-checkpoint {path}: its teacher was made "
                    "with other data or settings than this run's teacher:\n"
                    + "\n".join(f"  {d}" for d in diff)
                    + "\nUse the same --teacher, preset and settings as that "
                    "run (its config.yaml), or train the teacher here.")
            source["fingerprint"] = theirs
        return prefix, source

    def _recorded_config(self) -> dict[str, Any]:
        """The resolved config as config.yaml records it. A loaded
        teacher was not trained by this config's `teacher.train`, so its
        record is the training settings of the run that made it (its
        fingerprint's, the keys this version knows; followed back when that
        run loaded it too), or none for a bare weights file: `report DIR`
        then groups the seed repeats of runs on one teacher whatever their
        `teacher.train` said."""
        recorded = to_dict(self.cfg)
        if self.teacher_source is None:
            return recorded
        theirs = trained_with(self.teacher_source.get("fingerprint"))
        ours = recorded["teacher"].pop("train")
        if theirs:
            recorded["teacher"]["train"] = {k: theirs[k] for k in ours
                                            if k in theirs}
        return recorded

    # -- the job ---------------------------------------------------------
    def run(self) -> RunResult:
        run, cfg = self.run_dir, self.cfg
        strat = get_strategy(self.strategy_name, self.min_shard_rows)
        self.strategy = strat
        self.chief = is_chief(strat)
        fit_kw = {"strategy": strat, "verbose": self.verbose}
        # Finished phases past `until` (e.g. `train` over a finished `run`)
        # are loaded and reported, not dropped from the metrics (unless
        # --restart-from removes them).
        kept = [p for p in run.done_phases() if p in self.fingerprints
                and (self.restart_from is None or PHASES.index(p)
                     < PHASES.index(self.restart_from))]
        if kept and PHASES.index(kept[-1]) > PHASES.index(self.until):
            self.until = kept[-1]
        with strat.scope():
            # Models are built (and their settings checked against the
            # data) before the run directory is touched.
            teacher, student = self._build_models()
            if self.restart_from and self.chief:
                for path in run.restart_from(self.restart_from):
                    self.log(f"[run] removed {path}")
            run.check_phases(self.fingerprints)
            if self.chief:
                run.write_config({"data": self.data.path,
                                  "dataset_fingerprint":
                                      self.data.fingerprint,
                                  "strategy": self.strategy_name,
                                  "until": self.until,
                                  "teacher_checkpoint": (
                                      self.teacher_source or {}).get(
                                          "weights"),
                                  **self._recorded_config()})
            phases: dict[str, Any] = {}
            tcfg = cfg.teacher.train

            def train_teacher():
                if self.teacher_ckpt:
                    load_weights_checked(teacher, self.teacher_ckpt,
                                         "teacher")
                    return {"loaded_from": self.teacher_source["weights"]}
                compile_ctr_model(teacher, tcfg)
                return self._fit(teacher, "teacher", tcfg, fit_kw)

            phases["teacher"] = self._phase("teacher", teacher, teacher,
                                            train_teacher, tcfg)
            if student is not None:
                self._student_phases(teacher, student, phases, fit_kw)
        return self._finish(phases, teacher, student)

    def _build_models(self):
        cfg = self.cfg
        # Seeded right before each model is built: its initial weights do
        # not depend on whether earlier phases were trained or loaded.
        tf.keras.utils.set_random_seed(cfg.teacher.train.seed)
        with precision_policy(cfg.teacher.train.precision):
            teacher = _build("teacher", cfg.teacher.model,
                             cfg.teacher.params, self.data)
            teacher(teacher.dummy_inputs())
        if self.until == "teacher":
            return teacher, None
        precision = cfg.distill.train.precision
        if cfg.align.enabled and cfg.align.train.precision != precision:
            raise ConfigError(
                "distill.train.precision and align.train.precision should "
                "agree (both phases train the one student, built once). "
                f"Received: {precision!r} and "
                f"{cfg.align.train.precision!r}")
        _check_init_from_teacher(cfg)
        with precision_policy(precision):
            return teacher, self._build_student(teacher)

    def _build_student(self, teacher):
        cfg = self.cfg
        tf.keras.utils.set_random_seed(cfg.distill.train.seed)
        if cfg.student.model == TEACHER_PARALLEL:
            # Ablation "w/o main MLP": the teacher takes the main stream's
            # place; there is nothing to distil, so stage 1 is skipped.
            parallel = _build("student", "dsmlp", {**cfg.student.params,
                                                   "use_main": False},
                              self.data)
            parallel(parallel.dummy_inputs())
            return TeacherParallel(teacher, parallel)
        student = _build("student", cfg.student.model, cfg.student.params,
                         self.data)
        student(student.dummy_inputs())
        return student

    def _fit(self, trainer, phase, train_cfg, fit_kw):
        if self.chief:
            self.run_dir.start_phase(phase, self.fingerprints[phase])
        return fit_phase(trainer, self.data, train_cfg,
                         log_dir=self.run_dir.tb_dir(phase),
                         backup_dir=self.run_dir.backup_dir(phase),
                         phase=phase, config_prefix=f"{phase}.train",
                         extra_callbacks=self.phase_callbacks(phase),
                         **fit_kw)

    def _student_phases(self, teacher, student, phases, fit_kw):
        cfg, dcfg, acfg = self.cfg, self.cfg.distill, self.cfg.align
        if cfg.student.model != TEACHER_PARALLEL:
            if dcfg.init_main_from_teacher:
                copy_weights(student.embedding, teacher.embedding)
            distiller = Distiller(teacher, student,
                                  kd_weight=dcfg.kd_weight,
                                  kd_loss=dcfg.kd_loss,
                                  temperature=dcfg.temperature,
                                  train_parallel=dcfg.train_parallel)
            compile_trainer(distiller, dcfg.train, student)
            # The stage-1 student is what stage 1 trained: the main MLP
            # alone unless the parallel MLP was trained too.
            scored = student
            if (isinstance(student, DualStreamMLP) and student.use_parallel
                    and not dcfg.train_parallel):
                scored = _Stream(student, "main")
            phases["student"] = self._phase(
                "distill", student, scored,
                lambda: self._fit(distiller, "distill", dcfg.train, fit_kw),
                dcfg.train)
            if scored is not student:
                phases["student"]["params"] = _stream_params(student, "main")
                phases["student"]["scored"] = "main stream"
        if acfg.enabled and self.until == "align":
            aligner = Aligner(student, alpha=acfg.alpha, beta=acfg.beta)
            compile_trainer(aligner, acfg.train, student)
            phases["dsmlp"] = self._phase(
                "align", student, student,
                lambda: self._fit(aligner, "align", acfg.train, fit_kw),
                acfg.train)
        if hasattr(student, "stream_logits"):
            for stream in ("main", "parallel"):
                if getattr(student, f"use_{stream}"):
                    phases[f"dsmlp_{stream}"] = self._summary(
                        _Stream(student, stream), acfg.train)
                    phases[f"dsmlp_{stream}"]["params"] = _stream_params(
                        student, stream)

    def _phase(self, name, model, scored, train, train_cfg) -> dict:
        """Loads phase `name` when it is done, else runs `train`, checks
        the result and commits it; returns the phase's metrics."""
        run = self.run_dir
        if run.is_done(name):
            self.log(f"[{name}] already complete: loading "
                     f"{run.weights_prefix(name)}")
            load_weights_checked(model, run.weights_prefix(name), name)
            info = run.read_done(name)["info"]
            return self._summary(scored, train_cfg, info)
        self.log(f"[{name}] training")
        info = train()
        _check_finite(model, name)
        valid = check_learned(scored, self.data, train_cfg, name)
        if self.chief:
            model.save_weights(run.weights_prefix(name))
            part = (self.cfg.teacher if name == "teacher"
                    else self.cfg.student)
            run.write_done(name, self.fingerprints[name],
                           {"model": part.model, "params": part.params},
                           info)
            inject_boundary_fault(f"after:{name}")
        else:  # every worker takes part in a save
            tmp = tempfile.mkdtemp(prefix=f"tfdsmlp-{name}-")
            try:
                model.save_weights(os.path.join(tmp, "model"))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return self._summary(scored, train_cfg, info, valid=valid)

    def _summary(self, model, train_cfg, info=None, valid=None) -> dict:
        splits = self.splits[1:] if valid is not None else self.splits
        out = evaluate_splits(model, self.data, train_cfg.batch_size,
                              splits=splits,
                              skip_corrupt=train_cfg.skip_corrupt,
                              verbose=self.verbose,
                              label=f"[{model.name}] scoring ")
        if valid is not None:
            out = {"valid": valid, **out}
        out["params"] = int(model.count_params())
        for key in ("epochs", "best_epoch", "train_seconds", "startup",
                    "resumed_from_epoch", "loaded_from"):
            if info and key in info:
                out[key] = info[key]
        return out

    def _finish(self, phases, teacher, student) -> RunResult:
        cfg = self.cfg
        for phase in phases.values():
            for split in self.splits:
                phase[split]["rela_impr_vs_teacher"] = M.rela_impr(
                    phase[split]["auc"], phases["teacher"][split]["auc"])
        metrics: dict[str, Any] = {
            "phases": phases, "until": self.until,
            "models": {"teacher": cfg.teacher.model,
                       **({"student": cfg.student.model}
                          if student is not None else {})},
            "teacher_test_auc": phases["teacher"].get("test", {}).get(
                "auc")}
        trains = [cfg.teacher.train, cfg.distill.train, cfg.align.train]
        if any(c.skip_corrupt for c in trains):
            metrics["skipped_records"] = skipped_record_counts(
                self.data, ("train", *self.splits))
            if any(metrics["skipped_records"].values()):
                self.log(f"[data] skipped unreadable records: "
                         f"{metrics['skipped_records']}")
        if is_parameter_server(self.strategy):
            metrics["parameter_servers"] = {
                "min_shard_rows": self.min_shard_rows,
                "sharded": {name: shard_layout(model) for name, model in
                            (("teacher", teacher), ("student", student))
                            if model is not None}}
        # The teacher_parallel ablation's "main stream" is the teacher:
        # only its fused model is a DS-MLP to export.
        metrics["selected"] = select_by_validation(
            phases, ("dsmlp",) if isinstance(student, TeacherParallel)
            else SELECTABLE)
        warnings = summary_warnings(phases, metrics["selected"]["phase"],
                                    self.run_dir.path, self.data.path)
        metrics["warnings"] = warnings
        metrics["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        if self.chief:
            self.run_dir.write_metrics(metrics)
            inject_boundary_fault("after:metrics")
        return RunResult(self.run_dir, metrics, teacher, student,
                         self.chief, warnings)


def _check_init_from_teacher(cfg: RunConfig) -> None:
    """`distill.init_main_from_teacher` copies the teacher's embedding table
    into the main MLP's: refused up front (not after the teacher trained)
    when the two tables differ in width."""
    if (not cfg.distill.init_main_from_teacher
            or cfg.student.model == TEACHER_PARALLEL):
        return
    ours = cfg.student.params.get("embedding_dim")
    theirs = cfg.teacher.params.get("embedding_dim")
    if ours != theirs:
        raise ConfigError(
            "distill.init_main_from_teacher starts the main MLP's embedding "
            "table from the teacher's, so their widths should agree. "
            f"Received: student.params.embedding_dim={ours}, "
            f"teacher.params.embedding_dim={theirs}; set --set "
            f"student.params.embedding_dim={theirs}, or "
            "distill.init_main_from_teacher=false.")


def _build(part: str, name: str, params: dict[str, Any],
           data: DatasetDir) -> tf.keras.Model:
    """`build_model`, with a settings error naming the config section and
    the dataset it was checked against."""
    try:
        return build_model(name, params, data.spec)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"{part}.params ({name}) do not fit the dataset "
                          f"{data.path}: {e}") from None


def check_learned(model, data: DatasetDir, train_cfg, phase: str
                  ) -> dict[str, float]:
    """Exact validation metrics of a finished phase; raises when they are
    not finite, no better than chance, or worse than the base rate."""
    with named_data_errors(data, ("valid",)):
        logits, labels = predict_logits(model, make_dataset(
            data, "valid", train_cfg.batch_size,
            skip_corrupt=train_cfg.skip_corrupt))
    hint = (f"Lower the learning rate (--set {phase}.train.learning_rate="
            "...), check the data, or train longer; nothing of this phase "
            "is saved or exported.")
    if not np.all(np.isfinite(logits)):
        raise NonFiniteLossError(
            f"Phase {phase!r}: the model predicts NaN/inf on the validation "
            f"split. {hint}")
    result = evaluate_logits(logits, labels)
    rate = float(np.mean(labels))
    base = M.log_loss(labels, np.full_like(labels, rate))
    if not train_cfg.check_learned:
        return result
    if not result["auc"] > 0.5:
        raise PhaseDivergedError(
            f"Phase {phase!r} ended no better than chance: validation AUC "
            f"{result['auc']:.4f} <= 0.5. {hint}")
    if result["logloss"] > base:
        raise PhaseDivergedError(
            f"Phase {phase!r} ended worse than predicting the base rate: "
            f"validation logloss {result['logloss']:.4f} > "
            f"{base:.4f} (always predicting the positive rate "
            f"{rate:.4f}). {hint} (For a smoke run too short to learn, "
            f"--set {phase}.train.check_learned=false.)")
    return result


def _check_finite(model: tf.keras.Model, name: str) -> None:
    """Refuses to save weights holding NaN/inf (never export them)."""
    bad = non_finite_weights(model)
    if bad:
        raise NonFiniteLossError(
            f"Phase {name!r}: the trained weights hold NaN/inf values "
            f"({bad[:3]}); nothing is saved. Lower the learning rate "
            f"(--set {name}.train.learning_rate=...).")


class _Stream(tf.keras.Model):
    """One stream of a DS-MLP as a model (for per-stream evaluation)."""

    def __init__(self, dsmlp, stream):
        super().__init__()
        self.dsmlp, self.stream = dsmlp, stream

    def call(self, x, training=None):
        return self.dsmlp.stream_logits(x, training=training,
                                        streams=(self.stream,))[self.stream]


def _stream_params(model, stream: str) -> int:
    return sum(int(tf.size(v)) for v in model.stream_variables(stream))
