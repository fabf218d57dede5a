"""tf.data reader: shapes, sharding, shuffling, errors, distribution."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.data.reader import load_arrays, make_dataset, split_files

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import REPO_ROOT, TINY_SPLIT_ROWS, make_spec, write_dataset

ROWS = {"train": 90, "valid": 30}


@pytest.fixture(scope="module")
def row_id_dir(tmp_path_factory) -> str:
    """Categorical field `row` holds a unique id per row (1..n, train then
    valid); the label is the id's parity. Train has 3 shards."""
    spec = make_spec(categorical=("row", "user"),
                     vocab_sizes=(sum(ROWS.values()) + 2, 5), numeric=("x",))
    splits, start = {}, 1
    for split, n in ROWS.items():
        row = np.arange(start, start + n)
        start += n
        ids = np.stack([row, row % 4 + 1], axis=1).astype(np.int64)
        dense = (row[:, None] / 100.0).astype(np.float32)
        splits[split] = (ids, dense, (row % 2).astype(np.float32)[:, None])
    out = tmp_path_factory.mktemp("row_ids")
    return write_dataset(out, spec, splits, shards={"train": 3})


def row_ids(ds: tf.data.Dataset) -> list[int]:
    return [int(i) for x, _ in ds for i in x["ids"][:, 0].numpy()]


def test_batch_shapes_and_dtypes(tiny_dataset_dir):
    x, y = next(iter(make_dataset(tiny_dataset_dir, "train", 16)))
    assert set(x) == {"ids", "dense"}
    assert x["ids"].dtype == tf.int64 and x["ids"].shape == (16, 3)
    assert x["dense"].dtype == tf.float32 and x["dense"].shape == (16, 2)
    assert y.dtype == tf.float32 and y.shape == (16, 1)
    spec = make_dataset(tiny_dataset_dir, "valid", 16).element_spec
    assert spec[0]["ids"].shape.as_list() == [None, 3]
    assert spec[1].shape.as_list() == [None, 1]


def test_values_round_trip(row_id_dir):
    x, y = load_arrays(row_id_dir, "valid", batch_size=7)
    row = np.arange(ROWS["train"] + 1, sum(ROWS.values()) + 1)
    np.testing.assert_array_equal(x["ids"][:, 0], row)
    np.testing.assert_array_equal(x["ids"][:, 1], row % 4 + 1)
    np.testing.assert_allclose(x["dense"][:, 0], row / 100.0, rtol=1e-6)
    np.testing.assert_array_equal(y[:, 0], row % 2)


def test_no_dense_feature_without_numeric_fields(tmp_path):
    spec = make_spec(categorical=("a",), vocab_sizes=(4,), numeric=())
    ids = np.array([[1], [2], [3]], np.int64)
    labels = np.ones((3, 1), np.float32)
    out = write_dataset(tmp_path, spec, {"train": (ids, None, labels)})
    x, y = next(iter(make_dataset(out, "train", 3)))
    assert set(x) == {"ids"} and y.shape == (3, 1)


def test_every_split_keeps_its_remainder_unless_told(tiny_dataset_dir):
    batch = 48  # 320 train rows, 96 valid rows: neither is a multiple
    train_sizes = [int(y.shape[0]) for _, y in
                   make_dataset(tiny_dataset_dir, "train", batch)]
    assert train_sizes == [batch] * 6 + [32]  # every training row
    valid_sizes = [int(y.shape[0]) for _, y in
                   make_dataset(tiny_dataset_dir, "valid", 40)]
    assert valid_sizes == [40, 40, 16]
    dropped = make_dataset(tiny_dataset_dir, "train", batch,
                           drop_remainder=True)
    assert dropped.element_spec[1].shape[0] == batch
    assert [int(y.shape[0]) for _, y in dropped] == [batch] * 6


def test_train_batch_larger_than_split_is_a_clear_error(tiny_dataset_dir):
    with pytest.raises(ValueError, match=r"320 rows.*global_batch_size=512"):
        make_dataset(tiny_dataset_dir, "train", 512, drop_remainder=True)
    # Repeated data or a kept remainder (the default) still yields batches.
    _, y = next(iter(make_dataset(tiny_dataset_dir, "train", 512)))
    assert y.shape == (TINY_SPLIT_ROWS["train"], 1)
    _, y = next(iter(make_dataset(tiny_dataset_dir, "train", 512,
                                  repeat=True)))
    assert y.shape == (512, 1)
    _, y = next(iter(make_dataset(tiny_dataset_dir, "valid", 512)))
    assert y.shape == (TINY_SPLIT_ROWS["valid"], 1)


def test_eval_splits_are_not_shuffled(row_id_dir):
    ids = row_ids(make_dataset(row_id_dir, "valid", 8))
    assert ids == sorted(ids)


def test_seeded_shuffle_is_reproducible(row_id_dir):
    def order(seed):
        return row_ids(make_dataset(row_id_dir, "train", 10, seed=seed))

    first = order(1)
    assert sorted(first) == list(range(1, ROWS["train"] + 1))
    assert first != sorted(first)
    assert order(1) == first
    assert order(2) != first


def test_repeat_reshuffles_each_epoch(row_id_dir):
    ds = make_dataset(row_id_dir, "train", 10, seed=3, repeat=True)
    ids = row_ids(ds.take(2 * ROWS["train"] // 10))
    n = ROWS["train"]
    assert sorted(ids[:n]) == sorted(ids[n:]) == list(range(1, n + 1))
    assert ids[:n] != ids[n:]


@pytest.mark.parametrize("pipelines", [2, 3, 4])
@pytest.mark.parametrize("seed", [None, 5])
def test_input_pipelines_see_every_example_once(row_id_dir, pipelines,
                                                seed):
    # 3 train files: 2 or 3 pipelines shard files, 4 pipelines shard records.
    seen = collections.Counter()
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(num_input_pipelines=pipelines,
                                         input_pipeline_id=i,
                                         num_replicas_in_sync=pipelines)
        ds = make_dataset(row_id_dir, "train", 6 * pipelines,
                          input_context=ctx, shuffle=True, seed=seed,
                          drop_remainder=False)
        assert ds.element_spec[1].shape[0] in (None, 6)
        seen.update(row_ids(ds))
    assert sorted(seen) == list(range(1, ROWS["train"] + 1))
    assert set(seen.values()) == {1}


def test_single_file_split_shards_records(row_id_dir):
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(2, i, 2)
        part = row_ids(make_dataset(row_id_dir, "valid", 8, input_context=ctx,
                                    shuffle=True, seed=1))
        assert len(part) == ROWS["valid"] // 2
        seen += part
    assert sorted(seen) == list(range(ROWS["train"] + 1,
                                      sum(ROWS.values()) + 1))


def test_per_replica_batch_size(tiny_dataset_dir):
    ctx = tf.distribute.InputContext(num_input_pipelines=1,
                                     input_pipeline_id=0,
                                     num_replicas_in_sync=2)
    _, y = next(iter(make_dataset(tiny_dataset_dir, "train", 32,
                                  input_context=ctx)))
    assert y.shape == (16, 1)


def test_split_files_in_listed_order(tiny_dataset_dir):
    files = split_files(tiny_dataset_dir, "train")
    assert [os.path.relpath(f, tiny_dataset_dir) for f in files] == [
        "train/part-00000.tfrecord", "train/part-00001.tfrecord"]


def test_missing_split_lists_available(tiny_dataset_dir):
    with pytest.raises(ValueError) as e:
        make_dataset(tiny_dataset_dir, "tset", 8)
    msg = str(e.value)
    assert "'tset'" in msg
    assert "['test', 'train', 'valid']" in msg


def test_missing_dataset_json(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        make_dataset(str(tmp_path), "train", 8)
    assert "dataset.json" in str(e.value)
    assert "not a dataset directory" in str(e.value)


def test_missing_file_and_bad_format_version(tiny_dataset_dir, tmp_path):
    with open(os.path.join(tiny_dataset_dir, "dataset.json")) as f:
        meta = json.load(f)
    meta["splits"]["train"]["files"].append("train/part-00009.tfrecord")
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="part-00009"):
        make_dataset(str(tmp_path), "train", 8)
    meta["format_version"] = 99
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 99"):
        make_dataset(str(tmp_path), "train", 8)


def test_bad_batch_size(tiny_dataset_dir):
    with pytest.raises(ValueError, match="global_batch_size=0"):
        make_dataset(tiny_dataset_dir, "train", 0)


def test_mirrored_strategy_two_logical_cpus(row_id_dir):
    """`make_dataset_fn` under MirroredStrategy on 2 logical CPU devices
    (configured in a fresh interpreter: it must happen before TF starts)."""
    code = textwrap.dedent(f"""
        import numpy as np
        import tfdsmlp
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfdsmlp.data.reader import make_dataset_fn
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        fn = make_dataset_fn({row_id_dir!r}, "train", 20, seed=1,
                             shuffle=True, drop_remainder=False)
        dist = strategy.distribute_datasets_from_function(fn)
        ids = []
        for x, y in dist:
            parts = strategy.experimental_local_results(x["ids"])
            assert len(parts) == 2
            for p in parts:
                assert p.shape[0] <= 10 and p.shape[1] == 2, p.shape
                ids += p.numpy()[:, 0].tolist()
        assert sorted(ids) == list(range(1, {ROWS["train"]} + 1)), ids

        with strategy.scope():
            inp = {{"ids": tf.keras.Input((2,), dtype=tf.int64, name="ids"),
                    "dense": tf.keras.Input((1,), name="dense")}}
            emb = tf.keras.layers.Embedding({sum(ROWS.values()) + 2}, 4)(
                inp["ids"])
            h = tf.keras.layers.Concatenate()(
                [tf.keras.layers.Flatten()(emb), inp["dense"]])
            head = tf.keras.layers.Dense(1, name="head")
            model = tf.keras.Model(inp, head(h))
            model.compile("adam", tf.keras.losses.BinaryCrossentropy(
                from_logits=True))
        fn = make_dataset_fn({row_id_dir!r}, "train", 20, seed=1,
                             repeat=True)
        hist = model.fit(strategy.distribute_datasets_from_function(fn),
                         epochs=2, steps_per_epoch=3, verbose=0)
        assert all(np.isfinite(hist.history["loss"])), hist.history
        print("OK")
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT),
                            env=env, capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, (result.stdout[-2000:]
                                    + result.stderr[-4000:])
    assert "OK" in result.stdout


def test_epoch_stream_works_with_global_seed_zero(tiny_dataset_dir):
    """Regression: a tensor shuffle seed used to fail when the global seed
    was 0 (TF's seed check evaluated a tensor as a Python bool)."""
    from tfdsmlp.data.reader import make_epoch_stream

    tf.keras.utils.set_random_seed(0)
    ds = make_epoch_stream(tiny_dataset_dir, "train", 32, seed=0,
                           shuffle_buffer=64)
    batches = [y.numpy() for _, y in ds.take(25)]  # > 1 epoch (10/epoch)
    assert all(b.shape == (32, 1) for b in batches)
    again = [y.numpy() for _, y in make_epoch_stream(
        tiny_dataset_dir, "train", 32, seed=0, shuffle_buffer=64).take(25)]
    assert all((a == b).all() for a, b in zip(batches, again))


def _stream_rows(ds, steps):
    out = []
    for batch in ds.take(steps):
        x, y = batch[:2]
        ids = x["ids"][:, 0].numpy()
        # every gathered row keeps its own features and label
        np.testing.assert_array_equal(ids % 4 + 1, x["ids"][:, 1].numpy())
        np.testing.assert_allclose(x["dense"][:, 0].numpy(), ids / 100.0,
                                   rtol=1e-6)
        np.testing.assert_array_equal(y[:, 0].numpy(), ids % 2)
        out.append(ids.tolist())
    return out


def test_memory_stream_epochs_are_seeded_permutations(row_id_dir):
    from tfdsmlp.data.memory import make_memory_stream
    batches = _stream_rows(make_memory_stream(row_id_dir, "train", 10,
                                              seed=3), 18)
    epoch1 = sorted(r for b in batches[:9] for r in b)
    assert epoch1 == list(range(1, ROWS["train"] + 1))  # each row once
    assert sorted(r for b in batches[9:] for r in b) == epoch1
    assert batches[:9] != batches[9:]  # a new permutation each epoch
    # a pure function of (seed, start_step): resuming at step 5 continues
    resumed = _stream_rows(make_memory_stream(row_id_dir, "train", 10,
                                              seed=3, start_step=5), 13)
    assert resumed == batches[5:18]
    other = _stream_rows(make_memory_stream(row_id_dir, "train", 10,
                                            seed=4), 9)
    assert other != batches[:9]


def test_memory_stream_shards_rows_over_input_pipelines(row_id_dir):
    from tfdsmlp.data.memory import make_memory_stream
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=i,
                                         num_replicas_in_sync=2)
        ds = make_memory_stream(row_id_dir, "train", 10, input_context=ctx,
                                seed=1)
        # Several replicas: (x, y, sample_weight); 45 rows = 9 x 5, no pad.
        assert all(w.numpy().tolist() == [1.0] * 5 for _, _, w in ds.take(9))
        rows = [r for b in _stream_rows(ds, 9) for r in b]
        assert len(rows) == 45 and len(set(rows)) == 45  # one epoch
        seen.append(set(rows))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(1, ROWS["train"] + 1))


def test_memory_stream_batch_larger_than_split_is_one_batch(row_id_dir):
    from tfdsmlp.data.memory import make_memory_stream
    batches = _stream_rows(make_memory_stream(row_id_dir, "train", 100), 2)
    assert [sorted(b) for b in batches] == [list(range(1, 91))] * 2


def test_in_memory_refuses_a_split_larger_than_half_the_ram(row_id_dir):
    from tfdsmlp.data.memory import check_fits_in_memory, split_nbytes
    # 90 rows x (2 int64 ids + 1 float32 value + float32 label)
    assert split_nbytes(row_id_dir, "train") == 90 * (2 * 8 + 4 + 4)
    check_fits_in_memory(row_id_dir, "train", ram_bytes=2 * 90 * 24)
    with pytest.raises(ValueError, match="would take .* GiB in memory, more "
                                         "than 50% .*train.in_memory=false"):
        check_fits_in_memory(row_id_dir, "train", ram_bytes=2 * 90 * 24 - 1)
