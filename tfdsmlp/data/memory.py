"""The training stream from a split held in memory (`train.in_memory`).

Small datasets (Frappe: 202k rows, 16 MB of ids) train faster when every
record is parsed once and each step only gathers its batch: what FuxiCTR and
most PyTorch loaders do. `make_memory_stream` yields the same kind of stream
as `reader.make_epoch_stream` (endless, every row once per epoch, a pure
function of `(seed, start_step)`, sharded over a
`tf.distribute.InputContext`, padded with zero-weight copies under several
replicas):

    perm_e = stateless_shuffle(range(n), seed=(seed, e))   # epoch e
    batch_(e, k) = {x[perm_e[k*b : (k+1)*b]]}               # k < ceil(n / b)

where n is the number of rows of this input pipeline and b its batch size;
the last batch of an epoch holds the n % b rows left (one replica), or is
filled up with copies of the epoch's first rows of weight 0 (several
replicas; see `epochs.step_weights`).
"""

from __future__ import annotations

import os

import tfdsmlp  # noqa: F401
from tfdsmlp.data.epochs import (
    check_epoch_rows,
    epoch_steps,
    pipeline_shape,
    step_weights,
)
from tfdsmlp.data.reader import load_arrays
from tfdsmlp.dataset_dir import DataDir, DatasetDir

import numpy as np
import tensorflow as tf

# Share of the machine's RAM the in-memory split may take.
MAX_RAM_FRACTION = 0.5


def split_nbytes(data_dir: DataDir, split: str) -> int | None:
    """Bytes the parsed split takes in memory (int64 ids, float32 numeric
    values and label), from dataset.json's row count (None without it)."""
    data = DatasetDir.open(data_dir)
    rows = data.rows(split)
    if rows is None:
        return None
    spec = data.spec
    return rows * (8 * spec.num_categorical + 4 * spec.num_numeric + 4)


def check_fits_in_memory(data_dir: DataDir, split: str = "train",
                         ram_bytes: int | None = None) -> None:
    """Raises ValueError, before anything is read, when the parsed split
    would take more than MAX_RAM_FRACTION of the machine's RAM."""
    need = split_nbytes(data_dir, split)
    if ram_bytes is None:
        ram_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need is not None and need > MAX_RAM_FRACTION * ram_bytes:
        raise ValueError(
            f"train.in_memory: split {split!r} of {data_dir} would take "
            f"{need / 2**30:.1f} GiB in memory, more than "
            f"{MAX_RAM_FRACTION:.0%} of this machine's "
            f"{ram_bytes / 2**30:.1f} GiB of RAM. Set train.in_memory=false "
            "to stream it from the TFRecords.")


def load_in_memory(data_dir: DataDir, split: str = "train",
                   skip_corrupt: bool = False):
    """`check_fits_in_memory`, then the split as (features, labels) arrays."""
    data = DatasetDir.open(data_dir)
    check_fits_in_memory(data, split)
    return load_arrays(data, split, skip_corrupt=skip_corrupt)


def make_memory_stream(data_dir: DataDir, split: str, global_batch_size: int,
                       input_context: tf.distribute.InputContext | None = None,
                       seed: int = 0, start_step: int = 0,
                       skip_corrupt: bool = False, arrays=None
                       ) -> tf.data.Dataset:
    """Endless stream of batches from `split` read into memory once; every
    row once per epoch.

    One replica: (features, label) batches, `ceil(rows / batch)` per epoch,
    the last one smaller. Several replicas: full per-replica batches of
    (features, label, sample_weight), as `reader.make_epoch_stream`.

    Args:
      data_dir, split, global_batch_size, input_context, skip_corrupt: as in
        `reader.make_epoch_stream`. Rows are sharded over the input
        pipelines (pipeline i keeps rows i, i + n, ...).
      seed: int. Seed of every epoch's permutation.
      start_step: int. Global training steps to skip; step k of the stream
        is step k of an uninterrupted one (resumed training is identical).
      arrays: optional (features, labels) already read by `load_in_memory`.
    """
    n, index, batch_size, local_replicas = pipeline_shape(global_batch_size,
                                                         input_context)
    data = DatasetDir.open(data_dir)
    features, labels = arrays or load_in_memory(data, split, skip_corrupt)
    rows = [len(range(i, len(labels), n)) for i in range(n)]
    check_epoch_rows(data, split, rows, batch_size)
    mine = rows[index]
    first_epoch, skip = divmod(start_step,
                               epoch_steps(rows, global_batch_size))
    x = {k: tf.constant(v[index::n]) for k, v in features.items()}
    y = tf.constant(labels[index::n])
    seed_t = tf.constant(int(seed), tf.int64)

    def permutation(epoch):
        return tf.random.experimental.stateless_shuffle(
            tf.range(mine, dtype=tf.int64), seed=tf.stack([seed_t, epoch]))

    def gather(idx, *weight):
        return ({k: tf.gather(v, idx) for k, v in x.items()},
                tf.gather(y, idx), *weight)

    if n * local_replicas == 1:
        full, rest = divmod(mine, batch_size)

        def one_epoch(epoch):
            perm = permutation(epoch)
            ds = tf.data.Dataset.from_tensor_slices(
                tf.reshape(perm[:full * batch_size], [full, batch_size]))
            if rest:
                ds = ds.concatenate(tf.data.Dataset.from_tensors(
                    perm[full * batch_size:]))
            return ds
    else:
        weights = step_weights(rows, global_batch_size)
        slot = np.arange(len(weights) * local_replicas * batch_size)
        # The epoch's rows, then copies of its first rows (weight 0).
        source = tf.constant(slot % mine)
        slot_weight = tf.constant(np.where(
            slot < mine, np.repeat(weights, local_replicas * batch_size),
            0).astype(np.float32).reshape(-1, batch_size))

        def one_epoch(epoch):
            idx = tf.gather(permutation(epoch), source)
            return tf.data.Dataset.from_tensor_slices(
                (tf.reshape(idx, [-1, batch_size]), slot_weight))

    ds = tf.data.Dataset.counter(first_epoch).flat_map(one_epoch)
    if skip:
        ds = ds.skip(skip * local_replicas)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
