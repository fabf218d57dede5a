"""Train one Keras CTR model with FuxiCTR's schedule and score it exactly.

This is what a user's Keras script does, packaged: `compile` with Adam and
`BinaryCrossentropy(from_logits=True)`, `fit` on `make_dataset(...)` with the
exact-validation / lr-decay / early-stopping callbacks, then exact AUC and
log loss on valid and test.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import tfdsmlp  # noqa: F401
from tfdsmlp.data import epochs, scan
from tfdsmlp.data.memory import load_in_memory, make_memory_stream
from tfdsmlp.data.reader import make_dataset, make_epoch_stream
from tfdsmlp.dataset_dir import DatasetDir
from tfdsmlp.training.backup import TrainingBackup, reset_dropout_generators
from tfdsmlp.training.callbacks import NonFiniteLossError, schedule_callbacks
from tfdsmlp.training.catch_up_adam import CatchUpAdam
from tfdsmlp.training.epoch_progress import EpochProgress
from tfdsmlp.training.evaluation import eval_progress, evaluate
from tfdsmlp.training.faults import FaultInjection
from tfdsmlp.training.lazy_adam import Adam, LazyAdam
from tfdsmlp.training.lazy_table_l2 import LazyAdamTableL2, SettleLazyL2
from tfdsmlp.training.parameter_server import is_parameter_server
from tfdsmlp.training.startup import StartupTimer
from tfdsmlp.training.strategy import is_chief
from tfdsmlp.training.train_config import TrainConfig

import tensorflow as tf


def make_optimizer(cfg: TrainConfig, model: tf.keras.Model | None = None
                   ) -> tf.keras.optimizers.Optimizer:
    """`cfg.optimizer` with the learning rate and global-norm clip of
    `cfg`: `Adam`, `LazyAdam` (`LazyAdamTableL2` on a `model` whose
    embedding L2 has `embedding_l2_scope: lazy`) or `CatchUpAdam` (given
    that L2 with the lazy scope). With `model`, refuses the sparse
    optimizers where the whole-table L2 term makes every embedding
    gradient dense (they would do nothing lazily), and the `lazy` scope
    with Adam (nothing would apply the absent rows' L2)."""
    kwargs: dict[str, Any] = {"learning_rate": cfg.learning_rate}
    if cfg.clipnorm > 0:
        kwargs["global_clipnorm"] = cfg.clipnorm
    l2 = getattr(model, "embedding_l2", 0)
    scope = getattr(model, "embedding_l2_scope", "")
    if cfg.optimizer == "adam":
        if scope == "lazy" and l2 > 0:
            raise ValueError(
                "`embedding_l2_scope: lazy` applies the whole-table L2 to "
                "the rows absent from a batch inside a sparse optimizer, "
                "but the optimizer is 'adam'. Set `train.optimizer: "
                "lazy_adam` or `catch_up_adam`, or `embedding_l2_scope: "
                "table` for Adam.")
        return Adam(**kwargs)
    if l2 > 0 and scope == "table":
        raise ValueError(
            f"`optimizer: {cfg.optimizer}` needs sparse embedding "
            f"gradients, but the model has `embedding_l2={l2}` over the "
            "whole table (`embedding_l2_scope: table`). Set "
            "`embedding_l2_scope: lazy` (the same L2, applied lazily), "
            "`batch` or `embedding_l2: 0` in the model params.")
    table_l2 = l2 if l2 > 0 and scope == "lazy" else 0.0
    if cfg.optimizer == "catch_up_adam":
        return CatchUpAdam(table_l2=table_l2, **kwargs)
    if table_l2:
        return LazyAdamTableL2(table_l2=table_l2, **kwargs)
    return LazyAdam(**kwargs)


def compile_ctr_model(model: tf.keras.Model, cfg: TrainConfig) -> None:
    """Standard compile: Adam + BCE on logits (+ streaming AUC for logs)."""
    model.compile(
        optimizer=make_optimizer(cfg, model),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")],
        steps_per_execution=cfg.steps_per_execution,
        jit_compile=cfg.jit_compile)
    honest_progress(model)


def honest_progress(model: tf.keras.Model) -> None:
    """Per-batch logs show one replica's metric values, not their sum.

    Keras reduces a step's per-replica logs by summing them ("auto" means
    "sum" off TPUs); the values are metric results (means, AUC), so the
    progress bar showed N times them under N replicas or workers (AUC above
    1), while the epoch logs are recomputed from the synced metrics. "first"
    keeps one replica's running values: the quantities the epoch line
    shows."""
    model.distribute_reduction_method = "first"


def compile_trainer(trainer: tf.keras.Model, cfg: TrainConfig,
                    model: tf.keras.Model | None = None) -> None:
    """Compiles a `Distiller` / `Aligner` with the phase's optimizer and
    `steps_per_execution` (their `train_step` owns the losses)."""
    trainer.compile(optimizer=make_optimizer(cfg, model),
                    steps_per_execution=cfg.steps_per_execution,
                    jit_compile=cfg.jit_compile)
    honest_progress(trainer)


def steps_per_epoch(data_dir: str, cfg: TrainConfig,
                    strategy: tf.distribute.Strategy | None = None
                    ) -> int | None:
    """Steps of one training epoch: `cfg.steps_per_epoch`, else the steps
    that read every training row once, `ceil(rows / batch_size)` (None when
    dataset.json has no row count). Under a multi-worker `strategy` (default:
    the current one) reading TFRecords, the steps until the fullest worker's
    files are read (see `epochs.epoch_batches`); `cfg.in_memory` deals rows
    out one by one, so its epochs stay `ceil(rows / batch_size)` steps."""
    if cfg.steps_per_epoch:
        return cfg.steps_per_epoch
    # Parameter servers: the coordinator hands each step to whichever
    # worker is free, so an epoch is the steps that read every row once.
    pipelines = (1 if cfg.in_memory or is_parameter_server(strategy)
                 else epochs.num_input_pipelines(strategy))
    return epochs.epoch_batches(data_dir, "train", cfg.batch_size, pipelines,
                                skip_corrupt=cfg.skip_corrupt)


def train_dataset(data_dir: str, cfg: TrainConfig,
                  strategy: tf.distribute.Strategy | None = None,
                  start_step: int = 0):
    """The training stream from step `start_step` (`make_epoch_stream`, or
    `make_memory_stream` with `cfg.in_memory`), sharded per input pipeline
    under a multi-replica `strategy`, where its batches carry sample weights
    (zero on the copies that pad an epoch's last steps)."""
    if cfg.in_memory:
        arrays = load_in_memory(data_dir, "train", cfg.skip_corrupt)

        def stream(ctx=None):
            return make_memory_stream(
                data_dir, "train", cfg.batch_size, input_context=ctx,
                seed=cfg.seed, start_step=start_step,
                skip_corrupt=cfg.skip_corrupt, arrays=arrays)
    else:
        def stream(ctx=None):
            return make_epoch_stream(
                data_dir, "train", cfg.batch_size, input_context=ctx,
                seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer,
                skip_corrupt=cfg.skip_corrupt, start_step=start_step)
    if is_parameter_server(strategy):
        # Each worker builds its own stream (files sharded by worker).
        return tf.keras.utils.experimental.DatasetCreator(stream)
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return strategy.distribute_datasets_from_function(stream)
    return stream()


@contextlib.contextmanager
def named_data_errors(data_dir: str, splits=scan.SPLITS):
    """Turns TensorFlow's `DataLossError` (which names no file) into a
    `CorruptRecordError` naming the damaged file(s) of `splits`."""
    try:
        yield
    except tf.errors.DataLossError as e:
        raise scan.corrupt_data_error(data_dir, splits, e) from e


def fit_phase(model: tf.keras.Model, data_dir: str, cfg: TrainConfig,
              strategy: tf.distribute.Strategy | None = None,
              log_dir: str | None = None, backup_dir: str | None = None,
              verbose: int = 1, extra_callbacks: list | None = None,
              phase: str = "train", config_prefix: str = "train",
              ) -> dict[str, Any]:
    """Fits a compiled `model` (a CTR model or a trainer wrapping one) with
    FuxiCTR's schedule; returns epochs, best epoch, seconds and history.

    `backup_dir` enables `TrainingBackup`: the whole training state is
    backed up at every epoch end, and a fit interrupted in any way (even
    `kill -9`) continues from the last finished epoch when run again, with
    the same result as an uninterrupted fit (same seed; exactly the same
    with `tf.config.experimental.enable_op_determinism()`). Only the chief
    of a multi-worker `strategy` writes it.

    `phase` and `config_prefix` name the phase in errors (non-finite loss)
    and in the `TFDSMLP_FAULT_INJECT` test hook (see `FaultInjection`).
    Raises `NonFiniteLossError` on a NaN/inf loss and `CorruptRecordError`
    (naming the file) on a damaged TFRecord file."""
    tf.keras.utils.set_random_seed(cfg.seed)
    # The phase's dropout masks depend on its seed alone (not on what ran
    # earlier in this process): a run resumed at a phase boundary matches.
    reset_dropout_generators(model, cfg.seed)
    valid = make_dataset(data_dir, "valid", cfg.batch_size,
                         skip_corrupt=cfg.skip_corrupt)
    on_servers = is_parameter_server(strategy)
    schedule = schedule_callbacks(valid, cfg.patience, cfg.lr_decay,
                                  cfg.min_lr, verbose=verbose, phase=phase,
                                  config_prefix=config_prefix,
                                  monitor=cfg.monitor,
                                  per_batch=not on_servers,
                                  valid_rows=DatasetDir.open(data_dir).rows(
                                      "valid"),
                                  # Parameter servers write and read the
                                  # best weights themselves.
                                  checkpoint_best=on_servers,
                                  best_weights_dir=backup_dir)
    callbacks = list(schedule)
    if isinstance(model.optimizer, LazyAdamTableL2):
        if on_servers:
            raise ValueError(
                "`embedding_l2_scope: lazy` and `optimizer: catch_up_adam` "
                "are not supported under ParameterServerStrategy (their "
                "end-of-epoch pass over the tables would run on the "
                "coordinator); use `lazy_adam` with the `batch` scope.")
        # First: validation, backups and best weights read settled rows.
        callbacks.insert(0, SettleLazyL2())
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(
            log_dir=log_dir, profile_batch=tuple(cfg.profile_batches) or 0))
    steps = steps_per_epoch(data_dir, cfg, strategy)
    backup, initial_epoch = None, 0
    if backup_dir and steps:
        backup = TrainingBackup(backup_dir, schedule,
                                chief=strategy is None or is_chief(strategy),
                                learning_rate=cfg.learning_rate)
        initial_epoch = backup.load(model)
        if initial_epoch and verbose:
            print(f"[{phase}] resuming from the backup of epoch "
                  f"{initial_epoch} in {backup_dir}")
        callbacks.append(backup)
    callbacks += extra_callbacks or []
    if verbose == 2 and steps and not on_servers:  # --progress lines
        callbacks.append(EpochProgress(phase, steps, cfg.batch_size,
                                       cfg.epochs))
    fault = FaultInjection.from_env(phase)
    if fault:
        callbacks.append(fault)
    # ParameterServerStrategy runs no batch-level callbacks (no timer).
    timer = None if on_servers else StartupTimer()
    if timer:
        callbacks.append(timer)
    start = time.time()
    if steps:
        data = train_dataset(data_dir, cfg, strategy,
                             start_step=initial_epoch * steps)
    else:  # no row count in dataset.json: one pass per epoch, not resumable
        data = make_dataset(data_dir, "train", cfg.batch_size, seed=cfg.seed,
                            shuffle_buffer=cfg.shuffle_buffer,
                            skip_corrupt=cfg.skip_corrupt)
    # Killed after the last epoch's backup (or after early stopping) but
    # before the phase was marked done: run no epoch; on_train_end still
    # restores the best weights.
    first = cfg.epochs if backup and backup.stopped else min(initial_epoch,
                                                              cfg.epochs)
    try:
        with named_data_errors(data_dir, ("train", "valid")):
            history = model.fit(data, epochs=cfg.epochs,
                                initial_epoch=first,
                                steps_per_epoch=steps, callbacks=callbacks,
                                verbose=_fit_verbose(verbose, strategy))
    except NonFiniteLossError as e:
        if backup and os.path.exists(os.path.join(backup_dir, "state.json")):
            raise NonFiniteLossError(
                f"{e} The last good state (end of epoch "
                f"{_backup_epoch(backup_dir)}) is kept in {backup_dir}: "
                "rerunning the command resumes from it (with a lowered "
                "learning rate if you change it).") from None
        raise
    if backup is not None:
        hist = {k: list(v) for k, v in backup.history.items()}
    else:
        hist = {k: [float(v) for v in vs]
                for k, vs in history.history.items()}
    out = {"epochs": len(hist.get("loss", [])),
           "best_epoch": _best_epoch(hist, f"val_{cfg.monitor}"),
           "train_seconds": round(time.time() - start, 1),
           "history": hist}
    if initial_epoch:
        out["resumed_from_epoch"] = initial_epoch
    startup = timer.result() if timer else None
    if startup:
        out["startup"] = startup
        if verbose and "overhead_seconds" in startup:
            print(f"[{phase}] start-up: first step "
                  f"{startup['first_step_seconds']:.2f} s, then "
                  f"{startup['step_seconds']:.3f} s a step (tracing, "
                  "compilation, input warm-up: "
                  f"{startup['overhead_seconds']:.2f} s)")
    return out


def _fit_verbose(verbose: int, strategy) -> int:
    """Keras' `verbose`: 1 a progress bar with ETA, 2 a line per epoch
    (`--progress lines`, with `EpochProgress` lines within it); under
    ParameterServerStrategy, whose `fit` allows only one line per epoch,
    2 for either."""
    if verbose and is_parameter_server(strategy):
        return 2
    return verbose


def _backup_epoch(backup_dir: str) -> int:
    with open(os.path.join(backup_dir, "state.json"), encoding="utf-8") as f:
        return int(json.load(f)["epoch"])


def skipped_record_counts(data_dir: str, splits=scan.SPLITS
                          ) -> dict[str, int]:
    """{split: records skipped by skip_corrupt} for the splits present."""
    data = DatasetDir.open(data_dir)
    return {s: scan.skipped_records(data, s) for s in splits
            if s in data.splits}


def fit_ctr_model(model: tf.keras.Model, data_dir: str, cfg: TrainConfig,
                  log_dir: str | None = None, verbose: int = 1,
                  extra_callbacks: list | None = None,
                  backup_dir: str | None = None) -> dict[str, Any]:
    """Trains `model` on `data_dir` and returns exact valid/test metrics
    (resumable from `backup_dir` as `fit_phase`)."""
    tf.keras.utils.set_random_seed(cfg.seed)
    if model.optimizer is None:
        compile_ctr_model(model, cfg)
    result = fit_phase(model, data_dir, cfg, log_dir=log_dir,
                       backup_dir=backup_dir, verbose=verbose,
                       extra_callbacks=extra_callbacks)
    result.update(evaluate_splits(model, data_dir, cfg.batch_size,
                                  skip_corrupt=cfg.skip_corrupt))
    result["params"] = int(model.count_params())
    if cfg.skip_corrupt:
        result["skipped_records"] = skipped_record_counts(data_dir)
    return result


def evaluate_splits(model, data_dir: str, batch_size: int,
                    splits=("valid", "test"), skip_corrupt: bool = False,
                    verbose: int = 0, label: str = "") -> dict[str, dict]:
    """Exact AUC / log loss of `model` on whole splits (`verbose`: a
    progress line with ETA for passes longer than 10 s, named `label`)."""
    data = DatasetDir.open(data_dir)
    with named_data_errors(data_dir, splits):
        return {s: evaluate(model, make_dataset(
            data_dir, s, batch_size, skip_corrupt=skip_corrupt),
            eval_progress(f"{label}{s}", data.rows(s), verbose))
            for s in splits}


def _best_epoch(history: dict[str, list], key: str = "val_auc") -> int:
    """1-based epoch of the highest `key` (the schedule's monitor; the
    epoch whose weights early stopping restored), 0 without one."""
    values = history.get(key) or []
    return (int(max(range(len(values)), key=values.__getitem__)) + 1
            if values else 0)

