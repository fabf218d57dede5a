"""tf.data input pipeline: TFRecord files -> batches of (features, label).

Pipeline (as TF Model Garden's ranking reader)::

    list files -> shard by InputContext -> interleave -> shuffle (records)
      -> repeat -> batch -> parse whole batches -> prefetch

`features` is {"ids": int64 (b, num_categorical), "dense": float32
(b, num_numeric) when the dataset has numeric fields}; `label` is float32
(b, 1). Works with `strategy.distribute_datasets_from_function` through
`make_dataset_fn`. Every public function takes a dataset directory path or
an opened `DatasetDir`, and opens it once.

Training uses `make_epoch_stream`: an endless stream of batches, epoch by
epoch, where epoch e is shuffled with seeds derived from (seed, e) only. Batch
k of the stream is therefore the same in every run, and a run resumed from a
backup at epoch e (`start_step = e * steps_per_epoch`) sees exactly the
batches an uninterrupted run would have seen.

Every row, every epoch: an epoch reads every training row exactly once.

- One replica: an epoch is `ceil(rows / batch)` batches, the last one
  smaller (Keras' compiled loss and `tf.nn.compute_average_loss` average
  over the actual batch).
- Several replicas (MirroredStrategy over several devices,
  MultiWorkerMirroredStrategy): each replica must take a batch at each step
  and every input pipeline must run the same number of steps per epoch,
  though pipelines may hold different numbers of rows (files are sharded,
  and files differ in size). So each per-replica batch is full and the
  stream yields (features, label, sample_weight): a pipeline whose rows of
  the epoch have run out fills the rest of its batches with copies of its
  first rows, of weight 0, and each real row of step s weighs
  `global_batch / (real rows of step s)` (1 in full steps; see
  `step_weights`). A loss averaged over the padded global batch (Keras'
  compiled loss, `tf.nn.compute_average_loss` with the weights) is then
  exactly the mean over the step's real rows, as on one device. Batch
  normalization statistics of a padded batch include its copies.

Damaged files: `skip_corrupt=True` reads each file up to its first
unreadable record; finding, naming and counting damaged records is
`tfdsmlp.data.scan`'s. Rows per input pipeline, steps per epoch and the
weights of padded steps are planned by `tfdsmlp.data.epochs`.
"""

from __future__ import annotations

from collections.abc import Callable

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.data.epochs import (
    check_epoch_rows,
    epoch_steps,
    pipeline_rows,
    pipeline_shape,
    step_weights,
)
from tfdsmlp.data.scan import warn_skipped
from tfdsmlp.dataset_dir import DataDir, DatasetDir
from tfdsmlp.features import FeatureSpec

import numpy as np
import tensorflow as tf

# Records read from one file before switching to the next (`interleave`).
INTERLEAVE_BLOCK = 256


def _read_files(files: tf.data.Dataset, compression, skip_corrupt: bool,
                cycle_length: int, block_length: int) -> tf.data.Dataset:
    def read(path):
        ds = tf.data.TFRecordDataset(path, compression_type=compression)
        return ds.ignore_errors() if skip_corrupt else ds

    return files.interleave(read, cycle_length=cycle_length,
                            block_length=block_length,
                            num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)


def split_files(data_dir: DataDir, split: str) -> list[str]:
    """The TFRecord files of `split`, in a stable order (those dataset.json
    lists; see `DatasetDir.files`)."""
    return DatasetDir.open(data_dir).files(split)


def parse_fn(spec: FeatureSpec) -> Callable:
    """A function parsing a batch of serialized Examples (shape (b,))."""
    description = {
        "ids": tf.io.FixedLenFeature([spec.num_categorical], tf.int64),
        "label": tf.io.FixedLenFeature([1], tf.float32),
    }
    if spec.num_numeric:
        description["dense"] = tf.io.FixedLenFeature(
            [spec.num_numeric], tf.float32)

    def parse(serialized: tf.Tensor):
        parsed = tf.io.parse_example(serialized, description)
        label = parsed.pop("label")
        return parsed, label

    return parse


def make_dataset(data_dir: DataDir, split: str, global_batch_size: int,
                 input_context: tf.distribute.InputContext | None = None,
                 shuffle: bool | None = None, repeat: bool = False,
                 seed: int | None = None, drop_remainder: bool = False,
                 shuffle_buffer: int = 100_000,
                 cycle_length: int = 2, block_length: int | None = None,
                 skip_corrupt: bool = False) -> tf.data.Dataset:
    """Builds the (features, label) dataset for one split.

    Args:
      data_dir: str or `DatasetDir`. A dataset directory with
        `dataset.json`.
      split: str. "train", "valid" or "test" (any split in dataset.json).
      global_batch_size: int. Batch size over all replicas; each input
        pipeline uses `input_context.get_per_replica_batch_size`.
      input_context: `tf.distribute.InputContext` or None. When given, files
        are sharded over `num_input_pipelines` (records are sharded instead
        when there are fewer files than pipelines).
      shuffle: bool. Shuffle records before batching. Defaults to
        `split == "train"`.
      repeat: bool. Repeat forever. Defaults to False.
      seed: int or None. Seed of file order and record shuffling.
      drop_remainder: bool. Drop the last partial batch (of each pass).
        Defaults to False: every row is read, in training too.
      shuffle_buffer: int. Records in the shuffle buffer.
      cycle_length: int. Files read in parallel.
      block_length: int. Records read from one file before the next.
        Defaults to `INTERLEAVE_BLOCK`.
      skip_corrupt: bool. Skip unreadable records (a truncated or corrupted
        file is read up to its first bad record) instead of failing; logs
        each damaged file (see `skipped_records`).
    """
    if global_batch_size <= 0:
        raise ValueError("`global_batch_size` should be positive. "
                         f"Received: `global_batch_size={global_batch_size}`")
    data = DatasetDir.open(data_dir)
    files = data.files(split)
    shuffle = split == "train" if shuffle is None else shuffle
    rows = data.rows(split)
    if drop_remainder and not repeat and rows is not None \
            and rows < global_batch_size:
        raise ValueError(
            f"Split {split!r} of {data} has {rows} rows, fewer than "
            f"`global_batch_size={global_batch_size}`: with the last partial "
            "batch dropped it would yield no batch at all. Use a smaller "
            "batch size (e.g. --set train.batch_size=...) or keep the "
            "remainder (`drop_remainder=False`).")
    batch_size = global_batch_size
    compression = data.spec.compression or None

    ds = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context is not None:
        n = input_context.num_input_pipelines
        batch_size = input_context.get_per_replica_batch_size(
            global_batch_size)
        if len(files) >= n:
            ds = ds.shard(n, input_context.input_pipeline_id)
        else:
            shard_records = True
    if shuffle and not shard_records:
        # Sharding records needs the same record order in every pipeline:
        # an unseeded file shuffle would differ per pipeline, so some
        # records would be read twice and others never.
        ds = ds.shuffle(len(files), seed=seed)
    if skip_corrupt:
        warn_skipped(data, split)
    ds = _read_files(ds, compression, skip_corrupt, cycle_length,
                     block_length or INTERLEAVE_BLOCK)
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines,
                      input_context.input_pipeline_id)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed,
                        reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(parse_fn(data.spec), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_dataset_fn(data_dir: DataDir, split: str, global_batch_size: int,
                    **kwargs) -> Callable[[tf.distribute.InputContext],
                                          tf.data.Dataset]:
    """`dataset_fn` for `strategy.distribute_datasets_from_function`."""
    data = DatasetDir.open(data_dir)

    def dataset_fn(input_context: tf.distribute.InputContext):
        return make_dataset(data, split, global_batch_size,
                            input_context=input_context, **kwargs)

    return dataset_fn


def make_epoch_stream(data_dir: DataDir, split: str, global_batch_size: int,
                      input_context: tf.distribute.InputContext | None = None,
                      seed: int = 0, start_step: int = 0,
                      shuffle_buffer: int = 100_000, cycle_length: int = 2,
                      block_length: int | None = None,
                      skip_corrupt: bool = False) -> tf.data.Dataset:
    """Endless training stream: epoch after epoch, every row once per epoch.

    Epoch e reads the files in an order drawn from (seed, e) and shuffles
    records with a seed drawn from (seed, e), independent of earlier
    iterations. With one replica an epoch is `ceil(rows / batch)` batches
    of (features, label), the last one smaller. With several replicas
    (`input_context.num_replicas_in_sync > 1`) the per-replica batches are
    all full and carry a third element, the sample weights, which pad the
    epoch's last steps (see the module docstring). Either way an epoch is
    `epoch_batches(..., num_input_pipelines)` steps and the stream is a pure
    function of (seed, start): `start_step=k` yields what step k of an
    uninterrupted stream was, which makes resumed training identical to
    uninterrupted training. Files (or records, with fewer files than
    pipelines) are sharded over `input_context` as in `make_dataset`.

    Args:
      data_dir, split, global_batch_size, input_context, cycle_length,
        block_length, skip_corrupt: as in `make_dataset`.
      seed: int. Seed of every epoch's file order and record shuffle.
      start_step: int. Global training steps to skip (e.g. epochs done x
        steps per epoch); each step takes one batch per replica of this
        pipeline. Whole epochs are skipped without reading them.
      shuffle_buffer: int. Records in the shuffle buffer; <= 1 keeps the
        file order (no record shuffle).
    """
    n, index, batch_size, local_replicas = pipeline_shape(global_batch_size,
                                                         input_context)
    data = DatasetDir.open(data_dir)
    files = data.files(split)
    compression = data.spec.compression or None
    shard_records = len(files) < n
    if not shard_records:
        files = files[index::n]  # = Dataset.shard(n, index) on the list
    padded = n * local_replicas > 1
    rows = pipeline_rows(data, split, n, skip_corrupt, count=padded)
    if rows is None:  # one replica: epochs of whatever the files hold
        if start_step:
            raise ValueError(f"dataset.json of {data} has no row count for "
                             f"split {split!r}: cannot start at step "
                             f"{start_step}.")
        first_epoch, skip = 0, 0
    else:
        check_epoch_rows(data, split, rows, batch_size)
        first_epoch, skip = divmod(start_step,
                                   epoch_steps(rows, global_batch_size))
    if skip_corrupt:
        warn_skipped(data, split)
    file_list = tf.constant(files)
    seed = tf.constant(int(seed), tf.int64)
    block = block_length or INTERLEAVE_BLOCK

    def records(epoch):
        """This pipeline's records of `epoch`, in their shuffled order."""
        order = tf.random.experimental.stateless_shuffle(
            file_list, seed=tf.stack([seed, epoch]))
        ds = _read_files(tf.data.Dataset.from_tensor_slices(order),
                         compression, skip_corrupt, cycle_length, block)
        if shard_records:
            ds = ds.shard(n, index)
        if shuffle_buffer > 1:
            # Shuffle blocks of `shuffle_buffer` records with stateless ops
            # seeded by (seed, epoch, block): deterministic and resumable.
            # (`Dataset.shuffle` cannot take a tensor seed when the global
            # seed is 0: TF's seed check turns it into a Python bool.) The
            # map is sequential, so in order; `deterministic=` there only
            # earns a UserWarning.
            ds = ds.batch(shuffle_buffer).enumerate().map(
                lambda i, block: tf.random.experimental.stateless_shuffle(
                    block, seed=tf.stack([seed, epoch * 1_000_003 + i]))
            ).unbatch()
        return ds

    parse = parse_fn(data.spec)
    if not padded:
        ds = tf.data.Dataset.counter(first_epoch).flat_map(
            lambda epoch: records(epoch).batch(batch_size))
        ds = ds.skip(skip)  # still unparsed records: cheap
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    weights = tf.constant(step_weights(rows, global_batch_size))
    epoch_rows = len(weights) * local_replicas * batch_size

    def padded_epoch(epoch):
        # The epoch's rows (weight 1), then copies of its first rows
        # (weight 0) up to `epoch_rows`; a batch's weights are scaled by its
        # step's weight.
        recs = records(epoch)
        ds = recs.map(lambda r: (r, 1.0)).concatenate(
            recs.repeat().map(lambda r: (r, 0.0)))
        ds = ds.take(epoch_rows).batch(batch_size, drop_remainder=True)
        return ds.enumerate().map(lambda i, batch: (
            batch[0], batch[1] * weights[i // local_replicas]))

    ds = tf.data.Dataset.counter(first_epoch).flat_map(padded_epoch)
    ds = ds.skip(skip * local_replicas)
    ds = ds.map(lambda r, w: (*parse(r), w),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_arrays(data_dir: DataDir, split: str, batch_size: int = 65536,
                skip_corrupt: bool = False):
    """Reads a whole split into NumPy arrays (features dict, labels)."""
    feats: dict[str, list] = {}
    labels = []
    for x, y in make_dataset(data_dir, split, batch_size, shuffle=False,
                             skip_corrupt=skip_corrupt):
        for k, v in x.items():
            feats.setdefault(k, []).append(v.numpy())
        labels.append(y.numpy())
    return ({k: np.concatenate(v) for k, v in feats.items()},
            np.concatenate(labels))
