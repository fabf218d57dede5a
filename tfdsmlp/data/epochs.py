"""Epoch planning of the training streams: rows per input pipeline, steps
per epoch and the sample weights of padded steps.

An epoch reads every training row once. With one replica it is
`ceil(rows / batch)` steps, the last batch smaller. With several replicas
or workers every input pipeline runs the same number of steps, until the
fullest one is read (`epoch_steps` over `pipeline_rows`), and the real rows
of a step weigh `global_batch / (real rows of the step)` (`step_weights`):
see `tfdsmlp.data.reader` ("Every row, every epoch"). The streams
(`reader.make_epoch_stream`, `memory.make_memory_stream`) and `fit`'s
steps per epoch (`epoch_batches`) share these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.data.scan import scan_file, skipped_records
from tfdsmlp.dataset_dir import DataDir, DatasetDir

import numpy as np
import tensorflow as tf


def num_input_pipelines(strategy: tf.distribute.Strategy | None = None
                        ) -> int:
    """Input pipelines that `strategy.distribute_datasets_from_function`
    creates (one per worker of a multi-worker cluster, else 1). Defaults to
    the current strategy."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("chief", [])) +
               len(cluster.get("worker", [])))


def pipeline_rows(data_dir: DataDir, split: str,
                  num_input_pipelines: int = 1, skip_corrupt: bool = False,
                  count: bool = False) -> list[int] | None:
    """Rows that each of `num_input_pipelines` training input pipelines
    reads per epoch (as `make_epoch_stream` shards them).

    Files sharded over the pipelines (at least as many files as pipelines,
    several pipelines): counted, since files differ in size (each file is
    scanned once per process; see `scan_file`). Otherwise dataset.json's
    row count (less the records `skip_corrupt` skips), dealt out record by
    record; None when dataset.json has no row count, unless `count`."""
    data = DatasetDir.open(data_dir)
    n = num_input_pipelines
    files = data.files(split)
    compression = data.spec.compression or None
    if n > 1 and len(files) >= n:
        counts = [scan_file(f, compression)[0] for f in files]
        return [sum(counts[i::n]) for i in range(n)]
    rows = data.rows(split)
    if rows is None:
        if not count:
            return None
        rows = sum(scan_file(f, compression)[0] for f in files)
    elif skip_corrupt:
        rows -= skipped_records(data, split)
    return [len(range(i, rows, n)) for i in range(n)]


def _rows_per_step(rows: Sequence[int], global_batch_size: int) -> int:
    """Rows one of the `len(rows)` input pipelines gives to each step."""
    n = len(rows)
    if global_batch_size <= 0 or global_batch_size % n:
        raise ValueError(
            f"`global_batch_size` should be a positive multiple of the "
            f"{n} input pipelines. Received: "
            f"`global_batch_size={global_batch_size}`")
    return global_batch_size // n


def epoch_steps(rows: Sequence[int], global_batch_size: int) -> int:
    """Steps of one epoch over input pipelines holding `rows` rows: every
    pipeline runs the same steps, until the fullest one is read."""
    per_step = _rows_per_step(rows, global_batch_size)
    return max(-(-r // per_step) for r in rows)


def step_weights(rows: Sequence[int], global_batch_size: int) -> np.ndarray:
    """Sample weight of a real row at each step of an epoch of a
    multi-replica stream over input pipelines holding `rows` rows:
    `global_batch_size / (real rows of the step)`, 1.0 in full steps; so
    the weights of a step sum to the global batch size. One weight per
    step (`len` = `epoch_steps`)."""
    per_step = _rows_per_step(rows, global_batch_size)
    step = np.arange(epoch_steps(rows, global_batch_size))
    real = np.clip(np.asarray(rows)[:, None] - step * per_step, 0,
                   per_step).sum(axis=0)
    return (global_batch_size / real).astype(np.float32)


def epoch_batches(data_dir: DataDir, split: str, batch_size: int,
                  num_input_pipelines: int = 1,
                  skip_corrupt: bool = False) -> int | None:
    """Steps (global batches of `batch_size`) of one training epoch that
    reads every row once: `ceil(rows / batch_size)`, the last batch partial
    (None when dataset.json has no row count). With several input pipelines
    (workers), the steps until the fullest pipeline is read (see
    `pipeline_rows`): more than `ceil(rows / batch_size)` when the files do
    not split evenly."""
    rows = pipeline_rows(data_dir, split, num_input_pipelines, skip_corrupt)
    return None if rows is None else epoch_steps(rows, batch_size)


def pipeline_shape(global_batch_size: int,
                   input_context: tf.distribute.InputContext | None = None
                   ) -> tuple[int, int, int, int]:
    """(input pipelines, this pipeline's index, its per-replica batch size,
    replicas it feeds) of a training stream; checks the batch size."""
    if global_batch_size <= 0:
        raise ValueError("`global_batch_size` should be positive. "
                         f"Received: `global_batch_size={global_batch_size}`")
    if input_context is None:
        return 1, 0, global_batch_size, 1
    n = input_context.num_input_pipelines
    return (n, input_context.input_pipeline_id,
            input_context.get_per_replica_batch_size(global_batch_size),
            max(1, input_context.num_replicas_in_sync // n))


def check_epoch_rows(data: DataDir, split: str, rows: Sequence[int],
                     batch_size: int) -> None:
    """Raises ValueError when an input pipeline has no row to read."""
    if not sum(rows) or (len(rows) > 1 and not min(rows)):
        raise ValueError(
            f"Split {split!r} of {data}: an input pipeline would read no "
            f"row (rows per pipeline: {list(rows)}, per-replica batch "
            f"{batch_size}); an epoch needs at least one row in each.")
