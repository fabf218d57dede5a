"""LazyAdam: hand-checked values, untouched rows, config, and its use."""

import tfdsmlp  # noqa: F401
from tfdsmlp.models.registry import build_model
from tfdsmlp.training.fit import make_optimizer
from tfdsmlp.training.lazy_adam import LazyAdam
from tfdsmlp.training.train_config import TrainConfig

import numpy as np
import pytest
import tensorflow as tf


def _adam_rows(w, g, steps, lr=0.1, b1=0.9, b2=0.999, eps=1e-7):
    """NumPy Adam on the rows that get a gradient every step."""
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (
            np.sqrt(v) + eps)
    return w


def test_sparse_update_touches_only_gathered_rows():
    table = np.arange(8, dtype=np.float32).reshape(4, 2)
    var = tf.Variable(table)
    opt = LazyAdam(learning_rate=0.1)
    g = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    rows = tf.constant([3, 1])
    # One step on rows {1, 3}, then one on row 3 only.
    opt.apply_gradients([(tf.IndexedSlices(tf.constant(g), rows), var)])
    after_one = var.numpy().copy()
    opt.apply_gradients([(tf.IndexedSlices(tf.constant(g[:1]),
                                           tf.constant([3])), var)])
    out = var.numpy()
    # Rows 0 and 2 never move; row 1 keeps its first-step value although
    # plain Adam would move it again with its decayed momentum.
    np.testing.assert_array_equal(out[[0, 2]], table[[0, 2]])
    np.testing.assert_array_equal(out[1], after_one[1])
    np.testing.assert_allclose(after_one[1], _adam_rows(table[1], g[1], 1),
                               rtol=1e-6)
    np.testing.assert_allclose(out[3], _adam_rows(table[3], g[0], 2),
                               rtol=1e-6)
    dense = tf.Variable(table)
    adam = tf.keras.optimizers.Adam(learning_rate=0.1)
    adam.apply_gradients([(tf.IndexedSlices(tf.constant(g), rows), dense)])
    adam.apply_gradients([(tf.IndexedSlices(tf.constant(g[:1]),
                                            tf.constant([3])), dense)])
    assert not np.allclose(dense.numpy()[1], after_one[1])  # Adam moved it


def test_duplicate_indices_are_summed_like_adam():
    var, ref = tf.Variable(np.ones((3, 1), np.float32)), tf.Variable(
        np.ones((3, 1), np.float32))
    grad = tf.IndexedSlices(tf.constant([[1.0], [3.0]]), tf.constant([2, 2]),
                            dense_shape=tf.constant([3, 1]))
    LazyAdam(learning_rate=0.1).apply_gradients([(grad, var)])
    tf.keras.optimizers.Adam(learning_rate=0.1).apply_gradients(
        [(tf.convert_to_tensor(grad), ref)])
    np.testing.assert_allclose(var.numpy(), ref.numpy(), rtol=1e-6)


def test_dense_gradients_get_plain_adam():
    var, ref = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    for opt, v in ((LazyAdam(0.01), var),
                   (tf.keras.optimizers.Adam(0.01), ref)):
        for _ in range(3):
            opt.apply_gradients([(tf.constant([0.3, -0.7]), v)])
    np.testing.assert_allclose(var.numpy(), ref.numpy(), rtol=1e-6)


def test_config_roundtrip_and_bad_arguments():
    opt = LazyAdam(learning_rate=0.02, beta_1=0.8, global_clipnorm=10.0)
    config = tf.keras.optimizers.serialize(opt)
    again = tf.keras.optimizers.deserialize(config)
    assert isinstance(again, LazyAdam)
    assert again.get_config()["beta_1"] == pytest.approx(0.8)
    assert again.global_clipnorm == 10.0
    with pytest.raises(ValueError, match="amsgrad=True"):
        LazyAdam(amsgrad=True)


def test_train_config_selects_it_and_refuses_dense_embedding_gradients(
        tiny_spec):
    with pytest.raises(ValueError, match=r"`optimizer='lazy'`"):
        TrainConfig(optimizer="lazy")
    cfg = TrainConfig(optimizer="lazy_adam")
    assert isinstance(make_optimizer(cfg), LazyAdam)
    table_l2 = build_model("dnn", {"embedding_l2": 0.1}, tiny_spec)
    with pytest.raises(ValueError, match="`embedding_l2_scope: lazy`"):
        make_optimizer(cfg, table_l2)
    batch_l2 = build_model("dnn", {"embedding_l2": 0.1,
                                   "embedding_l2_scope": "batch"}, tiny_spec)
    assert isinstance(make_optimizer(cfg, batch_l2), LazyAdam)
    with pytest.raises(ValueError, match="embedding_l2_scope='rows'"):
        build_model("dnn", {"embedding_l2_scope": "rows"}, tiny_spec)


def test_a_model_trains_with_sparse_updates(tiny_spec, tiny_batch):
    x, y = tiny_batch
    model = build_model("deepfm", {"embedding_l2": 0.1,
                                   "embedding_l2_scope": "batch",
                                   "hidden_units": [8]}, tiny_spec)
    model(x)
    before = model.embedding.embeddings.numpy().copy()
    model.compile(optimizer=make_optimizer(
        TrainConfig(optimizer="lazy_adam", learning_rate=0.01), model),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0, batch_size=len(y))
    moved = np.any(model.embedding.embeddings.numpy() != before, axis=1)
    offsets = np.cumsum([0] + list(tiny_spec.vocab_sizes[:-1]))
    looked_up = set((x["ids"] + offsets).ravel().tolist())
    assert set(np.nonzero(moved)[0].tolist()) <= looked_up
    assert moved.any()
