"""Tests for FeatureEmbedding."""

import tfdsmlp  # noqa: F401
from tfdsmlp.layers import FeatureEmbedding

import numpy as np
import pytest
import tensorflow as tf

IDS = np.array([[1, 0], [2, 3]], np.int64)
DENSE = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)


def _reference(table, numeric, ids, dense, vocab_sizes):
    offsets = np.cumsum([0] + vocab_sizes[:-1])
    cat = table[ids + offsets] * (ids != 0)[..., None]
    return np.concatenate([cat, dense[..., None] * numeric], axis=1)


def test_values_match_reference(rng):
    layer = FeatureEmbedding([3, 4], num_numeric=2, embedding_dim=2)
    layer({"ids": IDS, "dense": DENSE})
    table = rng.normal(size=(7, 2)).astype(np.float32)
    numeric = rng.normal(size=(2, 2)).astype(np.float32)
    layer.embeddings.assign(table)
    layer.numeric_embeddings.assign(numeric)
    out = layer({"ids": IDS, "dense": DENSE})
    assert out.shape == (2, 4, 2) and out.dtype == tf.float32
    np.testing.assert_allclose(
        out, _reference(table, numeric, IDS, DENSE, [3, 4]), atol=1e-5)
    assert layer.num_fields == 4
    assert layer.embeddings.shape == (7, 2)  # one concatenated table


def test_padding_id_gives_zero_vector_and_int32_ids_work():
    layer = FeatureEmbedding([3, 4], embedding_dim=3, initializer_stddev=1.0)
    out = layer({"ids": IDS.astype(np.int32)}).numpy()
    np.testing.assert_array_equal(out[0, 1], np.zeros(3))
    assert np.all(out[0, 0] != 0) and np.all(out[1] != 0)
    np.testing.assert_array_equal(layer(IDS), out)  # bare ids tensor
    # Float ids are cast, as Keras builds subclassed models on float inputs.
    np.testing.assert_array_equal(layer(IDS.astype(np.float32)), out)


def test_default_initializer_stddev():
    layer = FeatureEmbedding([2000], embedding_dim=10)
    layer(np.ones((1, 1), np.int64))
    assert abs(np.std(layer.embeddings.numpy()) - 1e-4) < 1e-5


def test_l2_loss_is_half_lambda_sum_of_squares():
    layer = FeatureEmbedding([3, 4], num_numeric=2, embedding_dim=2,
                             embedding_l2=0.1, initializer_stddev=1.0)
    layer({"ids": IDS, "dense": DENSE})
    w = np.concatenate([layer.embeddings.numpy().ravel(),
                        layer.numeric_embeddings.numpy().ravel()])
    np.testing.assert_allclose(float(tf.add_n(layer.losses)),
                               0.05 * np.sum(w.astype(np.float64) ** 2),
                               rtol=1e-6)
    no_l2 = FeatureEmbedding([3, 4])
    no_l2(IDS)
    assert no_l2.losses == []


def test_gradient_reaches_only_gathered_non_padding_rows(rng):
    layer = FeatureEmbedding([3, 4], embedding_dim=2, initializer_stddev=1.0)
    layer(IDS)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(IDS) * rng.normal(size=(2, 2, 2)))
    grad = tape.gradient(loss, layer.embeddings)
    assert isinstance(grad, tf.IndexedSlices)  # sparse update
    dense_grad = tf.convert_to_tensor(grad).numpy()
    rows_with_grad = set(np.nonzero(np.abs(dense_grad).sum(axis=1))[0])
    assert rows_with_grad == {1, 2, 3 + 3}  # ids 1, 2 of field 0; 3 of field 1


def test_batch_scope_l2_covers_each_looked_up_row_once_and_stays_sparse():
    ids = np.array([[1, 0], [1, 3]], np.int64)  # row 1 twice, padding row 3
    layer = FeatureEmbedding([3, 4], num_numeric=2, embedding_dim=2,
                             embedding_l2=0.1, initializer_stddev=1.0,
                             l2_scope="batch")
    inputs = {"ids": ids, "dense": DENSE}
    layer(inputs)
    table = layer.embeddings.numpy().astype(np.float64)
    numeric = layer.numeric_embeddings.numpy().astype(np.float64)
    with tf.GradientTape() as tape:
        layer(inputs)
        loss = tf.add_n(layer.losses)
    # unique rows: 1 (field 0), 3 (field 1, padding), 3 + 3 = 6 (field 1)
    expected = 0.05 * (np.sum(table[[1, 3, 6]] ** 2) + np.sum(numeric ** 2))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)
    grad = tape.gradient(loss, layer.embeddings)
    assert isinstance(grad, tf.IndexedSlices)
    dense_grad = tf.convert_to_tensor(grad).numpy()
    np.testing.assert_allclose(dense_grad[[1, 3, 6]], 0.1 * table[[1, 3, 6]],
                               rtol=1e-5)
    assert not np.any(dense_grad[[0, 2, 4, 5]])


def test_row_sharded_table_gives_the_same_values_and_sparse_gradients(rng):
    # ParameterServerStrategy's variable_partitioner splits the table by
    # rows into a ShardedVariable; lookups must fetch rows from each shard.
    layer = FeatureEmbedding([3, 4], num_numeric=2, embedding_dim=2)
    inputs = {"ids": IDS, "dense": DENSE}
    layer(inputs)
    table = rng.normal(size=(7, 2)).astype(np.float32)
    layer.numeric_embeddings.assign(np.ones((2, 2), np.float32))
    layer.embeddings = tf.__internal__.distribute.ShardedVariable(
        [tf.Variable(table[:4]), tf.Variable(table[4:])])
    with tf.GradientTape() as tape:
        out = layer(inputs)
        loss = tf.reduce_sum(out)
    np.testing.assert_allclose(
        out, _reference(table, np.ones((2, 2)), IDS, DENSE, [3, 4]),
        atol=1e-6)
    grads = tape.gradient(loss, layer.embeddings.variables)
    assert all(isinstance(g, tf.IndexedSlices) for g in grads)
    # looked up: rows 1 (ids[0,0]), 2 and 3 + 3 = 6; row 0 + 3 is padding
    touched = sorted(int(i) + offset for g, offset in zip(grads, (0, 4))
                     for i, v in zip(g.indices.numpy(), g.values.numpy())
                     if np.any(v))
    assert touched == [1, 2, 6]


@pytest.mark.parametrize("kwargs, match", [
    ({"vocab_sizes": [3], "l2_scope": "rows"}, r"`l2_scope='rows'`"),
    ({"vocab_sizes": [1, 5]}, r"`vocab_sizes=\[1, 5\]`"),
    ({"vocab_sizes": "abc"}, r"`vocab_sizes='abc'`"),
    ({"vocab_sizes": [3], "num_numeric": -1}, r"`num_numeric=-1`"),
    ({"vocab_sizes": [3], "embedding_dim": 0}, r"`embedding_dim=0`"),
    ({"vocab_sizes": [3], "embedding_l2": -0.1}, r"`embedding_l2=-0.1`"),
    ({"vocab_sizes": [3], "initializer_stddev": 0}, r"`initializer_stddev=0`"),
    ({"vocab_sizes": []}, r"at least one field"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureEmbedding(**kwargs)


def test_bad_inputs():
    layer = FeatureEmbedding([3, 4], num_numeric=2)
    with pytest.raises(ValueError, match=r"\(batch, 2\).*\(2, 3\)"):
        layer({"ids": np.ones((2, 3), np.int64), "dense": DENSE})
    with pytest.raises(ValueError, match=r"`num_numeric=2`.*'dense'"):
        layer({"ids": IDS})
    with pytest.raises(ValueError, match=r"\(batch, 2\).*\(2, 1\)"):
        layer({"ids": IDS, "dense": DENSE[:, :1]})
    with pytest.raises(ValueError, match="'ids'"):
        layer({"dense": DENSE})
    symbolic = tf.keras.Input((5,), dtype=tf.int64)
    with pytest.raises(ValueError, match=r"\(batch, 2\).*\(None, 5\)"):
        FeatureEmbedding([3, 4])(symbolic)  # caught at model construction


def test_roundtrip(assert_layer_roundtrip, tmp_path):
    assert_layer_roundtrip(
        lambda: FeatureEmbedding([3, 4], num_numeric=2, embedding_dim=2,
                                 embedding_l2=0.1, initializer_stddev=1.0),
        {"ids": IDS, "dense": DENSE}, tmp_path)


def test_roundtrip_batch_scope(assert_layer_roundtrip, tmp_path):
    assert_layer_roundtrip(
        lambda: FeatureEmbedding([3, 4], embedding_dim=2, embedding_l2=0.1,
                                 l2_scope="batch"), {"ids": IDS}, tmp_path)
