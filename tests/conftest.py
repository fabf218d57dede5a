"""Shared fixtures: a tiny feature spec, a tiny batch and a tiny dataset.

Everything is small enough for a 2-core machine: 3 categorical fields
(`user`, `item`, `ctx`; vocabulary sizes 5, 7, 4 including the reserved
padding and OOV ids) and 2 numeric fields. The helpers behind them live in
`tests/tiny_data.py` (import them from there: `from tiny_data import
require_shared_data`); they are re-exported here for convenience.
"""

from __future__ import annotations

from pathlib import Path

from tfdsmlp.features import FeatureSpec

import numpy as np
import pytest
from tiny_data import (  # noqa: F401
    REPO_ROOT,
    SHARED_DATA,
    TINY_CATEGORICAL,
    TINY_NUMERIC,
    TINY_SPLIT_ROWS,
    TINY_VOCAB_SIZES,
    make_rows,
    make_spec,
    require_shared_data,
    write_dataset,
)


@pytest.fixture(scope="session")
def tiny_spec() -> FeatureSpec:
    """user/item/ctx (vocab 5, 7, 4) + 2 numeric fields."""
    return make_spec()


@pytest.fixture(scope="session")
def tiny_batch() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({"ids": int64 (32, 3), "dense": float32 (32, 2)}, labels (32, 1))."""
    ids, dense, labels = make_rows(32, seed=7)
    return {"ids": ids, "dense": dense}, labels


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory, tiny_spec) -> str:
    """A dataset directory for `tiny_spec`: train (320 rows, 2 shards),
    valid and test (96 rows, 1 shard each)."""
    out = tmp_path_factory.mktemp("tiny_dataset")
    splits = {split: make_rows(n, seed=i)
              for i, (split, n) in enumerate(TINY_SPLIT_ROWS.items())}
    return write_dataset(out, tiny_spec, splits, shards={"train": 2})


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> str:
    """A small `data_tools.synth` dataset with vocabularies (export needs
    them): c0..c5 (<= 30 tokens) + x0; 1000 train, 200 valid, 200 test
    rows. Read-only: copy it before changing it."""
    from data_tools.synth import write_synthetic

    out = str(tmp_path_factory.mktemp("synth") / "data")
    write_synthetic(out, num_rows=1000, seed=3, num_categorical=6,
                    num_numeric=1, vocab_size=30, valid_rows=200,
                    test_rows=200)
    return out


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (skips when it is missing)."""
    return require_shared_data()
