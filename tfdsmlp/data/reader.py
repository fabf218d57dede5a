"""tf.data input pipeline: TFRecord files -> batches of (features, label).

Pipeline (as TF Model Garden's ranking reader)::

    list files -> shard by InputContext -> interleave -> shuffle (records)
      -> repeat -> batch -> parse whole batches -> prefetch

`features` is {"ids": int64 (b, num_categorical), "dense": float32
(b, num_numeric) when the dataset has numeric fields}; `label` is float32
(b, 1). Works with `strategy.distribute_datasets_from_function` through
`make_dataset_fn`.

Training uses `make_epoch_stream`: an endless stream of batches, epoch by
epoch, where epoch e is shuffled with seeds derived from (seed, e) only. Batch
k of the stream is therefore the same in every run, and a run resumed from a
backup at epoch e (`start_step = e * steps_per_epoch`) sees exactly the
batches an uninterrupted run would have seen.

Damaged files: TensorFlow's own `DataLossError` ("truncated record at 6722")
does not say which file; `find_corrupt_files` does (training and evaluation
in `tfdsmlp.training` turn the error into `CorruptRecordError` naming the
file). With `skip_corrupt=True` each file is read up to its first unreadable
record (the rest of that file is lost), after one cheap scan that counts the
records skipped (`skipped_records`) and logs each damaged file.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Callable

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tfdsmlp.features import FeatureSpec, load_dataset_json

SPLITS = ("train", "valid", "test")
# Records read from one file before switching to the next (`interleave`).
INTERLEAVE_BLOCK = 256

_log = logging.getLogger("tfdsmlp")


class CorruptRecordError(ValueError):
    """A TFRecord file of the dataset is truncated or corrupted."""


_SCANS: dict[tuple, tuple[int, str | None]] = {}


def scan_file(path: str, compression: str | None = None
              ) -> tuple[int, str | None]:
    """(readable records, error message or None) of one TFRecord file.

    Reads raw records (no parsing), so it is about as fast as the disk;
    results are cached per (path, size, mtime)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns,
           compression)
    if key not in _SCANS:
        count, error = 0, None
        ds = tf.data.TFRecordDataset(path, compression_type=compression)
        try:
            for batch in ds.batch(8192):
                count += int(batch.shape[0])
        except tf.errors.DataLossError as e:
            error = _short_error(e)
            # The batch holding the bad record was lost: count exactly.
            count = int(ds.ignore_errors().reduce(
                tf.constant(0, tf.int64), lambda n, _: n + 1))
        _SCANS[key] = (count, error)
    return _SCANS[key]


def _short_error(e: Exception) -> str:
    msg = getattr(e, "message", str(e))
    msg = msg.split("}}")[-1].split("[Op:")[0].strip()
    return msg or type(e).__name__


def find_corrupt_files(data_dir: str, splits=SPLITS
                       ) -> list[tuple[str, int, str]]:
    """[(file, readable records, error)] for each damaged file of `splits`
    (splits missing from dataset.json are ignored)."""
    spec = FeatureSpec.from_dataset_dir(data_dir)
    present = load_dataset_json(data_dir).get("splits", {})
    bad = []
    for split in splits:
        if split not in present:
            continue
        for path in split_files(data_dir, split):
            count, error = scan_file(path, spec.compression or None)
            if error:
                bad.append((path, count, error))
    return bad


def corrupt_data_error(data_dir: str, splits=SPLITS,
                       cause: Exception | None = None) -> Exception:
    """A `CorruptRecordError` naming the damaged files of `splits` (scans
    them: call it after a `tf.errors.DataLossError`)."""
    bad = find_corrupt_files(data_dir, splits)
    if not bad:
        return CorruptRecordError(
            f"Unreadable data in {data_dir} ({_short_error(cause)}), but no "
            f"damaged file found in splits {list(splits)} on a second read.")
    files = "; ".join(f"{path} ({error} after {count} good records)"
                      for path, count, error in bad)
    return CorruptRecordError(
        f"Truncated or corrupted TFRecord file(s): {files}. Re-create the "
        "dataset (python -m data_tools convert ...), or pass --skip-corrupt "
        "(TrainConfig.skip_corrupt) to skip the unreadable records; the "
        "number skipped is then logged and written to metrics.json.")


def skipped_records(data_dir: str, split: str) -> int:
    """Records of `split` that `skip_corrupt=True` skips (dataset.json's row
    count minus the readable records; scans the split once, cached)."""
    spec = FeatureSpec.from_dataset_dir(data_dir)
    files = split_files(data_dir, split)
    readable = sum(scan_file(f, spec.compression or None)[0] for f in files)
    rows = load_dataset_json(data_dir)["splits"][split].get("rows")
    if rows is None:
        return sum(1 for f in files
                   if scan_file(f, spec.compression or None)[1])
    return max(0, int(rows) - readable)


_WARNED: set = set()


def _warn_skipped(data_dir: str, split: str) -> None:
    spec = FeatureSpec.from_dataset_dir(data_dir)
    for path in split_files(data_dir, split):
        count, error = scan_file(path, spec.compression or None)
        if error and (path, count) not in _WARNED:
            _WARNED.add((path, count))
            _log.warning("skip_corrupt: %s is damaged (%s): only its first "
                         "%d records are read.", path, error, count)
    skipped = skipped_records(data_dir, split)
    if skipped and (data_dir, split, skipped) not in _WARNED:
        _WARNED.add((data_dir, split, skipped))
        _log.warning("skip_corrupt: skipping %d unreadable records of split "
                     "%r of %s.", skipped, split, data_dir)


def _read_files(files: tf.data.Dataset, compression, skip_corrupt: bool,
                cycle_length: int, block_length: int) -> tf.data.Dataset:
    def read(path):
        ds = tf.data.TFRecordDataset(path, compression_type=compression)
        return ds.ignore_errors() if skip_corrupt else ds

    return files.interleave(read, cycle_length=cycle_length,
                            block_length=block_length,
                            num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True)


def split_files(data_dir: str, split: str) -> list[str]:
    """The TFRecord files of `split`, in a stable order."""
    meta = load_dataset_json(data_dir)
    splits = meta.get("splits", {})
    if split not in splits:
        raise ValueError(
            f"Split {split!r} not in {os.path.join(data_dir, 'dataset.json')}."
            f" Available splits: {sorted(splits)}")
    files = [os.path.join(data_dir, f) for f in splits[split]["files"]]
    if not files:
        files = sorted(glob.glob(os.path.join(data_dir, split, "part-*")))
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(
            f"Split {split!r} of {data_dir}: files listed in dataset.json are "
            f"missing: {missing[:5]}")
    if not files:
        raise FileNotFoundError(f"Split {split!r} of {data_dir} has no files.")
    return files


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


def make_dataset(data_dir: str, split: str, global_batch_size: int,
                 input_context: tf.distribute.InputContext | None = None,
                 shuffle: bool | None = None, repeat: bool = False,
                 seed: int | None = None, drop_remainder: bool | None = None,
                 shuffle_buffer: int = 100_000,
                 cycle_length: int = 2, block_length: int | None = None,
                 skip_corrupt: bool = False) -> tf.data.Dataset:
    """Builds the (features, label) dataset for one split.

    Args:
      data_dir: str. A dataset directory with `dataset.json`.
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
      drop_remainder: bool. Defaults to `split == "train"`.
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
    spec = FeatureSpec.from_dataset_dir(data_dir)
    files = split_files(data_dir, split)
    is_train = split == "train"
    shuffle = is_train if shuffle is None else shuffle
    drop_remainder = is_train if drop_remainder is None else drop_remainder
    rows = load_dataset_json(data_dir)["splits"][split].get("rows")
    if drop_remainder and not repeat and rows is not None \
            and rows < global_batch_size:
        raise ValueError(
            f"Split {split!r} of {data_dir} has {rows} rows, fewer than "
            f"`global_batch_size={global_batch_size}`: with the last partial "
            "batch dropped it would yield no batch at all. Use a smaller "
            "batch size (e.g. --set train.batch_size=...).")
    batch_size = global_batch_size
    compression = spec.compression or None

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
        _warn_skipped(data_dir, split)
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
    ds = ds.map(parse_fn(spec), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_dataset_fn(data_dir: str, split: str, global_batch_size: int,
                    **kwargs) -> Callable[[tf.distribute.InputContext],
                                          tf.data.Dataset]:
    """`dataset_fn` for `strategy.distribute_datasets_from_function`."""

    def dataset_fn(input_context: tf.distribute.InputContext):
        return make_dataset(data_dir, split, global_batch_size,
                            input_context=input_context, **kwargs)

    return dataset_fn


def epoch_batches(data_dir: str, split: str, batch_size: int,
                  num_input_pipelines: int = 1,
                  skip_corrupt: bool = False) -> int | None:
    """Full batches of `batch_size` in one epoch of one of
    `num_input_pipelines` input pipelines (None when dataset.json has no
    row count); assumes the rows are spread evenly over the pipelines. With
    the defaults: the steps of one epoch at global batch `batch_size`."""
    rows = load_dataset_json(data_dir)["splits"][split].get("rows")
    if rows is None:
        return None
    if skip_corrupt:
        rows -= skipped_records(data_dir, split)
    return (int(rows) // num_input_pipelines) // max(1, batch_size)


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


def make_epoch_stream(data_dir: str, split: str, global_batch_size: int,
                      input_context: tf.distribute.InputContext | None = None,
                      seed: int = 0, start_step: int = 0,
                      shuffle_buffer: int = 100_000, cycle_length: int = 2,
                      block_length: int | None = None,
                      skip_corrupt: bool = False) -> tf.data.Dataset:
    """Endless training stream: epoch after epoch of full batches.

    Epoch e reads the files in an order drawn from (seed, e) and shuffles
    records with a seed drawn from (seed, e), independent of earlier
    iterations; each epoch ends with its last full batch. So the stream is a
    pure function of (seed, start): `start_step=k` yields what step k of an
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
    spec = FeatureSpec.from_dataset_dir(data_dir)
    files = split_files(data_dir, split)
    compression = spec.compression or None
    shard_records = len(files) < n
    if not shard_records:
        files = files[index::n]  # = Dataset.shard(n, index) on the list
    per_epoch = epoch_batches(data_dir, split, batch_size, n, skip_corrupt)
    if per_epoch == 0:
        raise ValueError(
            f"Split {split!r} of {data_dir} has fewer rows per input "
            f"pipeline than the batch ({batch_size}): an epoch would yield "
            "no batch. Use a smaller batch size.")
    if start_step and per_epoch is None:
        raise ValueError(f"dataset.json of {data_dir} has no row count for "
                         f"split {split!r}: cannot start at step "
                         f"{start_step}.")
    first_epoch, skip = divmod(start_step * local_replicas, per_epoch or 1)
    if skip_corrupt:
        _warn_skipped(data_dir, split)
    file_list = tf.constant(files)
    seed = tf.constant(int(seed), tf.int64)
    block = block_length or INTERLEAVE_BLOCK

    def one_epoch(epoch):
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
            # seed is 0: TF's seed check turns it into a Python bool.)
            ds = ds.batch(shuffle_buffer).enumerate().map(
                lambda i, block: tf.random.experimental.stateless_shuffle(
                    block, seed=tf.stack([seed, epoch * 1_000_003 + i])),
                deterministic=True).unbatch()
        return ds.batch(batch_size, drop_remainder=True)

    ds = tf.data.Dataset.counter(first_epoch).flat_map(one_epoch)
    if skip:
        ds = ds.skip(skip)  # still unparsed records: cheap
    ds = ds.map(parse_fn(spec), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_arrays(data_dir: str, split: str, batch_size: int = 65536,
                skip_corrupt: bool = False):
    """Reads a whole split into NumPy arrays (features dict, labels)."""
    import numpy as np

    feats: dict[str, list] = {}
    labels = []
    for x, y in make_dataset(data_dir, split, batch_size, shuffle=False,
                             drop_remainder=False,
                             skip_corrupt=skip_corrupt):
        for k, v in x.items():
            feats.setdefault(k, []).append(v.numpy())
        labels.append(y.numpy())
    return ({k: np.concatenate(v) for k, v in feats.items()},
            np.concatenate(labels))
