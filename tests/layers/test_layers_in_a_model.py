"""All layers together in one tiny functional model that trains."""

import logging

import tfdsmlp  # noqa: F401
from tfdsmlp import layers as L

import numpy as np
import tensorflow as tf


def _model():
    ids = tf.keras.Input((3,), dtype=tf.int64, name="ids_input")
    dense = tf.keras.Input((1,), name="dense_input")
    features = {"ids": ids, "dense": dense}
    emb = L.FeatureEmbedding([5, 4, 3], num_numeric=1, embedding_dim=4,
                             embedding_l2=0.01)(features)      # (b, 4, 4)
    flat = tf.keras.layers.Flatten()(emb)                      # (b, 16)
    attention = L.MultiHeadSelfAttention(8, num_heads=2)(emb)   # (b, 4, 8)
    assert attention.shape.as_list() == [None, 4, 8]
    user = tf.keras.layers.Flatten()(emb[:, :1])
    stream_x = L.MLPBlock([8], batch_norm=True, dropout=0.1)(
        L.FeatureSelectionGate([4], context_dim=4)(flat))
    stream_y = L.MLPBlock([6])(
        L.FeatureSelectionGate([4])(flat, context=user))
    parts = [
        L.LinearTerm([5, 4, 3], num_numeric=1, embedding_l2=0.01)(features),
        L.FactorizationMachine()(emb),
        tf.keras.layers.Dense(1)(L.CompressedInteractionNetwork([3])(emb)),
        tf.keras.layers.Dense(1)(L.CrossNetwork(2)(flat)),
        tf.keras.layers.Dense(1)(L.CrossNetwork(1, "gated")(flat)),
        tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(attention)),
        L.BilinearFusion(num_heads=2)([stream_x, stream_y]),
    ]
    return tf.keras.Model(features, tf.keras.layers.Add()(parts))


def test_model_trains_and_every_weight_gets_a_gradient(caplog):
    tf.keras.utils.set_random_seed(1)
    model = _model()
    rng = np.random.default_rng(0)
    data = {"ids": rng.integers(0, 3, size=(16, 3)),
            "dense": rng.normal(size=(16, 1)).astype(np.float32)}
    labels = rng.integers(0, 2, size=(16, 1)).astype(np.float32)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    assert len(model.losses) == 4  # L2 of both tables and numeric vectors
    with caplog.at_level(logging.WARNING):
        history = model.fit(data, labels, batch_size=8, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert "Gradients do not exist" not in caplog.text
