"""Pick a `tf.distribute` strategy by name."""

from __future__ import annotations

import json
import os

import tfdsmlp  # noqa: F401
from tfdsmlp.training.parameter_server import (
    MIN_SHARD_ROWS,
    parameter_server_strategy,
)

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker",
              "parameter_server")


def get_strategy(name: str = "auto", min_shard_rows: int = MIN_SHARD_ROWS
                 ) -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    - "default": one device (no distribution).
    - "mirrored": `MirroredStrategy` over the local GPUs (or CPU).
    - "multiworker": `MultiWorkerMirroredStrategy`, configured by TF_CONFIG
      (see docs/SCALING.md). It must be created before TensorFlow runs any
      op in the process.
    - "parameter_server": `ParameterServerStrategy` from TF_CONFIG (this
      process is its `chief`, the coordinator); variables of at least
      `min_shard_rows` rows (the embedding tables) are split by rows over
      the `ps` tasks (`tfdsmlp.training.parameter_server`).
    - "auto": parameter_server when TF_CONFIG's cluster has `ps` tasks,
      multiworker when it names several workers, mirrored when more than
      one GPU is visible, default otherwise.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` should be one of {STRATEGIES}. "
                         f"Received: `strategy={name!r}`")
    if name == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get(
            "cluster", {})
        if cluster.get("ps"):
            name = "parameter_server"
        elif len(cluster.get("worker", [])) > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "parameter_server":
        return parameter_server_strategy(min_shard_rows)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, metrics and exports: the
    `chief` task when the cluster has one, else worker 0 (TensorFlow's
    rule); always True without a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    try:
        has_chief = "chief" in resolver.cluster_spec().as_dict()
    except (AttributeError, ValueError):
        has_chief = False
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and not has_chief)
