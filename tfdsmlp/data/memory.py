"""The training stream from a split held in memory (`train.in_memory`).

Small datasets (Frappe: 202k rows, 16 MB of ids) train faster when every
record is parsed once and each step only gathers its batch: what FuxiCTR and
most PyTorch loaders do. `make_memory_stream` yields the same kind of stream
as `reader.make_epoch_stream` (endless, full batches, a pure function of
`(seed, start_step)`, sharded over a `tf.distribute.InputContext`):

    perm_e = stateless_shuffle(range(n), seed=(seed, e))   # epoch e
    batch_(e, k) = {x[perm_e[k*b : (k+1)*b]]}               # k < n // b

where n is the number of rows of this input pipeline and b its batch size.
"""

from __future__ import annotations

import os

import tfdsmlp  # noqa: F401
import tensorflow as tf

from tfdsmlp.data.reader import load_arrays, pipeline_shape
from tfdsmlp.features import FeatureSpec, load_dataset_json

# Share of the machine's RAM the in-memory split may take.
MAX_RAM_FRACTION = 0.5


def split_nbytes(data_dir: str, split: str) -> int | None:
    """Bytes the parsed split takes in memory (int64 ids, float32 numeric
    values and label), from dataset.json's row count (None without it)."""
    rows = load_dataset_json(data_dir)["splits"][split].get("rows")
    if rows is None:
        return None
    spec = FeatureSpec.from_dataset_dir(data_dir)
    return int(rows) * (8 * spec.num_categorical + 4 * spec.num_numeric + 4)


def check_fits_in_memory(data_dir: str, split: str = "train",
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


def load_in_memory(data_dir: str, split: str = "train",
                   skip_corrupt: bool = False):
    """`check_fits_in_memory`, then the split as (features, labels) arrays."""
    check_fits_in_memory(data_dir, split)
    return load_arrays(data_dir, split, skip_corrupt=skip_corrupt)


def make_memory_stream(data_dir: str, split: str, global_batch_size: int,
                       input_context: tf.distribute.InputContext | None = None,
                       seed: int = 0, start_step: int = 0,
                       skip_corrupt: bool = False, arrays=None
                       ) -> tf.data.Dataset:
    """Endless stream of full batches from `split` read into memory once.

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
    features, labels = arrays or load_in_memory(data_dir, split,
                                                skip_corrupt)
    features = {k: v[index::n] for k, v in features.items()}
    labels = labels[index::n]
    rows = len(labels)
    per_epoch = rows // batch_size
    if per_epoch == 0:
        raise ValueError(
            f"Split {split!r} of {data_dir} has {rows} rows per input "
            f"pipeline, fewer than the batch ({batch_size}): an epoch would "
            "yield no batch. Use a smaller batch size.")
    first_epoch, skip = divmod(start_step * local_replicas, per_epoch)
    x = {k: tf.constant(v) for k, v in features.items()}
    y = tf.constant(labels)
    seed_t = tf.constant(int(seed), tf.int64)

    def one_epoch(epoch):
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(rows, dtype=tf.int64), seed=tf.stack([seed_t, epoch]))
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(perm[:per_epoch * batch_size], [per_epoch,
                                                       batch_size]))

    def gather(idx):
        return {k: tf.gather(v, idx) for k, v in x.items()}, tf.gather(y, idx)

    ds = tf.data.Dataset.counter(first_epoch).flat_map(one_epoch)
    if skip:
        ds = ds.skip(skip)
    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
