"""tf.data input pipeline: TFRecord files -> batches of (features, label).

Pipeline (as TF Model Garden's ranking reader)::

    list files -> shard by InputContext -> interleave -> shuffle (records)
      -> repeat -> batch -> parse whole batches -> prefetch

`features` is {"ids": int64 (b, num_categorical), "dense": float32
(b, num_numeric) when the dataset has numeric fields}; `label` is float32
(b, 1). Works with `strategy.distribute_datasets_from_function` through
`make_dataset_fn`.
"""

from __future__ import annotations

import glob
import os
from typing import Callable

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
import tensorflow as tf

from tfdsmlp.features import FeatureSpec, load_dataset_json

SPLITS = ("train", "valid", "test")


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
                 cycle_length: int = 2) -> tf.data.Dataset:
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
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression),
        cycle_length=cycle_length, block_length=256,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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


def load_arrays(data_dir: str, split: str, batch_size: int = 65536):
    """Reads a whole split into NumPy arrays (features dict, labels)."""
    import numpy as np

    feats: dict[str, list] = {}
    labels = []
    for x, y in make_dataset(data_dir, split, batch_size, shuffle=False):
        for k, v in x.items():
            feats.setdefault(k, []).append(v.numpy())
        labels.append(y.numpy())
    return ({k: np.concatenate(v) for k, v in feats.items()},
            np.concatenate(labels))
