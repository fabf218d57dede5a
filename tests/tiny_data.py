"""Test data helpers shared by the test modules (import: `tiny_data`).

Import these from here, not from `conftest`: several folders have a
`conftest.py` without a package `__init__.py`, so `from conftest import ...`
may get another folder's conftest.

- `REPO_ROOT`, `SHARED_DATA` (`../shared/data`, never copied into the repo),
  `require_shared_data(*parts)`: the path, or `pytest.skip` with a clear
  message when it is missing (e.g. in a user's fresh clone).
- `make_spec`, `make_rows`: a tiny `FeatureSpec` (user/item/ctx with vocab
  sizes 5, 7, 4 plus 2 numeric fields) and rows with a learnable signal.
- `write_dataset`: a dataset directory in the on-disk format of
  `tfdsmlp/features.py`, written with TensorFlow's own `tf.train.Example`
  (not `data_tools`), so reader tests do not depend on the converter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.features import FORMAT_VERSION, FeatureSpec, FieldSpec

import numpy as np
import pytest
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

TINY_VOCAB_SIZES = (5, 7, 4)
TINY_CATEGORICAL = ("user", "item", "ctx")
TINY_NUMERIC = ("price", "age")


def require_shared_data(*parts: str) -> Path:
    """`SHARED_DATA/<parts>`, or skips the test when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"Real data {path} not found: these tests read the shared "
                    "benchmark data next to the repository (../shared/data), "
                    "which is never copied into it.")
    return path


def make_spec(categorical=TINY_CATEGORICAL, vocab_sizes=TINY_VOCAB_SIZES,
              numeric=TINY_NUMERIC) -> FeatureSpec:
    """A `FeatureSpec` with the given categorical and numeric fields."""
    fields = [FieldSpec(name=n, kind="categorical", vocab_size=v, source=n)
              for n, v in zip(categorical, vocab_sizes)]
    fields += [FieldSpec(name=n, kind="numeric", source=n) for n in numeric]
    return FeatureSpec(fields=tuple(fields))


def make_rows(num_rows: int, seed: int = 0,
              vocab_sizes=TINY_VOCAB_SIZES, num_numeric: int = 2
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random (ids int64, dense float32, labels float32 (n, 1)) with a
    learnable signal: the label is 1 when a fixed score of user, item, their
    interaction and the first numeric value is positive (5% labels flipped).
    """
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(1, v, size=num_rows) for v in vocab_sizes],
                   axis=1).astype(np.int64)
    dense = rng.normal(size=(num_rows, num_numeric)).astype(np.float32)
    score = np.zeros(num_rows)
    weights = np.random.default_rng(1234)  # the same "truth" for every seed
    for f, v in enumerate(vocab_sizes[:2]):
        score += weights.normal(size=v)[ids[:, f]]
    score += np.where((ids[:, 0] + ids[:, 1]) % 2 == 0, 1.0, -1.0)
    if num_numeric:
        score += dense[:, 0]
    labels = (score > np.median(score)).astype(np.float32)
    flip = rng.random(num_rows) < 0.05
    labels[flip] = 1.0 - labels[flip]
    return ids, dense, labels.reshape(-1, 1)


def _example(ids: np.ndarray, dense: np.ndarray | None,
             label: float) -> bytes:
    feature = {
        "ids": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[int(i) for i in ids])),
        "label": tf.train.Feature(float_list=tf.train.FloatList(
            value=[float(label)])),
    }
    if dense is not None and dense.size:
        feature["dense"] = tf.train.Feature(float_list=tf.train.FloatList(
            value=[float(x) for x in dense]))
    return tf.train.Example(features=tf.train.Features(
        feature=feature)).SerializeToString()


def write_dataset(out_dir: str | os.PathLike, spec: FeatureSpec,
                  splits: dict[str, tuple[np.ndarray, np.ndarray | None,
                                          np.ndarray]],
                  shards: dict[str, int] | None = None) -> str:
    """Writes `splits` {name: (ids, dense, labels)} as a dataset directory.

    Split `s` goes into `out_dir/s/part-NNNNN.tfrecord` (`shards[s]` files,
    default 1, rows dealt out in contiguous blocks) and `dataset.json`
    records `format_version`, `fields` and `splits` {s: {rows, files}}.
    """
    out_dir = str(out_dir)
    shards = shards or {}
    meta: dict[str, Any] = {"format_version": FORMAT_VERSION,
                            **spec.to_dict(), "splits": {}}
    for split, (ids, dense, labels) in splits.items():
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        n = len(labels)
        files = []
        for k, rows in enumerate(np.array_split(np.arange(n),
                                                shards.get(split, 1))):
            rel = f"{split}/part-{k:05d}.tfrecord"
            with tf.io.TFRecordWriter(os.path.join(out_dir, rel)) as w:
                for r in rows:
                    w.write(_example(ids[r], None if dense is None
                                     else dense[r], labels[r, 0]))
            files.append(rel)
        meta["splits"][split] = {"rows": int(n), "files": files}
    with open(os.path.join(out_dir, "dataset.json"), "w",
              encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    return out_dir


TINY_SPLIT_ROWS = {"train": 320, "valid": 96, "test": 96}


