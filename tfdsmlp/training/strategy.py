"""Pick a `tf.distribute` strategy by name."""

from __future__ import annotations

import json
import os

import tfdsmlp  # noqa: F401

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    - "default": one device (no distribution).
    - "mirrored": `MirroredStrategy` over the local GPUs (or CPU).
    - "multiworker": `MultiWorkerMirroredStrategy`, configured by TF_CONFIG
      (see docs/SCALING.md). It must be created before TensorFlow runs any
      op in the process.
    - "auto": multiworker when TF_CONFIG names several workers, mirrored when
      more than one GPU is visible, default otherwise.
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` should be one of {STRATEGIES}. "
                         f"Received: `strategy={name!r}`")
    if name == "auto":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get(
            "cluster", {}).get("worker", [])
        if len(workers) > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
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
