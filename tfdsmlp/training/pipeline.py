"""The DS-MLP job: teacher -> distillation -> alignment -> evaluation.

`run_dsmlp(data_dir, cfg, run_dir)` writes into `run_dir`:
  config.yaml                 fully resolved RunConfig
  <phase>/weights/            weights after the phase (teacher, distill,
                              align); <phase>/done.json marks it complete
  <phase>/backup/             BackupAndRestore state while a phase runs
  tb/<phase>/                 TensorBoard logs (every loss term, AUC, lr)
  metrics.json                per phase valid/test AUC and logloss,
                              RelaImpr vs the teacher, epochs, seconds, params
Running it again skips completed phases and resumes an interrupted one from
its last finished epoch.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp import metrics as M
from tfdsmlp.config import dump_yaml, to_dict
from tfdsmlp.distill import Aligner, Distiller
from tfdsmlp.features import FeatureSpec
from tfdsmlp.models.registry import build_model
from tfdsmlp.training.fit import (compile_ctr_model, evaluate_splits,
                                  fit_phase, make_optimizer, write_json)
from tfdsmlp.training.run_config import RunConfig
from tfdsmlp.training.strategy import get_strategy, is_chief

PHASES = ("teacher", "distill", "align")


def _phase(run_dir: str, name: str, model: tf.keras.Model,
           train: Callable[[], dict], log: Callable[[str], None]) -> dict:
    """Runs `train` unless the phase is done; loads the phase's weights."""
    phase_dir = os.path.join(run_dir, name)
    done = os.path.join(phase_dir, "done.json")
    weights = os.path.join(phase_dir, "weights", "model")
    if os.path.exists(done):
        log(f"[{name}] already complete: loading {weights}")
        model.load_weights(weights).expect_partial()
        with open(done, encoding="utf-8") as f:
            return json.load(f)
    log(f"[{name}] training")
    info = train()
    model.save_weights(weights)
    write_json(info, done)
    return info


def _summary(model, data_dir, batch_size, info=None) -> dict[str, Any]:
    out = evaluate_splits(model, data_dir, batch_size)
    out["params"] = int(model.count_params())
    for key in ("epochs", "best_epoch", "train_seconds"):
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


def run_dsmlp(data_dir: str, cfg: RunConfig, run_dir: str,
              strategy: str = "auto", teacher_checkpoint: str | None = None,
              verbose: int = 1) -> dict[str, Any]:
    """Runs (or resumes) the whole DS-MLP job; returns metrics.json."""
    log = print if verbose else (lambda *_: None)  # noqa: E731
    cfg = cfg.resolved()
    strat = get_strategy(strategy)
    chief = is_chief(strat)
    os.makedirs(run_dir, exist_ok=True)
    if chief:
        dump_yaml({"data": os.path.abspath(data_dir), "strategy": strategy,
                   **to_dict(cfg)}, os.path.join(run_dir, "config.yaml"))
    spec = FeatureSpec.from_dataset_dir(data_dir)
    tb = os.path.join(run_dir, "tb")
    fit_kw = dict(strategy=strat, verbose=verbose)
    results: dict[str, Any] = {"phases": {}}
    with strat.scope():
        teacher = build_model(cfg.teacher.model, cfg.teacher.params, spec)
        teacher(teacher.dummy_inputs())
        tcfg = cfg.teacher.train

        def fit(trainer, phase, train_cfg):
            return lambda: fit_phase(
                trainer, data_dir, train_cfg,
                log_dir=os.path.join(tb, phase),
                backup_dir=os.path.join(run_dir, phase, "backup"), **fit_kw)

        def train_teacher():
            if teacher_checkpoint:
                teacher.load_weights(teacher_checkpoint).expect_partial()
                return {"loaded_from": teacher_checkpoint}
            compile_ctr_model(teacher, tcfg)
            return fit(teacher, "teacher", tcfg)()

        info = _phase(run_dir, "teacher", teacher, train_teacher, log)
        results["phases"]["teacher"] = _summary(teacher, data_dir,
                                                tcfg.batch_size, info)

        student = build_model(cfg.student.model, cfg.student.params, spec)
        student(student.dummy_inputs())
        dcfg = cfg.distill
        if dcfg.init_main_from_teacher:
            student.embedding.set_weights(teacher.embedding.get_weights())
        distiller = Distiller(teacher, student, kd_weight=dcfg.kd_weight,
                              kd_loss=dcfg.kd_loss,
                              temperature=dcfg.temperature,
                              train_parallel=dcfg.train_parallel)
        distiller.compile(optimizer=make_optimizer(dcfg.train))

        info = _phase(run_dir, "distill", student,
                      fit(distiller, "distill", dcfg.train), log)
        results["phases"]["student"] = _summary(student, data_dir,
                                                dcfg.train.batch_size, info)

        acfg = cfg.align
        if acfg.enabled:
            aligner = Aligner(student, alpha=acfg.alpha, beta=acfg.beta)
            aligner.compile(optimizer=make_optimizer(acfg.train))
            info = _phase(run_dir, "align", student,
                          fit(aligner, "align", acfg.train), log)
            results["phases"]["dsmlp"] = _summary(
                student, data_dir, acfg.train.batch_size, info)
        if hasattr(student, "stream_logits"):
            for stream in ("main", "parallel"):
                if getattr(student, f"use_{stream}"):
                    results["phases"][f"dsmlp_{stream}"] = _summary(
                        _Stream(student, stream), data_dir,
                        acfg.train.batch_size)
                    results["phases"][f"dsmlp_{stream}"]["params"] = sum(
                        int(tf.size(v))
                        for v in student.stream_variables(stream))
    base = results["phases"]["teacher"]["test"]["auc"]
    for phase in results["phases"].values():
        for split in ("valid", "test"):
            phase[split]["rela_impr_vs_teacher"] = M.rela_impr(
                phase[split]["auc"],
                results["phases"]["teacher"][split]["auc"])
    results["teacher_test_auc"] = base
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if chief:
        write_json(results, os.path.join(run_dir, "metrics.json"))
    results["_models"] = {"teacher": teacher, "student": student}
    return results

