"""The DS-MLP job: teacher -> distillation -> alignment -> evaluation.

`run_dsmlp(data_dir, cfg, run_dir)` writes into `run_dir`:
  config.yaml                 fully resolved RunConfig
  <phase>/weights/            weights after the phase (teacher, distill,
                              align); <phase>/done.json marks it complete
  <phase>/backup/             training state while a phase runs
                              (`TrainingBackup`; removed when it is done)
  tb/<phase>/                 TensorBoard logs (every loss term, AUC, lr)
  metrics.json                per phase valid/test AUC and logloss,
                              RelaImpr vs the teacher, epochs, seconds, params
                              (+ skipped_records with skip_corrupt)
Running it again skips completed phases and resumes an interrupted one from
its last finished epoch (after any crash, `kill -9` included), ending with
the same metrics as an uninterrupted run.

Under `MultiWorkerMirroredStrategy` (TF_CONFIG) every worker runs this same
function; only the chief writes into `run_dir` (other workers write weights
and backups into temporary directories, as TensorFlow requires every worker
to take part in a save), and all of them read finished phases and backups
from it, so `run_dir` must be on a filesystem every worker sees.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp import metrics as M
from tfdsmlp.config import dump_yaml, to_dict
from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.dual_stream_mlp import DualStreamMLP
from tfdsmlp.models.registry import build_model
from tfdsmlp.models.teacher_parallel import TeacherParallel
from tfdsmlp.training.callbacks import NonFiniteLossError, checkpointable_dropout
from tfdsmlp.training.fit import (compile_ctr_model, compile_trainer,
                                  evaluate_splits, fit_phase,
                                  skipped_record_counts, write_json)
from tfdsmlp.training.run_config import TEACHER_PARALLEL, RunConfig
from tfdsmlp.training.strategy import get_strategy, is_chief

PHASES = ("teacher", "distill", "align")


def _phase(run_dir: str, name: str, model: tf.keras.Model,
           train: Callable[[], dict], log: Callable[[str], None],
           chief: bool = True) -> dict:
    """Runs `train` unless the phase is done; loads the phase's weights.

    The chief saves the weights, then `done.json` (the commit point), then
    removes the phase's backup; other workers save into a temporary
    directory (every worker must take part in a save)."""
    phase_dir = os.path.join(run_dir, name)
    done = os.path.join(phase_dir, "done.json")
    weights = os.path.join(phase_dir, "weights", "model")
    backup = os.path.join(phase_dir, "backup")
    if os.path.exists(done):
        log(f"[{name}] already complete: loading {weights}")
        model.load_weights(weights).expect_partial()
        if chief:
            shutil.rmtree(backup, ignore_errors=True)
        with open(done, encoding="utf-8") as f:
            return json.load(f)
    log(f"[{name}] training")
    info = train()
    _check_finite(model, name)
    if chief:
        model.save_weights(weights)
        write_json(info, done)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        tmp = tempfile.mkdtemp(prefix=f"tfdsmlp-{name}-")
        try:
            model.save_weights(os.path.join(tmp, "model"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def _check_finite(model: tf.keras.Model, name: str) -> None:
    """Refuses to save weights holding NaN/inf (never export them)."""
    bad = [w.name for w in model.weights
           if not bool(tf.reduce_all(tf.math.is_finite(w)))]
    if bad:
        raise NonFiniteLossError(
            f"Phase {name!r}: the trained weights hold NaN/inf values "
            f"({bad[:3]}); nothing is saved. Lower the learning rate "
            f"(--set {name}.train.learning_rate=...).")


def _summary(model, data_dir, batch_size, info=None,
             skip_corrupt: bool = False) -> dict[str, Any]:
    out = evaluate_splits(model, data_dir, batch_size,
                          skip_corrupt=skip_corrupt)
    out["params"] = int(model.count_params())
    for key in ("epochs", "best_epoch", "train_seconds",
                "resumed_from_epoch"):
        if info and key in info:
            out[key] = info[key]
    return out


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


def run_dsmlp(data_dir: str, cfg: RunConfig, run_dir: str,
              strategy: str = "auto", teacher_checkpoint: str | None = None,
              verbose: int = 1, deterministic: bool = False
              ) -> dict[str, Any]:
    """Runs (or resumes) the whole DS-MLP job; returns metrics.json (plus
    `_models` {teacher, student} and `_chief`, not written).

    `deterministic` enables TensorFlow's op determinism: a rerun, or a run
    resumed after an interruption, then gives bit-identical results.
    Raises `NonFiniteLossError` when a phase diverges (its weights are not
    saved; its backup of the last good epoch is kept)."""
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with checkpointable_dropout():  # resumed phases draw the same masks
        return _run_dsmlp(data_dir, cfg, run_dir, strategy,
                          teacher_checkpoint, verbose)


def _run_dsmlp(data_dir, cfg, run_dir, strategy, teacher_checkpoint,
               verbose) -> dict[str, Any]:
    log = print if verbose else (lambda *_: None)  # noqa: E731
    cfg = cfg.resolved()
    strat = get_strategy(strategy)
    chief = is_chief(strat)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        dump_yaml({"data": os.path.abspath(data_dir), "strategy": strategy,
                   **to_dict(cfg)}, os.path.join(run_dir, "config.yaml"))
    spec = FeatureSpec.from_dataset_dir(data_dir)
    tb = os.path.join(run_dir, "tb")
    fit_kw = dict(strategy=strat, verbose=verbose)
    results: dict[str, Any] = {"phases": {}}
    with strat.scope():
        tcfg = cfg.teacher.train
        # Seeded right before each model is built: its initial weights do
        # not depend on whether earlier phases were trained or loaded.
        tf.keras.utils.set_random_seed(tcfg.seed)
        teacher = build_model(cfg.teacher.model, cfg.teacher.params, spec)
        teacher(teacher.dummy_inputs())

        def fit(trainer, phase, train_cfg):
            return lambda: fit_phase(
                trainer, data_dir, train_cfg,
                log_dir=os.path.join(tb, phase),
                backup_dir=os.path.join(run_dir, phase, "backup"),
                phase=phase, config_prefix=f"{phase}.train", **fit_kw)

        def train_teacher():
            if teacher_checkpoint:
                teacher.load_weights(teacher_checkpoint).expect_partial()
                return {"loaded_from": teacher_checkpoint}
            compile_ctr_model(teacher, tcfg)
            return fit(teacher, "teacher", tcfg)()

        info = _phase(run_dir, "teacher", teacher, train_teacher, log, chief)
        results["phases"]["teacher"] = _summary(teacher, data_dir,
                                                tcfg.batch_size, info,
                                                tcfg.skip_corrupt)

        dcfg = cfg.distill
        tf.keras.utils.set_random_seed(dcfg.train.seed)
        if cfg.student.model == TEACHER_PARALLEL:
            # Ablation "w/o main MLP": the teacher takes the main stream's
            # place; there is nothing to distil, so stage 1 is skipped.
            parallel = build_model("dsmlp", {**cfg.student.params,
                                             "use_main": False}, spec)
            parallel(parallel.dummy_inputs())
            student = TeacherParallel(teacher, parallel)
        else:
            student = build_model(cfg.student.model, cfg.student.params,
                                  spec)
            student(student.dummy_inputs())
            if dcfg.init_main_from_teacher:
                student.embedding.set_weights(
                    teacher.embedding.get_weights())
            distiller = Distiller(teacher, student,
                                  kd_weight=dcfg.kd_weight,
                                  kd_loss=dcfg.kd_loss,
                                  temperature=dcfg.temperature,
                                  train_parallel=dcfg.train_parallel)
            compile_trainer(distiller, dcfg.train, student)
            info = _phase(run_dir, "distill", student,
                          fit(distiller, "distill", dcfg.train), log, chief)
            # The stage-1 student is what stage 1 trained: the main MLP
            # alone unless the parallel MLP was trained too.
            scored = student
            if (isinstance(student, DualStreamMLP) and student.use_parallel
                    and not dcfg.train_parallel):
                scored = _Stream(student, "main")
            results["phases"]["student"] = _summary(
                scored, data_dir, dcfg.train.batch_size, info,
                dcfg.train.skip_corrupt)
            if scored is not student:
                results["phases"]["student"]["params"] = _stream_params(
                    student, "main")
                results["phases"]["student"]["scored"] = "main stream"

        acfg = cfg.align
        if acfg.enabled:
            aligner = Aligner(student, alpha=acfg.alpha, beta=acfg.beta)
            compile_trainer(aligner, acfg.train, student)
            info = _phase(run_dir, "align", student,
                          fit(aligner, "align", acfg.train), log, chief)
            results["phases"]["dsmlp"] = _summary(
                student, data_dir, acfg.train.batch_size, info,
                acfg.train.skip_corrupt)
        if hasattr(student, "stream_logits"):
            for stream in ("main", "parallel"):
                if getattr(student, f"use_{stream}"):
                    results["phases"][f"dsmlp_{stream}"] = _summary(
                        _Stream(student, stream), data_dir,
                        acfg.train.batch_size,
                        skip_corrupt=acfg.train.skip_corrupt)
                    results["phases"][f"dsmlp_{stream}"]["params"] = (
                        _stream_params(student, stream))
    base = results["phases"]["teacher"]["test"]["auc"]
    for phase in results["phases"].values():
        for split in ("valid", "test"):
            phase[split]["rela_impr_vs_teacher"] = M.rela_impr(
                phase[split]["auc"],
                results["phases"]["teacher"][split]["auc"])
    results["teacher_test_auc"] = base
    if any(c.skip_corrupt for c in (tcfg, dcfg.train, cfg.align.train)):
        results["skipped_records"] = skipped_record_counts(data_dir)
        if any(results["skipped_records"].values()):
            log(f"[data] skipped unreadable records: "
                f"{results['skipped_records']}")
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if chief:
        write_json(results, os.path.join(run_dir, "metrics.json"))
    results["_models"] = {"teacher": teacher, "student": student}
    results["_chief"] = chief
    return results

