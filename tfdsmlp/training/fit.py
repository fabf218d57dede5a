"""Train one Keras CTR model with FuxiCTR's schedule and score it exactly.

This is what a user's Keras script does, packaged: `compile` with Adam and
`BinaryCrossentropy(from_logits=True)`, `fit` on `make_dataset(...)` with the
exact-validation / lr-decay / early-stopping callbacks, then exact AUC and
log loss on valid and test.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.data.reader import make_dataset, make_dataset_fn
from tfdsmlp.features import load_dataset_json
from tfdsmlp.training.callbacks import evaluate, schedule_callbacks
from tfdsmlp.training.train_config import TrainConfig


def make_optimizer(cfg: TrainConfig) -> tf.keras.optimizers.Optimizer:
    kwargs: dict[str, Any] = {"learning_rate": cfg.learning_rate}
    if cfg.clipnorm > 0:
        kwargs["global_clipnorm"] = cfg.clipnorm
    return tf.keras.optimizers.Adam(**kwargs)


def compile_ctr_model(model: tf.keras.Model, cfg: TrainConfig) -> None:
    """Standard compile: Adam + BCE on logits (+ streaming AUC for logs)."""
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])


def train_dataset(data_dir: str, cfg: TrainConfig,
                  strategy: tf.distribute.Strategy | None = None):
    """The training split, sharded per input pipeline under `strategy`."""
    kwargs = dict(seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer)
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        fn = make_dataset_fn(data_dir, "train", cfg.batch_size, **kwargs)
        if cfg.steps_per_epoch:
            return strategy.distribute_datasets_from_function(
                lambda ctx: fn(ctx).take(cfg.steps_per_epoch))
        return strategy.distribute_datasets_from_function(fn)
    ds = make_dataset(data_dir, "train", cfg.batch_size, **kwargs)
    return ds.take(cfg.steps_per_epoch) if cfg.steps_per_epoch else ds


def fit_phase(model: tf.keras.Model, data_dir: str, cfg: TrainConfig,
              strategy: tf.distribute.Strategy | None = None,
              log_dir: str | None = None, backup_dir: str | None = None,
              verbose: int = 1, extra_callbacks: list | None = None,
              ) -> dict[str, Any]:
    """Fits a compiled `model` (a CTR model or a trainer wrapping one) with
    FuxiCTR's schedule; returns epochs, best epoch, seconds and history.

    `backup_dir` enables `BackupAndRestore`: an interrupted fit resumes
    from the last finished epoch when run again."""
    tf.keras.utils.set_random_seed(cfg.seed)
    valid = make_dataset(data_dir, "valid", cfg.batch_size)
    callbacks = schedule_callbacks(valid, cfg.patience, cfg.lr_decay,
                                   cfg.min_lr, verbose=verbose)
    if log_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir))
    if backup_dir:
        callbacks.append(tf.keras.callbacks.BackupAndRestore(backup_dir))
    callbacks += extra_callbacks or []
    start = time.time()
    steps = cfg.steps_per_epoch or None
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        # Distributed datasets need an explicit epoch length.
        rows = load_dataset_json(data_dir)["splits"]["train"]["rows"]
        steps = steps or max(1, rows // cfg.batch_size)
    history = model.fit(train_dataset(data_dir, cfg, strategy),
                        epochs=cfg.epochs, steps_per_epoch=steps,
                        callbacks=callbacks, verbose=verbose)
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return {"epochs": len(hist.get("loss", [])),
            "best_epoch": _best_epoch(hist),
            "train_seconds": round(time.time() - start, 1),
            "history": hist}


def fit_ctr_model(model: tf.keras.Model, data_dir: str, cfg: TrainConfig,
                  log_dir: str | None = None, verbose: int = 1,
                  extra_callbacks: list | None = None) -> dict[str, Any]:
    """Trains `model` on `data_dir` and returns exact valid/test metrics."""
    tf.keras.utils.set_random_seed(cfg.seed)
    if model.optimizer is None:
        compile_ctr_model(model, cfg)
    result = fit_phase(model, data_dir, cfg, log_dir=log_dir,
                       verbose=verbose, extra_callbacks=extra_callbacks)
    result.update(evaluate_splits(model, data_dir, cfg.batch_size))
    result["params"] = int(model.count_params())
    return result


def evaluate_splits(model, data_dir: str, batch_size: int,
                    splits=("valid", "test")) -> dict[str, dict]:
    """Exact AUC / log loss of `model` on whole splits."""
    return {s: evaluate(model, make_dataset(data_dir, s, batch_size))
            for s in splits}


def _best_epoch(history: dict[str, list]) -> int:
    aucs = history.get("val_auc") or []
    return int(max(range(len(aucs)), key=aucs.__getitem__)) + 1 if aucs else 0


def write_json(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
