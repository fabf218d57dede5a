"""Every row, every epoch: the training streams (`make_epoch_stream` from
the TFRecords, `make_memory_stream` from memory) read each training row
exactly once per epoch, also when the batch does not divide the rows; a
multi-replica stream pads its last steps with zero-weight rows whose
weights keep the loss an exact mean; `start_step` resumes anywhere."""

from __future__ import annotations

import collections
import math

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)
from tfdsmlp.data.epochs import epoch_batches, pipeline_rows, step_weights
from tfdsmlp.data.memory import make_memory_stream
from tfdsmlp.data.reader import make_epoch_stream
from tfdsmlp.training.fit import steps_per_epoch
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf
from tiny_data import make_spec, write_dataset

ROWS = 90  # 3 files of 30 rows: 2 workers shard them 60 / 30
STREAMS = {"tfrecord": make_epoch_stream, "memory": make_memory_stream}


@pytest.fixture(scope="module")
def row_id_dir(tmp_path_factory) -> str:
    """Categorical field `row` holds a unique id per row (1..90); the label
    is its parity and the numeric value id / 100. Train has 3 files."""
    spec = make_spec(categorical=("row", "user"), vocab_sizes=(ROWS + 2, 5),
                     numeric=("x",))
    row = np.arange(1, ROWS + 1)
    ids = np.stack([row, row % 4 + 1], axis=1).astype(np.int64)
    dense = (row[:, None] / 100.0).astype(np.float32)
    labels = (row % 2).astype(np.float32)[:, None]
    out = tmp_path_factory.mktemp("row_ids")
    return write_dataset(out, spec, {"train": (ids, dense, labels)},
                         shards={"train": 3})


def batch_rows(batch) -> list[int]:
    """Row ids of one batch; checks each row kept its own values."""
    x, y = batch[:2]
    ids = x["ids"][:, 0].numpy()
    np.testing.assert_array_equal(ids % 4 + 1, x["ids"][:, 1].numpy())
    np.testing.assert_allclose(x["dense"][:, 0].numpy(), ids / 100.0,
                               rtol=1e-6)
    np.testing.assert_array_equal(y[:, 0].numpy(), ids % 2)
    return ids.tolist()


def take_rows(ds, batches) -> list[list[int]]:
    return [batch_rows(b) for b in ds.take(batches)]


@pytest.mark.parametrize("stream", STREAMS)
def test_each_epoch_reads_every_row_once(row_id_dir, stream):
    # 90 rows, batch 20: 4 full batches and one of 10, every epoch. (Before,
    # the last 10 rows of each epoch were never read.)
    batches = take_rows(STREAMS[stream](row_id_dir, "train", 20, seed=3),
                        15)
    assert [len(b) for b in batches] == [20, 20, 20, 20, 10] * 3
    epochs = [[r for b in batches[i:i + 5] for r in b] for i in (0, 5, 10)]
    for rows in epochs:
        assert sorted(rows) == list(range(1, ROWS + 1))
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch


@pytest.mark.parametrize("stream", STREAMS)
def test_batch_larger_than_the_split_is_one_batch_per_epoch(row_id_dir,
                                                            stream):
    batches = take_rows(STREAMS[stream](row_id_dir, "train", 128, seed=1),
                        2)
    assert [sorted(b) for b in batches] == [list(range(1, ROWS + 1))] * 2
    assert epoch_batches(row_id_dir, "train", 128) == 1


@pytest.mark.parametrize("stream", STREAMS)
def test_start_step_resumes_across_partial_epoch_ends(row_id_dir, stream):
    make = STREAMS[stream]
    whole = take_rows(make(row_id_dir, "train", 20, seed=5), 13)
    assert [len(b) for b in whole] == [20, 20, 20, 20, 10] * 2 + [20] * 3
    # Steps 4 and 9 are the partial last batches of epochs 0 and 1.
    for start in (3, 4, 5, 9, 10):
        resumed = take_rows(make(row_id_dir, "train", 20, seed=5,
                                 start_step=start), 13 - start)
        assert resumed == whole[start:], start


@pytest.mark.parametrize("batch", [7, 20, 30, 45, 89, 90, 91])
def test_steps_per_epoch_is_ceil_of_rows_over_batch(row_id_dir, batch):
    steps = math.ceil(ROWS / batch)
    assert epoch_batches(row_id_dir, "train", batch) == steps
    for in_memory in (False, True):
        cfg = TrainConfig(batch_size=batch, in_memory=in_memory)
        assert steps_per_epoch(row_id_dir, cfg) == steps


def test_steps_cover_the_fullest_worker(row_id_dir):
    # 2 workers shard the 3 files: 60 and 30 rows, 10 rows each per step at
    # a global batch of 20: 6 steps, not ceil(90 / 20) = 5.
    assert pipeline_rows(row_id_dir, "train", 2) == [60, 30]
    assert epoch_batches(row_id_dir, "train", 20, 2) == 6
    # 4 workers (more than files) shard records: 23, 23, 22, 22 rows.
    assert pipeline_rows(row_id_dir, "train", 4) == [23, 23, 22, 22]
    assert epoch_batches(row_id_dir, "train", 20, 4) == 5


def test_step_weights_make_each_step_sum_to_the_global_batch():
    np.testing.assert_allclose(step_weights([60, 30], 20),
                               [1, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(step_weights([90], 20),
                               [1, 1, 1, 1, 2])
    np.testing.assert_allclose(step_weights([45, 45], 20),
                               [1, 1, 1, 1, 2])


# (input pipelines, replicas): one worker with 2 replicas; 2 workers of 1
# (file sharding, 60 / 30 rows); 2 workers of 2; 4 workers (record sharding).
LAYOUTS = [(1, 2), (2, 2), (2, 4), (4, 4)]


def replica_batches(make, data_dir, batch, pipelines, replicas, steps,
                    start_step=0):
    """{pipeline: its per-replica batches for `steps` steps}."""
    out = {}
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(pipelines, i, replicas)
        ds = make(data_dir, "train", batch, input_context=ctx, seed=2,
                  start_step=start_step)
        out[i] = list(ds.take(steps * replicas // pipelines))
    return out


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("pipelines,replicas", LAYOUTS)
def test_multi_replica_epoch_reads_every_row_once(row_id_dir, stream,
                                                  pipelines, replicas):
    make, batch = STREAMS[stream], 20
    local = replicas // pipelines
    steps = (epoch_batches(row_id_dir, "train", batch, pipelines)
             if stream == "tfrecord" else math.ceil(ROWS / batch))
    parts = replica_batches(make, row_id_dir, batch, pipelines, replicas,
                            2 * steps)
    for epoch in range(2):
        seen = collections.Counter()
        step_weight = collections.defaultdict(float)
        for batches in parts.values():
            for k, (x, y, w) in enumerate(batches):
                step = k // local
                if step // steps != epoch:
                    continue
                w = w.numpy()
                ids = batch_rows((x, y))
                assert len(ids) == batch // replicas  # always full
                assert len(set(w[w > 0].tolist())) <= 1  # one step weight
                seen.update(np.asarray(ids)[w > 0].tolist())
                step_weight[step] += float(w.sum())
        assert sorted(seen) == list(range(1, ROWS + 1)), epoch
        assert set(seen.values()) == {1}
        # The weights of every step sum to the global batch: a loss summed
        # and divided by the global batch is the mean over real rows.
        np.testing.assert_allclose(list(step_weight.values()),
                                   [batch] * steps, rtol=1e-6)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("pipelines,replicas", [(1, 2), (2, 2)])
def test_multi_replica_start_step_resumes(row_id_dir, stream, pipelines,
                                          replicas):
    make = STREAMS[stream]
    whole = replica_batches(make, row_id_dir, 20, pipelines, replicas, 13)
    for start in (4, 5, 6):
        resumed = replica_batches(make, row_id_dir, 20, pipelines, replicas,
                                  13 - start, start_step=start)
        local = replicas // pipelines
        for i, batches in resumed.items():
            want = whole[i][start * local:]
            assert len(batches) == len(want)
            for (x, _, w), (x0, _, w0) in zip(batches, want):
                np.testing.assert_array_equal(x["ids"], x0["ids"])
                np.testing.assert_array_equal(w, w0)


def test_trainer_loss_is_the_mean_over_weighted_rows(row_id_dir):
    """A padded batch (zero-weight copies, real rows weighted B / r) trains
    an `Aligner` exactly as the real rows alone (one device)."""
    from tfdsmlp.data.reader import make_dataset
    from tfdsmlp.distill import Aligner
    from tfdsmlp.features import FeatureSpec
    from tfdsmlp.models import build_model

    spec = FeatureSpec.from_dataset_dir(row_id_dir)
    x, y = next(iter(make_dataset(row_id_dir, "train", 12, shuffle=False)))
    real = 8
    w = np.where(np.arange(12) < real, 12 / real, 0).astype(np.float32)
    x_real = {k: v[:real] for k, v in x.items()}

    def train(data):
        tf.keras.utils.set_random_seed(4)
        student = build_model("dsmlp", {
            "main_hidden_units": [8], "parallel_hidden_units": [4],
            "dropout": 0.0, "batch_norm": False}, spec)
        student(student.dummy_inputs())
        trainer = Aligner(student)
        trainer.compile(optimizer=tf.keras.optimizers.SGD(0.5))
        logs = trainer.train_on_batch(*data, return_dict=True)
        return logs, [v.numpy() for v in student.weights]

    padded, w_padded = train((x, y, w))
    alone, w_alone = train((x_real, y[:real]))
    _, w_unweighted = train((x, y))
    assert padded["loss"] == pytest.approx(alone["loss"], rel=1e-5)
    for a, b in zip(w_padded, w_alone):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # Without the weights the 4 copies would count (the test can fail).
    assert max(float(np.max(np.abs(a - b)))
               for a, b in zip(w_unweighted, w_alone)) > 1e-4
